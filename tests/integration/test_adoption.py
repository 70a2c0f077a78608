"""The data path outlives the agent: the shipped Redis shard and the proxy in front of it keep
serving while certvisord is killed with SIGKILL and started again, again and again.

A checking client writes a new value and reads it back through the proxy (TLS) without a pause,
verifying every reply; the agent is killed and started again ten times under it. Nothing may
fail, the proxy and the shard keep their pids, and each new agent adopts every service."""
import os
import re
import signal
import threading

import redis

from conftest import pid_alive, wait_for
from test_apply import file_fingerprint, served_fingerprint
from test_certs import state
from test_redis_reload import Shard, pytestmark  # noqa: F401 (the same skips)

KILLS = 10


class CheckingClient(threading.Thread):
    """SET then GET of a fresh value, in a loop; a reply that is not the value just written, or
    an error, is a failure."""

    def __init__(self, make_client):
        super().__init__(daemon=True)
        self.make_client = make_client
        self.stop = threading.Event()
        self.done = 0
        self.failures = []

    def run(self):
        client = self.make_client()
        i = 0
        while not self.stop.is_set():
            i += 1
            key, value = f"adopt:{i % 100}", f"value-{i}"
            try:
                client.set(key, value)
                got = client.get(key)
                if got != value.encode():
                    self.failures.append(f"GET {key}: {got!r}, expected {value!r}")
                self.done += 1
            except redis.RedisError as e:
                self.failures.append(f"request {i}: {e!r}")
                client = self.make_client()


def adoption_ms(log_text):
    return [float(m) for m in re.findall(r"Adopted \d+ running services? from the previous "
                                         r"agent in ([0-9.]+) ms", log_text)]


def test_killing_the_agent_under_load_fails_no_request(agent_factory):
    shard = Shard(agent_factory)
    agent = shard.agent
    names = [line.split()[0] for line in agent.ctl("status").stdout.splitlines()]
    pids = {name: agent.pid_of(name) for name in names}
    client = CheckingClient(shard.client)
    client.start()
    try:
        wait_for(lambda: client.done > 100, 20, what="the client to run")
        for _ in range(KILLS):
            before = client.done
            os.kill(agent.proc.pid, signal.SIGKILL)
            agent.proc.wait(timeout=10)
            agent.start()
            assert {name: agent.pid_of(name) for name in names} == pids
            assert all(agent.state(name) == "RUNNING" for name in names), agent.ctl("status").stdout
            wait_for(lambda: client.done > before + 50, 20, what="requests after the restart")
    finally:
        client.stop.set()
        client.join(timeout=20)
    assert not client.failures, client.failures[:10]
    times = adoption_ms(agent.log_text())
    assert len(times) == KILLS, agent.log_text()[-4000:]
    print(f"\n{client.done} requests, 0 failed, across {KILLS} agent kills; adoption of "
          f"{len(names)} services took {min(times):.1f} to {max(times):.1f} ms")
    # The agent's own stop still takes the data path down with it, in order.
    assert agent.stop() == 0
    assert not any(pid_alive(pid) for pid in pids.values())


def test_a_change_committed_by_an_agent_that_died_reaches_the_adopted_proxy(agent_factory):
    """The agent dies after switching the proxy's certificate and rendering its files, before
    telling the proxy: the next agent sees that the proxy has not read them and reloads it."""
    shard = Shard(agent_factory)
    agent = shard.agent
    old = served_fingerprint(shard.db_port)
    agent.stop()
    agent.env_extra = {"CERTVISOR_TEST_CRASH_AT": "rendered"}
    agent.start()
    proxy = agent.pid_of("proxy")
    assert agent.ctl("cluster", "certificate", "rotate", "proxy").returncode != 0
    agent.proc.wait(timeout=30)
    assert pid_alive(proxy) and served_fingerprint(shard.db_port) == old  # not told yet
    agent.env_extra = {}
    agent.start()
    assert agent.pid_of("proxy") == proxy
    assert ("Service 'proxy': its TLS files changed after it last read them: reloading it"
            in agent.log_text())
    # READY=1 waited for that reload: the certificate served is the store's current one.
    current = file_fingerprint(state(agent, "certs/proxy/current/cert.pem"))
    assert current != old and served_fingerprint(shard.db_port) == current
    assert shard.client().ping()
