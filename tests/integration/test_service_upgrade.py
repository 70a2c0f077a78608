"""A service's binary upgraded under it. The proxy hands over: the agent sends it its
upgrade_signal (SIGUSR2), the proxy starts the new binary with its listening sockets, the new
process announces MAINPID= and the old one drains. Under a stream of new TLS connections no
connection is refused, and an established connection goes on working on the old process until
it closes. A service without an upgrade_signal is restarted. The agent notices at a
configuration reload and when it adopts its services (after its own re-exec, which the packages
run on upgrade)."""
import os
import shutil
import signal

import redis

from conftest import BUILD, TESTSVC, Repeatedly, pid_alive, wait_for
from test_proxy import PROXY_SERVICE
from test_reexec import replace_file
from test_redis_reload import Shard, pytestmark  # noqa: F401 (the same skips)

UPGRADES = 10


def new_connection_requests(shard):
    """A probe for Repeatedly: a new TLS connection for a SET and a GET; a refused or failed one
    is a failure."""
    count = iter(range(1 << 62))

    def probe():
        i = next(count)
        client = shard.client()
        try:
            client.set(f"upgrade:{i % 50}", i)
            got = client.get(f"upgrade:{i % 50}")
            return None if got == str(i).encode() else f"request {i}: GET returned {got!r}"
        except redis.RedisError as e:
            return f"request {i}: {e!r}"
        finally:
            client.connection_pool.disconnect()
    return probe


def proxy_from_a_copy(shard):
    """Runs the proxy from a copy of its binary that the test replaces as dpkg would."""
    agent = shard.agent
    binary = agent.root / "libexec" / "certvisor-proxy"
    binary.parent.mkdir()
    shutil.copy2(BUILD / "certvisor-proxy", binary)
    agent.write_service("proxy", PROXY_SERVICE.replace("%{libexec_dir}/certvisor-proxy",
                                                       str(binary))
                        .replace('"--threads", "2"', '"--threads", "2", "--drain-timeout", "20"'))
    out = agent.ctl("reload")
    assert out.returncode == 0, out.stdout + out.stderr
    agent.wait_state("proxy", "RUNNING")
    return binary


def upgrade_under_load(shard, binary, trigger):
    agent = shard.agent
    old, shard_pid = agent.pid_of("proxy"), shard.pid()
    established = shard.client()
    assert established.ping()
    loads = [Repeatedly(new_connection_requests(shard), 0) for _ in range(3)]
    for load in loads:
        load.thread.start()
    done = lambda: sum(len(load.durations) for load in loads)  # noqa: E731
    try:
        wait_for(lambda: done() > 100, 20, what="connections before the upgrade")
        replace_file(binary, lambda tmp: shutil.copy2(BUILD / "certvisor-proxy", tmp))
        trigger()
        wait_for(lambda: agent.pid_of("proxy") not in (0, old), 30, what="the new proxy process")
        before = done()
        wait_for(lambda: done() > before + 100, 20, what="connections after the hand-over")
        # The old process still serves what it had: the established connection works.
        assert pid_alive(old)
        assert established.set("kept", "yes") and established.get("kept") == b"yes"
    finally:
        for load in loads:
            load.stopping.set()
        for load in loads:
            load.thread.join(timeout=30)
    established.connection_pool.disconnect()  # its last connection: the old process exits
    wait_for(lambda: not pid_alive(old), 10, what="the old proxy to drain and exit")
    failures = [f for load in loads for f in load.failures]
    assert not failures, failures[:10]
    new = agent.pid_of("proxy")
    assert agent.state("proxy") == "RUNNING" and shard.pid() == shard_pid
    assert os.stat(f"/proc/{new}/exe").st_ino == os.stat(binary).st_ino
    log = agent.log_text()
    assert f"Service 'proxy': pid {new} took over from pid {old}" in log, log[-3000:]
    assert f"Service 'proxy': its previous process {old} ended after the hand-over" in log
    assert "Drained in" in agent.ctl("tail", "-n", "50", "proxy").stdout
    print(f"\n{done()} new connections (3 clients) across the hand-over, 0 refused or failed")
    return new


def test_an_upgraded_proxy_takes_over_without_refusing_a_connection(agent_factory):
    shard = Shard(agent_factory)
    binary = proxy_from_a_copy(shard)
    agent = shard.agent
    new = upgrade_under_load(shard, binary, lambda: agent.ctl("reload"))
    # The new process is a full proxy: it reloads, and a stop stops it in order.
    assert agent.ctl("reload", "proxy").returncode == 0
    assert shard.client().ping() and agent.pid_of("proxy") == new
    assert agent.stop() == 0
    assert not pid_alive(new)


def test_a_package_upgrade_hands_the_proxy_over_at_the_agent_reexec(agent_factory):
    shard = Shard(agent_factory)
    binary = proxy_from_a_copy(shard)
    agent = shard.agent
    upgrade_under_load(shard, binary, lambda: agent.ctl("daemon-reexec"))


def test_an_idle_proxy_hands_over_though_the_old_process_exits_at_once(agent_factory):
    """With no connection to drain, the old proxy exits as soon as its successor serves: the
    successor's MAINPID= (sent before that exit) and the exit may reach the agent in either
    order. The exit must never be taken for the service's end (which kills its session, the
    successor with it). Again and again, by reload and by re-exec."""
    shard = Shard(agent_factory)
    binary = proxy_from_a_copy(shard)
    agent = shard.agent
    for i in range(UPGRADES):
        old = agent.pid_of("proxy")
        replace_file(binary, lambda tmp: shutil.copy2(BUILD / "certvisor-proxy", tmp))
        assert agent.ctl("reload" if i % 2 else "daemon-reexec").returncode == 0
        wait_for(lambda: f"its previous process {old} ended after the hand-over"
                 in agent.log_text(), 20, what=f"hand-over {i + 1}")
        new = agent.pid_of("proxy")
        assert new not in (0, old) and agent.state("proxy") == "RUNNING", agent.log_text()[-3000:]
        assert shard.client().ping()
    log = agent.log_text()
    assert "Service 'proxy' exited" not in log and "Started service 'proxy'" not in log.split(
        "took over from")[-1], log[-3000:]


def test_a_proxy_adopted_after_a_crash_hands_over_and_its_old_process_is_seen_ending(
        agent_factory):
    """After a kill -9 of the agent, the services are adopted: not its children, so the old
    proxy's exit after a hand-over comes only through its pidfd."""
    shard = Shard(agent_factory)
    binary = proxy_from_a_copy(shard)
    agent = shard.agent
    os.kill(agent.proc.pid, signal.SIGKILL)
    agent.proc.wait(timeout=10)
    agent.start()
    old = agent.pid_of("proxy")
    assert f"Service 'proxy' (pid {old}) adopted from the previous agent" in agent.log_text()
    held = shard.client()
    assert held.ping()
    replace_file(binary, lambda tmp: shutil.copy2(BUILD / "certvisor-proxy", tmp))
    assert agent.ctl("reload").returncode == 0
    wait_for(lambda: agent.pid_of("proxy") not in (0, old), 20, what="the new proxy process")
    assert held.ping()  # served by the old process, which drains
    held.connection_pool.disconnect()
    wait_for(lambda: f"its previous process {old} ended after the hand-over" in agent.log_text(),
             20, what="the old proxy's end, seen through its pidfd")
    assert not pid_alive(old) and agent.state("proxy") == "RUNNING"


def test_a_service_without_an_upgrade_signal_is_restarted(agent_factory):
    agent = agent_factory({})
    binary = agent.root / "bin" / "testsvc"
    binary.parent.mkdir()
    shutil.copy2(TESTSVC, binary)
    agent.write_service("svc", f"""
        command   = "{binary}"
        arguments = {{"--name", "svc"}}
        """)
    agent.start()
    old = agent.pid_of("svc")
    assert agent.ctl("reload").returncode == 0 and agent.pid_of("svc") == old  # nothing changed
    replace_file(binary, lambda tmp: shutil.copy2(TESTSVC, tmp))
    assert agent.ctl("reload").returncode == 0
    wait_for(lambda: agent.pid_of("svc") not in (0, old), 20, what="the restart")
    agent.wait_state("svc", "RUNNING")
    assert "Service 'svc': its binary was replaced (an upgrade): restarting it" in agent.log_text()
