"""The agent's own systemd protocol: READY once settled, STATUS, WATCHDOG, STOPPING."""
from conftest import wait_for
from test_supervision import quoted, svc


def test_ready_is_sent_only_once_every_autostart_service_is_ready(agent_factory):
    agent = agent_factory({
        "slow": svc(quoted("--ready-delay", "400")),
        "after_slow": svc(after=["slow"]),
        "manual": svc(extra="autostart = false"),
    })
    agent.start()
    messages = agent.notify.drain()
    ready_index = next(i for i, m in enumerate(messages) if "READY=1" in m)
    ready_at = agent.notify.times[ready_index]
    assert agent.state("after_slow") == "RUNNING"
    ready_records = {n: ns for _, n, _, ns in agent.records("ready")}
    assert set(ready_records) == {"slow", "after_slow"}
    assert any("STATUS=" in m and "2 running" in m for m in messages)
    assert ready_at > 0


def test_ready_is_sent_even_when_a_service_fails_and_status_names_it(agent_factory):
    agent = agent_factory({"good": svc(), "bad": svc(quoted("--crash-on-start"), extra="start_retries = 0")})
    agent.start()
    assert agent.state("bad") == "FATAL"
    wait_for(lambda: any("1 failed (bad)" in m for m in agent.notify.drain()), what="STATUS naming bad")


def test_watchdog_pings_at_half_the_interval(agent_factory):
    agent = agent_factory({"web": svc()}, env_extra={"WATCHDOG_USEC": "400000"})
    agent.start()
    wait_for(lambda: sum("WATCHDOG=1" in m for m in agent.notify.drain()) >= 8, 10, what="eight pings")
    times = [t for m, t in zip(agent.notify.drain(), agent.notify.times) if "WATCHDOG=1" in m]
    # Times are when the test's thread read each ping, so on a loaded machine one gap may be short
    # and the next long; their mean is what the interval sets (200 ms), far from 400 ms or 100 ms.
    mean_gap = (times[-1] - times[0]) / (len(times) - 1)
    assert 0.12 < mean_gap < 0.36, times


def test_no_watchdog_for_another_pid(agent_factory):
    agent = agent_factory({"web": svc()}, env_extra={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
    agent.start()
    import time
    time.sleep(0.5)
    assert not any("WATCHDOG=1" in m for m in agent.notify.drain())


def test_stopping_then_exit_zero_on_sigterm(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    assert agent.stop() == 0
    agent.notify.wait_for("STOPPING=1", 5)  # the listener thread may not have read it yet
