#!/usr/bin/env python3
"""Benchmark certvisord against supervisord supervising the same six services.

Measures, in one run and for both supervisors: memory of the supervisor process
(VmRSS, PSS, USS), the wall time of `restart <one service>` and `restart all`
until the command returns with the services up again, and the system calls the
supervisor makes in 10 s of idleness (strace -c). Then the agent's memory on a
real node: the real services with their certificates (cm, api, proxy with the
shipped Redis shard, sentinel_service, metrics_exporter), which share libcrypto
with it. Prints one table against the goals; goals are reported, not asserted.
See tests/bench/README.md.
"""

import argparse
import contextlib
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import harness

# The repository this script is in: builds are looked for there by default.
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Name and dependencies ("after") of the six services; both supervisors run
# certvisor-testsvc for each.
SERVICES = [
    ("api", []),
    ("cm", ["api"]),
    ("proxy", []),
    ("syncer", ["proxy"]),
    ("sentinel_service", ["proxy"]),
    ("metrics_exporter", []),
]
RESTART_ONE = "sentinel_service"

WATCHDOG_USEC = 10_000_000  # certvisord pings at half of it: every 5 s
IDLE_SECONDS = 10.0
# One watchdog ping costs these system calls: the timer's epoll_wait wakes up,
# then a notify datagram goes out on the socket the agent keeps open.
WATCHDOG_SYSCALLS = ("epoll_wait", "sendto")

GOAL_RSS_MIB = 2.0
GOAL_USS_MIB = 1.0  # on a real node, all services and certificates loaded
# The agent checks its certificates for renewal 2 s after start (agent/apply/renewal.c): the
# idle window and the memory figures begin after that, not inside it.
STARTUP_CHECKS_S = 3.0
GOAL_RESTART_ONE_MS = 20.0
GOAL_RESTART_ALL_MS = 100.0

START_TIMEOUT = 30.0  # for a supervisor to have all six services up
COMMAND_TIMEOUT = 60.0  # for one restart command
STOP_GRACE = 15.0  # between SIGTERM and SIGKILL when cleaning up


class BenchError(Exception):
    pass


# Signals that end the run become exceptions, so that the finally blocks clean
# up; while a cleanup runs they wait, so that it is not cut short.
_deferring = False
_deferred = []


def on_stop_signal(signo, frame):
    why = ("the whole run exceeded its time limit" if signo == signal.SIGALRM
           else f"interrupted by {signal.Signals(signo).name}")
    if _deferring:
        _deferred.append(why)
    else:
        raise BenchError(why)


@contextlib.contextmanager
def deferred_signals():
    global _deferring
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
    if _deferred:
        raise BenchError(_deferred[0])


# ---------------------------------------------------------------- /proc helpers


def proc_stat(pid):
    """Returns (ppid, pgrp, starttime) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[2]), int(fields[19])


def descendants(root):
    """Every live descendant of root as {pid: starttime}."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat:
                children.setdefault(stat[0], []).append((int(entry), stat[2]))
    found, todo = {}, [root]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            found[pid] = start
            todo.append(pid)
    return found


def memory_kib(pid):
    """VmRSS, Pss and Private (clean + dirty: the USS) of one process, in KiB."""
    result = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                result["rss"] = int(line.split()[1])
    rollup = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    rollup[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        # certvisord makes itself non-dumpable, which hides smaps_rollup from
        # anyone without CAP_SYS_PTRACE.
        return result
    result["pss"] = rollup["Pss"]
    result["private"] = rollup["Private_Clean"] + rollup["Private_Dirty"]
    return result


# ---------------------------------------------------------------- processes


class Spawned:
    """A process the bench started, in its own session, stopped with its whole tree."""

    def __init__(self, argv, log_path, env=None, cwd=None):
        self.argv = argv
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def exit_text(self):
        code = self.proc.poll()
        if code is None:
            return "still running"
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        """SIGTERM first, so the supervisor stops its services itself; then SIGKILL
        whatever is left. Supervisors put each service in its own process group,
        so leftovers are killed group by group."""
        with deferred_signals():
            self._stop()

    def _stop(self):
        tree = descendants(self.pid) if self.alive() else {}
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                tree.update(descendants(self.pid))
                print(f"warning: {self.argv[0]} ignored SIGTERM for {STOP_GRACE:.0f} s; killing it",
                      file=sys.stderr)
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        own_group = os.getpgrp()
        for pid, start in tree.items():
            stat = proc_stat(pid)
            if stat is None or stat[2] != start:
                continue  # exited, or the pid now belongs to someone else
            print(f"warning: pid {pid} outlived its supervisor; killing it", file=sys.stderr)
            try:
                if stat[1] not in (own_group, 0):
                    os.killpg(stat[1], signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_command(argv, timeout=COMMAND_TIMEOUT):
    """Runs a control command; returns (wall seconds, stdout). Fails on a non-zero exit."""
    start = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited with {done.returncode}: "
                         f"{(done.stdout + done.stderr).strip()}")
    return elapsed, done.stdout


def time_restarts(argv, names, count):
    """Wall times of count runs of a restart command, each checked to report
    every one of names as started again."""
    times = []
    for _ in range(count):
        elapsed, out = run_command(argv)
        started = {line.split(":")[0] for line in out.splitlines() if line.endswith(": started")}
        missing = set(names) - started
        if missing:
            raise BenchError(f"{' '.join(argv)} did not report {sorted(missing)} started:\n{out}")
        times.append(elapsed)
    return times


class NotifyListener:
    """The datagram socket that stands in for systemd's NOTIFY_SOCKET; remembers
    when each message arrived."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, text)
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.closing = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.closing:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode(errors="replace")
            with self.lock:
                self.messages.append((time.monotonic(), text))
            if "READY=1" in text.splitlines():
                self.ready.set()

    def count(self, line, since, until):
        with self.lock:
            return sum(1 for t, text in self.messages
                       if since <= t <= until and line in text.splitlines())

    def close(self):
        self.closing = True
        self.thread.join(2)
        self.sock.close()


def strace_idle(pid, seconds, tmpdir, tag):
    """Counts the system calls of pid (and its threads and children) during
    seconds of idleness. Returns ({syscall: calls}, window start, window end)."""
    out_path = os.path.join(tmpdir, f"strace-{tag}.txt")
    strace = subprocess.Popen(["strace", "-c", "-f", "-o", out_path, "-p", str(pid)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # The window starts once strace has attached, which it says on stderr.
        attached = threading.Event()
        errors = []

        def read_stderr():
            for line in strace.stderr:
                errors.append(line)
                if "attached" in line:
                    attached.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        deadline = time.monotonic() + 10
        while not attached.wait(0.1) and strace.poll() is None and time.monotonic() < deadline:
            pass
        if not attached.is_set():
            # certvisord is non-dumpable: only root (CAP_SYS_PTRACE) may trace it.
            raise BenchError(f"strace could not attach to {pid} (run the bench as root): "
                             f"{''.join(errors).strip()}")
        since = time.monotonic()
        time.sleep(seconds)
        until = time.monotonic()
        strace.send_signal(signal.SIGINT)
        strace.wait(10)
        reader.join(2)
    finally:
        if strace.poll() is None:
            strace.kill()
            strace.wait()
    calls = {}
    with open(out_path) as f:
        for line in f:
            parts = line.split()
            # Rows: % time, seconds, usecs/call, calls, [errors], syscall.
            if len(parts) >= 5 and parts[3].isdigit() and parts[-1] != "total":
                calls[parts[-1]] = calls.get(parts[-1], 0) + int(parts[3])
    return calls, since, until


def percentile(values, fraction):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarize(times):
    return {"median_ms": statistics.median(times) * 1e3, "p90_ms": percentile(times, 0.9) * 1e3}


# ---------------------------------------------------------------- the two supervisors


def run_certvisord(build_dir, tmpdir, n_one, n_all):
    base = os.path.join(tmpdir, "certvisord")
    confd = os.path.join(base, "conf.d")
    os.makedirs(confd)
    config = os.path.join(base, "certvisor.conf")
    with open(config, "w") as f:
        f.write(f'prefix = "{base}/root"\n'
                f'libexec_dir = "{build_dir}"\n'
                f'include = "{confd}"\n'
                'log_target = "console"\n')
    for name, after in SERVICES:
        with open(os.path.join(confd, f"{name}.conf"), "w") as f:
            deps = ", ".join(f'"{d}"' for d in after)
            f.write(f"service {name} {{\n"
                    '    command   = "%{libexec_dir}/certvisor-testsvc"\n'
                    "    readiness = notify\n"
                    f"    after     = {{{deps}}}\n"
                    "}\n")
    ctl = [os.path.join(build_dir, "certvisorctl"), "-s",
           os.path.join(base, "root/run/certvisor/control.sock")]

    listener = NotifyListener(os.path.join(base, "notify.sock"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))}
    env.update(NOTIFY_SOCKET=listener.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
    agent = None
    try:
        agent = Spawned([os.path.join(build_dir, "certvisord"), "-c", config],
                        os.path.join(base, "certvisord.log"), env=env, cwd=base)
        # The agent says READY=1 once every autostart service is ready.
        deadline = time.monotonic() + START_TIMEOUT
        while not listener.ready.wait(0.1):
            if not agent.alive() or time.monotonic() > deadline:
                raise BenchError("certvisord did not become ready; its log ends with:\n"
                                 + agent.log_tail())
        _, out = run_command(ctl + ["pid"])
        if int(out.strip()) != agent.pid:
            raise BenchError(f"certvisorctl pid says {out.strip()}, the agent is {agent.pid}")

        time.sleep(STARTUP_CHECKS_S)
        result = {"memory": memory_kib(agent.pid)}
        calls, since, until = strace_idle(agent.pid, IDLE_SECONDS, tmpdir, "certvisord")
        result["idle_calls"] = calls
        result["pings"] = listener.count("WATCHDOG=1", since, until)
        result["restart_one"] = summarize(
            time_restarts(ctl + ["restart", RESTART_ONE], [RESTART_ONE], n_one))
        result["restart_all"] = summarize(
            time_restarts(ctl + ["restart", "all"], [n for n, _ in SERVICES], n_all))
        result["memory_after"] = memory_kib(agent.pid)
        return result
    except BaseException:
        if agent:
            sys.stderr.write(f"certvisord ({agent.exit_text()}) log, end:\n" + agent.log_tail())
        raise
    finally:
        if agent:
            agent.stop()
        listener.close()


def run_node(build_dir, tmpdir):
    """The agent's memory on a real node, through the integration tests' harness: cm, api, the
    proxy in front of the shipped redis-db1, sentinel_service and metrics_exporter, each with
    its certificate. None when the harness cannot be imported (python3-pytest missing)."""
    try:
        conftest = harness.integration_harness(build_dir)
        from test_api import api_service
        from test_certs import free_port
        from test_console import cm_service
        from test_metrics import exporter_service
        from test_proxy import PROXY_SERVICE
        from test_sentinel import sentinel_service
    except ImportError as e:
        print(f"bench_supervise: no real node ({e}); install python3-pytest", file=sys.stderr)
        return None
    root = os.path.join(tmpdir, "node")
    os.makedirs(root, mode=0o755)
    os.chmod(tmpdir, 0o755)  # the services run as the agent's user and read their files
    api_port, db_port, plain, tls = free_port(), free_port(), free_port(), free_port()
    agent = conftest.Agent(root, {
        "api": api_service(api_port, free_port()),
        "cm": cm_service(free_port(), api_port),
        "proxy": PROXY_SERVICE,
        "sentinel_service": sentinel_service(free_port()),
        "metrics_exporter": exporter_service(free_port()),
    })
    with open(os.path.join(agent.conf_d, "10-redis-db1.conf"), "w") as f:
        f.write(harness.shipped_shard(db_port, plain, tls))
    agent.record.touch()
    try:
        agent.start()
        time.sleep(STARTUP_CHECKS_S)
        return memory_kib(agent.proc.pid)
    finally:
        agent.cleanup()


def write_supervisord_conf(base, build_dir, startsecs):
    # No dependencies in supervisord: priorities give the same start order
    # (lower first) and the reverse stop order.
    conf = os.path.join(base, "supervisord.conf")
    sock = os.path.join(base, "supervisor.sock")
    logs = os.path.join(base, "logs")
    os.makedirs(logs)
    with open(conf, "w") as f:
        f.write(f"[unix_http_server]\nfile = {sock}\nchmod = 0700\n\n"
                f"[supervisord]\nnodaemon = true\nlogfile = {base}/supervisord.log\n"
                f"pidfile = {base}/supervisord.pid\nchildlogdir = {logs}\n\n"
                "[rpcinterface:supervisor]\n"
                "supervisor.rpcinterface_factory = "
                "supervisor.rpcinterface:make_main_rpcinterface\n\n"
                f"[supervisorctl]\nserverurl = unix://{sock}\n")
        for name, after in SERVICES:
            f.write(f"\n[program:{name}]\n"
                    f"command = {build_dir}/certvisor-testsvc\n"
                    f"priority = {200 if after else 100}\n"
                    f"startsecs = {startsecs}\n"
                    "stopsignal = TERM\nstopwaitsecs = 10\nautorestart = unexpected\n"
                    f"environment = CERTVISOR_SERVICE=\"{name}\"\n")
    return conf


def run_supervisord(build_dir, tmpdir, n_one, n_all, startsecs, full):
    """Runs supervisord with the given startsecs; full adds memory and idle counts."""
    base = os.path.join(tmpdir, f"supervisord-startsecs{startsecs}")
    os.makedirs(base)
    conf = write_supervisord_conf(base, build_dir, startsecs)
    ctl = ["supervisorctl", "-c", conf]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))}
    daemon = None
    try:
        daemon = Spawned(["supervisord", "-n", "-c", conf], os.path.join(base, "stdout.log"),
                         env=env, cwd=base)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not daemon.alive() or time.monotonic() > deadline:
                raise BenchError("supervisord did not start its programs; its output ends with:\n"
                                 + daemon.log_tail())
            # supervisorctl status exits non-zero until every program runs.
            done = subprocess.run(ctl + ["status"], capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT)
            states = [line.split()[1:2] for line in done.stdout.splitlines() if line.strip()]
            if len(states) == len(SERVICES) and all(s == ["RUNNING"] for s in states):
                break
            time.sleep(0.2)

        result = {}
        if full:
            result["memory"] = memory_kib(daemon.pid)
            result["idle_calls"], _, _ = strace_idle(daemon.pid, IDLE_SECONDS, tmpdir,
                                                     f"supervisord{startsecs}")
        result["restart_one"] = summarize(
            time_restarts(ctl + ["restart", RESTART_ONE], [RESTART_ONE], n_one))
        result["restart_all"] = summarize(
            time_restarts(ctl + ["restart", "all"], [n for n, _ in SERVICES], n_all))
        if full:
            result["memory_after"] = memory_kib(daemon.pid)
        return result
    except BaseException:
        if daemon:
            sys.stderr.write(f"supervisord ({daemon.exit_text()}) output, end:\n"
                             + daemon.log_tail())
        raise
    finally:
        if daemon:
            daemon.stop()


# ---------------------------------------------------------------- report


def non_watchdog_calls(calls, pings):
    """System calls beyond what pings watchdog pings explain. The epoll_wait
    that is pending when strace detaches counts once more."""
    extra = 0
    for name, count in calls.items():
        if name in WATCHDOG_SYSCALLS:
            allowance = pings + (1 if name == "epoll_wait" else 0)
            extra += max(0, count - allowance)
        else:
            extra += count
    return extra


def fmt(value, unit):
    if value is None:
        return "n/a"
    if unit == "MiB":
        return f"{value / 1024:.2f} MiB"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:g}"


def ratio(sup, cv):
    if sup is None or cv is None:
        return "n/a"
    if cv == 0:
        return "same" if sup == 0 else "inf"
    return f"{sup / cv:.1f}x"


def print_table(cv, sup, sup0, n_one, n_all, node):
    rows = []

    def row(metric, unit, cv_value, sup_value, goal="", met=None):
        met_text = "" if met is None else ("yes" if met else "NO")
        rows.append((metric, fmt(cv_value, unit), fmt(sup_value, unit), ratio(sup_value, cv_value),
                     goal, met_text))

    rss = cv["memory"]["rss"]
    row("VmRSS", "MiB", rss, sup["memory"]["rss"], f"<= {GOAL_RSS_MIB:g} MiB",
        rss / 1024 <= GOAL_RSS_MIB)
    row("PSS", "MiB", cv["memory"].get("pss"), sup["memory"].get("pss"))
    row("USS (private clean+dirty)", "MiB", cv["memory"].get("private"),
        sup["memory"].get("private"))
    if node:
        uss = node.get("private")
        row("real node: agent's USS", "MiB", uss, None, f"<= {GOAL_USS_MIB:g} MiB",
            None if uss is None else uss / 1024 <= GOAL_USS_MIB)
        row("real node: agent's PSS", "MiB", node.get("pss"), None)
        row("real node: agent's VmRSS", "MiB", node["rss"], None)
    row("VmRSS after the restarts", "MiB", cv["memory_after"]["rss"], sup["memory_after"]["rss"])
    for key, label, n, goal in (
            ("restart_one", f"restart {RESTART_ONE}", n_one, GOAL_RESTART_ONE_MS),
            ("restart_all", "restart all", n_all, GOAL_RESTART_ALL_MS)):
        median = cv[key]["median_ms"]
        row(f"{label}, median of {n}", "ms", median, sup[key]["median_ms"], f"<= {goal:g} ms",
            median <= goal)
        row(f"{label}, p90", "ms", cv[key]["p90_ms"], sup[key]["p90_ms"])
        # The same certvisord figures against the fairer supervisord anchor.
        row(f"{label}, median [startsecs=0]", "ms", median, sup0[key]["median_ms"])
        row(f"{label}, p90 [startsecs=0]", "ms", cv[key]["p90_ms"], sup0[key]["p90_ms"])
    seconds = f"{IDLE_SECONDS:g} s"
    row(f"idle syscalls in {seconds}, all", "", sum(cv["idle_calls"].values()),
        sum(sup["idle_calls"].values()))
    extra = non_watchdog_calls(cv["idle_calls"], cv["pings"])
    row(f"idle syscalls in {seconds}, besides watchdog", "", extra,
        sum(sup["idle_calls"].values()), "0", extra == 0)
    row(f"watchdog pings in {seconds}", "", cv["pings"], None)

    header = ("metric", "certvisord", "supervisord", "ratio sup/cv", "goal", "met?")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    print(line)
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print(line)
    print("supervisord runs with startsecs=1, or startsecs=0 where a row says so; "
          "supervisord has no watchdog, so all its idle calls count.")
    for who, calls in (("certvisord", cv["idle_calls"]), ("supervisord", sup["idle_calls"])):
        detail = ", ".join(f"{k} {v}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1]))
        print(f"idle syscalls, {who}: {detail or 'none'}")


def version(argv):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(REPOSITORY, "build-bench"),
                        help="where certvisord, certvisorctl and certvisor-testsvc are built "
                             "(default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer restarts (5 and 3 instead of 30 and 10)")
    args = parser.parse_args()

    build_dir = os.path.abspath(args.build_dir)
    missing = [b for b in ("certvisord", "certvisorctl", "certvisor-testsvc")
               if not os.access(os.path.join(build_dir, b), os.X_OK)]
    if missing:
        print(f"bench_supervise: {', '.join(missing)} not found in {build_dir}; build it first "
              "(see tests/bench/README.md) or pass --build-dir", file=sys.stderr)
        return 2
    for tool, package in (("supervisord", "supervisor"), ("supervisorctl", "supervisor"),
                          ("strace", "strace")):
        if not shutil.which(tool):
            print(f"bench_supervise: {tool} not found; install the Debian package '{package}'",
                  file=sys.stderr)
            return 2

    n_one, n_all = (5, 3) if args.quick else (30, 10)
    for signo in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(signo, on_stop_signal)
    signal.alarm(300 if args.quick else 900)
    tmpdir = tempfile.mkdtemp(prefix="cvbench.")
    try:
        print(f"{version([os.path.join(build_dir, 'certvisord'), '--version'])}; "
              f"supervisord {version(['supervisord', '--version'])}; "
              f"{version(['strace', '-V'])}", flush=True)
        print("certvisord ...", flush=True)
        cv = run_certvisord(build_dir, tmpdir, n_one, n_all)
        print("supervisord, startsecs=1 ...", flush=True)
        sup = run_supervisord(build_dir, tmpdir, n_one, n_all, startsecs=1, full=True)
        print("supervisord, startsecs=0 ...", flush=True)
        sup0 = run_supervisord(build_dir, tmpdir, n_one, n_all, startsecs=0, full=False)
        print("a real node ...", flush=True)
        node = run_node(build_dir, tmpdir)
        print()
        print_table(cv, sup, sup0, n_one, n_all, node)
        return 0
    except (BenchError, subprocess.TimeoutExpired, OSError) as e:
        print(f"bench_supervise: {e}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
