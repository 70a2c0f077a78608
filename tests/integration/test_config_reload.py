"""Configuration: errors with file and line, and reload that changes only what changed."""
import signal

from conftest import wait_for
from test_supervision import quoted, svc


def test_a_bad_file_refuses_first_start_with_file_and_line(agent_factory):
    agent = agent_factory({"web": svc()})
    path = agent.write_service("broken", 'command = "TESTSVC"\n  autorestart = sometimes')
    code = agent.start(expect_fail=True)
    assert code == 1
    assert f"{path}:3: autorestart: invalid value 'sometimes' (expected one of: true, false, unexpected)" in agent.log_text()
    assert not agent.socket.exists()


def test_check_mode_validates_without_starting(agent_factory):
    agent = agent_factory({"web": svc(), "api": svc(after=["web"])})
    import subprocess
    from conftest import CERTVISORD
    out = subprocess.run([str(CERTVISORD), "-c", str(agent.config), "--check"], capture_output=True, text=True)
    assert out.returncode == 0 and "configuration OK, 2 services" in out.stdout
    agent.write_service("api", svc(after=["nothere"]))
    out = subprocess.run([str(CERTVISORD), "-c", str(agent.config), "--check"], capture_output=True, text=True)
    assert out.returncode == 1 and "after: unknown service 'nothere'" in out.stderr
    agent.write_service("web", svc(after=["api"]))
    agent.write_service("api", svc(after=["web"]))
    out = subprocess.run([str(CERTVISORD), "-c", str(agent.config), "--check"], capture_output=True, text=True)
    assert "dependency cycle: api -> web -> api" in out.stderr


def test_a_bad_reload_keeps_everything_running_untouched(agent_factory):
    agent = agent_factory({"web": svc(), "api": svc()})
    agent.start()
    pids = {n: agent.pid_of(n) for n in ("web", "api")}
    agent.write_service("api", svc(extra="stop_signal = NOPE"))
    out = agent.ctl("reload")
    assert out.returncode == 1
    assert "stop_signal: unknown signal 'NOPE'" in out.stderr
    assert {n: agent.pid_of(n) for n in ("web", "api")} == pids
    assert "Configuration reload failed, keeping the running configuration" in agent.log_text()
    # The old configuration is the one in force: a restart still uses it.
    assert agent.ctl("restart", "api").returncode == 0


def test_reload_restarts_only_changed_services_and_adds_and_removes(agent_factory):
    agent = agent_factory({"same": svc(), "changed": svc(), "gone": svc(), "held": svc()})
    agent.start()
    assert agent.ctl("stop", "held").returncode == 0
    same, changed, gone = (agent.pid_of(n) for n in ("same", "changed", "gone"))
    agent.write_service("changed", svc(quoted("--print", "new settings")))
    agent.write_service("held", svc(quoted("--print", "new settings too")))
    agent.remove_service("gone")
    agent.write_service("added", svc())
    out = agent.ctl("reload")
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.splitlines()) == ["added: added", "changed: changed (restarting)",
                                               "gone: removed", "held: changed (stays stopped until started)"]
    wait_for(lambda: agent.state("added") == "RUNNING" and agent.state("changed") == "RUNNING",
             what="the new and changed services")
    assert agent.pid_of("same") == same
    assert agent.pid_of("changed") != changed
    assert "gone" not in agent.status()
    assert "new settings" in agent.ctl("tail", "changed").stdout
    # Stopped by hand: it stays stopped, with its new settings ready for the next start.
    assert agent.state("held") == "STOPPED"
    assert agent.ctl("start", "held").returncode == 0
    assert "new settings too" in agent.ctl("tail", "held").stdout
    assert agent.ctl("reload").stdout.strip() == "No changes"


def test_sighup_reloads_with_the_notify_reload_protocol(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    agent.write_service("api", svc())
    before = len(agent.notify.drain())
    agent.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: agent.state("api") == "RUNNING", what="api from the reload")
    later = agent.notify.drain()[before:]
    reloading = [i for i, m in enumerate(later) if "RELOADING=1" in m]
    assert reloading and "MONOTONIC_USEC=" in later[reloading[0]]
    assert any("READY=1" in m for m in later[reloading[0] + 1:])
