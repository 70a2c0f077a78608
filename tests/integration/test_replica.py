"""Replica Of between two clusters on one machine: certvisor-syncer carries real Redis replication
from the source cluster's proxy to the destination's shard over mutually authenticated TLS.

Each cluster is a certvisord of its own (state directory, ports, redis-server, proxy, syncer);
they trust each other through `certvisorctl cluster certificate ca` and `replica trust add`.
Writes go to the source through its proxy over TLS, reads come from the destination's proxy.
Rotations of the syncer's and the proxy's certificates, and changes of both clusters' CAs (as
operators make them with certificates of their own CAs), happen while a writer keeps writing:
nothing may be lost and none may cause a full resynchronization. Untrusted certificates, a host
name mismatch, an old TLS version and an unreachable source are refused and reported on both
sides.
"""
import json
import pathlib
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
import redis

from conftest import BUILD, wait_for
from test_certs import free_port, state

SYNCER = BUILD / "certvisor-syncer"
PROXY = BUILD / "certvisor-proxy"
openssl = shutil.which("openssl")

pytestmark = [
    pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed"),
    pytest.mark.skipif(not SYNCER.exists() or not PROXY.exists(), reason="services not built"),
]

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


# ------------------------------------------------------------------ certificates of one's own


def make_ca(directory, cn):
    """An operator's CA, made with the openssl CLI: (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "ca.pem", directory / "ca.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "400", "-subj", f"/CN={cn}"],
                   check=True, capture_output=True)
    return cert, key


def issue(ca, directory, cn, sans="DNS:localhost,IP:127.0.0.1"):
    """A certificate (serverAuth and clientAuth) from ca: (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, csr, ext = (directory / f"{cn}.pem", directory / f"{cn}.key", directory / f"{cn}.csr",
                           directory / f"{cn}.cnf")
    subprocess.run([openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", f"/CN={cn}"], check=True, capture_output=True)
    ext.write_text(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth,clientAuth\n"
                   "keyUsage=digitalSignature\n")
    subprocess.run([openssl, "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
                    "-CAcreateserial", "-out", cert, "-days", "90", "-extfile", ext],
                   check=True, capture_output=True)
    return cert, key


def fingerprint(path):
    out = subprocess.run([openssl, "x509", "-in", str(path), "-noout", "-fingerprint", "-sha256"],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split("=", 1)[1]


# ------------------------------------------------------------------ one cluster


SHARD = """
    command   = "/usr/bin/redis-server"
    arguments = {{"--port", "{port}", "--bind", "127.0.0.1", "--supervised", "systemd",
                 "--daemonize", "no", "--dir", "%{{state_dir}}", "--save", "", "--appendonly", "no",
                 "--repl-diskless-sync-delay", "0", "--repl-backlog-size", "64mb"}}
    readiness = notify
    start_timeout = 20
"""

PROXY_SERVICE = """
    command          = "%{libexec_dir}/certvisor-proxy"
    arguments        = {"--config", "%{run_dir}/tls/proxy.conf",
                        "--databases", "%{run_dir}/proxy/databases.conf", "--threads", "2"}
    databases_output = "%{run_dir}/proxy/databases.conf"
    after            = {"shard"}
    readiness        = notify
    reload_signal    = HUP
    start_timeout    = 20
    tls {
        certificate = proxy
        plane       = data
    }
"""

SYNCER_SERVICE = """
    command         = "%{libexec_dir}/certvisor-syncer"
    arguments       = {"--config", "%{run_dir}/tls/syncer.conf",
                       "--replicas", "%{run_dir}/syncer/replicas.conf"}
    replicas_output = "%{run_dir}/syncer/replicas.conf"
    after           = {"shard"}
    readiness       = notify
    reload_signal   = HUP
    start_timeout   = 20
    tls {
        certificate = syncer
        plane       = data
    }
"""


class Cluster:
    """An agent with a Redis shard, the proxy and the syncer, and one database."""

    def __init__(self, agent_factory, name, fqdn):
        self.name = name
        self.shard_port = free_port()
        self.port = free_port()
        self.agent = agent_factory({"shard": SHARD.format(port=self.shard_port),
                                    "proxy": PROXY_SERVICE, "syncer": SYNCER_SERVICE},
                                   subdir=name)
        (self.agent.conf_d / "certificates.conf").write_text(
            f'certificates {{\n    cluster_fqdn = "{fqdn}"\n}}\n')

    def database(self, db, **options):
        lines = [f"port = {self.port}", 'listen = "127.0.0.1"', 'advertise = "127.0.0.1"',
                 f'shard = "127.0.0.1:{self.shard_port}"']
        replica = options.pop("replica_of", None)
        lines += [f"{key} = {value}" for key, value in options.items()]
        if replica:
            lines.append("replica_of {\n        " +
                         "\n        ".join(f"{k} = {v}" for k, v in replica.items()) + "\n    }")
        (self.agent.conf_d / "databases.conf").write_text(
            f"database {db} {{\n    " + "\n    ".join(lines) + "\n}\n")

    def start(self):
        self.agent.start()
        for service in ("shard", "proxy", "syncer"):
            assert self.agent.state(service) == "RUNNING", self.agent.ctl("tail", service).stdout

    def ctl(self, *args, ok=True):
        out = self.agent.ctl(*args)
        if ok:
            assert out.returncode == 0, f"{args}: {out.stdout}{out.stderr}"
        return out

    def ca_file(self, directory):
        """This cluster's CA, as a peer gets it: `cluster certificate ca`."""
        path = directory / f"{self.name}-ca.pem"
        path.write_text(self.ctl("cluster", "certificate", "ca").stdout)
        return path

    def status(self, db):
        out = self.agent.ctl("--json", "replica", "status", db)
        if out.returncode != 0:
            return {}
        items = json.loads(out.stdout.strip().splitlines()[-1])["items"]
        return next((i for i in items if i["database"] == db), {})

    def wait_link(self, db, predicate, what, timeout=30):
        return wait_for(lambda: (lambda s: s if predicate(s) else None)(self.status(db)), timeout,
                        interval=0.2, what=f"{what} (last: {self.status(db)})")

    def shard(self):
        return redis.Redis(host="127.0.0.1", port=self.shard_port, socket_timeout=10)

    def cert(self, name):
        return state(self.agent, "certs", name, "current", "cert.pem")

    def service_output(self, name):
        logs = [p for p in self.agent.prefix.rglob(f"{name}*.log") if p.is_file()]
        return "".join(p.read_text(errors="replace") for p in logs)


def sync_counters(cluster):
    stats = cluster.shard().info("stats")
    return stats["sync_full"], stats["sync_partial_ok"]


def wait_up(cluster, db, timeout=40):
    return cluster.wait_link(db, lambda s: s.get("state") == "up", f"the link of {db} to be up",
                             timeout)


@pytest.fixture
def scratch():
    made = []

    def make(name):
        import tempfile
        made.append(pathlib.Path(tempfile.mkdtemp(prefix=f"certvisor-{name}-", dir="/tmp")))
        made[-1].chmod(0o755)
        return made[-1]

    yield make
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def clusters(agent_factory, scratch):
    """Two clusters (not started): the source with db1, the destination with db2 a replica of it.
    Yields (source, destination, pki) and, at the end, stops both as systemd would and checks
    the syncer's and the proxy's output for sanitizer reports."""
    pki = scratch("replica-pki")
    source = Cluster(agent_factory, "source", "source.test")
    destination = Cluster(agent_factory, "destination", "destination.test")
    made = [source, destination]
    yield source, destination, pki
    reports = []
    for cluster in made:
        cluster.agent.stop()
        for service in ("syncer", "proxy"):
            text = cluster.service_output(service)
            if any(m in text for m in SANITIZER_MARKERS):
                reports.append(f"{cluster.name} {service}:\n{text[-6000:]}")
    assert not reports, "\n".join(reports)


def link_clusters(source, destination, pki, source_mode="enabled", **replica):
    """db1 on the source accepts the destination's syncer (and the test's writer); db2 on the
    destination is its replica. Both started, the CAs exchanged, the link up."""
    source.database("db1", tls_mode=source_mode, authentication_ssl_client_certs='"db1"')
    options = {"source": f'"127.0.0.1:{source.port}"', "verify_hostname": "true",
               "server_name": '"db1.source.test"'}
    options.update(replica)
    destination.database("db2", tls_mode="enabled", replica_of=options)
    source.start()
    destination.start()
    source.ctl("replica", "trust", "add", "db1", str(destination.ca_file(pki)))
    destination.ctl("replica", "trust", "add", "db2", str(source.ca_file(pki)))
    return wait_up(destination, "db2")


def writer_pair(source, pki):
    """A client certificate for the test's writer, from a CA the source's db1 trusts."""
    ca = make_ca(pki / "app-ca", "App CA")
    source.ctl("replica", "trust", "add", "db1", str(ca[0]))
    return issue(ca, pki / "app", "writer")


def source_client(source, cert, key):
    """The writer: over TLS to the source's proxy, with its client certificate."""
    return redis.Redis(host="127.0.0.1", port=source.port, ssl=True, ssl_certfile=str(cert),
                       ssl_keyfile=str(key), ssl_cert_reqs="none", socket_timeout=10)


def destination_client(destination):
    return redis.Redis(host="127.0.0.1", port=destination.port, ssl=True,
                       ssl_ca_certs=str(state(destination.agent, "ca.pem")),
                       ssl_check_hostname=False, socket_timeout=10)


class Writer:
    """Writes w:<n> = n through one connection until stopped (at most `limit`), counting what the
    source acknowledged; every failure is kept."""

    def __init__(self, client, limit=100000):
        self.client, self.limit = client, limit
        self.acked, self.errors = 0, []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running and self.acked < self.limit:
            try:
                assert self.client.set(f"w:{self.acked}", self.acked)
                self.acked += 1
            except Exception as e:  # noqa: BLE001: every failure is one to report
                self.errors.append(repr(e))
                time.sleep(0.1)
                if len(self.errors) > 20:
                    return
            if self.acked % 200 == 0:
                time.sleep(0.005)

    def stop(self):
        self.running = False
        self.thread.join(timeout=30)


def force_reconnect(source):
    """Ends the replication connection on the source's shard: the link reconnects, through a new
    TLS session (new certificates on both sides), and must continue with a partial resync."""
    assert source.shard().execute_command("CLIENT", "KILL", "TYPE", "replica") >= 1


# ------------------------------------------------------------------ tests


def test_replica_of_over_mutually_authenticated_tls(clusters):
    source, destination, pki = clusters
    link = link_clusters(source, destination, pki)
    writer = source_client(source, *writer_pair(source, pki))
    assert writer.set("greeting", "hello from the source")
    reader = destination_client(destination)
    wait_for(lambda: reader.get("greeting") == b"hello from the source", 20,
             what="the write to reach the destination")
    # The destination is a replica: it refuses writes of its own.
    with pytest.raises(redis.exceptions.ReadOnlyError):
        reader.set("mine", "no")
    # What the link uses, as `replica status` shows it.
    assert link["tls_version"] == "TLSv1.3" and link["cipher"].startswith("TLS_")
    assert link["peer_fingerprint"] == fingerprint(source.cert("proxy"))
    assert link["local_fingerprint"] == fingerprint(destination.cert("syncer"))
    assert link["source"] == f"127.0.0.1:{source.port}" and link["server_name"] == "db1.source.test"
    assert link["since"] <= time.time() and link["full_syncs"] == 1
    for i in range(100):
        writer.set(f"k{i}", "v" * 100)
    link = destination.wait_link("db2", lambda s: s.get("lag_bytes") == 0 and
                                 s.get("replica_offset", 0) > 10000, "the replica to catch up")
    assert link["source_offset"] == source.shard().info("replication")["master_repl_offset"]
    assert link["bytes_in"] > 10000 and link["bytes_out"] > 0
    text = destination.ctl("replica", "status").stdout
    assert f"db2: replica of 127.0.0.1:{source.port} as db1.source.test: up since" in text
    assert "TLSv1.3" in text and fingerprint(source.cert("proxy")) in text
    # The source's side: db1 takes replication from the certificates of its trust list.
    side = source.status("db1")
    assert side["role"] == "source" and side["trust"] == "db1" and side["trusted"] == 2
    trusted = source.ctl("replica", "trust", "list", "db1").stdout
    assert "used by database db1 for client certificates (proxy)" in trusted
    assert fingerprint(state(destination.agent, "ca.pem")) in trusted


def test_rotations_and_ca_changes_under_writes_lose_nothing_and_never_resync(clusters):
    source, destination, pki = clusters
    link_clusters(source, destination, pki)
    writer = Writer(source_client(source, *writer_pair(source, pki)))
    try:
        wait_for(lambda: writer.acked > 500, 20, what="the writer to write")
        full_before, partial_before = sync_counters(source)
        sessions = destination.status("db2")["sessions"]

        # 1. The destination's syncer certificate, re-issued from its CA: the syncer reloads and
        #    the established link stays (no new session); the source trusts the CA, so nothing
        #    is needed there.
        old_syncer = fingerprint(destination.cert("syncer"))
        destination.ctl("cluster", "certificate", "rotate", "syncer")
        new_syncer = fingerprint(destination.cert("syncer"))
        assert new_syncer != old_syncer
        # 2. The source's proxy certificate: the proxy reloads, established connections stay.
        source.ctl("cluster", "certificate", "rotate", "proxy")
        new_proxy = fingerprint(source.cert("proxy"))
        time.sleep(2)
        link = destination.status("db2")
        assert link["state"] == "up" and link["sessions"] == sessions, link
        assert link["local_fingerprint"] == old_syncer  # the established session's own
        # A reconnect takes the new certificates on both sides, with a partial resync.
        force_reconnect(source)
        link = destination.wait_link(
            "db2", lambda s: s.get("state") == "up" and s.get("sessions", 0) > sessions,
            "the link to come back")
        assert link["local_fingerprint"] == new_syncer and link["peer_fingerprint"] == new_proxy

        # 3. The destination's CA changes (its syncer certificate from a CA of the operator's):
        #    the source trusts the new CA first, then the certificate changes, then the old CA
        #    goes. The link never breaks in between.
        dest_ca2 = make_ca(pki / "destination-ca2", "Destination CA 2")
        source.ctl("replica", "trust", "add", "db1", str(dest_ca2[0]))
        syncer2 = issue(dest_ca2, pki / "destination-ca2", "syncer")
        destination.ctl("cluster", "certificate", "set", "syncer", "certificate_file",
                        str(syncer2[0]), "key_file", str(syncer2[1]))
        force_reconnect(source)
        sessions = link["sessions"]
        link = destination.wait_link(
            "db2", lambda s: s.get("state") == "up" and s.get("sessions", 0) > sessions,
            "the link to come back with the new CA's syncer certificate")
        assert link["local_fingerprint"] == fingerprint(syncer2[0])
        source.ctl("replica", "trust", "remove", "db1",
                   fingerprint(state(destination.agent, "ca.pem")))

        # 4. The source's CA changes likewise: the destination trusts the new CA first.
        source_ca2 = make_ca(pki / "source-ca2", "Source CA 2")
        destination.ctl("replica", "trust", "add", "db2", str(source_ca2[0]))
        proxy2 = issue(source_ca2, pki / "source-ca2", "proxy",
                       "DNS:source.test,DNS:*.source.test,IP:127.0.0.1")
        source.ctl("cluster", "certificate", "set", "proxy", "certificate_file", str(proxy2[0]),
                   "key_file", str(proxy2[1]))
        force_reconnect(source)
        sessions = link["sessions"]
        link = destination.wait_link(
            "db2", lambda s: s.get("state") == "up" and s.get("sessions", 0) > sessions,
            "the link to come back with the new CA's proxy certificate")
        assert link["peer_fingerprint"] == fingerprint(proxy2[0])
        destination.ctl("replica", "trust", "remove", "db2", str(source.ca_file(pki)))
        time.sleep(1)
    finally:
        writer.stop()
    assert not writer.errors, writer.errors[:5]
    assert writer.acked > 1000
    # Nothing lost: every acknowledged write is on the destination, with its value.
    replica = destination.shard()
    wait_for(lambda: replica.dbsize() == source.shard().dbsize(), 60, interval=0.2,
             what="the destination to hold every key")
    keys = [f"w:{i}" for i in range(writer.acked)]
    values = []
    for i in range(0, len(keys), 1000):
        values += replica.mget(keys[i:i + 1000])
    assert values == [str(i).encode() for i in range(writer.acked)]
    # No rotation caused a full resynchronization: only the first sync was one.
    full_after, partial_after = sync_counters(source)
    assert full_after == full_before == 1
    assert partial_after >= partial_before + 3
    link = destination.status("db2")
    assert link["full_syncs"] == 1 and link["partial_syncs"] >= 3 and link["state"] == "up"
    # The trust lists now hold only the new CAs (and the writer's).
    assert destination.status("db2") and source.status("db1")["trusted"] == 2


def test_an_untrusted_syncer_certificate_is_refused_and_reported_on_both_sides(clusters):
    source, destination, pki = clusters
    source.database("db1", tls_mode="replica_ssl", authentication_ssl_client_certs='"db1"')
    destination.database("db2", replica_of={"source": f'"127.0.0.1:{source.port}"'})
    source.start()
    destination.start()
    # The destination trusts the source; the source does not trust the destination's syncer.
    destination.ctl("replica", "trust", "add", "db2", str(source.ca_file(pki)))
    link = destination.wait_link("db2", lambda s: s.get("error") == "syncer_certificate_not_trusted",
                                 "the refusal on the destination")
    assert link["state"] != "up"
    assert "syncer certificate not trusted" in link["last_error"]
    assert "unknown CA" in link["last_error"]
    assert fingerprint(destination.cert("syncer")) in link["last_error"]
    side = source.wait_link("db1", lambda s: s.get("refused", 0) >= 1 and "last_error" in s,
                            "the refusal on the source")
    assert "certificate verify failed" in side["last_error"] and side["trusted"] == 0
    assert "rejected: certificate verify failed" in source.ctl("tail", "proxy").stdout
    text = source.ctl("replica", "status").stdout
    assert "db1: source (tls_mode replica_ssl), trusts db1 (0 certificates)" in text
    assert "last refusal:" in text
    # Plain clients of a replica_ssl database are not affected; trusting the syncer's CA fixes
    # the link without any restart.
    assert redis.Redis(host="127.0.0.1", port=source.port, socket_timeout=10).set("plain", "1")
    source.ctl("replica", "trust", "add", "db1", str(destination.ca_file(pki)))
    wait_up(destination, "db2")
    wait_for(lambda: destination.shard().get("plain") == b"1", 20, what="the replicated write")


def test_an_untrusted_source_certificate_is_refused_and_reported_on_both_sides(clusters):
    source, destination, pki = clusters
    source.database("db1", tls_mode="replica_ssl", authentication_ssl_client_certs='"db1"')
    destination.database("db2", replica_of={"source": f'"127.0.0.1:{source.port}"'})
    source.start()
    destination.start()
    source.ctl("replica", "trust", "add", "db1", str(destination.ca_file(pki)))
    # An empty trust list trusts nobody: the destination refuses the source's certificate.
    link = destination.wait_link("db2", lambda s: s.get("error") == "source_certificate_not_trusted",
                                 "the refusal on the destination")
    assert fingerprint(source.cert("proxy")) in link["last_error"]
    assert "the trust list is empty" in link["last_error"]
    # A CA that is not the source's changes nothing.
    other = make_ca(pki / "other", "Other CA")
    destination.ctl("replica", "trust", "add", "db2", str(other[0]))
    link = destination.wait_link(
        "db2", lambda s: s.get("error") == "source_certificate_not_trusted" and
        "trust list is empty" not in s.get("last_error", ""), "a refusal with a CA in the list")
    assert "unable to get local issuer certificate" in link["last_error"]
    # The source sees the replica abort the handshake on its certificate.
    side = source.wait_link("db1", lambda s: "refused the proxy certificate" in s.get("last_error", ""),
                            "the report on the source")
    assert "unknown ca" in side["last_error"].lower()
    assert "last refusal:" in source.ctl("replica", "status").stdout
    # Trusting the source's CA brings the link up; the refusal stays as history, said to be so.
    destination.ctl("replica", "trust", "add", "db2", str(source.ca_file(pki)))
    destination.wait_link("db2", lambda s: s.get("state") == "up", "the link to come up")
    text = destination.ctl("replica", "status").stdout
    assert "(before the link came up)" in text, text


def test_host_name_mismatch_unreachable_source_and_old_tls_are_told_apart(clusters, scratch):
    source, destination, pki = clusters
    source.database("db1", tls_mode="replica_ssl", authentication_ssl_client_certs='"db1"')
    destination.database("db2", replica_of={"source": f'"127.0.0.1:{source.port}"',
                                            "verify_hostname": "true",
                                            "server_name": '"db1.elsewhere.test"'})
    source.start()
    destination.start()
    source.ctl("replica", "trust", "add", "db1", str(destination.ca_file(pki)))
    destination.ctl("replica", "trust", "add", "db2", str(source.ca_file(pki)))
    link = destination.wait_link("db2", lambda s: s.get("error") == "host_name_mismatch",
                                 "a host name mismatch")
    assert "not valid for 'db1.elsewhere.test'" in link["last_error"]
    # The right name: the link comes up (by a configuration reload).
    destination.database("db2", replica_of={"source": f'"127.0.0.1:{source.port}"',
                                            "verify_hostname": "true",
                                            "server_name": '"db1.source.test"'})
    destination.ctl("reload")
    wait_up(destination, "db2")
    # Nobody at the source's address.
    nowhere = free_port()
    destination.database("db2", replica_of={"source": f'"127.0.0.1:{nowhere}"'})
    destination.ctl("reload")
    link = destination.wait_link("db2", lambda s: s.get("error") == "source_unreachable",
                                 "an unreachable source")
    assert f"source unreachable: 127.0.0.1:{nowhere}: Connection refused" in link["last_error"]
    # A source that speaks only TLS 1.2 while this cluster's policy asks for 1.3 at least.
    old = scratch("old-tls")
    ca = make_ca(old, "Old CA")
    cert, key = issue(ca, old, "old")
    destination.ctl("replica", "trust", "add", "db2", str(ca[0]))
    server = OldTlsServer(cert, key)
    try:
        destination.database("db2", replica_of={"source": f'"127.0.0.1:{server.port}"'})
        destination.ctl("reload")
        destination.ctl("cluster", "config", "min_data_TLS_version", "1.3")
        link = destination.wait_link("db2", lambda s: s.get("error") == "tls_version",
                                     "a refusal of the TLS version")
        assert "TLS version below the policy" in link["last_error"] and "1.3" in link["last_error"]
    finally:
        server.stop()
    assert "TLS version below the policy" in destination.ctl("replica", "status").stdout


class OldTlsServer:
    """A TLS server that speaks TLS 1.2 at most, accepting and handshaking until stopped."""

    def __init__(self, cert, key):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.maximum_version = ssl.TLSVersion.TLSv1_2
        self.context.load_cert_chain(str(cert), str(key))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            try:
                conn.settimeout(2)
                self.context.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()


def test_trust_list_commands(clusters, scratch):
    source, destination, pki = clusters
    link_clusters(source, destination, pki)
    ca = source.ca_file(pki)
    # Adding what is trusted already changes nothing and reloads nothing.
    out = destination.ctl("replica", "trust", "add", "db2", str(ca))
    assert "unchanged" in out.stdout and "Reloaded" not in out.stdout
    # A dry run shows the plan: exactly the syncer.
    extra = make_ca(scratch("extra"), "Extra CA")
    out = destination.ctl("replica", "trust", "add", "db2", str(extra[0]), "--dry-run")
    assert "Dry run: reload syncer" in out.stdout and "proxy" not in out.stdout
    assert fingerprint(extra[0]) not in destination.ctl("replica", "trust", "list").stdout
    # A real one reloads exactly the syncer, and the link stays up.
    pids = destination.agent.pid_of("syncer"), destination.agent.pid_of("proxy")
    sessions = destination.status("db2")["sessions"]
    out = destination.ctl("replica", "trust", "add", "db2", str(extra[0]))
    assert f"Added SHA256 {fingerprint(extra[0])} to trust list db2" in out.stdout
    assert "Reloaded syncer" in out.stdout and "Reloaded proxy" not in out.stdout
    assert (destination.agent.pid_of("syncer"), destination.agent.pid_of("proxy")) == pids
    link = destination.status("db2")
    assert link["state"] == "up" and link["sessions"] == sessions
    # Removal by a unique fingerprint prefix.
    out = destination.ctl("replica", "trust", "remove", "db2", fingerprint(extra[0])[:11])
    assert f"Removed SHA256 {fingerprint(extra[0])} from trust list db2" in out.stdout
    # What is refused, and why.
    key = pki / "app" / "k.key"
    key.parent.mkdir(exist_ok=True)
    shutil.copy(extra[1], key)
    out = destination.ctl("replica", "trust", "add", "db2", str(key), ok=False)
    assert out.returncode == 1 and "not a certificate (PRIVATE KEY)" in out.stderr
    out = destination.ctl("replica", "trust", "remove", "db2", "AB:CD:EF:01:23", ok=False)
    assert out.returncode == 1 and "holds no such certificate" in out.stderr
    out = destination.ctl("replica", "trust", "add", "Bad-Name", str(ca), ok=False)
    assert out.returncode == 2 and "not a trust list name" in out.stderr
    # A list no database names yet is allowed (trust ahead of the database), with a warning:
    # a typo is likelier.
    out = destination.ctl("replica", "trust", "add", "db3", str(ca))
    assert "warning: no database names trust list 'db3' yet" in out.stderr, out.stderr
    out = destination.ctl("replica", "trust", "add", "db2", str(extra[0]))
    assert "warning" not in out.stderr, out.stderr
    destination.ctl("replica", "trust", "remove", "db2", str(extra[0]))
    out = destination.agent.ctl("--json", "replica", "trust", "remove", "db2", "AB:CD:EF:01:23")
    assert json.loads(out.stdout)["reason"] == "not_trusted"
    # Removing the source's CA: the established link no longer verifies and ends at once.
    destination.ctl("replica", "trust", "remove", "db2", str(ca))
    link = destination.wait_link("db2", lambda s: s.get("error") == "source_certificate_not_trusted",
                                 "the link to end")
    assert link["state"] != "up"
    assert "no longer trusted" in destination.ctl("tail", "syncer").stdout
    # The audit log names each change.
    assert "changed trust list 'db2' remove" in destination.agent.log_text()


def test_removing_replica_of_keeps_the_data_and_makes_a_master(clusters):
    source, destination, pki = clusters
    link_clusters(source, destination, pki, source_mode="replica_ssl")
    plain = redis.Redis(host="127.0.0.1", port=source.port, socket_timeout=10)
    assert plain.set("kept", "yes")
    wait_for(lambda: destination.shard().get("kept") == b"yes", 20, what="the replicated write")
    destination.database("db2", tls_mode="enabled")
    out = destination.ctl("reload")
    assert "syncer" in out.stdout
    wait_for(lambda: destination.shard().info("replication")["role"] == "master", 10,
             what="the shard to be a master")
    assert destination.shard().get("kept") == b"yes"
    assert destination_client(destination).set("mine", "now")
    assert "REPLICAOF NO ONE" in destination.ctl("tail", "syncer").stdout
    out = destination.agent.ctl("replica", "status")
    assert "No database is a replica" in out.stdout
