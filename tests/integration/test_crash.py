"""A crash at any step of an apply: the agent is killed with SIGKILL there (through the
test-only hook CERTVISOR_TEST_CRASH_AT), the store is left consistent, and the agent converges
when it starts again: it adopts the services, which outlived it, and every one serves the
certificate the store says is current (reloaded where its files changed after it read them)."""
import os
import signal
import shutil
import subprocess

import pytest

from conftest import pid_alive, wait_for
from test_apply import external_pair, file_fingerprint, served_fingerprint
from test_certs import free_port, state
from test_tls_services import tls_service

openssl = shutil.which("openssl")

# Where the agent dies, and whether the new certificate is in force afterwards.
POINTS = [("staged", False), ("committed", True), ("rendered", True), ("service", True),
          ("finishing", True)]


def public_key(*args):
    return subprocess.run([openssl, *args], capture_output=True, check=True).stdout


def assert_store_consistent(agent, name):
    """current names a complete generation whose key matches its certificate, nothing half-written."""
    directory = state(agent, "certs", name)
    current = directory / "current"
    target = os.readlink(current)
    generation = directory / target
    assert (generation / "cert.pem").is_file() and (generation / "key.pem").is_file()
    cert_pub = public_key("x509", "-in", generation / "cert.pem", "-noout", "-pubkey")
    key_pub = public_key("pkey", "-in", generation / "key.pem", "-pubout")
    assert cert_pub == key_pub
    return generation


def kill_and_wait(agent, services):
    agent.proc.wait(timeout=30)
    assert agent.proc.returncode == -signal.SIGKILL
    # The services outlive the agent: the next one adopts them.
    assert all(pid_alive(pid) for pid in services)


def restart_clean(agent, services=None):
    agent.env_extra = {}
    agent.start()
    # Adopted, not started again: what they serve now comes from a reload where the change
    # reached their files before the agent died.
    if services is not None:
        assert [agent.pid_of("front"), agent.pid_of("console")] == services


@pytest.mark.parametrize("point,applied", POINTS)
def test_a_crash_at_each_step_leaves_a_consistent_store_and_converges(agent_factory, point, applied):
    port, other_port = free_port(), free_port()
    agent = agent_factory({"front": tls_service("api", port), "console": tls_service("cm", other_port)},
                          env_extra={"CERTVISOR_TEST_CRASH_AT": point})
    agent.start()
    old = served_fingerprint(port)
    pids = [agent.pid_of("front"), agent.pid_of("console")]
    cert, key, _ = external_pair(agent.root / "ext")
    out = agent.ctl("cluster", "certificate", "set", "api", "certificate_file", str(cert), "key_file", str(key))
    assert out.returncode != 0  # nobody was left to answer
    kill_and_wait(agent, pids)
    assert f"Test hook: killing the agent at apply step '{point}'" in agent.log_text()
    generation = assert_store_consistent(agent, "api")
    assert (file_fingerprint(generation / "cert.pem") == file_fingerprint(cert)) == applied

    restart_clean(agent, pids)
    expected = file_fingerprint(cert) if applied else old
    assert served_fingerprint(port) == expected
    assert_store_consistent(agent, "api")
    # Nothing staged and never committed survives the restart, and the rendered file names current.
    current = int(os.readlink(state(agent, "certs/api/current")))
    generations = [int(p.name) for p in state(agent, "certs/api").iterdir() if p.name.isdigit()]
    assert max(generations) == current
    rendered = (agent.prefix / "run/certvisor/tls/front.conf").read_text()
    assert f"certs/api/{current}/cert.pem" in rendered
    # And the agent takes the next change as usual.
    out = agent.ctl("cluster", "certificate", "rotate", "api")
    assert out.returncode == 0, out.stderr
    assert served_fingerprint(port) not in (old, file_fingerprint(cert))


def test_a_crash_between_two_certificates_of_one_change_is_completed_at_restart(agent_factory):
    port, other_port = free_port(), free_port()
    agent = agent_factory({"front": tls_service("api", port), "console": tls_service("cm", other_port)},
                          env_extra={"CERTVISOR_TEST_CRASH_AT": "half-committed"})
    agent.start()
    before = {name: file_fingerprint(state(agent, "certs", name, "current/cert.pem")) for name in ("api", "cm")}
    pids = [agent.pid_of("front"), agent.pid_of("console")]
    assert agent.ctl("cluster", "certificate", "rotate", "all").returncode != 0
    kill_and_wait(agent, pids)
    assert state(agent, "certs/commit-journal").exists()
    restart_clean(agent, pids)
    assert not state(agent, "certs/commit-journal").exists()
    for name in ("api", "cm"):
        assert_store_consistent(agent, name)
        # Rolled forward: both switched, not one.
        assert file_fingerprint(state(agent, "certs", name, "current/cert.pem")) != before[name]
    assert served_fingerprint(port) == file_fingerprint(state(agent, "certs/api/current/cert.pem"))
    assert served_fingerprint(other_port) == file_fingerprint(state(agent, "certs/cm/current/cert.pem"))
