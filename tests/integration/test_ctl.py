"""certvisorctl: help, output formats, exit statuses, tail, reload of one service."""
import subprocess
import time

from conftest import CERTVISORCTL, wait_for
from test_supervision import quoted, svc


def test_help_lists_every_command_of_the_table():
    out = subprocess.run([str(CERTVISORCTL), "help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("status", "start", "stop", "restart", "reload", "pid", "tail", "avail", "version"):
        assert f"\n  {command}" in out.stdout, command
    one = subprocess.run([str(CERTVISORCTL), "help", "restart"], capture_output=True, text=True)
    assert one.stdout.strip().startswith("restart <name>...|all")


def test_unknown_command_is_a_usage_error():
    out = subprocess.run([str(CERTVISORCTL), "frobnicate"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown command 'frobnicate'" in out.stderr


def test_no_agent_exits_4(tmp_path):
    out = subprocess.run([str(CERTVISORCTL), "-s", str(tmp_path / "none.sock"), "status"],
                         capture_output=True, text=True)
    assert out.returncode == 4
    assert "certvisord is not running" in out.stderr


def test_status_format_and_exit_codes(agent_factory):
    agent = agent_factory({"web": svc(), "idle": svc(extra="autostart = false")})
    agent.start()
    out = agent.ctl("status", "web")
    assert out.returncode == 0
    line = out.stdout.rstrip("\n")
    assert line[:33] == "web".ljust(33) and line[33:43] == "RUNNING".ljust(10)
    assert line[43:].startswith(f"pid {agent.pid_of('web')}, uptime 0:00:0")
    assert agent.ctl("status").returncode == 3  # idle is not running
    out = agent.ctl("status", "web", "ghost")
    assert out.returncode == 4
    assert "ghost: ERROR (no such process)" in out.stdout
    assert agent.ctl("status", "idle").stdout.split()[1] == "STOPPED"


def test_start_stop_messages(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    out = agent.ctl("start", "web")
    assert out.stdout.strip() == "web: ERROR (already started)"
    out = agent.ctl("stop", "web")
    assert (out.returncode, out.stdout.strip()) == (0, "web: stopped")
    out = agent.ctl("stop", "web")
    assert (out.returncode, out.stdout.strip()) == (1, "web: ERROR (not running)")
    out = agent.ctl("start", "web", "ghost")
    assert out.returncode == 4
    assert out.stdout.splitlines() == ["ghost: ERROR (no such process)", "web: started"]
    assert agent.ctl("start").returncode == 2


def test_pid_avail_version_and_json(agent_factory):
    agent = agent_factory({"web": svc(), "db": svc(extra="autostart = false")})
    agent.start()
    assert int(agent.ctl("pid").stdout) == agent.proc.pid
    assert int(agent.ctl("pid", "db").stdout) == 0
    assert len(agent.ctl("pid", "all").stdout.split()) == 2
    avail = agent.ctl("avail").stdout
    assert "web" in avail and "auto" in avail and "manual" in avail
    assert agent.ctl("version").stdout.strip() == agent.ctl("--json", "version").stdout.split('"version":"')[1].split('"')[0]
    assert '"state":"RUNNING"' in agent.ctl("--json", "status", "web").stdout


def test_tail_shows_last_lines_and_follows(agent_factory):
    agent = agent_factory({"talker": svc(quoted("--print", "hello from talker"))})
    agent.start()
    wait_for(lambda: "hello from talker" in agent.ctl("tail", "talker").stdout, what="the line")
    assert agent.ctl("tail", "talker", "stderr").stdout.strip() == "hello from talker (stderr)"
    assert agent.ctl("tail", "talker", "stdout").stdout.strip() == "hello from talker"
    follower = subprocess.Popen([str(CERTVISORCTL), "-s", str(agent.socket), "tail", "-f", "-n", "0", "talker", "stdout"],
                                stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        assert agent.ctl("restart", "talker").returncode == 0
        assert follower.stdout.readline().strip() == "hello from talker"
    finally:
        follower.kill()
        follower.wait()
    # The agent noticed the follower leaving and still answers.
    assert agent.ctl("status", "talker").returncode == 0
    assert agent.ctl("tail", "ghost").returncode == 4


def test_reload_of_a_service_uses_its_signal_and_the_notify_handshake(agent_factory):
    agent = agent_factory({
        "hup": svc(extra="reload_signal = HUP"),
        "plain": svc(),
        "bad": svc(quoted("--reject-reload"), extra="reload_signal = HUP\nstart_retries = 0"),
    })
    agent.start()
    pid = agent.pid_of("hup")
    out = agent.ctl("reload", "hup")
    assert (out.returncode, out.stdout.strip()) == (0, "hup: reloaded")
    assert agent.pid_of("hup") == pid
    assert agent.records("reload", "hup")
    old_plain = agent.pid_of("plain")
    out = agent.ctl("reload", "plain")
    assert out.stdout.strip() == "plain: restarted (it has no reload signal)"
    assert agent.pid_of("plain") != old_plain
    out = agent.ctl("reload", "bad")
    assert out.returncode == 1
    assert "bad: ERROR (exited during the reload)" in out.stdout
