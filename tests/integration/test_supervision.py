"""Supervision: dependency order, readiness, backoff, FATAL, stop, and nothing left behind."""
import os
import re
import signal
import time

from conftest import SANITIZED, pid_alive, wait_for


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1])


def svc(args="", after=(), extra=""):
    deps = ", ".join(f'"{d}"' for d in after)
    return f"""
        command = "TESTSVC"
        arguments = {{"--record", "RECORD" {"," if args else ""} {args}}}
        after = {{{deps}}}
        {extra}
    """


def quoted(*words):
    return ", ".join(f'"{w}"' for w in words)


def test_starts_in_dependency_order_each_after_its_dependencies_are_ready(agent_factory):
    agent = agent_factory({
        "base": svc(quoted("--ready-delay", "200")),
        "middle": svc(quoted("--ready-delay", "100"), after=["base"]),
        "top": svc(after=["middle"]),
        "loner": svc(),
    })
    agent.start()
    ready = {name: ns for ev, name, _, ns in agent.records("ready")}
    start = {name: ns for ev, name, _, ns in agent.records("start")}
    assert start["middle"] > ready["base"]
    assert start["top"] > ready["middle"]
    # Independent services do not wait for the chain.
    assert start["loner"] < ready["base"]
    assert all(state == "RUNNING" for state, _ in agent.status().values())


def test_sigterm_stops_in_reverse_dependency_order_and_exits_cleanly(agent_factory):
    agent = agent_factory({
        "base": svc(),
        "middle": svc(after=["base"]),
        "top": svc(after=["middle"]),
    })
    agent.start()
    pids = [pid for _, _, pid, _ in agent.records("start")]
    assert agent.stop() == 0
    stops = [name for _, name, _, _ in agent.records("stop")]
    assert stops == ["top", "middle", "base"]
    assert not any(pid_alive(p) for p in pids)
    agent.notify.wait_for("STOPPING=1", 5)  # the listener thread may not have read it yet
    assert not agent.socket.exists(), "the control socket is removed on exit"


def test_a_service_that_never_notifies_times_out_and_goes_fatal(agent_factory):
    agent = agent_factory({"silent": svc(quoted("--no-notify"),
                                         extra="start_timeout = 0.5\nstart_retries = 1\nbackoff_initial = 0.1")})
    agent.start()
    agent.wait_state("silent", "FATAL")
    state, desc = agent.status()["silent"]
    assert "was not ready within 0.5s" in desc
    assert "gave up after 2 failed starts" in desc
    assert len(agent.records("start", "silent")) == 2
    result = agent.ctl("status", "silent")
    assert result.returncode == 3


def test_crash_on_start_backs_off_geometrically_then_fatal(agent_factory):
    agent = agent_factory({"crasher": svc(quoted("--crash-on-start", "--exit-code", "7"),
                                          extra="start_retries = 3\nbackoff_initial = 0.1\nbackoff_factor = 2")})
    agent.start()
    agent.wait_state("crasher", "FATAL")
    starts = [ns for _, _, _, ns in agent.records("start", "crasher")]
    assert len(starts) == 4
    gaps = [(b - a) / 1e9 for a, b in zip(starts, starts[1:])]
    # 0.1, 0.2, 0.4 s between attempts, plus process start-up time, which on a loaded machine
    # (or under a sanitizer) can be a second: the delays the agent chose are in its log, the
    # measured gaps are only at least those.
    for gap, expected in zip(gaps, [0.1, 0.2, 0.4]):
        assert gap >= expected, gaps
    delays = re.findall(r"Service 'crasher' .*; retrying in ([0-9.]+)s", agent.log_text())
    assert delays == ["0.1", "0.2", "0.4"], agent.log_text()
    assert "exited with status 7 before it was ready" in agent.status()["crasher"][1]


def test_a_service_that_crashes_later_is_restarted(agent_factory):
    agent = agent_factory({"flaky": svc(quoted("--crash-after", "300"),
                                        extra="backoff_initial = 0.05\nstart_retries = 100")})
    agent.start()
    first = agent.pid_of("flaky")
    wait_for(lambda: len(agent.records("start", "flaky")) >= 3, what="two restarts")
    agent.wait_state("flaky", "RUNNING")
    assert agent.pid_of("flaky") != first
    assert "exited with status 1 unexpectedly" in agent.log_text()


def test_expected_exit_is_not_restarted_with_autorestart_unexpected(agent_factory):
    agent = agent_factory({"oneshot": svc(quoted("--crash-after", "100", "--exit-code", "0"))})
    agent.start()
    agent.wait_state("oneshot", "EXITED")
    time.sleep(0.3)
    assert len(agent.records("start", "oneshot")) == 1


def test_stop_escalates_to_sigkill_for_a_service_ignoring_sigterm(agent_factory):
    agent = agent_factory({"stubborn": svc(quoted("--ignore-term"), extra="stop_timeout = 0.5")})
    agent.start()
    pid = agent.pid_of("stubborn")
    began = time.monotonic()
    result = agent.ctl("stop", "stubborn")
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "stubborn: stopped"
    assert elapsed >= 0.5
    assert not pid_alive(pid)
    assert "did not stop within 0.5s: sending SIGKILL" in agent.log_text()


def test_no_grandchild_survives_stop_even_outside_the_process_group(agent_factory):
    agent = agent_factory({
        "forker": svc(quoted("--grandchildren", "2")),
        "escaper": svc(quoted("--grandchildren", "2", "--escape-group")),
    })
    agent.start()
    grandchildren = wait_for(lambda: len(agent.records("grandchild")) == 4 and agent.records("grandchild"),
                             what="four grandchildren")
    assert all(pid_alive(pid) for _, _, pid, _ in grandchildren)
    result = agent.ctl("stop", "all")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: not any(pid_alive(pid) for _, _, pid, _ in grandchildren), 5,
             what="grandchildren to be gone")


def test_nothing_is_left_running_after_the_agent_exits(agent_factory):
    agent = agent_factory({
        "a": svc(quoted("--grandchildren", "1")),
        "b": svc(quoted("--ignore-term"), extra="stop_timeout = 0.3"),
    })
    agent.start()
    wait_for(lambda: agent.records("grandchild"), what="a grandchild")
    pids = [pid for _, _, pid, _ in agent.records()]
    assert agent.stop() == 0
    assert not any(pid_alive(p) for p in pids)


def test_services_outlive_a_killed_agent_and_the_next_one_adopts_them(agent_factory):
    agent = agent_factory({"a": svc(quoted("--print-on-reload"), extra='reload_signal = "HUP"'),
                           "b": svc(after=["a"]),
                           "gone": svc()})
    agent.start()
    pids = {name: agent.pid_of(name) for name in ("a", "b", "gone")}
    os.kill(agent.proc.pid, signal.SIGKILL)
    agent.proc.wait(timeout=5)
    assert all(pid_alive(p) for p in pids.values())
    # While no agent runs: b's settings change, and gone leaves the configuration.
    agent.write_service("b", svc(quoted("--ready-delay", "50"), after=["a"]))
    agent.remove_service("gone")
    agent.start()
    # a is taken over as it is: same process, RUNNING, not started again.
    assert agent.state("a") == "RUNNING" and agent.pid_of("a") == pids["a"]
    assert len(agent.records("start", "a")) == 1
    assert "Service 'a' (pid %d) adopted from the previous agent" % pids["a"] in agent.log_text()
    # Its output reaches the new agent: the FIFO it writes to outlived the old one.
    assert agent.ctl("reload", "a").returncode == 0
    wait_for(lambda: "reloaded" in agent.ctl("tail", "a").stdout, 10, what="a's output in tail")
    # b is restarted with its new settings; gone's process is stopped.
    wait_for(lambda: agent.state("b") == "RUNNING" and agent.pid_of("b") != pids["b"], 15,
             what="b restarted with its new settings")
    wait_for(lambda: not pid_alive(pids["b"]) and not pid_alive(pids["gone"]), 15,
             what="the old b and gone to stop")
    assert "its settings changed while the agent was stopped" in agent.log_text()
    # An adopted process is not the agent's child: its exit comes without a status, and it is
    # restarted as any crash is.
    os.kill(pids["a"], signal.SIGKILL)
    wait_for(lambda: agent.state("a") == "RUNNING" and agent.pid_of("a") != pids["a"], 15,
             what="a restarted after its adopted process died")
    assert "status unknown: adopted from the previous agent" in agent.log_text()
    # The agent's own stop still stops everything, adopted or not.
    pids = [agent.pid_of(name) for name in ("a", "b")]
    assert agent.stop() == 0
    assert not any(pid_alive(p) for p in pids)


def test_an_agent_killed_again_and_again_keeps_the_same_processes(agent_factory):
    agent = agent_factory({"a": svc(), "b": svc(after=["a"])})
    agent.start()
    pids = {name: agent.pid_of(name) for name in ("a", "b")}
    for _ in range(3):
        os.kill(agent.proc.pid, signal.SIGKILL)
        agent.proc.wait(timeout=5)
        agent.start()
        assert {name: agent.pid_of(name) for name in ("a", "b")} == pids
        assert agent.state("a") == agent.state("b") == "RUNNING"
    assert len(agent.records("start")) == 2


def test_a_record_that_names_another_process_is_not_adopted(agent_factory):
    agent = agent_factory({"a": svc()})
    agent.start()
    pid = agent.pid_of("a")
    os.kill(agent.proc.pid, signal.SIGKILL)
    agent.proc.wait(timeout=5)
    # The recorded process ended, and its pid may name another process by now: the record's
    # start time tells them apart. Here the pid is this test's own process.
    records = agent.prefix / "run/certvisor/services.json"
    text = records.read_text().replace('"pid":%d' % pid, '"pid":%d' % os.getpid())
    records.write_text(text)
    os.kill(pid, signal.SIGKILL)
    agent.start()
    assert agent.state("a") == "RUNNING" and agent.pid_of("a") not in (pid, os.getpid())
    assert "ended while the agent was stopped" in agent.log_text()


def test_restart_returns_once_the_service_is_ready_again(agent_factory):
    agent = agent_factory({"slow": svc(quoted("--ready-delay", "300"))})
    agent.start()
    old = agent.pid_of("slow")
    began = time.monotonic()
    result = agent.ctl("restart", "slow")
    assert time.monotonic() - began >= 0.3
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["slow: stopped", "slow: started"]
    assert agent.state("slow") == "RUNNING"
    assert agent.pid_of("slow") != old


def test_restart_of_a_service_that_fails_says_so(agent_factory):
    agent = agent_factory({"ok": svc()})
    agent.start()
    agent.write_service("ok", svc(quoted("--crash-on-start"), extra="start_retries = 0"))
    assert agent.ctl("reload").returncode == 0
    wait_for(lambda: agent.state("ok") == "FATAL", what="FATAL after the changed configuration")
    result = agent.ctl("restart", "ok")
    assert result.returncode == 1
    assert "ok: ERROR (gave up after 1 failed starts" in result.stdout


def test_restart_all_stops_in_reverse_and_starts_in_dependency_order(agent_factory):
    agent = agent_factory({
        "base": svc(),
        "middle": svc(after=["base"]),
        "top": svc(after=["middle"]),
    })
    agent.start()
    agent.record.write_text("")
    result = agent.ctl("restart", "all")
    assert result.returncode == 0, result.stdout
    events = [(ev, name) for ev, name, _, _ in agent.records() if ev in ("stop", "start")]
    assert events == [("stop", "top"), ("stop", "middle"), ("stop", "base"),
                      ("start", "base"), ("start", "middle"), ("start", "top")]


def test_start_pulls_in_dependencies_and_dependency_failure_is_reported(agent_factory):
    agent = agent_factory({
        "base": svc(extra="autostart = false"),
        "top": svc(after=["base"], extra="autostart = false"),
    })
    agent.start()
    assert agent.state("top") == "STOPPED"
    result = agent.ctl("start", "top")
    assert result.returncode == 0, result.stdout
    assert agent.state("base") == "RUNNING"
    agent.ctl("stop", "all")
    agent.write_service("base", svc(quoted("--crash-on-start"), extra="autostart = false\nstart_retries = 0"))
    agent.ctl("reload")
    result = agent.ctl("start", "top")
    assert result.returncode == 1
    assert "top: ERROR (dependency 'base' is FATAL" in result.stdout


def test_flooding_stdout_neither_blocks_the_agent_nor_grows_it(agent_factory):
    agent = agent_factory({"flood": svc(quoted("--flood")), "quiet": svc()},
                          main_extra="service_log_max_bytes = 200000\nservice_log_backups = 2")
    agent.start()
    rss_before = rss_kb(agent.proc.pid)
    log = agent.prefix / "var/log/certvisor/flood.log"
    wait_for(lambda: (log.parent / "flood.log.2").exists(), 20, what="two rotations")
    for _ in range(5):
        began = time.monotonic()
        assert agent.ctl("restart", "quiet").returncode == 0
        assert time.monotonic() - began < 5
    tail = agent.ctl("tail", "-n", "3", "flood").stdout.splitlines()
    assert len(tail) == 3 and all(line.startswith("flood line ") for line in tail)
    assert not (log.parent / "flood.log.3").exists(), "only service_log_backups files are kept"
    # The flood must not grow the agent: its tail buffer and pipes are bounded. (Under
    # AddressSanitizer, freed memory sits in quarantine, so RSS says nothing there.)
    if not SANITIZED:
        assert rss_kb(agent.proc.pid) - rss_before < 8 * 1024
    assert agent.ctl("stop", "flood").returncode == 0


def test_started_readiness_is_ready_once_exec_succeeds(agent_factory):
    agent = agent_factory({"plain": svc(quoted("--no-notify"), extra="readiness = started")})
    agent.start()
    assert agent.state("plain") == "RUNNING"


def test_a_command_that_cannot_be_executed_says_why(agent_factory):
    agent = agent_factory({"missing": """
        command = "/nonexistent/program"
        start_retries = 0
    """})
    agent.start()
    assert agent.state("missing") == "FATAL"
    assert "cannot execute /nonexistent/program: No such file or directory" in agent.status()["missing"][1]


def test_autorestart_true_restarts_even_a_clean_exit(agent_factory):
    agent = agent_factory({"again": svc(quoted("--crash-after", "200", "--exit-code", "0"),
                                        extra="autorestart = true\nbackoff_initial = 0.05\nstart_retries = 50")})
    agent.start()
    wait_for(lambda: len(agent.records("start", "again")) >= 3, what="restarts after clean exits")
