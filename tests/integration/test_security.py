"""Identity and isolation: users, environment, descriptors, socket access, notify credentials."""
import os
import pwd
import socket
import stat

import pytest

from conftest import wait_for
from test_supervision import quoted, svc

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")


def proc_status(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return line.split()[1:]
    return None


def test_clean_environment_and_no_inherited_descriptors(agent_factory):
    agent = agent_factory({"web": svc(extra='environment = {"DB_PORT=12000", "MODE=%{name}"}')},
                          env_extra={"SECRET_FROM_AGENT_ENV": "leak"})
    agent.start()
    pid = agent.pid_of("web")
    env = dict(kv.split("=", 1) for kv in open(f"/proc/{pid}/environ").read().split("\0") if kv)
    assert env["DB_PORT"] == "12000" and env["MODE"] == "web"
    assert env["NOTIFY_SOCKET"].endswith("/run/certvisor/notify.sock")
    assert env["CERTVISOR_SERVICE"] == "web"
    assert "SECRET_FROM_AGENT_ENV" not in env
    assert set(env) <= {"PATH", "HOME", "USER", "LOGNAME", "NOTIFY_SOCKET", "CERTVISOR_SERVICE", "DB_PORT", "MODE"}
    fds = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
    assert fds == [0, 1, 2]
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
    # Own session and process group.
    assert os.getsid(pid) == pid and os.getpgid(pid) == pid


def test_control_socket_is_0660_and_notify_socket_is_writable_by_services(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    assert stat.S_IMODE(os.stat(agent.socket).st_mode) == 0o660
    notify = agent.prefix / "run/certvisor/notify.sock"
    assert stat.S_IMODE(os.stat(notify).st_mode) == 0o666


def test_notify_messages_from_foreign_processes_are_ignored(agent_factory):
    agent = agent_factory({"silent": svc(quoted("--no-notify"), extra="start_timeout = 0")})
    agent.start(wait_ready=False)
    wait_for(lambda: agent.state("silent") == "STARTING", what="STARTING")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.sendto(b"READY=1", str(agent.prefix / "run/certvisor/notify.sock"))
    sock.sendto(b"MAINPID=1", str(agent.prefix / "run/certvisor/notify.sock"))
    sock.close()
    # Both datagrams were read (and dropped) before the state is looked at.
    wait_for(lambda: agent.log_text().count("Dropped a notify message from pid") >= 2,
             what="both messages dropped")
    assert agent.state("silent") == "STARTING"


@root_only
def test_services_run_as_their_configured_user(agent_factory):
    agent = agent_factory({"web": svc(extra='user = "nobody"'), "mine": svc()})
    agent.start()
    nobody = pwd.getpwnam("nobody")
    pid = agent.pid_of("web")
    assert proc_status(pid, "Uid") == [str(nobody.pw_uid)] * 4
    assert proc_status(pid, "Gid")[0] == str(nobody.pw_gid)
    assert proc_status(agent.pid_of("mine"), "Uid")[0] == "0"


# Groups every Debian system has, so the tests need not create any.
READER_GROUP = "nogroup"
OTHER_GROUP = "daemon"


@root_only
def test_admin_group_members_may_change(agent_factory):
    import grp
    gid = grp.getgrnam(READER_GROUP).gr_gid
    nobody = pwd.getpwnam("nobody").pw_uid
    agent = agent_factory({"web": svc()},
                          main_extra=f'control_group = "{READER_GROUP}"\nadmin_group = "{READER_GROUP}"')
    agent.start()
    assert os.stat(agent.socket).st_gid == gid
    # nobody, as a member of the admin group, may change things.
    out = agent.ctl("restart", "web", user=(nobody, gid))
    assert out.returncode == 0, out.stderr
    assert f"Control: uid {nobody} " in agent.log_text()


@root_only
def test_non_admin_cannot_change_anything(agent_factory):
    import grp
    gid = grp.getgrnam(READER_GROUP).gr_gid
    other = grp.getgrnam(OTHER_GROUP).gr_gid
    nobody = pwd.getpwnam("nobody").pw_uid
    agent = agent_factory({"web": svc()}, main_extra=f'control_group = "{READER_GROUP}"')
    agent.start()
    pid = agent.pid_of("web")
    out = agent.ctl("stop", "web", user=(nobody, gid))
    assert out.returncode == 4
    assert "permission denied: 'stop' needs root, certvisord's own user or membership of the admin group" in out.stderr
    assert agent.pid_of("web") == pid
    assert agent.ctl("status", user=(nobody, gid)).returncode == 0
    # Outside the socket's group, not even a connection.
    out = agent.ctl("status", user=(nobody, other))
    assert out.returncode == 4 and "Permission denied" in out.stderr
    assert "Refused 'stop' from uid" in agent.log_text()
