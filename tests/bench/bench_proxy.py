#!/usr/bin/env python3
"""Benchmark certvisor-proxy against haproxy, stunnel and Redis's own TLS port.

One redis-server (plain port for the proxies, TLS port for itself), one ECDSA
P-256 certificate, the same redis-benchmark settings for every target:
unpipelined (-c 50), pipelined (-c 50 -P 16), SET and GET, and the rate of new
connections (-k 0: one TLS handshake per request). Targets are measured in
turn within each round, each round starting one target later, and the table
gives the median of the rounds, so that a burst of other load on the machine
hits every target alike. Goals are reported, not asserted. See tests/bench/README.md.
"""

import argparse
import contextlib
import csv
import io
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

# The repository this script is in: builds are looked for there by default.
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Issue 20's goals (the first ones, 1.1x haproxy and 0.9x Redis TLS, were met before it).
GOAL_VS_HAPROXY = 1.3  # unpipelined and -P 16
GOAL_VS_REDIS_TLS = 1.0  # unpipelined
GOAL_NEW_CONNS_VS_HAPROXY = 1.0

CLIENTS = 50
PIPELINE = 16
START_TIMEOUT = 15.0
STOP_GRACE = 10.0

# (name, redis-benchmark arguments, requests in a full run, in a --quick run)
WORKLOADS = [
    ("SET", ["-t", "set"], 150_000, 40_000),
    ("GET", ["-t", "get"], 150_000, 40_000),
    ("SET -P16", ["-t", "set", "-P", str(PIPELINE)], 2_000_000, 500_000),
    ("GET -P16", ["-t", "get", "-P", str(PIPELINE)], 2_000_000, 500_000),
    ("new conns", ["-t", "get", "-k", "0"], 15_000, 4_000),
]


class BenchError(Exception):
    pass


def on_stop_signal(signo, frame):
    raise BenchError("the run exceeded its time limit" if signo == signal.SIGALRM
                     else f"interrupted by {signal.Signals(signo).name}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{proc.args[0]} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise BenchError(f"nothing listens on port {port} after {timeout:.0f} s")


def cpu_seconds(pid):
    """User + system time of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(argv, **kwargs):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


# ---------------------------------------------------------------- set-up


def make_certificate(d):
    """A CA and an ECDSA P-256 server certificate for 127.0.0.1, made with openssl."""
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "2",
         "-subj", "/CN=bench CA"])
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr", "-subj", "/CN=127.0.0.1"])
    with open(f"{d}/ext.cnf", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run(["openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem",
         "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/server.pem", "-days", "2",
         "-extfile", f"{d}/ext.cnf"])
    with open(f"{d}/combined.pem", "w") as out:  # haproxy wants both in one file
        for name in ("server.pem", "server.key"):
            with open(f"{d}/{name}") as f:
                out.write(f.read())


class Target:
    """A TLS endpoint in front of (or inside) the one redis-server."""

    def __init__(self, name, argv, port, d, env=None):
        self.name, self.port, self.argv = name, port, argv
        self.log = open(f"{d}/{name.split()[0]}.log", "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=env)
        self.results = {}  # workload -> [(rps, p50, p99, cpu_us_per_request)]

    def wait(self):
        wait_port(self.port, self.proc)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def start_redis(d, plain_port, tls_port):
    argv = ["redis-server", "--port", str(plain_port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", d, "--tls-port", str(tls_port),
            "--tls-cert-file", f"{d}/server.pem", "--tls-key-file", f"{d}/server.key",
            "--tls-ca-cert-file", f"{d}/ca.pem", "--tls-auth-clients", "no",
            "--maxclients", "4000"]
    return Target("redis TLS", argv, tls_port, d)


def start_certvisor(d, build_dir, port, shard_port, threads, multiplex=True, baseline=False):
    """certvisor-proxy: clients multiplexed onto shared shard connections (the default), or
    with multiplex = no a shard connection per client ("certvisor no-mux"); with baseline, the
    binary of --baseline-dir under the names "baseline" and "baseline no-mux"."""
    if baseline:
        name = "baseline" if multiplex else "baseline no-mux"
    else:
        name = "certvisor-proxy" if multiplex else "certvisor no-mux"
    tag = ("-baseline" if baseline else "") + ("" if multiplex else "-nomux")
    with open(f"{d}/proxy.conf", "w") as f:
        f.write(f"cert_file = {d}/server.pem\nkey_file = {d}/server.key\nmin_version = 1.2\n")
    with open(f"{d}/databases{tag}.conf", "w") as f:
        f.write(f"[bench]\nlisten = 127.0.0.1\nport = {port}\nshard = 127.0.0.1:{shard_port}\n"
                "tls_mode = enabled\n" + ("" if multiplex else "multiplex = no\n"))
    argv = [f"{build_dir}/certvisor-proxy", "--config", f"{d}/proxy.conf",
            "--databases", f"{d}/databases{tag}.conf"]
    if threads:
        argv += ["--threads", str(threads)]
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    return Target(name, argv, port, d, env=env)


def start_haproxy(d, port, shard_port, threads):
    with open(f"{d}/haproxy.cfg", "w") as f:
        f.write(textwrap.dedent(f"""\
            global
                maxconn 4000
                nbthread {threads}
                ssl-default-bind-options ssl-min-ver TLSv1.2
            defaults
                mode tcp
                timeout connect 5s
                timeout client 1h
                timeout server 1h
            frontend redis
                bind 127.0.0.1:{port} ssl crt {d}/combined.pem
                default_backend shard
            backend shard
                server r1 127.0.0.1:{shard_port}
            """))
    return Target("haproxy", ["haproxy", "-db", "-f", f"{d}/haproxy.cfg"], port, d)


def start_stunnel(d, port, shard_port):
    with open(f"{d}/stunnel.conf", "w") as f:
        f.write(textwrap.dedent(f"""\
            foreground = yes
            pid =
            debug = 3
            socket = l:TCP_NODELAY=1
            socket = r:TCP_NODELAY=1
            [redis]
            accept = 127.0.0.1:{port}
            connect = 127.0.0.1:{shard_port}
            cert = {d}/server.pem
            key = {d}/server.key
            sslVersionMin = TLSv1.2
            """))
    return Target("stunnel", ["stunnel", f"{d}/stunnel.conf"], port, d)


def negotiated(port, cafile):
    """Protocol and cipher a default OpenSSL client gets, to show every target is alike."""
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief",
                          "-CAfile", cafile], input="", capture_output=True, text=True,
                         timeout=20).stderr
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    return f"{fields.get('Protocol version', '?')} {fields.get('Ciphersuite', '?')}"


# ---------------------------------------------------------------- measuring


def benchmark(target, redis, d, workload, requests):
    name, extra, _, _ = workload
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(target.port), "--tls",
            "--cacert", f"{d}/ca.pem", "-c", str(CLIENTS), "-n", str(requests), "--csv",
            "-r", "100000", *extra]
    pids = {target.proc.pid, redis.proc.pid}
    before = sum(cpu_seconds(p) for p in pids)
    # redis-benchmark spins forever when it cannot connect: bound it.
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    after = sum(cpu_seconds(p) for p in pids)
    rows = [r for r in csv.DictReader(io.StringIO(out.stdout)) if r.get("rps")]
    if out.returncode != 0 or len(rows) != 1:
        raise BenchError(f"redis-benchmark against {target.name} ({name}) failed: "
                         f"{out.stderr.strip()[-500:] or out.stdout.strip()[-500:]}")
    row = rows[0]
    cpu_us = (after - before) * 1e6 / requests
    return float(row["rps"]), float(row["p50_latency_ms"]), float(row["p99_latency_ms"]), cpu_us


def measure(targets, redis, d, rounds, quick):
    for r in range(rounds):
        for workload in WORKLOADS:
            requests = workload[3] if quick else workload[2]
            # Each round starts one target later, so that none always runs first (right
            # after the previous workload's burst) or last.
            for target in targets[r % len(targets):] + targets[:r % len(targets)]:
                print(f"round {r + 1}/{rounds}: {workload[0]:<9} {target.name} ...", end="",
                      flush=True)
                result = benchmark(target, redis, d, workload, requests)
                target.results.setdefault(workload[0], []).append(result)
                print(f" {result[0]:,.0f}/s", flush=True)


# ---------------------------------------------------------------- reporting


def median_result(results):
    return tuple(statistics.median(r[i] for r in results) for i in range(4))


def median_ratio(target, anchor, workload):
    """The median over rounds of target's req/s over anchor's in the same round: the two ran
    back to back, so a change in the machine's other load between rounds cancels out."""
    pairs = zip(target.results[workload], anchor.results[workload])
    return statistics.median(t[0] / a[0] for t, a in pairs)


def print_table(targets):
    by_name = {t.name: t for t in targets}
    haproxy, redis_tls = by_name.get("haproxy"), by_name.get("redis TLS")
    header = (f"{'workload':<10} {'target':<16} {'req/s':>10} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'cpu us/req':>10} {'vs haproxy':>10} {'vs Redis TLS':>12}")
    print(header)
    print("-" * len(header))
    for workload in WORKLOADS:
        name = workload[0]
        for t in targets:
            rps, p50, p99, cpu = median_result(t.results[name])
            ratios = [f"{median_ratio(t, anchor, name):.2f}x" if anchor else "-"
                      for anchor in (haproxy, redis_tls)]
            print(f"{name:<10} {t.name:<16} {rps:>10,.0f} {p50:>7.3f} {p99:>7.3f} {cpu:>10.1f} "
                  f"{ratios[0]:>10} {ratios[1]:>12}")
        print()
    print("goals (median of the per-round ratios):")
    for cv in (by_name.get("certvisor-proxy"), by_name.get("certvisor no-mux")):
        if not cv:
            continue
        for name, anchor, goal in (("SET", haproxy, GOAL_VS_HAPROXY),
                                   ("GET", haproxy, GOAL_VS_HAPROXY),
                                   ("SET -P16", haproxy, GOAL_VS_HAPROXY),
                                   ("GET -P16", haproxy, GOAL_VS_HAPROXY),
                                   ("SET", redis_tls, GOAL_VS_REDIS_TLS),
                                   ("GET", redis_tls, GOAL_VS_REDIS_TLS),
                                   ("new conns", haproxy, GOAL_NEW_CONNS_VS_HAPROXY)):
            if not anchor or name not in cv.results:
                continue
            ratio = median_ratio(cv, anchor, name)
            print(f"  {cv.name:<16} {name:<9} vs {anchor.name:<10} {ratio:.2f}x  goal >= {goal}x  "
                  f"{'met' if ratio >= goal else 'NOT met'}")
    pairs = [(by_name.get(a), by_name.get(b)) for a, b in (("certvisor-proxy", "baseline"),
                                                           ("certvisor no-mux", "baseline no-mux"))]
    pairs = [(cv, base) for cv, base in pairs if cv and base]
    if pairs:
        print("against the baseline build (--baseline-dir; median of the per-round ratios):")
        for cv, base in pairs:
            ratios = [f"{w[0]} {median_ratio(cv, base, w[0]):.2f}x" for w in WORKLOADS]
            print(f"  {cv.name:<16} / {base.name:<16} " + ", ".join(ratios))
    print("req/s, p50, p99, cpu: medians over the rounds; ratios: median over the rounds of the "
          "ratio within the round")
    print("cpu us/req: CPU time of the target's process(es) and of redis-server, per request "
          "(for Redis TLS, redis-server alone)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(REPOSITORY, "build-bench"),
                        help="where certvisor-proxy is built (default: %(default)s)")
    parser.add_argument("--baseline-dir",
                        help="another build of certvisor-proxy (the one before a change) to run "
                        "in the same rounds, as targets 'baseline' and 'baseline no-mux'")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds over every target; the table shows medians (default 3)")
    parser.add_argument("--quick", action="store_true", help="one round, fewer requests")
    parser.add_argument("--threads", type=int, default=0,
                        help="worker threads of certvisor-proxy and haproxy (default: CPUs)")
    parser.add_argument("--proxy-threads", type=int, default=0,
                        help="worker threads of certvisor-proxy alone (default: --threads)")
    parser.add_argument("--workloads",
                        help="comma-separated workloads to run (default: all): "
                        + ", ".join(w[0] for w in WORKLOADS))
    parser.add_argument("--only", help="comma-separated targets to run (certvisor-proxy, "
                        "certvisor no-mux, baseline, baseline no-mux, haproxy, stunnel, redis TLS); anchors missing from it "
                        "show '-'")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    threads = args.threads or len(os.sched_getaffinity(0))
    proxy_threads = args.proxy_threads or threads
    if args.workloads:
        chosen = args.workloads.split(",")
        WORKLOADS[:] = [w for w in WORKLOADS if w[0] in chosen]

    proxy = os.path.join(os.path.abspath(args.build_dir), "certvisor-proxy")
    baseline = (os.path.join(os.path.abspath(args.baseline_dir), "certvisor-proxy")
                if args.baseline_dir else None)
    for binary in filter(None, (proxy, baseline)):
        if not os.access(binary, os.X_OK):
            print(f"bench_proxy: {binary} not found; build it first (see tests/bench/README.md)",
                  file=sys.stderr)
            return 2
    for tool, package in (("redis-server", "redis-server"), ("redis-benchmark", "redis-tools"),
                          ("haproxy", "haproxy"), ("stunnel", "stunnel4"),
                          ("openssl", "openssl")):
        if not shutil.which(tool):
            print(f"bench_proxy: {tool} not found; install the Debian package '{package}'",
                  file=sys.stderr)
            return 2

    for signo in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(signo, on_stop_signal)
    signal.alarm(600 if args.quick else 600 * rounds)
    d = tempfile.mkdtemp(prefix="cvbench-proxy.")
    started = []
    try:
        make_certificate(d)
        shard_port = free_port()
        redis = start_redis(d, shard_port, free_port())
        started.append(redis)
        redis.wait()
        wanted = {
            "certvisor-proxy": lambda: start_certvisor(d, os.path.dirname(proxy), free_port(),
                                                       shard_port, proxy_threads),
            "certvisor no-mux": lambda: start_certvisor(d, os.path.dirname(proxy), free_port(),
                                                        shard_port, proxy_threads,
                                                        multiplex=False),
            "haproxy": lambda: start_haproxy(d, free_port(), shard_port, threads),
            "stunnel": lambda: start_stunnel(d, free_port(), shard_port),
        }
        if baseline:
            for multiplex in (True, False):
                name = "baseline" if multiplex else "baseline no-mux"
                wanted[name] = (lambda m: lambda: start_certvisor(
                    d, os.path.dirname(baseline), free_port(), shard_port, proxy_threads,
                    multiplex=m, baseline=True))(multiplex)
        order = ["certvisor-proxy", "baseline", "certvisor no-mux", "baseline no-mux", "haproxy",
                 "stunnel"]
        wanted = {name: wanted[name] for name in order if name in wanted}
        only = set(args.only.split(",")) if args.only else None
        targets = []
        for name, start in wanted.items():
            if only is None or name in only:
                targets.append(start())
                started.append(targets[-1])
                targets[-1].wait()
        if only is None or "redis TLS" in only:
            targets.append(redis)
        versions = run(["redis-server", "--version"]).stdout.split()[2]
        print(f"{os.cpu_count()} CPUs; redis-server {versions}; "
              f"{run(['haproxy', '-v']).stdout.splitlines()[0]}; "
              f"{run(['openssl', 'version']).stdout.strip()}; "
              f"certvisor-proxy with {proxy_threads} threads, haproxy with {threads}")
        for t in targets:
            print(f"  {t.name:<16} port {t.port}: {negotiated(t.port, f'{d}/ca.pem')}")
        measure(targets, redis, d, rounds, args.quick)
        signal.alarm(0)
        print()
        print_table(targets)
        return 0
    except (BenchError, subprocess.SubprocessError, OSError) as e:
        print(f"\nbench_proxy: {e}", file=sys.stderr)
        for t in started:
            if t.proc.poll() is not None:
                print(f"{t.name} exited with {t.proc.returncode}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        for t in reversed(started):
            t.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
