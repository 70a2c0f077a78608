"""Harness for integration tests: runs the real certvisord in a temporary directory.

Each test gets an `agent_factory` that writes a main configuration and conf.d
files, starts certvisord in its own session with a NOTIFY_SOCKET that the test
owns (standing in for systemd), and drives it with the real certvisorctl.
Everything the agent started is killed and the directory removed afterwards.
"""
import json
import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import textwrap
import threading
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("CERTVISOR_BUILD_DIR", REPO / "build"))
CERTVISORD = BUILD / "certvisord"
CERTVISORCTL = BUILD / "certvisorctl"
TESTSVC = BUILD / "certvisor-testsvc"


def _built_with_asan():
    """True for a build with AddressSanitizer, whose RSS figures mean nothing (quarantine)."""
    try:
        out = subprocess.run(["ldd", str(CERTVISORD)], capture_output=True, text=True).stdout
    except OSError:
        return False
    return "libasan" in out


SANITIZED = _built_with_asan()


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    """Polls predicate until it returns a true value; the test's own clock, not the agent's."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def line_within(stream, timeout):
    """The next line of a child's pipe (as text, without its newline), or None when none comes
    within timeout seconds: a bare readline() would hang the test on a child that never writes.
    Reads the pipe's descriptor directly, keeping what follows the line for the next call."""
    import select

    fd = stream.fileno()
    pending = line_within.pending.setdefault(fd, b"")
    deadline = time.monotonic() + timeout
    while b"\n" not in pending:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            line_within.pending[fd] = pending
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            line_within.pending[fd] = b""
            return pending.decode() or None
        pending += chunk
    line, _, rest = pending.partition(b"\n")
    line_within.pending[fd] = rest
    return line.decode()


line_within.pending = {}


def follow_until_attached(follower, make_line, expected, tries=20):
    """A "tail -f" follower is attached once it shows a line made after it started: make_line()
    makes one (a restart of a service that prints), until the follower shows expected."""
    for _ in range(tries):
        make_line()
        line = line_within(follower.stdout, 1.0)
        if line is not None:
            assert line == expected
            return
    raise AssertionError(f"the follower showed nothing in {tries} tries")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes. A process reaped between the open and the read makes
    # the read fail with ESRCH: dead too.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


class NotifyListener:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET; like systemd, it keeps reading."""

    # Linux's SO_TIMESTAMPNS (asm-generic/socket.h; Python does not name it): each datagram
    # carries the CLOCK_REALTIME at which the kernel received it, as struct timespec.
    SO_TIMESTAMPNS = 35

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.sock.setsockopt(socket.SOL_SOCKET, self.SO_TIMESTAMPNS, 1)
        # times are the kernel's, on the monotonic clock: a reader thread held up by the test's
        # own threads (the GIL) does not make the agent look late.
        self.realtime_ahead = time.time() - time.monotonic()
        self.messages = []
        self.times = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while self.running:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, 64)
            except socket.timeout:
                continue
            except OSError:
                return
            received = time.monotonic()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == self.SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    received = seconds + nanoseconds / 1e9 - self.realtime_ahead
            with self.lock:
                self.messages.append(data.decode())
                self.times.append(received)

    def drain(self, timeout=0.0):
        """The messages so far (after waiting timeout seconds)."""
        if timeout:
            time.sleep(timeout)
        with self.lock:
            return list(self.messages)

    def wait_for(self, needle, timeout=15.0):
        return wait_for(lambda: any(needle in m for m in self.drain()), timeout,
                        what=f"notify message {needle!r}")

    def close(self):
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


class Agent:
    def __init__(self, root, services, main_extra="", env_extra=None):
        self.root = pathlib.Path(root)
        self.conf_d = self.root / "conf.d"
        self.conf_d.mkdir(parents=True, exist_ok=True)
        self.prefix = self.root / "prefix"
        self.config = self.root / "certvisor.conf"
        self.record = self.root / "record.txt"
        self.socket = self.prefix / "run/certvisor/control.sock"
        self.log = self.root / "agent.log"
        self.main_extra = main_extra
        self.env_extra = env_extra or {}
        self.binary = CERTVISORD  # a test of upgrades runs a copy it can replace
        self.proc = None
        self.ready_seen = 0
        self.notify = NotifyListener(self.root / "systemd-notify.sock")
        self.write_main()
        for name, body in services.items():
            self.write_service(name, body)

    # --- configuration ---------------------------------------------------------
    def write_main(self, extra=None):
        text = textwrap.dedent(f"""\
            prefix = "{self.prefix}"
            libexec_dir = "{BUILD}"
            include = "{self.conf_d}"
            log_target = "console"
            log_level = "debug"
            """) + (self.main_extra if extra is None else extra) + "\n"
        self.config.write_text(text)

    def write_service(self, name, body, filename=None):
        """body: option lines; `TESTSVC` in it stands for the test program's path."""
        body = textwrap.dedent(body).replace("TESTSVC", str(TESTSVC)).replace("RECORD", str(self.record))
        path = self.conf_d / (filename or f"{name}.conf")
        path.write_text(f"service {name} {{\n{body}\n}}\n")
        return path

    def remove_service(self, name):
        (self.conf_d / f"{name}.conf").unlink()

    # --- process -----------------------------------------------------------------
    def start(self, wait_ready=True, extra_args=(), expect_fail=False):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "NOTIFY_SOCKET": self.notify.path}
        env.update(self.env_extra)
        for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if key in os.environ:
                env[key] = os.environ[key]
        self.ready_seen = len(self.notify.drain())  # a restart waits for a READY=1 of its own
        if getattr(self, "log_file", None):
            self.log_file.close()
        self.log_file = open(self.log, "ab")
        self.proc = subprocess.Popen([str(self.binary), "-c", str(self.config), *extra_args],
                                     stdout=self.log_file, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        if expect_fail:
            self.proc.wait(timeout=10)
            return self.proc.returncode
        if wait_ready:
            self.wait_ready()
        return None

    def wait_ready(self, timeout=20.0):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"certvisord exited with {self.proc.returncode}:\n{self.log_text()}")
            return any("READY=1" in m for m in self.notify.drain(0.02)[self.ready_seen:])

        wait_for(ready, timeout, what="READY=1 from certvisord")

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def ctl(self, *args, timeout=60, user=None):
        cmd = [str(CERTVISORCTL), "-s", str(self.socket), *args]
        if user:
            cmd = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def status(self):
        """name -> (state, description) from `certvisorctl status`."""
        out = self.ctl("status").stdout
        result = {}
        for line in out.splitlines():
            name, state, desc = line[:33].strip(), line[33:43].strip(), line[43:]
            result[name] = (state, desc)
        return result

    def state(self, name):
        return self.status().get(name, (None, None))[0]

    def wait_state(self, name, state, timeout=15.0):
        return wait_for(lambda: self.state(name) == state, timeout, what=f"{name} to be {state}")

    def pid_of(self, name):
        return int(self.ctl("pid", name).stdout.strip())

    def records(self, event=None, name=None):
        """Lines the test program appended: (event, name, pid, monotonic_ns)."""
        if not self.record.exists():
            return []
        rows = []
        for line in self.record.read_text().splitlines():
            ev, svc, pid, ns = line.split()
            if (event is None or ev == event) and (name is None or svc == name):
                rows.append((ev, svc, int(pid), int(ns)))
        return rows

    def recorded_service_pids(self):
        """The services' pids in the agent's record of them (run/certvisor/services.json)."""
        path = self.prefix / "run/certvisor/services.json"
        try:
            return [int(s["pid"]) for s in json.loads(path.read_text())["services"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def stop(self, timeout=30):
        """SIGTERM, as systemd sends it; returns the exit status."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        # Services outlive a killed agent (it adopts them when it starts again): those of a
        # test that killed it and did not start it again are in its record of them.
        for pid in self.recorded_service_pids():
            for target in (-pid, pid):
                try:
                    os.kill(target, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        # Anything a test program recorded must be gone, whatever the test did.
        for _, _, pid, _ in self.records():
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if getattr(self, "log_file", None):
            self.log_file.close()
        self.notify.close()


class Repeatedly:
    """Runs probe() over and over on a thread until stopped; keeps each call's duration."""

    def __init__(self, probe, pause):
        self.probe = probe
        self.pause = pause
        self.durations = []
        self.failures = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopping.is_set():
            started = time.monotonic()
            error = self.probe()
            self.durations.append(time.monotonic() - started)
            if error:
                self.failures.append(error)
            self.stopping.wait(self.pause)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=30)


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


@pytest.fixture
def agent_factory():
    # Not pytest's tmp_path: that is private to root (0700), and services and clients
    # running as other users must reach their sockets and the record file.
    base = pathlib.Path(tempfile.mkdtemp(prefix="certvisor-it-", dir="/tmp"))
    base.chmod(0o755)
    agents = []

    def make(services, main_extra="", env_extra=None, subdir=None):
        root = base / (subdir or f"agent{len(agents)}")
        root.mkdir(mode=0o755)
        agent = Agent(root, services, main_extra, env_extra)
        agent.record.touch()
        agent.record.chmod(0o666)
        agents.append(agent)
        return agent

    yield make
    reports = []
    for agent in agents:
        agent.cleanup()
        text = agent.log_text()
        if any(marker in text for marker in SANITIZER_MARKERS):
            reports.append(text[-6000:])
    shutil.rmtree(base, ignore_errors=True)
    assert not reports, "sanitizer report in the agent's log:\n" + "\n".join(reports)


def pytest_report_header(config):
    return f"certvisor build: {BUILD}"


@pytest.fixture(scope="session", autouse=True)
def binaries_exist():
    for binary in (CERTVISORD, CERTVISORCTL, TESTSVC):
        assert binary.exists(), f"{binary} is missing: build first (scripts/build.sh)"
