"""certvisor-sentinel, the discovery service: Redis Sentinel's client protocol with the endpoints
of the node's databases, on one port that takes TLS, plain or both as sentinel_tls_mode says.
Real clients only: redis-cli, redis-py's Sentinel, openssl s_client, and raw sockets where the
exact bytes matter (compared with what Redis 7.0's own Sentinel sends)."""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import textwrap
import time

import pytest
import redis
from redis.sentinel import MasterNotFoundError, Sentinel

from conftest import BUILD, SANITIZER_MARKERS, NotifyListener, wait_for
from test_apply import external_pair
from test_certs import free_port, state

SENTINEL = BUILD / "certvisor-sentinel"
PROXY = BUILD / "certvisor-proxy"
CERTVISORD = BUILD / "certvisord"
openssl = shutil.which("openssl")
redis_cli = shutil.which("redis-cli")

REFUSAL = b"-ERR TLS is required on this port (sentinel_tls_mode is required): connect with TLS\r\n"

# The fields of a master, in Redis 7.0 Sentinel's order.
MASTER_FIELDS = ["name", "ip", "port", "runid", "flags", "link-pending-commands", "link-refcount",
                 "last-ping-sent", "last-ok-ping-reply", "last-ping-reply", "down-after-milliseconds",
                 "info-refresh", "role-reported", "role-reported-time", "config-epoch", "num-slaves",
                 "num-other-sentinels", "quorum", "failover-timeout", "parallel-syncs"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1 from it (cert, key, ca), made with openssl."""
    return external_pair(tmp_path_factory.mktemp("sentinel-pki"))


def tls_file(path, pki, mode="allowed", min_version="1.2"):
    cert, key, _ = pki
    lines = [f"cert_file = {cert}", f"key_file = {key}", f"min_version = {min_version}"]
    if min_version in ("1", "1.1"):
        lines.append("security_level = 0")  # as certvisord renders it: OpenSSL 3 needs it
    lines += ["verify_peer = none", f"tls_mode = {mode}"]
    path.write_text("\n".join(lines) + "\n")
    return path


DBS = {
    "db1": {"listen": "127.0.0.1", "port": 12000, "advertise": "127.0.0.1", "shard": "127.0.0.1:12100"},
    "db2": {"listen": "0.0.0.0", "port": 12001, "shard": "127.0.0.1:12101"},
    "db3": {"listen": "127.0.0.7", "port": 12002, "shard": "127.0.0.1:12102"},
    "db4": {"listen": "0.0.0.0", "port": 12003, "advertise": "db.example.com", "shard": "127.0.0.1:12103"},
}


def databases_file(path, dbs):
    """The rendered database list (lib/db_config.h's format)."""
    text = "# Rendered by certvisord; changes here are overwritten.\n"
    for name in sorted(dbs):
        db = dbs[name]
        text += f"\n[{name}]\n"
        for key in ("listen", "port", "advertise", "shard"):
            if key in db:
                text += f"{key} = {db[key]}\n"
        text += f"shard_tls = no\ntls_mode = {db.get('tls_mode', 'enabled')}\nclient_verify = none\n"
    path.write_text(text)
    return path


class SentinelProcess:
    """certvisor-sentinel started directly, with a NOTIFY_SOCKET the test owns."""

    def __init__(self, root, config, databases, port=None, extra_args=()):
        self.root = root
        self.port = port or free_port()
        self.log = root / f"sentinel-{self.port}.log"
        self.notify = NotifyListener(root / f"notify-{self.port}.sock")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NOTIFY_SOCKET": self.notify.path}
        for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if key in os.environ:
                env[key] = os.environ[key]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(SENTINEL), "--config", str(config), "--databases", str(databases),
                 "--port", str(self.port), "--bind", "127.0.0.1", "--verbose", *extra_args],
                stdout=log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"certvisor-sentinel exited with {self.proc.returncode}:\n"
                                     f"{self.log_text()}")
            return any("READY=1" in m for m in self.notify.drain())

        wait_for(ready, 15, what="READY=1 from certvisor-sentinel")
        return self

    def wait_exit(self, timeout=15):
        self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.notify.close()


@pytest.fixture
def sentinel_factory(tmp_path, pki):
    """make(mode, min_version, dbs) -> a ready certvisor-sentinel; each must end with exit 0."""
    assert SENTINEL.exists(), f"{SENTINEL} is missing: build first"
    tmp_path.chmod(0o755)
    started = []

    def make(mode="allowed", min_version="1.2", dbs=None, ready=True, extra_args=(), config=None,
             databases=None):
        n = len(started)
        config = config or tls_file(tmp_path / f"tls{n}.conf", pki, mode, min_version)
        databases = databases or databases_file(tmp_path / f"dbs{n}.conf", DBS if dbs is None else dbs)
        process = SentinelProcess(tmp_path, config, databases, extra_args=extra_args)
        started.append(process)
        return process.wait_ready() if ready else process

    yield make
    problems = []
    for process in started:
        status = process.stop()
        if status != 0 and not getattr(process, "expected_failure", False):
            problems.append(f"exit status {status}:\n{process.log_text()}")
        if any(marker in process.log_text() for marker in SANITIZER_MARKERS):
            problems.append(process.log_text()[-6000:])
        process.cleanup()
    assert not problems, "\n".join(problems)


# --- clients -----------------------------------------------------------------------------------

def cli(port, *args, ca=None):
    """redis-cli, plain or (with ca) over TLS, as an operator would type it."""
    tls = ["--tls", "--cacert", str(ca)] if ca else []
    return subprocess.run([redis_cli, "-h", "127.0.0.1", "-p", str(port), *tls, *args],
                          capture_output=True, text=True, timeout=20)


def tls_context(ca):
    context = ssl.create_default_context(cafile=str(ca))
    return context


def connect(port, ca=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if ca is None:
        return raw
    return tls_context(ca).wrap_socket(raw, server_hostname="127.0.0.1")


def exchange(port, data, ca=None, expect_close=False, want=None):
    """Sends data and reads the reply: until want bytes came, the server closed (when expected),
    or nothing more came for half a second."""
    sock = connect(port, ca)
    try:
        sock.sendall(data)
        got, closed = b"", False
        sock.settimeout(0.5 if not expect_close and want is None else 10)
        while want is None or len(got) < want:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ssl.SSLError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
        return got, closed
    finally:
        sock.close()


def s_client(port, *flags, ca):
    return subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-brief",
                           "-CAfile", str(ca), "-verify_return_error", *flags],
                          input="", capture_output=True, text=True, timeout=20)


def sentinel_client(port, ca=None):
    kwargs = {"socket_timeout": 10}
    if ca:
        kwargs.update(ssl=True, ssl_ca_certs=str(ca))
    return Sentinel([("127.0.0.1", port)], sentinel_kwargs=kwargs)


# --- the service on its own ----------------------------------------------------------------------

def test_redis_cli_discovers_databases_plain_and_over_tls(sentinel_factory, pki):
    sentinel = sentinel_factory()
    ca = pki[2]
    for ca_or_plain in (None, ca):
        out = cli(sentinel.port, "SENTINEL", "get-master-addr-by-name", "db1", ca=ca_or_plain)
        assert (out.returncode, out.stdout.split()) == (0, ["127.0.0.1", "12000"]), out.stderr
    # The advertised host; else the listen address; the local host for a wildcard listen.
    expected = {"db2": "127.0.0.1", "db3": "127.0.0.7", "db4": "db.example.com"}
    for name, host in expected.items():
        out = cli(sentinel.port, "SENTINEL", "get-master-addr-by-name", name, ca=ca)
        assert out.stdout.split() == [host, str(DBS[name]["port"])]
    # An unknown name is nil, as real Sentinel answers, not an error.
    assert exchange(sentinel.port, b"SENTINEL get-master-addr-by-name nope\r\n", want=5)[0] == b"*-1\r\n"
    assert "TLS connection from 127.0.0.1" in sentinel.log_text()


@pytest.mark.parametrize("mode", ["allowed", "required", "disabled"])
def test_sentinel_tls_mode_decides_who_is_served(sentinel_factory, pki, mode):
    sentinel = sentinel_factory(mode)
    ca = pki[2]
    request = b"*3\r\n$8\r\nSENTINEL\r\n$23\r\nget-master-addr-by-name\r\n$3\r\ndb1\r\n"
    answer = b"*2\r\n$9\r\n127.0.0.1\r\n$5\r\n12000\r\n"
    plain = cli(sentinel.port, "SENTINEL", "get-master-addr-by-name", "db1")
    tls = cli(sentinel.port, "SENTINEL", "get-master-addr-by-name", "db1", ca=ca)
    if mode == "required":
        # A plain client is told why, then the connection closes.
        assert "ERR TLS is required on this port (sentinel_tls_mode is required)" in plain.stdout
        assert exchange(sentinel.port, request, expect_close=True) == (REFUSAL, True)
        assert "Refused a plain connection from 127.0.0.1" in sentinel.log_text()
    else:
        assert plain.stdout.split() == ["127.0.0.1", "12000"], plain.stdout + plain.stderr
        assert exchange(sentinel.port, request, want=len(answer))[0] == answer
    if mode == "disabled":
        # A TLS client gets a handshake_failure alert: it cannot negotiate TLS here.
        assert tls.returncode != 0 and "alert handshake failure" in tls.stderr, tls.stderr
        with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
            connect(sentinel.port, ca)
        assert "Refused a TLS connection from 127.0.0.1" in sentinel.log_text()
        assert "sentinel_tls_mode is disabled" in sentinel.log_text()
    else:
        assert tls.stdout.split() == ["127.0.0.1", "12000"], tls.stdout + tls.stderr
        assert exchange(sentinel.port, request, ca=ca, want=len(answer))[0] == answer


@pytest.mark.parametrize("min_version,accepted", [
    ("1.1", {"-tls1_1", "-tls1_2", "-tls1_3"}),
    ("1.2", {"-tls1_2", "-tls1_3"}),
    ("1.3", {"-tls1_3"}),
])
def test_the_minimum_tls_version_comes_from_the_tls_file(sentinel_factory, pki, min_version, accepted):
    sentinel = sentinel_factory("allowed", min_version)
    for flag in ("-tls1_1", "-tls1_2", "-tls1_3"):
        # The client's own floor is lowered, so a refusal is the server's.
        extra = ["-cipher", "DEFAULT@SECLEVEL=0"] if flag == "-tls1_1" else []
        out = s_client(sentinel.port, flag, *extra, ca=pki[2])
        if flag in accepted:
            version = {"-tls1_1": "TLSv1.1", "-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}[flag]
            assert out.returncode == 0 and f"Protocol version: {version}" in out.stderr, out.stderr
        else:
            assert out.returncode != 0, f"{flag} accepted with min_version {min_version}"
            assert "CONNECTION ESTABLISHED" not in out.stderr


def test_redis_py_sentinel_discovers_db1(sentinel_factory, pki):
    sentinel = sentinel_factory()
    for ca in (pki[2], None):
        client = sentinel_client(sentinel.port, ca)
        assert client.discover_master("db1") == ("127.0.0.1", 12000)
        assert client.discover_slaves("db1") == []
        with pytest.raises(MasterNotFoundError):
            client.discover_master("nope")
        node = client.sentinels[0]
        state_ = node.sentinel_master("db1")
        assert state_["is_master"] and not state_["is_sdown"] and not state_["is_odown"]
        assert client.check_master_state(state_, "db1")
        assert (state_["ip"], state_["port"], state_["num-other-sentinels"]) == ("127.0.0.1", 12000, 0)
        assert sorted(node.sentinel_masters()) == ["db1", "db2", "db3", "db4"]
        assert node.sentinel_slaves("db1") == [] and node.sentinel_sentinels("db1") == []
        assert node.sentinel_get_master_addr_by_name("db3") == (b"127.0.0.7", 12002)
        assert node.sentinel_get_master_addr_by_name("nope") is None
        with pytest.raises(redis.ResponseError, match="No such master with that name"):
            node.sentinel_master("nope")
        assert node.ping() is True
        # What clients send on connect: a name, a password for a Sentinel without one.
        named = redis.Redis("127.0.0.1", sentinel.port, client_name="app", socket_timeout=10,
                            **({"ssl": True, "ssl_ca_certs": str(ca)} if ca else {}))
        assert named.client_getname() == "app"
        with pytest.raises(redis.ResponseError, match="called without any password configured"):
            redis.Redis("127.0.0.1", sentinel.port, password="secret", socket_timeout=10).ping()


# Requests and Redis 7.0.15's Sentinel's replies to them, byte for byte.
SAME_AS_REDIS = [
    (b"PING\r\n", b"+PONG\r\n"),
    (b"PING hello\r\n", b"$5\r\nhello\r\n"),
    (b"ping a b\r\n", b"-ERR wrong number of arguments for 'ping' command\r\n"),
    (b"FOO a b \"c d\"\r\n", b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' 'c d' \r\n"),
    (b"foo\r\n", b"-ERR unknown command 'foo', with args beginning with: \r\n"),
    (b"SELECT 1\r\n", b"-ERR unknown command 'SELECT', with args beginning with: '1' \r\n"),
    (b"SENTINEL\r\n", b"-ERR wrong number of arguments for 'sentinel' command\r\n"),
    (b"SENTINEL foo a\r\n", b"-ERR unknown subcommand 'foo'. Try SENTINEL HELP.\r\n"),
    (b"SENTINEL get-master-addr-by-name\r\n",
     b"-ERR wrong number of arguments for 'sentinel|get-master-addr-by-name' command\r\n"),
    (b"SENTINEL MASTERS x\r\n", b"-ERR wrong number of arguments for 'sentinel|masters' command\r\n"),
    (b"SENTINEL master nope\r\n", b"-ERR No such master with that name\r\n"),
    (b"SENTINEL replicas nope\r\n", b"-ERR No such master with that name\r\n"),
    (b"SENTINEL slaves db1\r\n", b"*0\r\n"),
    (b"SENTINEL sentinels db1\r\n", b"*0\r\n"),
    (b"AUTH x\r\n", b"-ERR AUTH <password> called without any password configured for the default "
                    b"user. Are you sure your configuration is correct?\r\n"),
    (b"AUTH default x\r\n", b"+OK\r\n"),
    (b"AUTH bob x\r\n", b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
    (b"CLIENT SETNAME \"a b\"\r\n",
     b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"),
    (b"CLIENT SETNAME a b\r\n", b"-ERR wrong number of arguments for 'client|setname' command\r\n"),
    (b"CLIENT FOO\r\n", b"-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n"),
    (b"CLIENT GETNAME\r\n", b"$-1\r\n"),
    (b"CLIENT SETNAME abc\r\nCLIENT GETNAME\r\n", b"+OK\r\n$3\r\nabc\r\n"),
    (b"\r\n*0\r\n*-1\r\nPING\nPING\r\n", b"+PONG\r\n+PONG\r\n"),
    (b"foo \"a\\r\\nb\"\r\n", b"-ERR unknown command 'foo', with args beginning with: 'a  b' \r\n"),
]


def test_replies_and_errors_are_redis_sentinels(sentinel_factory, pki):
    sentinel = sentinel_factory()
    for request, reply in SAME_AS_REDIS:
        for ca in (None, pki[2]):
            got = exchange(sentinel.port, request, ca=ca, want=len(reply))[0]
            assert got == reply, f"{request!r} over {'TLS' if ca else 'plain'}"
    # Nothing more than the reply came.
    assert exchange(sentinel.port, b"PING\r\n")[0] == b"+PONG\r\n"


def test_sentinel_master_lists_the_fields_sentinel_does(sentinel_factory):
    sentinel = sentinel_factory()
    node = redis.Redis("127.0.0.1", sentinel.port, socket_timeout=10)
    raw = node.execute_command("SENTINEL", "MASTER", "db1")  # the flat field/value array
    fields = [field.decode() for field in raw[::2]]
    assert fields == MASTER_FIELDS
    values = dict(zip(fields, (value.decode() for value in raw[1::2])))
    assert values["flags"] == values["role-reported"] == "master"
    assert len(values["runid"]) == 40
    help_lines = node.execute_command("SENTINEL", "HELP")
    assert help_lines[0].startswith(b"SENTINEL <subcommand>") and b"MASTERS" in help_lines
    with pytest.raises(redis.ResponseError, match="SENTINEL FAILOVER is not supported"):
        node.execute_command("SENTINEL", "FAILOVER", "db1")
    # Redis 7.2's CLIENT SETINFO, which newer clients send on connect.
    assert node.execute_command("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == b"OK"


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_pipelined_requests_are_all_answered_in_order(sentinel_factory, pki, tls):
    sentinel = sentinel_factory()
    ca = pki[2] if tls else None
    # Far more replies than the service buffers before it waits for the client to read.
    n = 20000
    batch = b"".join(b"PING %d\r\n" % i if i % 2 else b"*2\r\n$4\r\nPING\r\n$%d\r\n%d\r\n" % (len(str(i)), i)
                     for i in range(n))
    expected = b"".join(b"$%d\r\n%d\r\n" % (len(str(i)), i) for i in range(n))
    sock = connect(sentinel.port, ca)
    sock.sendall(batch)
    got = b""
    sock.settimeout(20)
    while len(got) < len(expected):
        chunk = sock.recv(65536)
        assert chunk, "the connection closed before every reply came"
        got += chunk
    assert got == expected
    # A request that arrives a few bytes at a time is answered once it is whole.
    request = b"*3\r\n$8\r\nSENTINEL\r\n$23\r\nget-master-addr-by-name\r\n$3\r\ndb1\r\n"
    for i in range(0, len(request), 3):
        sock.sendall(request[i:i + 3])
        time.sleep(0.005)
    assert sock.recv(65536) == b"*2\r\n$9\r\n127.0.0.1\r\n$5\r\n12000\r\n"
    sock.close()


def test_a_request_over_the_limits_is_refused_and_the_connection_closed(sentinel_factory):
    sentinel = sentinel_factory()
    big = b"x" * 5000
    assert exchange(sentinel.port, b"*2\r\n$4\r\nPING\r\n$5000\r\n" + big + b"\r\n", expect_close=True) == \
        (b"-ERR Protocol error: argument too long (at most 4096 bytes)\r\n", True)
    assert exchange(sentinel.port, b"PING " + big * 2, expect_close=True) == \
        (b"-ERR Protocol error: too big inline request\r\n", True)
    assert exchange(sentinel.port, b"*17\r\n", expect_close=True) == \
        (b"-ERR Protocol error: too many arguments (at most 16)\r\n", True)
    assert exchange(sentinel.port, b"*1\r\nx\r\n", expect_close=True) == \
        (b"-ERR Protocol error: expected '$', got 'x'\r\n", True)
    # The service goes on serving.
    assert cli(sentinel.port, "PING").stdout.strip() == "PONG"


def test_start_failures_are_explained_and_exit_1(sentinel_factory, pki, tmp_path):
    def fails(expected, **kwargs):
        process = sentinel_factory(ready=False, **kwargs)
        process.expected_failure = True
        assert process.wait_exit() == 1
        assert expected in process.log_text(), process.log_text()
        assert not any("READY=1" in m for m in process.notify.drain())

    fails(f"Cannot start: {tmp_path / 'missing.conf'}: cannot read",
          databases=tmp_path / "missing.conf")
    no_mode = tmp_path / "no-mode.conf"
    no_mode.write_text(tls_file(tmp_path / "t.conf", pki).read_text().replace("tls_mode = allowed\n", ""))
    fails(f"Cannot start: {no_mode} has no tls_mode: the sentinel reads a file rendered for the "
          "sentinel plane", config=no_mode)
    mismatched = tmp_path / "mismatched.conf"
    mismatched.write_text(tls_file(tmp_path / "t.conf", pki).read_text().replace(
        f"key_file = {pki[1]}", f"key_file = {pki[2].parent / 'ca.key'}"))
    fails("does not match cert_file", config=mismatched)
    bad_db = tmp_path / "bad-db.conf"
    bad_db.write_text("[db1]\nport = 12000\n")
    fails("database 'db1' needs port and shard", databases=bad_db)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        fails(f"Cannot start: cannot listen on 127.0.0.1:{port}: Address already in use",
              extra_args=("--port", str(port)))


def test_sigterm_ends_it_cleanly_with_clients_connected(sentinel_factory, pki):
    sentinel = sentinel_factory()
    plain, tls = connect(sentinel.port), connect(sentinel.port, pki[2])
    half = connect(sentinel.port)
    half.sendall(b"*2\r\n$4\r\nPI")  # a request cut short
    tls.sendall(b"PING\r\n")
    assert tls.recv(100) == b"+PONG\r\n"
    assert sentinel.stop() == 0
    sentinel.notify.wait_for("STOPPING=1", 5)  # the listener thread may not have read it yet
    tls.settimeout(5)
    assert tls.recv(100) == b""  # closed cleanly (close_notify), not reset
    for sock in (plain, tls, half):
        sock.close()


def ask_master(sock, name):
    """SENTINEL get-master-addr-by-name on a connection the test keeps open."""
    sock.sendall(b"SENTINEL get-master-addr-by-name %s\r\n" % name.encode())
    sock.settimeout(10)
    got = b""
    while got.count(b"\r\n") < (1 if got.startswith(b"*-1") else 5):
        chunk = sock.recv(4096)
        assert chunk, f"closed after {got!r}"
        got += chunk
    return got


def test_sighup_reloads_both_files_and_keeps_open_connections(sentinel_factory, pki, tmp_path):
    config = tls_file(tmp_path / "reloaded-tls.conf", pki, "allowed", "1.2")
    databases = databases_file(tmp_path / "reloaded-dbs.conf", {"db1": DBS["db1"]})
    sentinel = sentinel_factory(config=config, databases=databases)
    ca = pki[2]
    plain, tls = connect(sentinel.port), connect(sentinel.port, ca)
    assert ask_master(plain, "db2") == b"*-1\r\n"
    assert ask_master(tls, "db1") == b"*2\r\n$9\r\n127.0.0.1\r\n$5\r\n12000\r\n"
    pid = sentinel.proc.pid

    tls_file(config, pki, "required", "1.3")
    databases_file(databases, {"db1": DBS["db1"], "db2": {**DBS["db2"], "advertise": "127.0.0.2"}})
    sentinel.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "Reloaded: sentinel_tls_mode required, TLS 1.3 and above, 2 databases"
             in sentinel.log_text(), what="the reload")
    sentinel.notify.wait_for("RELOADING=1", 5)
    wait_for(lambda: sum("READY=1" in m for m in sentinel.notify.drain()) == 2, 5,
             what="READY=1 after the reload")
    assert sentinel.proc.pid == pid and sentinel.proc.poll() is None
    # Open connections are kept, in the mode they were taken in; the databases are the new ones.
    assert ask_master(plain, "db2") == b"*2\r\n$9\r\n127.0.0.2\r\n$5\r\n12001\r\n"
    assert ask_master(tls, "db2") == b"*2\r\n$9\r\n127.0.0.2\r\n$5\r\n12001\r\n"
    # New ones get the new mode and minimum version.
    assert exchange(sentinel.port, b"PING\r\n", expect_close=True)[0] == REFUSAL
    assert s_client(sentinel.port, "-tls1_2", ca=ca).returncode != 0
    assert s_client(sentinel.port, "-tls1_3", ca=ca).returncode == 0

    # A reload that fails changes nothing and ends the service (status 1, the reason logged):
    # certvisord takes that as the change failing and rolls it back.
    config.write_text(config.read_text().replace("tls_mode = required", "tls_mode = sometimes"))
    sentinel.proc.send_signal(signal.SIGHUP)
    assert sentinel.wait_exit() == 1
    sentinel.expected_failure = True
    assert "tls_mode 'sometimes' is not allowed, required or disabled" in sentinel.log_text()
    for sock in (plain, tls):
        sock.close()


@pytest.mark.skipif(not PROXY.exists(), reason="certvisor-proxy is not built (services/proxy)")
@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")
def test_redis_py_master_for_reads_and_writes_through_the_proxy(sentinel_factory, pki, tmp_path):
    shard_port, endpoint_port = free_port(), free_port()
    shard = subprocess.Popen(["redis-server", "--port", str(shard_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    dbs = databases_file(tmp_path / "proxy-dbs.conf", {"db1": {
        "listen": "127.0.0.1", "port": endpoint_port, "advertise": "127.0.0.1",
        "shard": f"127.0.0.1:{shard_port}"}})
    proxy_tls = tmp_path / "proxy-tls.conf"
    proxy_tls.write_text(tls_file(tmp_path / "t.conf", pki).read_text().replace("tls_mode = allowed\n", ""))
    proxy_log = open(tmp_path / "proxy.log", "wb")
    proxy = subprocess.Popen([str(PROXY), "--config", str(proxy_tls), "--databases", str(dbs)],
                             stdout=proxy_log, stderr=subprocess.STDOUT)
    try:
        sentinel = sentinel_factory(databases=dbs)
        ca = str(pki[2])
        client = sentinel_client(sentinel.port, pki[2])
        wait_for(lambda: subprocess.run([redis_cli, "-p", str(shard_port), "PING"], capture_output=True,
                                        text=True).stdout.strip() == "PONG", what="the shard")
        master = client.master_for("db1", ssl=True, ssl_ca_certs=ca, socket_timeout=10)
        wait_for(lambda: _answers(master), what="the proxy's endpoint")
        master.set("sentinel-key", "through the proxy")
        assert master.get("sentinel-key") == b"through the proxy"
        assert master.connection_pool.get_master_address() == ("127.0.0.1", endpoint_port)
        # And the shard behind it holds the key.
        out = subprocess.run([redis_cli, "-p", str(shard_port), "GET", "sentinel-key"],
                             capture_output=True, text=True)
        assert out.stdout.strip() == "through the proxy"
    finally:
        proxy.terminate()
        shard.terminate()
        proxy.wait(timeout=10)
        shard.wait(timeout=10)
        proxy_log.close()


def _answers(client):
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


# --- under certvisord ---------------------------------------------------------------------------

def sentinel_service(port):
    return f"""
        command          = "%{{libexec_dir}}/certvisor-sentinel"
        arguments        = {{"--config", "%{{run_dir}}/tls/sentinel_service.conf", "--databases",
                            "%{{run_dir}}/sentinel/databases.conf", "--port", "{port}",
                            "--bind", "127.0.0.1"}}
        databases_output = "%{{run_dir}}/sentinel/databases.conf"
        reload_signal    = HUP
        start_retries    = 0
        tls {{
            certificate = proxy
            plane       = sentinel
        }}
    """


DATABASE_SECTION = textwrap.dedent("""\
    database db1 {
        port      = 12000
        listen    = "127.0.0.1"
        advertise = "127.0.0.1"
        shard     = "127.0.0.1:12100"
        tls_mode  = enabled
    }
    """)


def agent_with_sentinel(agent_factory):
    """An agent running sentinel_service on a free port, or a skip when the agent cannot yet."""
    port = free_port()
    agent = agent_factory({"sentinel_service": sentinel_service(port)})
    (agent.conf_d / "db1.conf").write_text(DATABASE_SECTION)
    check = subprocess.run([str(CERTVISORD), "-c", str(agent.config), "--check"], capture_output=True,
                           text=True, timeout=30)
    if check.returncode != 0 and ("databases_output" in check.stderr or "database" in check.stderr):
        pytest.skip(f"certvisord does not render databases yet: {check.stderr.strip()[:200]}")
    assert check.returncode == 0, check.stderr
    agent.start()
    agent.wait_state("sentinel_service", "RUNNING")
    return agent, port


def discovers(port, ca=None):
    out = cli(port, "SENTINEL", "get-master-addr-by-name", "db1", ca=ca)
    return out.stdout.split() == ["127.0.0.1", "12000"]


def set_policy(agent, *words):
    out = agent.ctl("cluster", "config", *words)
    assert out.returncode == 0, out.stderr
    agent.wait_state("sentinel_service", "RUNNING")


def test_under_certvisord_the_policy_decides_and_a_change_reloads_it_in_place(agent_factory):
    agent, port = agent_with_sentinel(agent_factory)
    ca = state(agent, "ca.pem")
    rendered = (agent.prefix / "run/certvisor/sentinel/databases.conf").read_text()
    assert "[db1]" in rendered and "port = 12000" in rendered
    assert "tls_mode = allowed" in (agent.prefix / "run/certvisor/tls/sentinel_service.conf").read_text()
    assert discovers(port) and discovers(port, ca)
    pid = agent.pid_of("sentinel_service")
    client = connect(port)  # a Sentinel client that stays connected across every change
    assert ask_master(client, "db1").endswith(b"12000\r\n")

    plan = agent.ctl("cluster", "config", "sentinel_tls_mode", "required", "--dry-run").stdout
    assert "reload sentinel_service" in plan and "restart sentinel_service" not in plan, plan
    set_policy(agent, "sentinel_tls_mode", "required")
    assert agent.pid_of("sentinel_service") == pid, "restarted instead of reloaded"
    assert discovers(port, ca)
    out = cli(port, "SENTINEL", "get-master-addr-by-name", "db1")
    assert "ERR TLS is required on this port (sentinel_tls_mode is required)" in out.stdout
    assert ask_master(client, "db1").endswith(b"12000\r\n")  # taken before: kept

    set_policy(agent, "sentinel_ssl_policy", "disabled")  # the older spelling
    assert agent.pid_of("sentinel_service") == pid
    assert discovers(port)
    out = cli(port, "SENTINEL", "get-master-addr-by-name", "db1", ca=ca)
    assert out.returncode != 0 and "alert handshake failure" in out.stderr

    set_policy(agent, "sentinel_tls_mode", "allowed")
    set_policy(agent, "min_sentinel_TLS_version", "1.3")
    assert s_client(port, "-tls1_2", ca=ca).returncode != 0
    assert s_client(port, "-tls1_3", ca=ca).returncode == 0
    assert discovers(port) and discovers(port, ca)
    assert ask_master(client, "db1").endswith(b"12000\r\n")
    client.close()
    assert agent.pid_of("sentinel_service") == pid
    assert "Serving Sentinel discovery on 127.0.0.1" in agent.ctl("tail", "sentinel_service").stdout
    assert agent.log_text().count("Service 'sentinel_service' reloaded") == 4
