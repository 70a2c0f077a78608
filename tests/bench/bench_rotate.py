#!/usr/bin/python3
"""Benchmark a certificate swap to the wire: certvisor against haproxy's runtime API and Redis's
CONFIG SET, in one run.

For each way of swapping, the time from the command until a client polling TLS handshakes sees
the new certificate, and the handshakes that failed meanwhile:

- certvisor, on one node with the shipped proxy, database db1 and its Redis shard:
  `certvisorctl cluster certificate set proxy ...`, `certvisorctl cluster certificate rotate
  proxy` (a key and certificate made by the agent) and `PUT /v1/cluster/update_cert` through
  the REST API (curl, as the seeds' operators type it), each polled on the database's endpoint;
- haproxy (a TLS frontend with `crt`): `set ssl cert` then `commit ssl cert` on its stats socket;
- redis-server with TLS: `CONFIG SET tls-cert-file ... tls-key-file ...` on its plain port.

The same certificates (RSA 2048, from one CA) for every target. Goals from issue 20:
certvisor's median at most 20 ms and at most 1.5x the faster anchor; no failed handshake.
Reported, not asserted. See tests/bench/README.md.
"""

import argparse
import hashlib
import json
import pathlib
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import harness

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
GOAL_MEDIAN_MS = 20.0
GOAL_VS_ANCHOR = 1.5
ADMIN = ("admin", "admin password")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def pem_fingerprint(path):
    der = ssl.PEM_cert_to_DER_cert(pathlib.Path(path).read_text())
    return hashlib.sha256(der).hexdigest()


class Poller(threading.Thread):
    """Handshakes with 127.0.0.1:port back to back, keeping the latest certificate seen (with
    when its handshake ended) and counting the handshakes that failed."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        self.cond = threading.Condition()
        self.seen = None  # (fingerprint, monotonic time the handshake ended)
        self.failed = 0
        self.failures = []
        self.stop = threading.Event()

    def handshake(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            with self.context.wrap_socket(raw) as tls:
                return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()

    def run(self):
        while not self.stop.is_set():
            try:
                fingerprint = self.handshake()
            except OSError as e:
                with self.cond:
                    self.failed += 1
                    self.failures.append(str(e))
                continue
            with self.cond:
                self.seen = (fingerprint, time.monotonic())
                self.cond.notify_all()

    def wait_for(self, started, fingerprint=None, before=None, timeout=30):
        """The time from started until a handshake that began after started saw fingerprint (or,
        with before, any certificate but that one), in ms."""
        def arrived():
            return (self.seen and self.seen[1] > started and
                    (self.seen[0] == fingerprint if fingerprint else self.seen[0] != before))

        with self.cond:
            if not self.cond.wait_for(arrived, timeout):
                raise RuntimeError(f"the new certificate was not served on {self.port} in "
                                   f"{timeout} s")
            return (self.seen[1] - started) * 1000

    def current(self):
        with self.cond:
            self.cond.wait_for(lambda: self.seen is not None, 10)
            return self.seen[0]


def make_pairs(directory, count, tag):
    """count RSA pairs from one CA, made as the operators' guide says (test_certs.seed_003_pair)."""
    from test_certs import seed_003_pair
    return [seed_003_pair(directory, cn=f"{tag}{i}.example") for i in range(count)]


def swap_times(poller, pairs, swap):
    """For each pair: swap(cert, key), then the time until it is served."""
    times = []
    for cert, key in pairs:
        expected = pem_fingerprint(cert)
        started = time.monotonic()
        swap(cert, key)
        times.append(poller.wait_for(started, fingerprint=expected))
    return times


# --- certvisor ---------------------------------------------------------------------------------

def start_certvisor(factory):
    """One node: the shipped redis-db1 and database db1 (ports moved to free ones), the proxy in
    front of it, and the REST API with an admin user."""
    from test_api import add_user, api_service
    from test_certs import free_port
    from test_proxy import PROXY_SERVICE

    db_port, api_port = free_port(), free_port()
    agent = factory({"proxy": PROXY_SERVICE, "api": api_service(api_port, free_port())})
    (agent.conf_d / "10-redis-db1.conf").write_text(
        harness.shipped_shard(db_port, free_port(), free_port()))
    agent.start()
    add_user(agent, *ADMIN, "admin")
    return agent, db_port, api_port


def certvisor_set(agent):
    def swap(cert, key):
        out = agent.ctl("cluster", "certificate", "set", "proxy", "certificate_file", str(cert),
                        "key_file", str(key))
        if out.returncode != 0:
            raise RuntimeError(f"certificate set failed: {out.stderr}")
    return swap


def certvisor_update_cert(api_port, ca):
    def swap(cert, key):
        body = json.dumps({"name": "proxy", "key": pathlib.Path(key).read_text(),
                           "certificate": pathlib.Path(cert).read_text()})
        out = subprocess.run(["curl", "-sS", "--cacert", str(ca), "-u", f"{ADMIN[0]}:{ADMIN[1]}",
                              "-X", "PUT", "-H", "Content-Type: application/json", "-d", body,
                              "-o", "/dev/null", "-w", "%{http_code}",
                              f"https://127.0.0.1:{api_port}/v1/cluster/update_cert"],
                             capture_output=True, text=True, timeout=60)
        if out.stdout.strip() != "200":
            raise RuntimeError(f"update_cert answered {out.stdout} {out.stderr}")
    return swap


def certvisor_rotate(agent, poller, count):
    times = []
    for _ in range(count):
        before = poller.current()
        started = time.monotonic()
        out = agent.ctl("cluster", "certificate", "rotate", "proxy")
        if out.returncode != 0:
            raise RuntimeError(f"rotate failed: {out.stderr}")
        times.append(poller.wait_for(started, before=before))
    return times


# --- the anchors -------------------------------------------------------------------------------

def combined(cert, key, path):
    path.write_text(pathlib.Path(cert).read_text() + pathlib.Path(key).read_text())
    return path


class Process:
    def __init__(self, argv, log):
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_port(port, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def start_haproxy(d, port, backend_port, first):
    """haproxy terminating TLS with the certificate file crt (the one the runtime API changes)."""
    crt = combined(*first, d / "haproxy.pem")
    (d / "haproxy.cfg").write_text(textwrap.dedent(f"""\
        global
            stats socket {d}/haproxy.sock level admin
            ssl-default-bind-options ssl-min-ver TLSv1.2
        defaults
            mode tcp
            timeout connect 5s
            timeout client 1m
            timeout server 1m
        frontend tls
            bind 127.0.0.1:{port} ssl crt {crt}
            default_backend redis
        backend redis
            server r1 127.0.0.1:{backend_port}
        """))
    process = Process(["haproxy", "-db", "-f", str(d / "haproxy.cfg")], d / "haproxy.log")
    wait_port(port, process.proc)
    return process, crt


def haproxy_command(sock_path, text):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(sock_path))
        sock.sendall(text.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.decode(errors="replace")


def haproxy_swap(d, crt):
    def swap(cert, key):
        payload = pathlib.Path(cert).read_text() + pathlib.Path(key).read_text()
        answer = haproxy_command(d / "haproxy.sock", f"set ssl cert {crt} <<\n{payload}\n")
        if "Transaction created" not in answer and "Transaction updated" not in answer:
            raise RuntimeError(f"haproxy refused set ssl cert: {answer}")
        answer = haproxy_command(d / "haproxy.sock", f"commit ssl cert {crt}\n")
        if "Success" not in answer:
            raise RuntimeError(f"haproxy refused commit ssl cert: {answer}")
    return swap


def haproxy_swap_socat(d, crt):
    """The same two commands, each through socat, as haproxy's management guide types them."""
    def run(text):
        out = subprocess.run(["socat", "stdio", f"unix-connect:{d}/haproxy.sock"], input=text,
                             capture_output=True, text=True, timeout=10)
        return out.stdout

    def swap(cert, key):
        payload = pathlib.Path(cert).read_text() + pathlib.Path(key).read_text()
        answer = run(f"set ssl cert {crt} <<\n{payload}\n")
        if "Transaction created" not in answer and "Transaction updated" not in answer:
            raise RuntimeError(f"haproxy refused set ssl cert: {answer}")
        answer = run(f"commit ssl cert {crt}\n")
        if "Success" not in answer:
            raise RuntimeError(f"haproxy refused commit ssl cert: {answer}")
    return swap


def start_redis_tls(d, plain, tls, first):
    process = Process(["redis-server", "--port", str(plain), "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", "no", "--dir", str(d), "--tls-port", str(tls),
                       "--tls-cert-file", str(first[0]), "--tls-key-file", str(first[1]),
                       "--tls-auth-clients", "no"], d / "redis.log")
    wait_port(tls, process.proc)
    return process


def redis_swap_cli(plain):
    """The same CONFIG SET through redis-cli, as an operator types it."""
    def swap(cert, key):
        out = subprocess.run(["redis-cli", "-p", str(plain), "CONFIG", "SET", "tls-cert-file",
                              str(cert), "tls-key-file", str(key)], capture_output=True,
                             text=True, timeout=10)
        if out.stdout.strip() != "OK":
            raise RuntimeError(f"CONFIG SET answered {out.stdout} {out.stderr}")
    return swap


def redis_swap(plain):
    """Both files in one CONFIG SET on the plain port (Redis 7): the server never holds a
    mismatched pair."""
    import redis
    client = redis.Redis(host="127.0.0.1", port=plain, socket_timeout=10)

    def swap(cert, key):
        client.execute_command("CONFIG", "SET", "tls-cert-file", str(cert), "tls-key-file",
                               str(key))
    return swap


# --- the run -----------------------------------------------------------------------------------

def measure(name, port, run):
    poller = Poller(port)
    poller.start()
    poller.current()
    try:
        times = run(poller)
    finally:
        poller.stop.set()
        poller.join(10)
    return name, times, poller.failed, poller.failures[:3]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=str(REPOSITORY / "build-bench"))
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    conftest = harness.integration_harness(args.build_dir)
    from test_certs import free_port, state

    base = pathlib.Path(tempfile.mkdtemp(prefix="certvisor-bench-rotate-", dir="/tmp"))
    base.chmod(0o755)
    agents, processes, rows, extra = [], [], [], []
    factory = harness.agent_factory(conftest, base, agents)

    n = args.samples
    try:
        print(f"making {6 * n + 1} certificates ...", file=sys.stderr)
        pairs = make_pairs(base / "pki", 6 * n + 1, "swap")
        print("starting certvisor, haproxy and redis-server ...", file=sys.stderr)
        agent, db_port, api_port = start_certvisor(factory)
        ca = state(agent, "ca.pem")
        redis_plain, redis_tls, haproxy_port = free_port(), free_port(), free_port()
        processes.append(start_redis_tls(base, redis_plain, redis_tls, pairs[-1]))
        # haproxy forwards to the plain port of the same redis-server.
        haproxy_process, crt = start_haproxy(base, haproxy_port, redis_plain, pairs[-1])
        processes.append(haproxy_process)

        rows.append(measure("certvisor: cluster certificate set", db_port,
                            lambda p: swap_times(p, pairs[0:n], certvisor_set(agent))))
        rows.append(measure("certvisor: cluster certificate rotate", db_port,
                            lambda p: certvisor_rotate(agent, p, n)))
        rows.append(measure("certvisor: PUT /v1/cluster/update_cert (curl)", db_port,
                            lambda p: swap_times(p, pairs[n:2 * n],
                                                 certvisor_update_cert(api_port, ca))))
        rows.append(measure("haproxy: set ssl cert + commit ssl cert (socat)", haproxy_port,
                            lambda p: swap_times(p, pairs[2 * n:3 * n],
                                                 haproxy_swap_socat(base, crt))))
        rows.append(measure("redis-server: CONFIG SET tls-cert-file tls-key-file (redis-cli)",
                            redis_tls, lambda p: swap_times(p, pairs[3 * n:4 * n],
                                                            redis_swap_cli(redis_plain))))
        # The anchors once more from a program already connected: no client to start, which
        # no certvisor command above can skip (the goal's ratio is against the rows above).
        extra.append(measure("haproxy: the same, from a connected program", haproxy_port,
                             lambda p: swap_times(p, pairs[4 * n:5 * n], haproxy_swap(base, crt))))
        extra.append(measure("redis-server: the same, from a connected program", redis_tls,
                             lambda p: swap_times(p, pairs[5 * n:6 * n], redis_swap(redis_plain))))
    finally:
        for process in processes:
            process.stop()
        for agent in agents:
            agent.cleanup()
        subprocess.run(["rm", "-rf", str(base)])

    anchors = [statistics.median(times) for name, times, _, _ in rows
               if not name.startswith("certvisor")]  # as operators type them
    faster = min(anchors)
    print(f"\nA certificate swap until a polling client's handshake sees it, {n} samples each "
          f"(ms)\n")
    print("| swap | median | p95 | failed handshakes | median / faster anchor | goal |")
    print("|---|---|---|---|---|---|")
    for name, times, failed, failures in rows + extra:
        median = statistics.median(times)
        ratio = median / faster if faster > 0 else float("inf")
        if name.startswith("certvisor"):
            met = median <= GOAL_MEDIAN_MS and ratio <= GOAL_VS_ANCHOR and failed == 0
            goal = (f"<= {GOAL_MEDIAN_MS:g} ms, <= {GOAL_VS_ANCHOR:g}x, 0 failed: "
                    f"{'met' if met else 'MISSED'}")
        else:
            goal = "0 failed: " + ("met" if failed == 0 else "MISSED")
        print(f"| {name} | {median:.1f} | {percentile(times, .95):.1f} | {failed} "
              f"| {ratio:.2f}x | {goal} |")
        for failure in failures:
            print(f"  a failed handshake ({name}): {failure}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
