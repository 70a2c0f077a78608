"""certvisor-proxy: the databases' TLS endpoint, under certvisord and on its own.

Under the agent: a real redis-server shard (plain), the proxy in front of it with the
certificate and data-plane policy certvisord renders, and real clients (redis-py, redis-cli,
redis-benchmark, openssl s_client, sslscan) on 127.0.0.1. On its own (the binary with files
the test writes): start-up errors, the notify protocol of reloads and the statistics line.
"""
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
import redis

from conftest import BUILD, NotifyListener, wait_for
from test_apply import external_pair, file_fingerprint, served_fingerprint
from test_certs import free_port, state

PROXY = BUILD / "certvisor-proxy"

pytestmark = [
    pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed"),
    pytest.mark.skipif(not PROXY.exists(), reason="certvisor-proxy not built"),
]


# ------------------------------------------------------------------ under the agent


def shard_service(port):
    return f"""
        command = "/usr/bin/redis-server"
        arguments = {{"--port", "{port}", "--bind", "127.0.0.1", "--supervised", "systemd",
                     "--daemonize", "no", "--dir", "%{{state_dir}}", "--save", "",
                     "--appendonly", "no"}}
        readiness = notify
        start_timeout = 20
    """


PROXY_SERVICE = """
    command          = "%{libexec_dir}/certvisor-proxy"
    arguments        = {"--config", "%{run_dir}/tls/proxy.conf",
                        "--databases", "%{run_dir}/proxy/databases.conf", "--threads", "2"}
    databases_output = "%{run_dir}/proxy/databases.conf"
    after            = {"redis-db1"}
    readiness        = notify
    reload_signal    = HUP
    upgrade_signal   = USR2
    start_timeout    = 20
    tls {
        certificate = proxy
        plane       = data
    }
"""


def database(name, port, shard_port, **options):
    lines = [f"port = {port}", 'listen = "127.0.0.1"', 'advertise = "127.0.0.1"',
             f'shard = "127.0.0.1:{shard_port}"']
    lines += [f"{key} = {value}" for key, value in options.items()]
    return f"database {name} {{\n    " + "\n    ".join(lines) + "\n}\n"


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


class Cluster:
    """An agent running redis-db1 (plain) and the proxy, with databases on free ports."""

    def __init__(self, agent_factory, **databases):
        self.shard_port = free_port()
        self.ports = {name: free_port() for name in databases}
        self.options = databases
        self.agent = agent_factory({"redis-db1": shard_service(self.shard_port),
                                    "proxy": PROXY_SERVICE})
        self.write_databases()
        self.agent.start()
        assert self.agent.state("proxy") == "RUNNING", self.agent.ctl("tail", "proxy").stdout

    def write_databases(self):
        text = "".join(database(name, self.ports[name], self.shard_port, **options)
                       for name, options in self.options.items())
        (self.agent.conf_d / "databases.conf").write_text(text)

    @property
    def ca(self):
        return state(self.agent, "ca.pem")

    def client(self, name, **tls):
        """A redis-py client over TLS that verifies the proxy against the cluster's CA."""
        return redis.Redis(host="127.0.0.1", port=self.ports[name], ssl=True,
                           ssl_ca_certs=str(self.ca), ssl_check_hostname=False,
                           socket_timeout=10, **tls)

    def plain(self, name):
        return redis.Redis(host="127.0.0.1", port=self.ports[name], socket_timeout=10)

    def tail(self):
        return self.agent.ctl("tail", "proxy").stdout

    def pid(self):
        return self.agent.pid_of("proxy")

    def finish(self):
        """Stops the agent as systemd would (the proxy gets SIGTERM and exits on its own, so a
        sanitizer build reports leaks) and returns any sanitizer report of the proxy."""
        self.agent.stop()
        logs = [p for p in self.agent.prefix.rglob("proxy*.log") if p.is_file()]
        assert logs, "no output file of the proxy under " + str(self.agent.prefix)
        text = "".join(p.read_text(errors="replace") for p in logs)
        return text[-6000:] if any(m in text for m in SANITIZER_MARKERS) else ""


@pytest.fixture
def proxy_cluster(agent_factory):
    made = []

    def make(**databases):
        made.append(Cluster(agent_factory, **databases))
        return made[-1]

    yield make
    reports = [report for c in made if (report := c.finish())]
    assert not reports, "sanitizer report in the proxy's output:\n" + "\n".join(reports)


def s_client(port, *flags):
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief",
                           *flags], input="", capture_output=True, text=True, timeout=20)


def handshake_ok(port, *flags):
    out = s_client(port, *flags)
    return out.returncode == 0 and "CONNECTION ESTABLISHED" in out.stderr


def tls_handshake_completes(port, timeout=3.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            client_context().wrap_socket(raw).close()
        return True
    except (OSError, ssl.SSLError):
        return False


def refused_with_tls(port, context):
    """Connects with context and sends PING: True when the proxy refused the client (TLS 1.3
    reports a refused client certificate only at the first read). Returns (refused, local port)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    local_port = raw.getsockname()[1]
    try:
        with context.wrap_socket(raw) as tls:
            tls.sendall(b"PING\r\n")
            return tls.recv(100) == b"", local_port
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True, local_port
    finally:
        raw.close()


@pytest.fixture
def scratch():
    """Directories for the test's own files (certificates, the proxy's files), removed after."""
    made = []

    def make(name):
        made.append(pathlib.Path(tempfile.mkdtemp(prefix=f"certvisor-{name}-", dir="/tmp")))
        made[-1].chmod(0o755)
        return made[-1]

    yield make
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


def client_context(cert=None, key=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(str(cert), str(key))
    return context


def test_clients_reach_the_shard_through_tls_with_the_proxy_certificate(proxy_cluster):
    cluster = proxy_cluster(db1={"tls_mode": "enabled"})
    r = cluster.client("db1")
    assert r.set("greeting", "hello")
    assert r.get("greeting") == b"hello"
    # The shard really holds it: the proxy forwards, it does not answer.
    shard = redis.Redis(host="127.0.0.1", port=cluster.shard_port)
    assert shard.get("greeting") == b"hello"
    # A large value crosses in both directions (several TLS records, backpressure).
    big = os.urandom(3 * 1024 * 1024)
    assert r.set("big", big)
    assert r.get("big") == big
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(cluster.ports["db1"]),
                          "--tls", "--cacert", str(cluster.ca), "GET", "greeting"],
                         capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "hello", out.stderr
    assert served_fingerprint(cluster.ports["db1"]) == file_fingerprint(
        state(cluster.agent, "certs", "proxy", "current", "cert.pem"))
    # Plain clients get nowhere on a TLS-only endpoint.
    with pytest.raises(redis.exceptions.ConnectionError):
        cluster.plain("db1").ping()
    r.close()


def test_the_agent_receives_the_statistics(proxy_cluster):
    cluster = proxy_cluster(db1={"tls_mode": "enabled"})
    r = cluster.client("db1")
    for i in range(10):
        r.set(f"k{i}", "v" * 100)

    def stats():
        out = cluster.agent.ctl("metrics")
        if out.returncode != 0:
            return None
        for service in json.loads(out.stdout).get("services", []):
            if service["name"] == "proxy" and "stats" in service:
                db = service["stats"]["databases"].get("db1")
                if db and db["connections"] >= 1 and db["bytes_in"] > 1000:
                    return db
        return None

    db = wait_for(stats, timeout=15, what="CERTVISOR_STATS for db1 in certvisorctl metrics")
    assert db["connections_total"] >= 1 and db["handshakes"] >= 1
    assert db["bytes_out"] > 0 and db["errors"] == 0
    assert set(db) == {"connections", "connections_total", "handshakes", "handshake_failures",
                       "auth_failures", "bytes_in", "bytes_out", "errors"}
    r.close()


def test_min_data_tls_version_is_the_proxys_minimum(proxy_cluster):
    cluster = proxy_cluster(db1={"tls_mode": "enabled"})
    port, pid = cluster.ports["db1"], cluster.pid()
    # The default minimum is TLS 1.2; the client offers TLS 1.1 at security level 0, so it is
    # the proxy that refuses it.
    assert not handshake_ok(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert handshake_ok(port, "-tls1_2")
    assert handshake_ok(port, "-tls1_3")
    out = cluster.agent.ctl("cluster", "config", "min_data_TLS_version", "1.1")
    assert out.returncode == 0, out.stderr
    assert handshake_ok(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    out = cluster.agent.ctl("cluster", "config", "min_data_TLS_version", "1.3")
    assert out.returncode == 0, out.stderr
    assert not handshake_ok(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert not handshake_ok(port, "-tls1_2")
    assert handshake_ok(port, "-tls1_3")
    # Reloaded in place, not restarted.
    assert cluster.pid() == pid


def accepted_ciphers(port):
    out = subprocess.run(["sslscan", "--no-colour", "--no-fallback", "--no-renegotiation",
                          "--no-compression", "--no-heartbleed", "--no-groups",
                          f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=120)
    return {(m.group(2), m.group(3)) for m in
            re.finditer(r"^(Preferred|Accepted)\s+(TLSv1\.[0-3])\s+\d+ bits\s+(\S+)", out.stdout,
                        re.M)}


def test_sslscan_sees_only_the_configured_ciphers(proxy_cluster):
    cluster = proxy_cluster(db1={"tls_mode": "enabled"})
    port = cluster.ports["db1"]
    before = {cipher for version, cipher in accepted_ciphers(port) if version == "TLSv1.2"}
    assert len(before) > 1, before
    out = cluster.agent.ctl("cluster", "config", "data_cipher_list",
                            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")
    assert out.returncode == 0, out.stderr
    scanned = accepted_ciphers(port)
    # The proxy certificate is ECDSA: of the two, only the ECDSA suite can be used.
    assert {c for v, c in scanned if v == "TLSv1.2"} == {"ECDHE-ECDSA-AES128-GCM-SHA256"}
    assert not {v for v, _ in scanned} & {"TLSv1.0", "TLSv1.1", "SSLv3"}


def test_client_certificates_are_required_and_checked(proxy_cluster, scratch):
    cert, key, ca = external_pair(scratch("clients"))
    other_cert, other_key, _ = external_pair(scratch("strangers"), cn="stranger")
    cluster = proxy_cluster(db1={"tls_mode": "enabled", "client_auth": "require",
                                          "client_trust": f'"{ca}"'})
    port = cluster.ports["db1"]
    r = cluster.client("db1", ssl_certfile=str(cert), ssl_keyfile=str(key))
    assert r.set("who", "trusted") and r.get("who") == b"trusted"
    r.close()
    # No certificate: refused, with one line naming the database, the client and why.
    refused, local = refused_with_tls(port, client_context())
    assert refused
    line = wait_for(lambda: re.search(rf"Database 'db1': client 127\.0\.0\.1:{local} rejected: (.*)",
                                      cluster.tail()), what="the rejection line")
    assert "no client certificate" in line.group(1)
    # A certificate from another CA: refused for what the verification found.
    refused, local = refused_with_tls(port, client_context(other_cert, other_key))
    assert refused
    line = wait_for(lambda: re.search(rf"Database 'db1': client 127\.0\.0\.1:{local} rejected: (.*)",
                                      cluster.tail()), what="the rejection line")
    assert "certificate verify failed" in line.group(1)
    assert len(re.findall(rf"127\.0\.0\.1:{local}\b", cluster.tail())) == 1


def test_optional_client_certificates(proxy_cluster, scratch):
    cert, key, ca = external_pair(scratch("clients"))
    other_cert, other_key, _ = external_pair(scratch("strangers"))
    cluster = proxy_cluster(db1={"tls_mode": "enabled", "client_auth": "optional",
                                          "client_trust": f'"{ca}"'})
    assert cluster.client("db1").ping()
    assert cluster.client("db1", ssl_certfile=str(cert), ssl_keyfile=str(key)).ping()
    refused, _ = refused_with_tls(cluster.ports["db1"], client_context(other_cert, other_key))
    assert refused


def test_tls_mode_disabled_and_replica_ssl(proxy_cluster, scratch):
    cert, key, ca = external_pair(scratch("replicas"))
    cluster = proxy_cluster(plain={"tls_mode": "disabled"},
                      mixed={"tls_mode": "replica_ssl", "client_auth": "require",
                             "client_trust": f'"{ca}"'})
    # disabled: plain only; a TLS client's hello goes to the shard as bytes, and no
    # handshake ever completes.
    assert cluster.plain("plain").set("mode", "plain")
    assert not tls_handshake_completes(cluster.ports["plain"])
    # replica_ssl: plain clients, and TLS clients with a certificate, on the same port.
    assert cluster.plain("mixed").get("mode") == b"plain"
    replica = cluster.client("mixed", ssl_certfile=str(cert), ssl_keyfile=str(key))
    assert replica.get("mode") == b"plain"
    refused, _ = refused_with_tls(cluster.ports["mixed"], client_context())
    assert refused


def test_databases_follow_the_configuration_by_reload(proxy_cluster):
    cluster = proxy_cluster(db1={"tls_mode": "enabled"})
    pid = cluster.pid()
    early = cluster.client("db1")
    assert early.set("k", "v")
    cluster.options["db2"] = {"tls_mode": "disabled"}
    cluster.ports["db2"] = free_port()
    cluster.write_databases()
    out = cluster.agent.ctl("reload")
    assert out.returncode == 0, out.stderr + out.stdout
    assert cluster.plain("db2").get("k") == b"v"
    del cluster.options["db1"]
    cluster.write_databases()
    out = cluster.agent.ctl("reload")
    assert out.returncode == 0, out.stderr + out.stdout
    with pytest.raises(redis.exceptions.ConnectionError):
        cluster.client("db1").ping()
    # The established connection of a removed database stays; the process is the same.
    assert early.get("k") == b"v"
    assert cluster.pid() == pid
    assert "Database 'db1' removed" in cluster.tail()


class Load:
    """Persistent connections doing SET/GET in a loop, checking every reply."""

    def __init__(self, cluster, n=4):
        self.clients = [cluster.client("db1") for _ in range(n)]
        self.errors, self.done = [], 0
        self.running = True
        self.threads = [threading.Thread(target=self._run, args=(i, c), daemon=True)
                        for i, c in enumerate(self.clients)]
        for t in self.threads:
            t.start()

    def _run(self, i, client):
        n = 0
        while self.running:
            try:
                client.set(f"load{i}", n)
                if client.get(f"load{i}") != str(n).encode():
                    self.errors.append(f"client {i}: wrong value")
                n += 1
                self.done += 1
            except Exception as e:  # noqa: BLE001: every failure is one to report
                self.errors.append(f"client {i}: {e!r}")
                return

    def stop(self):
        self.running = False
        for t in self.threads:
            t.join(timeout=10)


def test_rotating_the_proxy_certificate_under_load_drops_nothing(proxy_cluster):
    cluster = proxy_cluster(db1={"tls_mode": "enabled"})
    port, pid = cluster.ports["db1"], cluster.pid()
    old = served_fingerprint(port)
    # The same connections from start to end: established connections must survive the reload.
    load = Load(cluster)
    wait_for(lambda: load.done > 20, what="the load to run")
    bench = subprocess.Popen(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "--tls",
                              "--cacert", str(cluster.ca), "-c", "20", "-n", "60000",
                              "-t", "set,get", "--csv"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        out = cluster.agent.ctl("cluster", "certificate", "rotate", "proxy")
        assert out.returncode == 0, out.stderr
        new = file_fingerprint(state(cluster.agent, "certs", "proxy", "current", "cert.pem"))
        assert new != old
        # New connections get the new certificate as soon as the command returns.
        assert served_fingerprint(port) == new
        stdout, stderr = bench.communicate(timeout=120)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        load.stop()
    assert bench.returncode == 0, stderr
    assert "error" not in (stdout + stderr).lower(), stdout + stderr
    rows = [line for line in stdout.splitlines() if line.startswith(('"SET"', '"GET"'))]
    assert len(rows) == 2, stdout
    assert not load.errors, load.errors
    assert load.done > 0
    assert cluster.pid() == pid
    assert "Reloaded: serving 1 database" in cluster.tail()


# ------------------------------------------------------------------ on its own


class Direct:
    """The binary started by the test, with files the test writes, and a notify socket."""

    def __init__(self, root, tls_text=None, databases_text=""):
        self.root = root
        self.cert, self.key, self.ca = external_pair(root / "pki")
        self.tls = root / "proxy.conf"
        self.databases = root / "databases.conf"
        self.tls.write_text(tls_text or
                            f"cert_file = {self.cert}\nkey_file = {self.key}\nmin_version = 1.2\n")
        self.databases.write_text(databases_text)
        self.notify = NotifyListener(root / "notify.sock")
        self.log = root / "proxy.log"
        self.proc = None

    def start(self, *extra):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NOTIFY_SOCKET": self.notify.path}
        for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if key in os.environ:
                env[key] = os.environ[key]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(PROXY), "--config", str(self.tls), "--databases",
                                          str(self.databases), "--threads", "2", *extra],
                                         stdout=log, stderr=subprocess.STDOUT, env=env)
        return self.proc

    def output(self):
        return self.log.read_text(errors="replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()


@pytest.fixture
def direct(scratch):
    made = []

    def make(**kwargs):
        d = Direct(scratch("proxy"), **kwargs)
        made.append(d)
        return d

    yield make
    sanitizer = []
    for d in made:
        d.stop()
        if any(m in d.output() for m in SANITIZER_MARKERS):
            sanitizer.append(d.output()[-6000:])
    assert not sanitizer, "\n".join(sanitizer)


@pytest.fixture
def plain_shard():
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _connects(port), what="redis-server")
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def db_section(name, port, shard_port, extra=""):
    return f"[{name}]\nlisten = 127.0.0.1\nport = {port}\nshard = 127.0.0.1:{shard_port}\n{extra}"


def test_a_port_in_use_is_a_clear_start_up_error(direct, plain_shard):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proxy = direct(databases_text=db_section("db1", port, plain_shard, "tls_mode = enabled\n"))
        assert proxy.start().wait(timeout=20) == 1
    assert (f"cannot listen on 127.0.0.1:{port} for database 'db1': Address already in use"
            in proxy.output())
    assert not any("READY=1" in m for m in proxy.notify.drain())


def test_notify_protocol_reloads_and_statistics(direct, plain_shard):
    port, port2 = free_port(), free_port()
    proxy = direct(databases_text=db_section("db1", port, plain_shard, "tls_mode = enabled\n"))
    proxy.start()
    proxy.notify.wait_for("READY=1")
    # A connection made now and kept through the reloads.
    early = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_cert_reqs="none",
                        socket_timeout=10)
    assert early.set("a", "1")
    # Statistics within 5 s, one compact JSON line.
    proxy.notify.wait_for("CERTVISOR_STATS=", timeout=12)
    stats = [m for m in proxy.notify.drain() if m.startswith("CERTVISOR_STATS=")][-1]
    assert "\n" not in stats and " " not in stats
    db1 = json.loads(stats.split("=", 1)[1])["databases"]["db1"]
    assert db1["connections"] == 1 and db1["handshakes"] == 1 and db1["bytes_in"] > 0, db1
    # A reload that adds a database: RELOADING=1 with MONOTONIC_USEC, then READY=1.
    proxy.databases.write_text(db_section("db1", port, plain_shard, "tls_mode = enabled\n") +
                               db_section("db2", port2, plain_shard, "tls_mode = disabled\n"))
    before = len(proxy.notify.drain())
    proxy.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: any("READY=1" in m for m in proxy.notify.drain()[before:]),
             what="READY=1 after the reload")
    after = proxy.notify.drain()[before:]
    reloading = [m for m in after if "RELOADING=1" in m]
    assert reloading and re.search(r"MONOTONIC_USEC=\d+", reloading[0])
    assert after.index(reloading[0]) < next(i for i, m in enumerate(after) if "READY=1" in m)
    assert redis.Redis(host="127.0.0.1", port=port2, socket_timeout=10).get("a") == b"1"
    assert early.get("a") == b"1"
    # A reload that cannot work: STATUS and ERRNO, then exit 1 (for the agent to roll back).
    proxy.tls.write_text(f"cert_file = {proxy.root}/missing.pem\nkey_file = {proxy.key}\n"
                         "min_version = 1.2\n")
    before = len(proxy.notify.drain())
    proxy.proc.send_signal(signal.SIGHUP)
    assert proxy.proc.wait(timeout=20) == 1
    after = proxy.notify.drain(0.2)[before:]
    assert any("RELOADING=1" in m for m in after)
    assert any(m.startswith("STATUS=Reload failed") and "missing.pem" in m and "ERRNO=" in m
               for m in after), after
    assert not any("READY=1" in m for m in after)


def test_sigterm_closes_connections_and_exits_cleanly(direct, plain_shard):
    port = free_port()
    proxy = direct(databases_text=db_section("db1", port, plain_shard, "tls_mode = enabled\n"))
    proxy.start()
    proxy.notify.wait_for("READY=1")
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    tls = client_context().wrap_socket(raw)
    tls.sendall(b"PING\r\n")
    assert tls.recv(100) == b"+PONG\r\n"
    proxy.proc.send_signal(signal.SIGTERM)
    assert proxy.proc.wait(timeout=10) == 0
    assert tls.recv(100) == b""  # close_notify, then the end
    tls.close()
    proxy.notify.wait_for("STOPPING=1", 5)  # the listener thread may not have read it yet


def started(direct, databases_text, *extra):
    proxy = direct(databases_text=databases_text)
    proxy.start(*extra)
    proxy.notify.wait_for("READY=1")
    return proxy


def test_half_close_passes_the_end_of_stream_after_the_bytes(direct, plain_shard):
    port = free_port()
    started(direct, db_section("db1", port, plain_shard, "tls_mode = disabled\n"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"SET half closed\r\nGET half\r\n")
        s.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := s.recv(4096):
            received += chunk
    # Both replies, then the end of the stream (Redis closes on its client's EOF).
    assert received == b"+OK\r\n$6\r\nclosed\r\n"


def test_an_unreachable_shard_closes_the_client_and_says_why(direct):
    port, nowhere = free_port(), free_port()
    proxy = started(direct, db_section("db1", port, nowhere, "tls_mode = enabled\n"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    local = raw.getsockname()[1]
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        with client_context().wrap_socket(raw) as tls:
            tls.sendall(b"PING\r\n")
            if tls.recv(100) == b"":
                raise ConnectionError("closed")
    raw.close()
    wait_for(lambda: f"cannot connect to shard 127.0.0.1:{nowhere} for client 127.0.0.1:{local}: "
             "Connection refused" in proxy.output(), what="the shard error line")


def test_idle_timeout_closes_idle_clients_only_when_asked(direct, plain_shard):
    port = free_port()
    started(direct, db_section("db1", port, plain_shard, "tls_mode = disabled\n"),
            "--idle-timeout", "1")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
        begun = time.monotonic()
        assert s.recv(100) == b""
        assert 0.5 < time.monotonic() - begun < 5
    port2 = free_port()
    started(direct, db_section("db1", port2, plain_shard, "tls_mode = disabled\n"))
    with socket.create_connection(("127.0.0.1", port2), timeout=2.5) as s:
        with pytest.raises(socket.timeout):
            s.recv(100)  # no idle timeout by default: Redis clients idle


def test_a_client_that_never_completes_its_handshake_is_closed(direct, plain_shard):
    port = free_port()
    started(direct, db_section("db1", port, plain_shard, "tls_mode = enabled\n"))
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        begun = time.monotonic()
        assert s.recv(100) == b""
        assert 9 < time.monotonic() - begun < 15


def test_thousands_of_concurrent_connections(direct, plain_shard):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    port, tls_port = free_port(), free_port()
    started(direct, db_section("plain", port, plain_shard, "tls_mode = disabled\n") +
            db_section("tls", tls_port, plain_shard, "tls_mode = enabled\n"))
    conns = []
    try:
        for i in range(2000):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            conns.append(s)
        tls = [client_context().wrap_socket(socket.create_connection(("127.0.0.1", tls_port),
                                                                     timeout=10))
               for _ in range(200)]
        conns += tls
        for s in conns[::50]:
            s.sendall(b"PING\r\n")
            assert s.recv(100) == b"+PONG\r\n"
    finally:
        for s in conns:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def tls_shard(scratch):
    """A redis-server speaking only TLS, that wants a client certificate from its CA."""
    cert, key, ca = external_pair(scratch("shard-pki"))
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", "0", "--tls-port", str(port),
                             "--bind", "127.0.0.1", "--tls-cert-file", str(cert),
                             "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                             "--tls-auth-clients", "yes", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _connects(port), what="redis-server on its TLS port")
    yield port, cert, key, ca
    proc.terminate()
    proc.wait(timeout=10)


def test_the_shard_over_tls_with_a_client_certificate(direct, tls_shard, scratch):
    shard_port, cert, key, ca = tls_shard
    shard_tls = (f"shard_tls = yes\nshard_cert_file = {cert}\nshard_key_file = {key}\n"
                 f"shard_ca_file = {ca}\ntls_mode = disabled\n")
    port = free_port()
    started(direct, db_section("db1", port, shard_port, shard_tls))
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    assert client.set("over", "tls") and client.get("over") == b"tls"
    # A shard whose certificate does not chain to shard_ca_file is refused, and the log says why.
    _, _, other_ca = external_pair(scratch("other-pki"))
    port2 = free_port()
    proxy = started(direct, db_section("db1", port2, shard_port,
                                       shard_tls.replace(str(ca), str(other_ca))))
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis(host="127.0.0.1", port=port2, socket_timeout=10).ping()
    wait_for(lambda: re.search(rf"TLS handshake failed with shard 127\.0\.0\.1:{shard_port} for "
                               r"client 127\.0\.0\.1:\d+: certificate verify failed",
                               proxy.output()), what="the shard's refusal in the log")
