"""The REST API's users: kept hashed by the agent, managed with certvisorctl, and checked for
each request the API passes on (as_user), with the user's role deciding what it may do."""
import json
import os
import socket
import stat
import subprocess

from conftest import CERTVISORCTL

from test_certs import state
from test_supervision import svc


def control(agent, request):
    """One request on the control socket, as the REST API sends it; returns the answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(agent.socket))
        s.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def as_user(name, password, command, *args, **options):
    return {"command": command, "args": list(args), "options": options,
            "as_user": {"name": name, "password": password}}


def test_users_are_managed_with_certvisorctl_and_stored_hashed(agent_factory, tmp_path):
    agent = agent_factory({"web": svc()})
    agent.start()
    secret = agent.root / "pw"
    secret.write_text("correct horse battery\n")
    out = agent.ctl("user", "add", "alice", "--password-file", str(secret))
    assert (out.returncode, out.stdout.strip()) == (0, "Added user alice (admin)")
    out = subprocess_ctl_stdin(agent, "viewer password\n", "user", "add", "bob", "--role", "viewer")
    assert (out.returncode, out.stdout.strip()) == (0, "Added user bob (viewer)")
    assert agent.ctl("user", "list").stdout.split() == ["alice", "admin", "bob", "viewer"]
    out = agent.ctl("user", "add", "alice", "--password-file", str(secret))
    assert out.returncode == 1 and "user 'alice' exists" in out.stderr
    secret.write_text("short\n")
    out = agent.ctl("user", "passwd", "alice", "--password-file", str(secret))
    assert out.returncode == 2 and "from 8 to 1024 characters" in out.stderr
    users = state(agent, "users.json")
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    text = users.read_text()
    assert "correct horse" not in text and "viewer password" not in text and "pbkdf2-sha256" in text
    assert "correct horse" not in agent.log_text()
    assert "audit: uid 0 added REST user 'alice' (role admin)" in agent.log_text()
    out = agent.ctl("user", "delete", "bob")
    assert (out.returncode, out.stdout.strip()) == (0, "Deleted user bob")
    assert agent.ctl("user", "delete", "bob").returncode == 4


def subprocess_ctl_stdin(agent, text, *args):
    """certvisorctl with text on its standard input (not a terminal: one line, no prompt)."""
    return subprocess.run([str(CERTVISORCTL), "-s", str(agent.socket), *args], input=text,
                          capture_output=True, text=True, timeout=60)


def test_requests_act_for_the_rest_user_with_its_role(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    for name, role in (("alice", "admin"), ("bob", "viewer")):
        assert subprocess_ctl_stdin(agent, f"{name} password\n", "user", "add", name, "--role",
                                    role).returncode == 0
    # An admin changes the policy; the audit line names the REST user, not the API's uid.
    reply = control(agent, as_user("alice", "alice password", "cluster config", "http_support",
                                   "disabled"))
    assert reply["exit"] == 0, reply
    assert f"audit: REST user 'alice' (uid {os.getuid()}) changed policy http_support=disabled" \
        in agent.log_text()
    # A viewer reads, but cannot change.
    reply = control(agent, as_user("bob", "bob password", "cluster config show"))
    assert reply["exit"] == 0 and any(i["name"] == "http_support" for i in reply["items"])
    reply = control(agent, as_user("bob", "bob password", "cluster config", "http_support", "enabled"))
    assert reply["exit"] == 4 and "needs a user with the admin role" in reply["error"]
    # Wrong passwords and unknown users get one answer; repeated failures lock the name out.
    for _ in range(5):
        reply = control(agent, as_user("alice", "nope", "status"))
        assert (reply["exit"], reply["auth"]) == (4, "failed")
    reply = control(agent, as_user("nobody", "alice password", "status"))
    assert reply["auth"] == "failed"
    reply = control(agent, as_user("alice", "alice password", "status"))
    assert reply["auth"] == "throttled" and reply["retry_after"] >= 1
    assert "REST sign-in failed for 'alice'" in agent.log_text()
