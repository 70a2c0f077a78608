"""A database's shard is revived on any exit, status 0 included, unless it was asked to stop.

The shard is conf.d/10-redis-db1.conf itself, on free ports. A data client's `SHUTDOWN NOSAVE`
ends redis-server with status 0; the shipped section's `autorestart = true` brings it back, with
the same backoff as a crash. `certvisorctl stop` keeps it down, and neither the agent's shutdown
nor its restart of the services lets a pending retry start the shard again behind the stop.
"""
import shutil
import socket
import time

import pytest

from test_certs import free_port
import redis

from conftest import REPO, TESTSVC, wait_for

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")

SHARD = "redis-db1"




class Shard:
    """An agent running the shipped redis-db1 section (its ports moved to free ones), with the
    given option lines added to the service section and other services beside it."""

    def __init__(self, agent_factory, extra="", services=None):
        self.plain_port, self.tls_port, self.db_port = free_port(), free_port(), free_port()
        text = (REPO / "conf.d/10-redis-db1.conf").read_text()
        assert f"service {SHARD} {{" in text
        text = (text.replace("12100", str(self.plain_port)).replace("12101", str(self.tls_port))
                .replace("12000", str(self.db_port)).replace('"0.0.0.0"', '"127.0.0.1"')
                .replace(f"service {SHARD} {{", f"service {SHARD} {{\n{extra}\n"))
        self.agent = agent_factory(services or {})
        (self.agent.conf_d / "10-redis-db1.conf").write_text(text)
        self.agent.start()
        assert self.state() == "RUNNING", self.agent.ctl("tail", SHARD).stdout

    def state(self):
        return self.agent.state(SHARD)

    def pid(self):
        return self.agent.pid_of(SHARD)

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.plain_port, socket_timeout=5)

    def shutdown_nosave(self):
        """What a data client can send: the shard exits with status 0, saving nothing."""
        pid = self.pid()
        self.client().shutdown(nosave=True)
        wait_for(lambda: self.state() != "RUNNING" or self.pid() != pid, 10,
                 what="the shard to exit after SHUTDOWN NOSAVE")
        return pid

    def revived(self, old_pid, timeout=15):
        """Waits until a new shard process is ready and answers PING; returns its pid."""
        def new_and_ready():
            if self.state() != "RUNNING" or self.pid() == old_pid:
                return None
            try:
                return self.client().ping() and self.pid()
            except redis.ConnectionError:
                return None

        return wait_for(new_and_ready, timeout, interval=0.05,
                        what=f"{SHARD} to come back after exiting with status 0")

    def answers(self):
        try:
            return self.client().ping()
        except redis.ConnectionError:
            return False

    def log_after(self, marker):
        text = self.agent.log_text()
        return text[text.index(marker):]

    def stop_agent(self):
        if self.agent.proc and self.agent.proc.poll() is None:
            self.agent.stop()


@pytest.fixture
def shipped(agent_factory):
    shards = []

    def make(**kw):
        shards.append(Shard(agent_factory, **kw))
        return shards[-1]

    yield make
    for shard in shards:  # redis-server runs in its own session: let the agent stop it
        shard.stop_agent()


def test_the_shipped_shard_says_autorestart_true():
    text = (REPO / "conf.d/10-redis-db1.conf").read_text()
    section = text[text.index(f"service {SHARD} {{"):]
    assert any(line.split() == ["autorestart", "=", "true"] for line in section.splitlines())


def test_a_shard_that_exits_with_status_0_comes_back(shipped):
    shard = shipped()
    shard.client().set("before", "1")
    old = shard.shutdown_nosave()
    new = shard.revived(old)
    assert new != old
    assert shard.answers()
    assert shard.client().get("before") == b"1"  # SHUTDOWN NOSAVE still flushed the AOF
    # It exited with status 0 (an expected status) and was revived all the same, and says so
    # without calling a clean exit a crash.
    log = shard.agent.log_text()
    assert f"Service '{SHARD}' exited with status 0; retrying in 0.5s" in log, log[-3000:]
    assert "exited with status 0 unexpectedly" not in log
    # Revived again: a second SHUTDOWN is no different from the first.
    shard.shutdown_nosave()
    assert shard.revived(new) != new


def test_a_shard_that_exits_0_in_a_loop_backs_off_then_gives_up(shipped):
    shard = shipped(extra="    start_retries = 2")
    pid = shard.pid()
    gaps = []
    for _ in range(2):
        sent = time.monotonic()  # just before the exit, so the gap is not shortened by polling
        shard.shutdown_nosave()
        pid = shard.revived(pid)
        gaps.append(time.monotonic() - sent)
    # Each run was shorter than backoff_reset_after: the delays grow like a crash loop's.
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0, gaps
    log = shard.agent.log_text()
    assert "exited with status 0; retrying in 0.5s" in log
    assert "exited with status 0; retrying in 1s" in log
    shard.shutdown_nosave()
    shard.agent.wait_state(SHARD, "FATAL", timeout=10)
    assert "gave up after 3 failed starts; last: exited with status 0" in shard.agent.status()[SHARD][1]
    # An operator's start forgets the failures.
    assert shard.agent.ctl("start", SHARD).returncode == 0
    assert shard.state() == "RUNNING" and shard.answers()


def test_certvisorctl_stop_keeps_the_shard_down(shipped):
    shard = shipped()
    pid = shard.pid()
    out = shard.agent.ctl("stop", SHARD)
    assert out.returncode == 0, out.stdout + out.stderr
    assert shard.state() == "STOPPED"
    time.sleep(2.5)  # several backoff delays: nothing revives it
    assert shard.state() == "STOPPED"
    assert not shard.answers()
    # Nor does a configuration reload: the operator's stop is kept.
    out = shard.agent.ctl("reload")
    assert out.returncode == 0, out.stdout + out.stderr
    time.sleep(1)
    assert shard.state() == "STOPPED"
    assert shard.log_after(f"Service '{SHARD}' stopped").count(f"Started service '{SHARD}'") == 0
    # Only the stop kept it down: a start brings a new process.
    assert shard.agent.ctl("start", SHARD).returncode == 0
    assert shard.state() == "RUNNING" and shard.pid() != pid and shard.answers()


def test_certvisorctl_stop_during_the_backoff_cancels_the_revival(shipped):
    shard = shipped(extra="    backoff_initial = 1.5")
    shard.shutdown_nosave()
    shard.agent.wait_state(SHARD, "BACKOFF", timeout=5)
    assert shard.agent.ctl("stop", SHARD).returncode == 0
    assert shard.state() == "STOPPED"
    time.sleep(2.5)  # past the retry it had pending
    assert shard.state() == "STOPPED"
    assert not shard.answers()


# The retry delay of a shard in BACKOFF in the two tests below, and how long its dependent takes
# to stop: long enough that the shutdown or restart reaches the agent before the retry even on a
# loaded sanitizer run, and that the dependent's stop holds the agent well past the retry.
RETRY_S = 3
DEPENDENT_STOP_S = 6


def slow_to_stop_dependent():
    """A service after the shard that takes DEPENDENT_STOP_S to stop (it ignores SIGTERM)."""
    return {"client": f"""
        command = "TESTSVC"
        arguments = {{"--record", "RECORD", "--ignore-term"}}
        after = {{"{SHARD}"}}
        stop_timeout = {DEPENDENT_STOP_S}
    """}


def test_the_agents_shutdown_does_not_revive_a_shard_waiting_to_retry(shipped):
    shard = shipped(extra=f"    backoff_initial = {RETRY_S}", services=slow_to_stop_dependent())
    shard.shutdown_nosave()
    shard.agent.wait_state(SHARD, "BACKOFF", timeout=5)
    began = time.monotonic()
    assert shard.agent.stop() == 0
    assert time.monotonic() - began >= DEPENDENT_STOP_S - 0.5, \
        "the dependent was to hold the shutdown past the retry"
    after = shard.log_after("Stopping every service")
    assert f"Started service '{SHARD}'" not in after, after
    assert not shard.answers()


def test_restarting_everything_starts_a_shard_waiting_to_retry_once(shipped):
    shard = shipped(extra=f"    backoff_initial = {RETRY_S}", services=slow_to_stop_dependent())
    old = shard.shutdown_nosave()
    shard.agent.wait_state(SHARD, "BACKOFF", timeout=5)
    starts_before = shard.agent.log_text().count(f"Started service '{SHARD}'")
    out = shard.agent.ctl("restart", "all")
    assert out.returncode == 0, out.stdout + out.stderr
    # The premise: the restart came while the retry was pending.
    waiting = shard.log_after(f"Service '{SHARD}' exited with status 0; retrying")
    assert f"Started service '{SHARD}'" not in waiting.split("requested restart")[0], waiting
    new = shard.revived(old, timeout=30)
    assert shard.agent.state("client") == "RUNNING"
    assert shard.agent.log_text().count(f"Started service '{SHARD}'") == starts_before + 1
    # Stops before starts, as in systemd: the shard, whose own stop was immediate (it had no
    # process), starts once its dependent has stopped.
    restart = shard.log_after("requested restart")
    assert restart.index("Service 'client' stopped") < restart.index(f"Started service '{SHARD}'")
    assert shard.pid() == new and shard.answers()
