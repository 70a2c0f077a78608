#!/usr/bin/python3
"""Benchmark a cluster's convergence: the time from a certificate set on one node until all
three nodes serve it, beside etcd's own write-to-watch latency measured in the same run, and
how both grow when 25, 50 and 100 light members watch the store and report a status as a node
does (without services). Also the agent's memory with and without the etcd backend.

Three real certvisord, each with its etcd member and a Redis shard serving TLS with the
cluster's 'proxy' certificate, are set up the way tests/integration/test_cluster_sync.py does
(its harness is reused). The shards take a new certificate as the shipped conf.d has them do:
in place, by CONFIG SET (certvisor-redis-reload), not by a restart. Prints one table; the goals are reported, not asserted.
See tests/bench/README.md.
"""

import argparse
import base64
import hashlib
import http.client
import json
import pathlib
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import harness

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
GOAL_P95_MS = 1000.0
GOAL_MEDIAN_OVER_ETCD_MS = 100.0  # beyond etcd's latency plus one local apply


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def served_fingerprint(port):
    """SHA-256 of the certificate served on 127.0.0.1:port, as openssl prints it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


class Etcd:
    """etcd's JSON gateway with the node's ccs_internode_encryption certificate."""

    def __init__(self, endpoint, ca, cert, key):
        self.host, port = endpoint.rsplit(":", 1)
        self.port = int(port)
        self.context = ssl.create_default_context(cafile=str(ca))
        self.context.check_hostname = False
        self.context.load_cert_chain(str(cert), str(key))

    def connection(self, timeout=10):
        return http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                           timeout=timeout)

    def call(self, path, body):
        connection = self.connection()
        try:
            connection.request("POST", path, json.dumps(body))
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def put(self, key, value):
        return self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})

    def watch(self, prefix, on_event, stop):
        """Streams events of prefix to on_event(revision, now) until stop is set."""
        connection = self.connection(timeout=None)
        connection.request("POST", "/v3/watch", json.dumps(
            {"create_request": {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}}))
        response = connection.getresponse()
        while not stop.is_set():
            line = response.readline()
            if not line:
                break
            now = time.monotonic()
            result = json.loads(line).get("result", {})
            for event in result.get("events", []):
                on_event(int(event["kv"]["mod_revision"]), now)
        connection.close()


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def prefix_end(prefix):
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def etcd_latency(etcd, samples):
    """Write-to-watch latency of etcd itself: a put, until its event arrives on a watch."""
    arrived = {}
    cond = threading.Condition()
    stop = threading.Event()

    def on_event(revision, now):
        with cond:
            arrived[revision] = now
            cond.notify_all()

    watcher = threading.Thread(target=etcd.watch, args=("/bench/latency/", on_event, stop),
                               daemon=True)
    watcher.start()
    time.sleep(0.5)
    result = []
    for i in range(samples):
        started = time.monotonic()
        revision = int(etcd.put(f"/bench/latency/{i}", "x")["header"]["revision"])
        with cond:
            cond.wait_for(lambda: revision in arrived, timeout=10)
        result.append((arrived[revision] - started) * 1000)
    stop.set()
    return result


class LightMember(threading.Thread):
    """Watches spec/ as a node does and, at each event, reads spec/ and writes its status."""

    def __init__(self, etcd, prefix, name, stop):
        super().__init__(daemon=True)
        self.etcd, self.prefix, self.name, self.stop = etcd, prefix, name, stop

    def on_event(self, revision, now):
        spec = self.prefix + "spec/"
        self.etcd.call("/v3/kv/range", {"key": b64(spec), "range_end": b64(prefix_end(spec))})
        self.etcd.put(f"{self.prefix}status/{self.name}",
                      json.dumps({"node": self.name, "revision": revision,
                                  "result": "applied"}))

    def run(self):
        try:
            self.etcd.watch(self.prefix + "spec/", self.on_event, self.stop)
        except OSError:
            pass


def vm_rss_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def converge(nodes, pairs):
    """For each pair: set on the next node, time until the command returns and until all
    three serve it."""
    answered, served = [], []
    for i, (cert, key) in enumerate(pairs):
        node = nodes[i % len(nodes)]
        expected = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256",
                                   "-in", str(cert)], capture_output=True, text=True,
                                  check=True).stdout.strip().split("=", 1)[1]
        started = time.monotonic()
        out = node.ctl("cluster", "certificate", "set", "proxy", "certificate_file", str(cert),
                       "key_file", str(key))
        answered.append((time.monotonic() - started) * 1000)
        if out.returncode != 0:
            raise RuntimeError(f"set on {node.node} failed: {out.stderr}")
        while not all(served_fingerprint(n.tls_port) == expected for n in nodes):
            if time.monotonic() - started > 30:
                raise RuntimeError("the nodes did not converge in 30 s")
            time.sleep(0.002)
        served.append((time.monotonic() - started) * 1000)
    return answered, served


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=str(REPOSITORY / "build-bench"))
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--light", default="25,50,100",
                        help="numbers of light members to add, comma-separated ('' for none)")
    args = parser.parse_args()
    conftest = harness.integration_harness(args.build_dir)
    from test_certs import free_port, redis_service, seed_003_pair, state
    from test_cluster_sync import make_cluster

    base = pathlib.Path(tempfile.mkdtemp(prefix="certvisor-bench-cluster-", dir="/tmp"))
    base.chmod(0o755)
    agents = []
    factory = harness.agent_factory(conftest, base, agents)

    stop = threading.Event()
    try:
        print("setting up three nodes ...", file=sys.stderr)
        nodes = make_cluster(factory, reload_in_place=True)
        (base / "pki").mkdir()
        first = nodes[0]
        certs = state(first, "certs", "ccs_internode_encryption", "current")
        etcd = Etcd(first.etcd_endpoint, state(first, "ca.pem"), certs / "cert.pem",
                    certs / "key.pem")
        counts = [0] + [int(n) for n in args.light.split(",") if n]
        rows = []
        light = []
        made = 0
        for count in counts:
            while len(light) < count:
                member = LightMember(etcd, "/certvisor/test/", f"light{len(light)}", stop)
                member.start()
                light.append(member)
            time.sleep(1.0)
            pairs = []
            for _ in range(args.samples):
                pairs.append(seed_003_pair(base / "pki" / str(made), cn=f"bench{made}.example"))
                made += 1
            latency = etcd_latency(etcd, args.samples)
            answered, served = converge(nodes, pairs)
            rows.append((count, latency, answered, served))
        # The same set on a single node (local store, the same Redis shard): one local apply.
        tls = free_port()
        local = factory({"redis-db1": redis_service(tls, free_port(), reload_in_place=True).replace(
            "certificate = data_internode_encryption", "certificate = proxy")})
        local.start()
        local.tls_port, local.node = tls, "local"
        pairs = []
        for _ in range(args.samples):
            pairs.append(seed_003_pair(base / "pki" / str(made), cn=f"bench{made}.example"))
            made += 1
        local_apply, _ = converge([local], pairs)
        rss_etcd = vm_rss_kib(first.proc.pid)
        rss_local = vm_rss_kib(local.proc.pid)
    finally:
        stop.set()
        for agent in agents:
            agent.cleanup()
        subprocess.run(["rm", "-rf", str(base)])

    print(f"\nConvergence of a certificate set on one node of 3, {args.samples} samples each "
          "(ms)\n")
    one = statistics.median(local_apply)
    print(f"One local apply (the same set on a single node, local store): median {one:.1f} ms, "
          f"p95 {percentile(local_apply, .95):.1f} ms\n")
    print("| light members | etcd put->watch median / p95 | command returns median / p95 "
          "| all 3 serve it median / p95 | median over etcd + one local apply (goal 100) "
          "| p95 (goal 1000) |")
    print("|---|---|---|---|---|---|")
    for count, latency, answered, served in rows:
        over = statistics.median(served) - statistics.median(latency) - one
        p95 = percentile(served, .95)
        print(f"| {count} | {statistics.median(latency):.1f} / {percentile(latency, .95):.1f} "
              f"| {statistics.median(answered):.1f} / {percentile(answered, .95):.1f} "
              f"| {statistics.median(served):.1f} / {p95:.1f} "
              f"| {over:.1f} ({'met' if over <= GOAL_MEDIAN_OVER_ETCD_MS else 'MISSED'}) "
              f"| {'met' if p95 <= GOAL_P95_MS else 'MISSED'} |")
    print(f"\nAgent memory (VmRSS): etcd backend {rss_etcd / 1024:.2f} MiB, local store "
          f"{rss_local / 1024:.2f} MiB, ratio {rss_etcd / max(rss_local, 1):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
