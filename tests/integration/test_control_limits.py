"""The control socket's limits: an oversized request is refused and its connection closed with
the agent and every service unharmed, connections beyond the per-uid cap get a refusal that
names the cap while others still get answers, and a request left unfinished is closed."""
import grp
import json
import pwd
import socket
import subprocess
import sys
import threading
import time

from conftest import line_within
from test_security import READER_GROUP, root_only
from test_supervision import svc

MAX_MESSAGE = 1048576
PER_UID_CAP = 64
PARTIAL_TIMEOUT_S = 10


def read_until_closed(sock, timeout):
    """Everything the agent sends until it closes the connection (or timeout: then None)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data  # closed with our unread bytes still in its buffer: a close all the same
        except socket.timeout:
            return None
        if not chunk:
            return data
        data += chunk
    return None


def send_oversized(path, payload):
    """Sends payload (the agent may stop reading it and close); returns what came back."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        s.settimeout(30)
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the agent closed after refusing: the answer is already in our buffer
        return read_until_closed(s, 30)


def test_an_oversized_request_is_refused_and_the_agent_and_services_live_on(agent_factory):
    agent = agent_factory({"web": svc(), "db": svc()})
    agent.start()
    pids = {name: agent.pid_of(name) for name in ("web", "db")}
    for payload in (b"x" * (MAX_MESSAGE + 4096),  # no newline at all
                    b'{"command": "status", "args": ["' + b"x" * MAX_MESSAGE + b'"]}\n'):
        got = send_oversized(agent.socket, payload)
        assert got is not None, "the agent kept the connection open"
        reply = json.loads(got.splitlines()[0])
        assert reply["exit"] == 2 and f"request exceeds {MAX_MESSAGE} bytes" in reply["error"]
        assert agent.proc.poll() is None, agent.log_text()[-3000:]
    assert {name: agent.pid_of(name) for name in ("web", "db")} == pids
    assert agent.ctl("status").returncode == 0
    # A request of just under the limit is still taken (and answered as the usage error it is).
    line = b'{"command": "status", "args": ["' + b"y" * (MAX_MESSAGE - 64) + b'"]}\n'
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(agent.socket))
        s.sendall(line)
        s.settimeout(30)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            assert chunk, "closed without an answer"
            data += chunk
    assert "exit" in json.loads(data) and b"exceeds" not in data
    assert f"request exceeds {MAX_MESSAGE} bytes" in agent.log_text()


# Run as another user: opens connections, reports which were refused, holds them until stdin ends.
HOLDER = r"""
import json, socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
conns = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    conns.append(s)
time.sleep(1)
refusals = []
for s in conns:
    s.settimeout(0.05)
    try:
        data = s.recv(4096)
    except (socket.timeout, OSError):
        data = b""
    if data:
        refusals.append(json.loads(data.splitlines()[0]))
print(json.dumps({"opened": len(conns), "refusals": refusals}), flush=True)
sys.stdin.read()
"""


@root_only
def test_connections_beyond_the_per_uid_cap_are_refused_while_others_are_answered(agent_factory):
    gid = grp.getgrnam(READER_GROUP).gr_gid
    nobody = pwd.getpwnam("nobody").pw_uid
    agent = agent_factory({"web": svc()}, main_extra=f'control_group = "{READER_GROUP}"')
    agent.start()
    holder = subprocess.Popen(
        ["setpriv", f"--reuid={nobody}", f"--regid={gid}", "--clear-groups", sys.executable, "-c",
         HOLDER, str(agent.socket), str(PER_UID_CAP + 6)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = line_within(holder.stdout, 30)
        assert line is not None, "the holder reported nothing within 30 s"
        report = json.loads(line)
        assert report["opened"] == PER_UID_CAP + 6
        assert len(report["refusals"]) == 6, report
        for refusal in report["refusals"]:
            assert refusal["exit"] == 1 and refusal["reason"] == "too_many_connections"
            assert f"too many control connections from uid {nobody} (at most {PER_UID_CAP} " \
                   "per uid)" in refusal["error"]
        # certvisorctl as that user gets the refusal, in words...
        out = agent.ctl("status", user=(nobody, gid))
        assert out.returncode == 1, (out.stdout, out.stderr)
        assert f"at most {PER_UID_CAP} per uid" in out.stderr
        # ...while anyone else is answered as usual.
        out = agent.ctl("status")
        assert out.returncode == 0 and "web" in out.stdout, out.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    # Once the connections are closed, that user is answered again.
    for _ in range(50):
        out = agent.ctl("status", user=(nobody, gid))
        if out.returncode == 0:
            break
        time.sleep(0.1)
    assert out.returncode == 0, out.stderr


def test_a_request_left_unfinished_is_closed_after_the_timeout(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    results = {}

    def idle():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(agent.socket))
            s.sendall(b'{"command": "sta')
            results["idle"] = read_until_closed(s, PARTIAL_TIMEOUT_S + 20)

    def trickle():
        # One byte a second never completes a line: its deadline runs from the first byte.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(agent.socket))
            s.settimeout(1)
            started = time.monotonic()
            data = b""
            while time.monotonic() - started < PARTIAL_TIMEOUT_S + 20:
                try:
                    s.send(b" ")
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                except socket.timeout:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
            results["trickle"] = data if time.monotonic() - started < PARTIAL_TIMEOUT_S + 20 \
                else None

    threads = [threading.Thread(target=idle), threading.Thread(target=trickle)]
    for t in threads:
        t.start()
    # Meanwhile the agent answers as usual.
    assert agent.ctl("status").returncode == 0
    for t in threads:
        t.join(timeout=PARTIAL_TIMEOUT_S + 40)
    for name in ("idle", "trickle"):
        got = results.get(name)
        assert got is not None, f"the {name} connection was never closed"
        reply = json.loads(got.splitlines()[0])
        assert reply["exit"] == 2, reply
        assert f"request not completed within {PARTIAL_TIMEOUT_S} s" in reply["error"], reply
    assert agent.ctl("status").returncode == 0
