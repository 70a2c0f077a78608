"""The agent's etcd client (agent/cluster/etcd_client.c) against a real etcd (Debian's
etcd-server 3.4), through certvisor-etcd-probe: mTLS both ways, compare-and-swap, watches that
resume after the member restarts and say when history was compacted, a deadline on a member that
accepts and never answers, failing over from a dead endpoint to a live one."""
import json
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import BUILD, wait_for
from test_certs import free_port

ETCD = shutil.which("etcd")
PROBE = BUILD / "certvisor-etcd-probe"
pytestmark = pytest.mark.skipif(ETCD is None, reason="etcd-server is not installed")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory):
    """A CA, a member certificate for 127.0.0.1, a client certificate, and a stranger's pair
    from another CA."""
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
                "-subj", f"/CN={ca}", cwd=directory)
    for name, ca, ext in (("server", "ca", "subjectAltName=IP:127.0.0.1\n"
                                           "extendedKeyUsage=serverAuth,clientAuth"),
                          ("client", "ca", "extendedKeyUsage=clientAuth"),
                          ("stranger", "other-ca", "extendedKeyUsage=clientAuth")):
        (directory / f"{name}.ext").write_text(ext + "\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
                cwd=directory)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
                f"{ca}.key", "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                "-extfile", f"{name}.ext", cwd=directory)


class Etcd:
    """One etcd member on loopback, client port with mTLS (trusting ca.pem)."""

    def __init__(self, directory):
        self.dir = directory
        self.port, self.peer_port = free_port(), free_port()
        self.proc = None

    def start(self):
        d = self.dir
        self.log = open(d / "etcd.log", "ab")
        self.proc = subprocess.Popen([
            ETCD, "--name", "m1", "--data-dir", str(d / "data"),
            "--listen-client-urls", f"https://127.0.0.1:{self.port}",
            "--advertise-client-urls", f"https://127.0.0.1:{self.port}",
            "--listen-peer-urls", f"http://127.0.0.1:{self.peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_port}",
            "--initial-cluster", f"m1=http://127.0.0.1:{self.peer_port}",
            "--client-cert-auth", "--trusted-ca-file", str(d / "ca.pem"),
            "--cert-file", str(d / "server.pem"), "--key-file", str(d / "server.key"),
            "--log-level", "warn", "--logger", "zap"],
            stdout=self.log, stderr=self.log)
        wait_for(lambda: probe(self, "status").returncode == 0, 20, what="etcd to answer")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"


def probe(etcd, *args, endpoints=None, identity="client", deadline_ms=None, timeout=30):
    d = etcd.dir
    argv = [str(PROBE)]
    for endpoint in endpoints or [etcd.endpoint]:
        argv += ["--endpoint", endpoint]
    # The stranger trusts the member, but its certificate is from a CA the member does not.
    argv += ["--ca", str(d / "ca.pem"), "--cert", str(d / f"{identity}.pem"),
             "--key", str(d / f"{identity}.key")]
    if deadline_ms:
        argv += ["--deadline-ms", str(deadline_ms)]
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout)


def answer(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture
def etcd(tmp_path):
    make_pki(tmp_path)
    member = Etcd(tmp_path)
    member.start()
    yield member
    member.stop()


def test_put_get_and_prefix_over_mtls(etcd):
    put = answer(probe(etcd, "put", "/cv/test/a", "value with spaces and ünïcode"))
    got = answer(probe(etcd, "get", "/cv/test/a"))
    assert got["kvs"][0]["value"] == "value with spaces and ünïcode"
    assert got["kvs"][0]["mod_revision"] == put["revision"]
    answer(probe(etcd, "put", "/cv/test/b", ""))
    answer(probe(etcd, "put", "/cv/tesu", "outside the prefix"))
    keys = [kv["key"] for kv in answer(probe(etcd, "prefix", "/cv/test/"))["kvs"]]
    assert keys == ["/cv/test/a", "/cv/test/b"]
    assert answer(probe(etcd, "get", "/cv/none"))["kvs"] == []
    # The agent's own etcdctl view agrees: what it wrote is etcd's.
    out = subprocess.run(["etcdctl", "--endpoints", f"https://{etcd.endpoint}", "--cacert",
                          str(etcd.dir / "ca.pem"), "--cert", str(etcd.dir / "client.pem"),
                          "--key", str(etcd.dir / "client.key"), "get", "/cv/test/a",
                          "--print-value-only"], capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "value with spaces and ünïcode", out.stderr


def test_a_client_the_member_does_not_trust_is_refused(etcd):
    result = probe(etcd, "status", identity="stranger", deadline_ms=3000)
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"] < 0


def test_compare_and_swap_detects_a_lost_race(etcd):
    first = answer(probe(etcd, "txn", "/cv/cas", "0", "one"))  # 0: the key must not exist
    assert first["succeeded"]
    again = answer(probe(etcd, "txn", "/cv/cas", "0", "two"))
    assert not again["succeeded"]  # it exists now: the race is lost, nothing written
    rev = answer(probe(etcd, "get", "/cv/cas"))["kvs"][0]["mod_revision"]
    assert answer(probe(etcd, "txn", "/cv/cas", str(rev), "three"))["succeeded"]
    assert not answer(probe(etcd, "txn", "/cv/cas", str(rev), "four"))["succeeded"]
    assert answer(probe(etcd, "get", "/cv/cas"))["kvs"][0]["value"] == "three"


def test_status_and_lease(etcd):
    status = answer(probe(etcd, "status"))
    assert status["version"].startswith("3.4") and status["leader"]
    lease = answer(probe(etcd, "lease", "10"))
    assert lease["id"] > 0 and lease["ttl"] == 10


class Watch:
    """certvisor-etcd-probe watching PREFIX; its lines are read off the pipe by a thread."""

    def __init__(self, etcd, prefix, from_revision, events):
        self.proc = subprocess.Popen([
            str(PROBE), "--endpoint", etcd.endpoint, "--ca", str(etcd.dir / "ca.pem"),
            "--cert", str(etcd.dir / "client.pem"), "--key", str(etcd.dir / "client.key"),
            "watch", prefix, str(from_revision), str(events)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout),
                                       daemon=True)
        self.reader.start()

    def finish(self, timeout):
        """Waits for the probe to exit and for its last line to be read: the process can end
        before the reader has taken everything off the pipe."""
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=10)
        return [json.loads(line) for line in self.lines]


def test_a_watch_delivers_every_event_and_resumes_after_the_member_restarts(etcd):
    start = answer(probe(etcd, "put", "/cv/w/0", "before"))["revision"]
    watch = Watch(etcd, "/cv/w/", start, 6)
    try:
        wait_for(lambda: watch.lines, 10, what="the first event (from the start revision)")
        for i in (1, 2):
            answer(probe(etcd, "put", f"/cv/w/{i}", f"v{i}"))
        wait_for(lambda: len(watch.lines) >= 3, 10, what="events 1 and 2")
        etcd.stop()
        etcd.start()  # the stream ends; the watch resumes from the next revision
        for i in (3, 4, 5):
            answer(probe(etcd, "put", f"/cv/w/{i}", f"v{i}"))
    finally:
        messages = watch.finish(timeout=30)
    events = [m for m in messages if "key" in m]
    assert [e["key"] for e in events] == [f"/cv/w/{i}" for i in range(6)], messages
    revisions = [e["mod_revision"] for e in events]
    assert revisions == sorted(set(revisions))  # none twice, none lost
    assert any("lost" in m for m in messages)
    assert watch.proc.returncode == 0


def test_a_watch_from_a_compacted_revision_says_so(etcd):
    first = answer(probe(etcd, "put", "/cv/c/a", "1"))["revision"]
    last = answer(probe(etcd, "put", "/cv/c/a", "2"))["revision"]
    subprocess.run(["etcdctl", "--endpoints", f"https://{etcd.endpoint}", "--cacert",
                    str(etcd.dir / "ca.pem"), "--cert", str(etcd.dir / "client.pem"), "--key",
                    str(etcd.dir / "client.key"), "compaction", str(last)],
                   check=True, capture_output=True, timeout=20)
    watch = Watch(etcd, "/cv/c/", first, 10)
    messages = watch.finish(timeout=20)
    assert watch.proc.returncode == 3
    assert messages and "compacted" in messages[-1], messages
    message = messages[-1]
    assert message["compacted"] == last and "compacted" in message["why"]


def test_a_member_that_never_answers_meets_the_deadline(etcd):
    """An endpoint that accepts the connection and says nothing: the call ends at its
    deadline, with the reason."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    began = time.monotonic()
    result = probe(etcd, "status", endpoints=[f"127.0.0.1:{silent.getsockname()[1]}"],
                   deadline_ms=500)
    took = time.monotonic() - began
    silent.close()
    assert result.returncode == 1
    message = json.loads(result.stdout)
    assert message["error"] == -110 and "did not answer within 500 ms" in message["message"]
    assert took < 5


def test_a_dead_endpoint_is_skipped_for_a_live_one(etcd):
    dead = f"127.0.0.1:{free_port()}"
    got = answer(probe(etcd, "put", "/cv/failover", "x", endpoints=[dead, etcd.endpoint]))
    assert got["endpoint"] == etcd.endpoint
    result = probe(etcd, "status", endpoints=[dead], deadline_ms=1000)
    assert result.returncode == 1 and "no etcd endpoint answered" in result.stdout


def test_an_endpoint_must_be_an_address_not_a_name(etcd):
    """A name would be resolved with getaddrinfo() on the agent's loop: refused up front."""
    result = probe(etcd, "status", endpoints=["localhost:2379"])
    assert result.returncode == 2
    assert "is not address:port (an IP address" in result.stderr
    assert "resolves no names" in result.stderr
