"""Edge cases found in review: a second agent, zero timeouts, reloads of agent settings."""
import signal
import subprocess
import time

from conftest import (CERTVISORCTL, CERTVISORD, follow_until_attached, line_within, pid_alive,
                      wait_for)
from test_supervision import quoted, svc


def test_a_second_agent_is_refused_and_leaves_the_first_intact(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    second = subprocess.run([str(CERTVISORD), "-c", str(agent.config)], capture_output=True,
                            text=True, timeout=10)
    assert second.returncode == 1
    assert "another certvisord is already listening on" in second.stderr
    assert (agent.prefix / "run/certvisor/notify.sock").exists()
    # The first agent still hears its services.
    assert agent.ctl("restart", "web").returncode == 0


def test_zero_backoff_retries_at_once_and_still_ends_fatal(agent_factory):
    agent = agent_factory({"crasher": svc(quoted("--crash-on-start"),
                                          extra="backoff_initial = 0\nstart_retries = 3")})
    agent.start()
    agent.wait_state("crasher", "FATAL", timeout=5)
    assert len(agent.records("start", "crasher")) == 4


def test_zero_stop_timeout_kills_at_once(agent_factory):
    agent = agent_factory({"stubborn": svc(quoted("--ignore-term"), extra="stop_timeout = 0")})
    agent.start()
    pid = agent.pid_of("stubborn")
    began = time.monotonic()
    assert agent.ctl("stop", "stubborn").returncode == 0
    assert time.monotonic() - began < 2
    assert not pid_alive(pid)


def test_autostart_pulls_in_a_manual_dependency(agent_factory):
    agent = agent_factory({"base": svc(extra="autostart = false"), "top": svc(after=["base"])})
    agent.start()
    assert agent.state("base") == "RUNNING" and agent.state("top") == "RUNNING"


def test_socket_settings_wait_for_a_restart_and_the_reload_says_so(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    agent.write_main(f'notify_socket = "{agent.root}/elsewhere.sock"')
    out = agent.ctl("reload")
    assert out.returncode == 0
    assert "warning: notify_socket changed: it takes effect when certvisord restarts" in out.stderr
    # Services still report to the socket the agent listens on.
    assert agent.ctl("restart", "web").returncode == 0


def test_a_follower_keeps_following_across_a_configuration_change(agent_factory):
    agent = agent_factory({"talker": svc(quoted("--print", "first"))})
    agent.start()
    follower = subprocess.Popen([str(CERTVISORCTL), "-s", str(agent.socket), "tail", "-f", "-n", "0",
                                 "talker", "stdout"], stdout=subprocess.PIPE, text=True)
    try:
        follow_until_attached(follower, lambda: agent.ctl("restart", "talker"), "first")
        agent.write_service("talker", svc(quoted("--print", "second")))
        assert agent.ctl("reload").returncode == 0
        wait_for(lambda: agent.state("talker") == "RUNNING", what="talker back")
        assert line_within(follower.stdout, 10) == "second"
    finally:
        follower.kill()
        follower.wait()


def test_changes_are_refused_while_shutting_down(agent_factory):
    agent = agent_factory({"slow_stop": svc(quoted("--ignore-term"), extra="stop_timeout = 1")})
    agent.start()
    agent.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "Received SIGTERM: shutting down" in agent.log_text(), what="the shutdown")
    out = agent.ctl("restart", "slow_stop")
    assert out.returncode == 1 and "certvisord is shutting down" in out.stderr
    agent.proc.wait(timeout=10)
    assert agent.proc.returncode == 0


def test_check_lists_services_in_start_order_and_checks_groups(agent_factory):
    agent = agent_factory({"b": svc(after=["a"]), "a": svc()})
    out = subprocess.run([str(CERTVISORD), "-c", str(agent.config), "--check"], capture_output=True, text=True)
    names = [line.split()[0] for line in out.stdout.splitlines()[1:]]
    assert names == ["a", "b"]
    agent.write_main('control_group = "no-such-group-here"')
    out = subprocess.run([str(CERTVISORD), "-c", str(agent.config), "--check"], capture_output=True, text=True)
    assert out.returncode == 1 and "control_group: group 'no-such-group-here' does not exist" in out.stderr


def test_relative_prefix_on_the_command_line_is_relative_to_the_working_directory(agent_factory, tmp_path):
    agent = agent_factory({"web": svc()})
    out = subprocess.run([str(CERTVISORD), "-c", str(agent.config), "--prefix", "here", "--check"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and "--prefix here" in out.stderr  # does not exist yet
    (tmp_path / "here").mkdir()
    proc = subprocess.Popen([str(CERTVISORD), "-c", str(agent.config), "--prefix", "here"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: (tmp_path / "here/run/certvisor/control.sock").exists(), what="the socket")
        out = subprocess.run([str(CERTVISORCTL), "-c", str(agent.config), "-p", "here", "status"],
                             capture_output=True, text=True, cwd=tmp_path)
        assert "web" in out.stdout, out.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_a_stop_answers_a_start_still_waiting_for_its_dependencies(agent_factory):
    agent = agent_factory({"base": svc(quoted("--ready-delay", "1500"), extra="autostart = false"),
                           "top": svc(after=["base"], extra="autostart = false")})
    agent.start()
    starter = subprocess.Popen([str(CERTVISORCTL), "-s", str(agent.socket), "start", "top"],
                               stdout=subprocess.PIPE, text=True)
    wait_for(lambda: agent.state("base") == "STARTING", what="base starting")
    out = agent.ctl("stop", "top")  # not running yet, but on its way: the stop cancels that
    assert (out.returncode, out.stdout.strip()) == (0, "top: stopped")
    out, _ = starter.communicate(timeout=10)
    assert starter.returncode == 1
    assert out.strip() == "top: ERROR (stopped before it started)"


def test_a_reload_restart_pulls_in_stopped_dependencies(agent_factory):
    agent = agent_factory({"base": svc(extra="autostart = false"), "top": svc(after=["base"])})
    agent.start()
    assert agent.ctl("stop", "base").returncode == 0
    agent.write_service("top", svc(quoted("--print", "v2"), after=["base"]))
    assert agent.ctl("reload").returncode == 0
    wait_for(lambda: agent.state("top") == "RUNNING" and agent.state("base") == "RUNNING",
             what="top restarted with base pulled in")


def test_following_a_removed_service_ends_cleanly(agent_factory):
    agent = agent_factory({"web": svc(), "gone": svc(quoted("--print", "hello from gone"))})
    agent.start()
    follower = subprocess.Popen([str(CERTVISORCTL), "-s", str(agent.socket), "tail", "-f", "-n", "0",
                                 "gone", "stdout"],
                                stdout=subprocess.PIPE, text=True)
    # Attached once it shows the line the service prints when it starts.
    follow_until_attached(follower, lambda: agent.ctl("restart", "gone"), "hello from gone")
    agent.remove_service("gone")
    assert agent.ctl("reload").returncode == 0
    follower.wait(timeout=10)
    assert follower.returncode == 0


def test_an_exiting_agent_leaves_a_newer_agents_sockets_alone(agent_factory):
    agent = agent_factory({"stubborn": svc(quoted("--ignore-term"), extra="stop_timeout = 1.5")})
    agent.start()
    old = agent.proc
    old.send_signal(signal.SIGTERM)  # it takes 1.5 s to stop its service
    wait_for(lambda: not agent.socket.exists() or agent.ctl("status").returncode != 0
             or "shutting down" in agent.ctl("restart", "stubborn").stderr, 5, what="shutdown begun")
    # The old agent still holds the socket until it exits: a new one waits for it.
    old.wait(timeout=10)
    agent.start()
    assert agent.ctl("status").returncode == 0
    assert agent.socket.exists() and (agent.prefix / "run/certvisor/notify.sock").exists()
