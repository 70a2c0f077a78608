"""certvisor-proxy's multiplexing: many clients' requests on shared shard connections.

The proxy runs on its own with files the test writes (test_proxy's Direct), in front of a real
redis-server. Each test checks what a client sees (its own replies, in order, whatever the
others do) and, where it matters, what the shard sees (how many connections, which of them).
"""
import os
import random
import socket
import subprocess
import threading
import time

import pytest
import redis

from conftest import wait_for
from test_certs import free_port
from test_proxy import (PROXY, client_context, db_section, direct, plain_shard,  # noqa: F401
                        scratch, started, tls_shard)

pytestmark = [
    pytest.mark.skipif(not PROXY.exists(), reason="certvisor-proxy not built"),
]


def shard_clients(shard_port):
    """The shard's client list, as dicts (its own connection included)."""
    direct_client = redis.Redis(host="127.0.0.1", port=shard_port, socket_timeout=10)
    try:
        return direct_client.client_list()
    finally:
        direct_client.close()


def proxy_connections(shard_port):
    """The shard's clients other than the one asking."""
    return len(shard_clients(shard_port)) - 1


def raw(port, tls=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    return client_context().wrap_socket(s) if tls else s


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def test_many_clients_with_interleaved_pipelines_get_their_own_replies(direct, plain_shard):
    port, tls_port = free_port(), free_port()
    started(direct, db_section("plain", port, plain_shard, "tls_mode = disabled\n") +
            db_section("tls", tls_port, plain_shard, "tls_mode = enabled\n"))
    errors = []
    clients = []
    for i in range(40):
        tls = i % 2 == 1
        clients.append(redis.Redis(host="127.0.0.1", port=tls_port if tls else port, ssl=tls,
                                   ssl_cert_reqs="none", socket_timeout=20))
    for c in clients:
        assert c.ping()
    # 40 clients are connected and the shard sees one connection per worker, not 40.
    assert proxy_connections(plain_shard) <= 2 * 2  # two workers, two databases

    def work(i, client):
        rnd = random.Random(i)
        increments = 0
        try:
            for round_ in range(30):
                size = rnd.choice([1, 2, 7, 16, 64])
                pipe = client.pipeline(transaction=False)
                expect = []
                for j in range(size):
                    key = f"c{i}:k{j % 5}"
                    value = f"{i}:{round_}:{j}:" + "x" * rnd.randrange(0, 3000)
                    pipe.set(key, value)
                    pipe.get(key)
                    pipe.incr(f"c{i}:n")
                    increments += 1
                    expect += [True, value.encode(), increments]
                got = pipe.execute()
                if got != expect:
                    errors.append((i, round_, [(e, g) for e, g in zip(expect, got) if e != g][:2]))
                    return
            # Its counter counted its own increments only.
            if int(client.get(f"c{i}:n")) != increments:
                errors.append((i, "counter"))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:5]
    # Under load a worker opens another shared connection while one has a batch out, up to 4
    # per database (docs/design.md); a slow machine (a sanitizer build in CI) gets there.
    assert proxy_connections(plain_shard) <= 2 * 2 * 4


def test_interleaved_raw_pipelines_in_pieces(direct, plain_shard):
    """Requests split at odd byte boundaries, from many sockets at once, pair with their replies."""
    port = free_port()
    started(direct, db_section("db1", port, plain_shard, "tls_mode = disabled\n"))
    socks = [raw(port) for _ in range(12)]
    expected = []
    for i, s in enumerate(socks):
        batch = b""
        want = b""
        for j in range(50):
            value = f"v{i}-{j}".encode() * (j % 4 + 1)
            batch += command("SET", f"r{i}", value) + command("GET", f"r{i}")
            want += b"+OK\r\n" + b"$%d\r\n%s\r\n" % (len(value), value)
        expected.append((s, batch, want))
    # Send every socket's bytes in small pieces, round robin, so requests interleave and split.
    offsets = [0] * len(socks)
    while any(offsets[k] < len(expected[k][1]) for k in range(len(socks))):
        for k, (s, batch, _) in enumerate(expected):
            if offsets[k] < len(batch):
                step = 1 + (k * 7 + offsets[k]) % 23
                s.sendall(batch[offsets[k]:offsets[k] + step])
                offsets[k] += step
    for s, _, want in expected:
        assert read_exactly(s, len(want)) == want
        s.close()


def test_stateful_commands_pin_while_others_share(direct, plain_shard):
    port = free_port()
    started(direct, db_section("db1", port, plain_shard, "tls_mode = enabled\n"))

    def client(db=0):
        return redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_cert_reqs="none",
                           socket_timeout=20, db=db)

    plain = client()
    assert plain.set("where", "db0")
    # SELECT: its own connection, and its own database from then on.
    selected = client(db=3)  # redis-py sends SELECT 3 first
    assert selected.set("where", "db3")
    assert selected.get("where") == b"db3"
    assert plain.get("where") == b"db0"
    # MULTI/EXEC
    tx = client()
    pipe = tx.pipeline(transaction=True)
    pipe.set("t1", "a").incr("t2").get("t1")
    assert pipe.execute() == [True, 1, b"a"]
    assert plain.get("t1") == b"a"
    # SUBSCRIBE: messages arrive while others run commands.
    sub = client().pubsub()
    sub.subscribe("news")
    assert sub.get_message(timeout=5)["type"] == "subscribe"
    # BLPOP blocks its own connection only.
    popped = []
    blocker = threading.Thread(target=lambda: popped.append(client().blpop("queue", timeout=10)))
    blocker.start()
    time.sleep(0.5)
    begun = time.monotonic()
    for i in range(200):
        assert plain.set(f"busy{i}", i)
        assert plain.get(f"busy{i}") == str(i).encode()
    assert time.monotonic() - begun < 5  # not held up behind the BLPOP
    assert plain.publish("news", "hello") == 1
    message = sub.get_message(timeout=5)
    assert message and message["data"] == b"hello"
    assert plain.rpush("queue", "item") >= 1
    blocker.join(timeout=10)
    assert popped == [(b"queue", b"item")]
    # XREAD with BLOCK pins too, and returns what comes.
    reader = client()
    got = []
    t = threading.Thread(target=lambda: got.append(reader.xread({"stream": "$"}, block=5000)))
    t.start()
    time.sleep(0.3)
    plain.xadd("stream", {"f": "v"})
    t.join(timeout=10)
    assert got and got[0][0][0] == b"stream"
    # The shard: the shared connections (one per worker at most) plus one per pinned client:
    # selected, tx, sub, the BLPOP's client (closed by now or not) and reader.
    assert proxy_connections(plain_shard) <= 2 + 5
    sub.close()


def test_inline_commands_and_half_close_still_work(direct, plain_shard):
    port = free_port()
    started(direct, db_section("db1", port, plain_shard, "tls_mode = disabled\n"))
    with raw(port) as s:
        # Framed requests, then an inline one: the replies come in order, then the end.
        s.sendall(command("SET", "h", "1") + command("INCR", "h") + b"GET h\r\n")
        s.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := s.recv(4096):
            received += chunk
    assert received == b"+OK\r\n:2\r\n$1\r\n2\r\n"
    with raw(port) as s:  # framed only: the proxy ends the stream once the replies are out
        s.sendall(command("PING") + command("ECHO", "bye"))
        s.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := s.recv(4096):
            received += chunk
    assert received == b"+PONG\r\n$3\r\nbye\r\n"


def test_a_client_pinned_long_after_it_connected_gets_its_connection(direct, plain_shard):
    """The shard connection's 5 s to connect count from the pin, not from the accept."""
    port = free_port()
    started(direct, db_section("db1", port, plain_shard, "tls_mode = disabled\n"))
    with raw(port) as s:
        s.sendall(command("PING"))
        assert read_exactly(s, 7) == b"+PONG\r\n"
        time.sleep(6)
        s.sendall(command("SELECT", "2") + command("SET", "late", "1") + command("GET", "late"))
        want = b"+OK\r\n+OK\r\n$1\r\n1\r\n"
        assert read_exactly(s, len(want)) == want
        time.sleep(1)  # well past any deadline counted from the accept
        s.sendall(command("GET", "late"))
        assert read_exactly(s, 7) == b"$1\r\n1\r\n"


def test_a_slow_reader_does_not_stall_the_others(direct, plain_shard):
    port = free_port()
    started(direct, db_section("db1", port, plain_shard, "tls_mode = disabled\n"))
    big = "z" * 100_000
    setter = redis.Redis(host="127.0.0.1", port=port, socket_timeout=20)
    assert setter.set("big", big)
    slow = raw(port)
    n = 100  # 10 MB of replies that the slow client does not read for now
    slow.sendall(command("GET", "big") * n)
    time.sleep(0.5)
    fast = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    begun = time.monotonic()
    for i in range(300):
        assert fast.set(f"f{i}", i) and fast.get(f"f{i}") == str(i).encode()
    assert time.monotonic() - begun < 5
    # Now the slow client reads all of its replies, intact and in order.
    one = b"$100000\r\n" + big.encode() + b"\r\n"
    for _ in range(n):
        assert read_exactly(slow, len(one)) == one
    slow.close()


def test_a_killed_shard_connection_closes_only_the_affected_clients(direct, plain_shard):
    port = free_port()
    started(direct, db_section("db1", port, plain_shard, "tls_mode = disabled\n"))
    admin = redis.Redis(host="127.0.0.1", port=plain_shard, socket_timeout=10)
    pinned = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10, db=0)
    pinned.execute_command("SELECT", 0)
    idle = raw(port)
    idle.sendall(command("PING"))
    assert read_exactly(idle, 7) == b"+PONG\r\n"
    victim = raw(port)
    victim.sendall(command("ECHO", "marker"))
    assert read_exactly(victim, 12) == b"$6\r\nmarker\r\n"
    shared = [c for c in admin.client_list() if c["cmd"] == "echo"]
    assert len(shared) == 1, admin.client_list()
    # Writes wait while the shard is paused: the victim's SET is in flight when its
    # shared connection is killed.
    admin.execute_command("CLIENT", "PAUSE", "5000", "WRITE")
    try:
        victim.sendall(command("SET", "lost", "1"))
        time.sleep(0.3)
        admin.execute_command("CLIENT", "KILL", "ID", shared[0]["id"])
        victim.settimeout(5)
        try:
            assert victim.recv(100) == b""  # closed, never someone else's reply
        except ConnectionResetError:
            pass
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
    # The idle client (no request in flight) and the pinned one go on.
    idle.sendall(command("ECHO", "still"))
    assert read_exactly(idle, 11) == b"$5\r\nstill\r\n"
    assert pinned.ping()
    victim.close()
    idle.close()


def test_large_values_both_ways(direct, plain_shard):
    port = free_port()
    started(direct, db_section("db1", port, plain_shard, "tls_mode = enabled\n"))
    value = os.urandom(3 * 1024 * 1024 + 17)
    uploader = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_cert_reqs="none",
                           socket_timeout=30)
    assert uploader.set("huge", value)
    assert uploader.get("huge") == value
    results = []

    def fetch():
        c = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_cert_reqs="none",
                        socket_timeout=30)
        pipe = c.pipeline(transaction=False)
        pipe.get("huge").echo("after").get("huge")
        results.append(pipe.execute())

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 6
    for r in results:
        assert r == [value, b"after", value]


def test_multiplex_no_gives_each_client_its_own_connection(direct, plain_shard):
    port = free_port()
    started(direct, db_section("db1", port, plain_shard, "tls_mode = disabled\nmultiplex = no\n"))
    clients = [redis.Redis(host="127.0.0.1", port=port, socket_timeout=10) for _ in range(10)]
    for c in clients:
        assert c.ping()
    assert proxy_connections(plain_shard) == 10
    # And a bad value is refused with the line and the fix.
    port2 = free_port()
    proxy = direct(databases_text=db_section("db1", port2, plain_shard, "multiplex = maybe\n"))
    assert proxy.start().wait(timeout=20) == 1
    assert "multiplex 'maybe' is not yes or no" in proxy.output()


@pytest.fixture
def shard_pki(scratch):
    """A CA, and a shard certificate of it that names another host (not 127.0.0.1)."""
    d = scratch("shard-host")

    def run(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", d / "ca.key", "-out", d / "ca.pem", "-days", "2", "-subj", "/CN=Shard CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", d / "other.key", "-out", d / "other.csr", "-subj", "/CN=other")
    (d / "ext.cnf").write_text("subjectAltName=DNS:other.example,IP:10.9.9.9\n")
    run("x509", "-req", "-in", d / "other.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
        "-CAcreateserial", "-out", d / "other.pem", "-days", "2", "-extfile", d / "ext.cnf")
    return d


def test_the_shard_must_be_the_host_it_is_named_by(direct, scratch, shard_pki):
    """The shard's certificate chains to the CA but names another host: refused."""
    d = shard_pki
    shard_port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", "0", "--tls-port", str(shard_port),
                             "--bind", "127.0.0.1", "--tls-cert-file", str(d / "other.pem"),
                             "--tls-key-file", str(d / "other.key"),
                             "--tls-ca-cert-file", str(d / "ca.pem"), "--tls-auth-clients", "no",
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _connects(shard_port), what="redis-server on its TLS port")
        port = free_port()
        proxy = started(direct, db_section(
            "db1", port, shard_port,
            f"shard_tls = yes\nshard_cert_file = {d / 'other.pem'}\n"
            f"shard_key_file = {d / 'other.key'}\nshard_ca_file = {d / 'ca.pem'}\n"
            "tls_mode = disabled\n"))
        with pytest.raises(redis.exceptions.ConnectionError):
            redis.Redis(host="127.0.0.1", port=port, socket_timeout=10).ping()
        wait_for(lambda: "certificate verify failed: IP address mismatch" in proxy.output(),
                 what="the host mismatch in the log")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_blocking_client_takes_over_a_tls_shared_connection(direct, tls_shard):
    """A client that blocks takes over its idle shared connection (mux_hand_over): over TLS to
    the shard, the connection's TLS state must follow it to its new owner, where it used to
    point into the freed shared connection (ASan: a use after free on the next reply)."""
    shard_port, cert, key, ca = tls_shard
    port = free_port()
    started(direct, db_section(
        "db1", port, shard_port,
        f"shard_tls = yes\nshard_cert_file = {cert}\nshard_key_file = {key}\n"
        f"shard_ca_file = {ca}\ntls_mode = disabled\n"))
    blocker = redis.Redis(host="127.0.0.1", port=port, socket_timeout=15)
    assert blocker.set("warm", "up")  # the shared connection is open, TLS done, and idle
    popped = []
    thread = threading.Thread(target=lambda: popped.append(blocker.blpop("tq", timeout=10)))
    thread.start()
    time.sleep(0.5)
    other = redis.Redis(host="127.0.0.1", port=port, socket_timeout=15)
    assert other.rpush("tq", "item") >= 1
    thread.join(timeout=15)
    assert popped == [(b"tq", b"item")]
    # The connection it took over goes on carrying its commands, both ways, over TLS.
    for i in range(50):
        assert blocker.set(f"after{i}", "x" * (i * 100))
        assert blocker.get(f"after{i}") == b"x" * (i * 100)
    assert other.get("after49") == b"x" * 4900


def test_the_shard_connection_follows_the_data_plane_minimum(direct, tls_shard, scratch):
    """The proxy's TLS file says 1.3 at least: a shard that speaks only 1.2 is refused."""
    shard_port, cert, key, ca = tls_shard
    shard_tls = (f"shard_tls = yes\nshard_cert_file = {cert}\nshard_key_file = {key}\n"
                 f"shard_ca_file = {ca}\ntls_mode = disabled\n")
    port = free_port()
    proxy = direct(databases_text=db_section("db1", port, shard_port, shard_tls))
    proxy.tls.write_text(f"cert_file = {proxy.cert}\nkey_file = {proxy.key}\nmin_version = 1.3\n")
    proxy.start()
    proxy.notify.wait_for("READY=1")
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    assert client.set("v13", "yes")  # the shard speaks 1.3 too
    twelve_port = free_port()
    twelve = subprocess.Popen(["redis-server", "--port", "0", "--tls-port", str(twelve_port),
                               "--bind", "127.0.0.1", "--tls-cert-file", str(cert),
                               "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                               "--tls-protocols", "TLSv1.2", "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _connects(twelve_port), what="redis-server speaking TLS 1.2 only")
        port2 = free_port()
        proxy2 = direct(databases_text=db_section("db1", port2, twelve_port, shard_tls))
        proxy2.tls.write_text(f"cert_file = {proxy2.cert}\nkey_file = {proxy2.key}\n"
                              "min_version = 1.3\n")
        proxy2.start()
        proxy2.notify.wait_for("READY=1")
        with pytest.raises(redis.exceptions.ConnectionError):
            redis.Redis(host="127.0.0.1", port=port2, socket_timeout=10).ping()
        wait_for(lambda: f"TLS handshake failed with shard 127.0.0.1:{twelve_port}"
                 in proxy2.output(), what="the refused version in the log")
    finally:
        twelve.terminate()
        twelve.wait(timeout=10)


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
