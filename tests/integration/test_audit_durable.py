"""The audit log survives restarts: every change that took effect is in state_dir/audit.log (0640)
and in `certvisorctl audit` / GET /v1/cluster/audit_log after a clean restart and after a crash in
the middle of a change (killed through the test-only hook CERTVISOR_TEST_CRASH_AT, as a power cut
would); certvisorctl, whose connection the crash cut, says that the change may have been applied
and how to check, with exit status 5."""
import shutil
import stat

import pytest

from conftest import wait_for
from test_apply import external_pair, file_fingerprint
from test_certs import free_port, state
from test_crash import kill_and_wait, restart_clean
from test_supervision import svc
from test_tls_services import tls_service

EXIT_CONNECTION_LOST = 5


def audit_file(agent):
    return state(agent, "audit.log")


def audit_lines(agent):
    return agent.ctl("audit", "-n", "500").stdout.splitlines()


def test_the_audit_survives_a_clean_restart_in_a_0640_file(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    assert agent.ctl("cluster", "config", "http_support", "disabled").returncode == 0
    assert agent.ctl("cluster", "certificate", "rotate", "api").returncode == 0
    before = audit_lines(agent)
    assert len(before) == 2 and "http_support=disabled" in before[0] and "'api'" in before[1]
    assert agent.stop() == 0

    path = audit_file(agent)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    text = path.read_text()
    # One line each: UTC time, who, what (tab-separated), the same content as the log's line.
    lines = text.splitlines()
    assert len(lines) == 2
    when, who, what = lines[0].split("\t")
    assert when.endswith("Z") and who == "uid 0" and what.startswith("changed policy http_support")

    agent.start()
    after = audit_lines(agent)
    assert after == before  # read back at start-up: the same entries, in the same order
    # New entries go on after them, in the same file.
    assert agent.ctl("cluster", "config", "http_support", "enabled").returncode == 0
    assert "http_support=enabled" in audit_lines(agent)[-1]
    assert len(audit_file(agent).read_text().splitlines()) == 3


def start_crashing(agent_factory, point):
    port, other_port = free_port(), free_port()
    agent = agent_factory({"front": tls_service("api", port), "console": tls_service("cm", other_port)},
                          env_extra={"CERTVISOR_TEST_CRASH_AT": point})
    agent.start()
    return agent, [agent.pid_of("front"), agent.pid_of("console")]


def assert_connection_lost(out):
    assert out.returncode == EXIT_CONNECTION_LOST, (out.returncode, out.stderr)
    assert "the connection to certvisord was lost mid-request" in out.stderr
    assert "the change may have been applied" in out.stderr
    assert "'certvisorctl audit'" in out.stderr and "'certvisorctl cluster certificate list'" in out.stderr
    assert "not running" not in out.stderr


# Where the agent dies: each after the switch, so the change is in force at the restart.
@pytest.mark.parametrize("point", ["committed", "service", "finishing"])
def test_a_change_cut_by_a_crash_is_audited_after_the_restart(agent_factory, point):
    agent, pids = start_crashing(agent_factory, point)
    cert, key, _ = external_pair(agent.root / "ext")
    out = agent.ctl("cluster", "certificate", "set", "api", "certificate_file", str(cert), "key_file", str(key))
    assert_connection_lost(out)
    kill_and_wait(agent, pids)
    assert state(agent, "audit.pending").exists()  # what was under way, for the next start

    restart_clean(agent)
    last = audit_lines(agent)[-1]
    assert "uid 0 changed certificate 'api'" in last, last
    assert f"-> {file_fingerprint(cert)}: interrupted when the agent stopped; in force after the restart" in last
    assert not state(agent, "audit.pending").exists()
    # In the file too, once.
    assert sum("changed certificate 'api'" in line for line in audit_file(agent).read_text().splitlines()) == 1
    # And a second restart does not audit it again.
    assert agent.stop() == 0
    restart_clean(agent)
    assert sum("changed certificate 'api'" in line for line in audit_lines(agent)) == 1


def test_a_change_rolled_forward_from_the_journal_is_audited_under_its_requester(agent_factory):
    agent, pids = start_crashing(agent_factory, "half-committed")
    before = {name: file_fingerprint(state(agent, "certs", name, "current/cert.pem")) for name in ("api", "cm")}
    assert_connection_lost(agent.ctl("cluster", "certificate", "rotate", "all"))
    kill_and_wait(agent, pids)
    assert state(agent, "certs/commit-journal").exists()

    restart_clean(agent)
    last = audit_lines(agent)[-1]
    assert "uid 0 changed " in last and "in force after the restart" in last, last
    for name in ("api", "cm"):
        new = file_fingerprint(state(agent, "certs", name, "current/cert.pem"))
        assert new != before[name]
        assert f"certificate '{name}' {before[name]} -> {new}" in last


def test_a_change_killed_before_its_switch_is_not_audited(agent_factory):
    agent, pids = start_crashing(agent_factory, "staged")
    cert, key, _ = external_pair(agent.root / "ext")
    out = agent.ctl("cluster", "certificate", "set", "api", "certificate_file", str(cert), "key_file", str(key))
    assert_connection_lost(out)  # certvisorctl cannot know how far it went
    kill_and_wait(agent, pids)
    restart_clean(agent)
    assert not any("certificate 'api'" in line for line in audit_lines(agent))


def test_the_rest_audit_log_reads_the_entries_of_the_last_run(agent_factory):
    test_api = pytest.importorskip("test_api")
    if not test_api.API.exists():
        pytest.skip("needs certvisor-api")
    node = test_api.start_node(agent_factory)
    assert node.request("POST", "/v1/cluster/certificates/rotate", {"name": "proxy"}).status == 200
    assert node.agent.stop() == 0
    node.agent.start()
    wait_for(lambda: node.agent.state("api") == "RUNNING", 20, what="the api to run again")
    r = node.request("GET", "/v1/cluster/audit_log?limit=5", auth=test_api.VIEWER)
    assert r.status == 200, r
    messages = [(e["who"], e["message"]) for e in r.json["entries"]]
    assert any(who.startswith("REST user 'admin'") and "certificate 'proxy'" in message
               for who, message in messages), messages
    test_api.assert_clean_exit(node.agent)
