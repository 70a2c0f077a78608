"""certvisorctl daemon-reexec: the agent executes its binary again (the new one after an upgrade)
in its own process, and its services do not notice: same pids, no signal, no refused client.

Under a checking client through the proxy and a stream of `certvisorctl status` calls, the agent
re-executes again and again; every request is answered. A binary replaced as a package upgrade
replaces it is the one that runs afterwards. What cannot work changes nothing (a binary that
cannot be executed) or falls back to adoption (a new binary that cannot read the state, or one
that does not start at all)."""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time

from conftest import CERTVISORCTL, CERTVISORD, Repeatedly, pid_alive, wait_for
from test_adoption import CheckingClient
from test_redis_reload import Shard, pytestmark  # noqa: F401 (the same skips)

REEXECS = 20


def status_answers(agent):
    """A probe for Repeatedly: `certvisorctl status` must answer every call."""
    def probe():
        out = agent.ctl("status", timeout=60)
        return None if out.returncode == 0 and "RUNNING" in out.stdout else out.stderr or out.stdout
    return probe


def one_service(agent_factory, record=False):
    """An agent with one test service (recording its events with record)."""
    extra = ', "--record", "RECORD"' if record else ""
    return agent_factory({"svc": f"""
        command   = "TESTSVC"
        arguments = {{"--name", "svc"{extra}}}
        readiness = notify
        """})


def service_pids(agent):
    names = [line.split()[0] for line in agent.ctl("status").stdout.splitlines()]
    return {name: agent.pid_of(name) for name in names}


def reexec_ok(agent):
    out = agent.ctl("daemon-reexec")
    assert out.returncode == 0, out.stdout + out.stderr + agent.log_text()[-3000:]
    assert re.match(r"certvisord re-executed \S+: version \S+ \(was \S+\), pid "
                    rf"{agent.proc.pid} as before; \d+ services? kept running", out.stdout), out.stdout
    return out.stdout


def private_binary(agent):
    """Runs the agent from a copy of certvisord that the test may replace, as dpkg does."""
    path = agent.root / "sbin" / "certvisord"
    path.parent.mkdir()
    shutil.copy2(CERTVISORD, path)
    agent.binary = path
    return path


def replace_file(path, make):
    """Writes a new file beside path and renames it over path: the running binary's inode
    stays as it is, the path names the new one (what dpkg and rpm do)."""
    tmp = path.with_name(path.name + ".new")
    make(tmp)
    os.rename(tmp, path)


def test_reexec_under_load_keeps_every_service_and_refuses_no_one(agent_factory):
    shard = Shard(agent_factory)
    agent = shard.agent
    pids = service_pids(agent)
    client, poller = CheckingClient(shard.client), Repeatedly(status_answers(agent), 0)
    client.start()
    poller.thread.start()
    polls = lambda: len(poller.durations)  # noqa: E731
    try:
        wait_for(lambda: client.done > 100 and polls() > 3, 20, what="the clients to run")
        for _ in range(REEXECS):
            before, polled = client.done, polls()
            print(reexec_ok(agent), end="")
            assert service_pids(agent) == pids
            wait_for(lambda: client.done > before + 50 and polls() > polled + 2, 20,
                     what="requests after the re-exec")
    finally:
        client.stop.set()
        poller.stopping.set()
        client.join(timeout=20)
        poller.thread.join(timeout=70)
    assert not client.failures, client.failures[:10]
    assert not poller.failures, poller.failures[:5]
    log = agent.log_text()
    assert log.count(f"Kept {len(pids)} running services across the re-exec") == REEXECS, log[-4000:]
    assert "adopted from the previous agent" not in log
    print(f"{client.done} requests and {polls()} status calls, 0 failed, across {REEXECS} "
          "re-execs")
    # The services are still the agent's children: its stop takes them down in order.
    assert agent.stop() == 0
    assert not any(pid_alive(pid) for pid in pids.values())


def ask(conn, reader, command):
    conn.sendall(json.dumps({"command": command, "args": [], "options": {}}).encode() + b"\n")
    return json.loads(reader.readline())


def test_a_connection_between_requests_is_handed_over_and_a_stream_is_ended(agent_factory):
    """A client that keeps its control connection open between requests is not cut by the
    re-exec: its next request is answered by the new binary on the same connection. A
    `tail -f` cannot be carried over: it ends with a line that says why, exit 0."""
    agent = agent_factory({"svc": """
        command       = "TESTSVC"
        arguments     = {"--name", "svc", "--print-on-reload"}
        readiness     = notify
        reload_signal = "HUP"
        """})
    agent.start()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(str(agent.socket))
    conn.settimeout(30)
    reader = conn.makefile("r")
    assert ask(conn, reader, "status")["exit"] == 0
    tail = subprocess.Popen([str(CERTVISORCTL), "-s", str(agent.socket), "tail", "-f", "-n", "0",
                             "svc"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # It follows once a line the service writes reaches it.
    wait_for(lambda: agent.ctl("reload", "svc").returncode == 0
             and select.select([tail.stdout], [], [], 1)[0], 20, what="tail -f to follow")
    assert tail.stdout.readline() == "reloaded\n"
    reexec_ok(agent)
    out, err = tail.communicate(timeout=30)
    assert tail.returncode == 0, err
    assert "certvisorctl: tail: certvisord is re-executing: run the command again to follow " \
           "on" in err
    assert ask(conn, reader, "status")["exit"] == 0  # the same connection, the new binary
    conn.close()
    assert "still in the middle of a request" not in agent.log_text()


def test_a_client_that_never_finishes_its_request_cannot_hold_the_reexec(agent_factory):
    """A request left half-sent would hold the re-exec forever: it waits for it a grace period
    (3 s), then cuts that one connection and goes on."""
    agent = one_service(agent_factory)
    agent.start()
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.connect(str(agent.socket))
    slow.sendall(b'{"command": "sta')
    wait_for(lambda: agent.ctl("status").returncode == 0, 10, what="the agent to read it")
    began = time.monotonic()
    reexec_ok(agent)
    assert time.monotonic() - began >= 3.0
    assert "Re-exec: 1 control connection was still in the middle of a request after 3000 ms " \
           "is cut" in agent.log_text()
    slow.settimeout(10)
    assert slow.recv(100) == b""  # cut, not answered by the new binary
    assert agent.ctl("status").returncode == 0


def test_an_upgraded_binary_is_the_one_that_runs_after_the_reexec(agent_factory):
    agent = one_service(agent_factory, record=True)
    binary = private_binary(agent)
    agent.start()
    pids = service_pids(agent)
    old_inode = os.stat(f"/proc/{agent.proc.pid}/exe").st_ino
    replace_file(binary, lambda tmp: shutil.copy2(CERTVISORD, tmp))
    assert os.stat(binary).st_ino != old_inode
    reexec_ok(agent)
    assert os.stat(f"/proc/{agent.proc.pid}/exe").st_ino == os.stat(binary).st_ino
    assert service_pids(agent) == pids
    assert [r[0] for r in agent.records()] == ["start", "ready"]  # no signal, no stop


def test_sigusr2_reexecutes_too(agent_factory):
    agent = one_service(agent_factory)
    agent.start()
    pids = service_pids(agent)
    os.kill(agent.proc.pid, signal.SIGUSR2)
    wait_for(lambda: "Kept 1 running service across the re-exec" in agent.log_text(), 20,
             what="the re-exec")
    agent.wait_ready()
    assert service_pids(agent) == pids and agent.state("svc") == "RUNNING"


def test_a_binary_that_cannot_be_executed_changes_nothing(agent_factory):
    agent = one_service(agent_factory)
    binary = private_binary(agent)
    agent.start()
    pids = service_pids(agent)
    os.chmod(binary, 0o644)
    out = agent.ctl("daemon-reexec")
    assert out.returncode == 1
    assert f"cannot execute {binary}: Permission denied; nothing was changed" in out.stderr
    # Executable by its mode, but not a program: execv() itself fails, and the agent runs on.
    replace_file(binary, lambda tmp: (tmp.write_bytes(b"\x7fELF broken"), tmp.chmod(0o755)))
    out = agent.ctl("daemon-reexec")
    assert out.returncode == 1
    assert f"cannot execute {binary}: Exec format error; the agent runs on unchanged" in out.stderr
    assert agent.proc.poll() is None and service_pids(agent) == pids
    assert agent.ctl("status").returncode == 0
    assert "Re-exec failed" in agent.log_text()


def test_a_new_binary_that_cannot_read_the_state_adopts_the_services(agent_factory):
    """The new binary is handed a state it does not understand (a version from the future): it
    says why, and takes the services over from the record in the run directory instead."""
    agent = one_service(agent_factory)
    binary = private_binary(agent)
    agent.start()
    pids = service_pids(agent)
    future = agent.root / "future-state.json"
    future.write_text('{"version": 99}')
    real = agent.root / "sbin" / "certvisord.real"
    shutil.copy2(CERTVISORD, real)
    # A wrapper that puts the future state where the handed-over one was.
    replace_file(binary, lambda tmp: (tmp.write_text(f"""#!/usr/bin/python3
import os, sys
argv = sys.argv[1:]
fd = int(argv[argv.index("--reexec-state") + 1])
os.dup2(os.open("{future}", os.O_RDONLY), fd)
os.execv("{real}", ["{real}"] + argv)
"""), tmp.chmod(0o755)))
    out = agent.ctl("daemon-reexec")
    assert out.returncode == 5, out.stdout + out.stderr  # its request was not handed over
    assert "the new binary did not answer after the re-exec" in out.stderr
    wait_for(lambda: agent.ctl("status").returncode == 0, 20, what="the control socket")
    assert agent.proc.poll() is None and service_pids(agent) == pids
    log = agent.log_text()
    assert "Cannot read the state the previous binary handed over (version 99, this binary " \
           "reads version 1)" in log, log[-3000:]
    assert "Service 'svc' (pid %d) adopted from the previous agent" % pids["svc"] in log


def test_a_new_binary_that_does_not_start_leaves_the_services_to_the_next_agent(agent_factory):
    agent = one_service(agent_factory)
    binary = private_binary(agent)
    agent.start()
    pids = service_pids(agent)
    replace_file(binary, lambda tmp: (tmp.write_text("#!/bin/sh\nexit 3\n"), tmp.chmod(0o755)))
    out = agent.ctl("daemon-reexec")
    assert out.returncode == 5 and "did not answer after the re-exec" in out.stderr
    agent.proc.wait(timeout=10)
    assert all(pid_alive(pid) for pid in pids.values())
    replace_file(binary, lambda tmp: shutil.copy2(CERTVISORD, tmp))
    agent.start()
    assert service_pids(agent) == pids and agent.state("svc") == "RUNNING"


def test_reexec_needs_an_admin_and_takes_no_arguments(agent_factory):
    agent = one_service(agent_factory)
    agent.start()
    out = agent.ctl("daemon-reexec", "now")
    assert out.returncode == 2 and "unexpected argument 'now'" in out.stderr
    nobody = (65534, 65534)
    os.chmod(agent.socket, 0o666)
    out = agent.ctl("daemon-reexec", user=nobody)
    assert out.returncode != 0 and "Re-exec" not in agent.log_text(), out.stderr
    assert "daemon-reexec" in subprocess.run([str(CERTVISORD.with_name("certvisorctl")), "--help"],
                                             capture_output=True, text=True).stdout
