"""The admin-command policy of database endpoints: data clients cannot administer the shard.

Through the real proxy (test_proxy's Direct, two workers) in front of a real redis-server,
with multiplexing on (requests framed and checked one by one) and off (bytes copied and
scanned as they pass), every administrative command is refused with an error that names it
and the setting that would allow it, in its place among the replies, and the shard is left as
it was, still serving. allow_commands lets one through per database. redis-py, redis-cli and
raw sockets (inline commands, requests split across writes) are the clients.
"""
import socket
import subprocess
import time

import pytest
import redis

from conftest import CERTVISORD
from test_certs import free_port
from test_proxy import (PROXY, db_section, direct, plain_shard, scratch, started)  # noqa: F401
from test_proxy_isolation import client, raw, shard, start_endpoint
from test_proxy_mux import command

pytestmark = [
    pytest.mark.skipif(not PROXY.exists(), reason="certvisor-proxy not built"),
]

REFUSED = "is an administrative command, refused on the endpoint of database 'db1'"
REPLICATION_REFUSED = "is a replication command, refused on the endpoint of database 'db1'"

# (the request, how the error names it, whether it is a replication command)
ADMIN_REQUESTS = [
    (("SHUTDOWN", "NOSAVE"), "SHUTDOWN", False),
    (("shutdown",), "SHUTDOWN", False),
    (("CONFIG", "SET", "maxmemory", "1mb"), "CONFIG SET", False),
    (("config", "set", "tls-port", "1"), "CONFIG SET", False),
    (("CONFIG", "REWRITE"), "CONFIG REWRITE", False),
    (("CONFIG", "RESETSTAT"), "CONFIG RESETSTAT", False),
    (("DEBUG", "SLEEP", "0"), "DEBUG", False),
    (("REPLICAOF", "127.0.0.1", "1"), "REPLICAOF", False),
    (("SLAVEOF", "127.0.0.1", "1"), "SLAVEOF", False),
    (("FAILOVER",), "FAILOVER", False),
    (("MODULE", "LOAD", "/nonexistent.so"), "MODULE LOAD", False),
    (("MODULE", "UNLOAD", "x"), "MODULE UNLOAD", False),
    (("ACL", "SETUSER", "eve", "on", ">pw", "+@all", "~*"), "ACL SETUSER", False),
    (("ACL", "DELUSER", "default"), "ACL DELUSER", False),
    (("ACL", "SAVE"), "ACL SAVE", False),
    (("ACL", "LOAD"), "ACL LOAD", False),
    (("SAVE",), "SAVE", False),
    (("BGSAVE",), "BGSAVE", False),
    (("BGREWRITEAOF",), "BGREWRITEAOF", False),
    (("MIGRATE", "127.0.0.1", "1", "k", "0", "1000"), "MIGRATE", False),
    (("CLUSTER", "INFO"), "CLUSTER", False),
    (("LATENCY", "RESET"), "LATENCY RESET", False),
    (("SYNC",), "SYNC", True),
    (("PSYNC", "?", "-1"), "PSYNC", True),
    (("REPLCONF", "listening-port", "1"), "REPLCONF", True),
]


@pytest.fixture(params=["multiplexed", "own connections"])
def endpoint(request, direct, plain_shard):
    """(the proxy's port, the shard's port, the proxy), multiplexing on or off."""
    port, proxy = start_endpoint(direct, plain_shard, request.param)
    return port, plain_shard, proxy


def read_line(s):
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(1)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data


def shard_state(port):
    """What the refused commands would have changed on the shard."""
    s = shard(port)
    return {
        "role": s.execute_command("ROLE")[0],
        "maxmemory": s.config_get("maxmemory")["maxmemory"],
        "tls-port": s.config_get("tls-port")["tls-port"],
        "users": sorted(s.acl_users()),
        "modules": s.execute_command("MODULE", "LIST"),
        "rdb_saves": s.info("persistence")["rdb_saves"],
        "total_commands_processed_reset": False,
    }


def expected_error(shown, replication):
    return f"'{shown}' {REPLICATION_REFUSED if replication else REFUSED}"


def test_each_admin_command_is_refused_and_the_shard_is_untouched(endpoint):
    port, shard_port, proxy = endpoint
    before = shard_state(shard_port)
    c = client(port)
    c.set("k", "v")
    for request, shown, replication in ADMIN_REQUESTS:
        with pytest.raises(redis.exceptions.ResponseError) as refused:
            c.execute_command(*request)
        message = str(refused.value)
        assert expected_error(shown, replication) in message, (request, message)
        word = shown.lower()
        assert f'add "{word}" to allow_commands' in message, message
        # The client's connection goes on: the refusal is a reply, not an end.
        assert c.get("k") == b"v", request
    assert shard_state(shard_port) == before
    assert shard(shard_port).ping()
    assert shard(shard_port).get("k") == b"v"
    assert "Database 'db1': refused CONFIG SET from client 127.0.0.1:" in proxy.output()


def test_a_refusal_takes_its_place_among_pipelined_replies(endpoint):
    port, shard_port, _ = endpoint
    pipe = client(port).pipeline(transaction=False)
    pipe.set("a", "1").execute_command("CONFIG", "SET", "maxmemory", "1mb").get("a")
    pipe.execute_command("DEBUG", "SLEEP", "0").incr("n").execute_command("SHUTDOWN")
    pipe.incr("n")
    results = pipe.execute(raise_on_error=False)
    assert results[0] is True and results[2] == b"1" and results[4] == 1 and results[6] == 2
    for i, shown in ((1, "CONFIG SET"), (3, "DEBUG"), (5, "SHUTDOWN")):
        assert isinstance(results[i], redis.exceptions.ResponseError), results
        assert expected_error(shown, False) in str(results[i])
    assert shard(shard_port).config_get("maxmemory")["maxmemory"] == "0"


def test_a_refusal_inside_a_transaction_is_an_error_in_exec(endpoint):
    port, shard_port, _ = endpoint
    pipe = client(port).pipeline(transaction=True)
    pipe.set("t", "1").execute_command("CONFIG", "SET", "maxmemory", "1mb").incr("t")
    results = pipe.execute(raise_on_error=False)
    assert results[0] is True and results[2] == 2, results
    assert isinstance(results[1], redis.exceptions.ResponseError), results
    assert expected_error("CONFIG SET", False) in str(results[1])
    assert shard(shard_port).config_get("maxmemory")["maxmemory"] == "0"


@pytest.mark.parametrize("request_bytes, shown", [
    (b"SHUTDOWN NOSAVE\r\n", "SHUTDOWN"),
    (b'sh"utdown" nosave\r\n', "SHUTDOWN"),
    (b"  config    set maxmemory 1mb\r\n", "CONFIG SET"),
    (b"'DEBUG' sleep 0\r\n", "DEBUG"),
    (b"replicaof 127.0.0.1 1\n", "REPLICAOF"),
])
def test_inline_admin_commands_are_refused(endpoint, request_bytes, shown):
    port, shard_port, _ = endpoint
    with raw(port) as s:
        s.sendall(request_bytes + b"PING\r\n")
        line = read_line(s)
        assert line.startswith(b"-ERR '%s' is an administrative command" % shown.encode()), line
        assert read_line(s) == b"+PONG\r\n"
    state = shard(shard_port)
    assert state.ping() and state.execute_command("ROLE")[0] == b"master"
    assert state.config_get("maxmemory")["maxmemory"] == "0"


def test_a_request_split_across_writes_is_refused(endpoint):
    """The name arrives in pieces; nothing of the request reaches the shard before it is known."""
    port, shard_port, _ = endpoint
    request = command("CONFIG", "SET", "maxmemory", "1mb") + command("GET", "split")
    with raw(port) as s:
        s.sendall(command("SET", "split", "yes"))
        assert read_line(s) == b"+OK\r\n"
        for i in range(0, len(request), 3):
            s.sendall(request[i:i + 3])
            time.sleep(0.01)
        assert read_line(s).startswith(b"-ERR 'CONFIG SET' is an administrative command")
        assert read_line(s) == b"$3\r\n" and read_line(s) == b"yes\r\n"
    assert shard(shard_port).config_get("maxmemory")["maxmemory"] == "0"


def test_a_large_refused_request_is_dropped_whole(endpoint):
    """A refused request's arguments (1 MiB here) never reach the shard, whatever their size."""
    port, shard_port, _ = endpoint
    big = b"x" * (1024 * 1024)
    with raw(port) as s:
        s.sendall(command("CONFIG", "SET", "maxmemory", big) + command("PING"))
        assert read_line(s).startswith(b"-ERR 'CONFIG SET' is an administrative command")
        assert read_line(s) == b"+PONG\r\n"
    assert shard(shard_port).config_get("maxmemory")["maxmemory"] == "0"


def test_reading_commands_stay_allowed(endpoint):
    port, _, _ = endpoint
    c = client(port)
    assert c.config_get("maxmemory") == {"maxmemory": "0"}
    assert "redis_version" in c.info("server")
    assert c.execute_command("ROLE")[0] == b"master"
    assert c.execute_command("ACL", "WHOAMI") == b"default"
    assert c.execute_command("MODULE", "LIST") == []


def test_redis_cli_is_refused_and_the_shard_keeps_serving(endpoint):
    port, shard_port, _ = endpoint
    for args in (["SHUTDOWN", "NOSAVE"], ["CONFIG", "SET", "tls-port", "1"],
                 ["REPLICAOF", "127.0.0.1", str(port)]):
        out = subprocess.run(["redis-cli", "--tls", "--insecure", "-h", "127.0.0.1", "-p",
                              str(port), *args], capture_output=True, text=True, timeout=30)
        assert "is an administrative command, refused" in out.stdout + out.stderr, out
    c = client(port)
    assert c.set("after", "1") and c.get("after") == b"1"
    assert shard(shard_port).execute_command("ROLE")[0] == b"master"


def test_allow_commands_lets_the_named_commands_through(direct, plain_shard):
    port = free_port()
    started(direct, db_section("db1", port, plain_shard,
                               "tls_mode = enabled\nallow_commands = config set, debug\n"))
    c = client(port)
    try:
        assert c.config_set("maxmemory", "64mb")
        assert shard(plain_shard).config_get("maxmemory")["maxmemory"] == str(64 * 1024 * 1024)
        # DEBUG reaches the shard, which has its own say (enable-debug-command).
        with pytest.raises(redis.exceptions.ResponseError, match="DEBUG command not allowed"):
            c.execute_command("DEBUG", "SLEEP", "0")
        with pytest.raises(redis.exceptions.ResponseError, match="'CONFIG REWRITE' " + REFUSED):
            c.execute_command("CONFIG", "REWRITE")
    finally:
        shard(plain_shard).config_set("maxmemory", "0")


def test_a_bad_allow_commands_word_is_a_clear_error(direct, plain_shard):
    proxy = direct(databases_text=db_section("db1", free_port(), plain_shard,
                                             "allow_commands = config set, flushall\n"))
    assert proxy.start().wait(timeout=20) == 1
    assert ("allow_commands: 'flushall' is not a command the database endpoint refuses; "
            "the words are: shutdown, config set," in proxy.output())


def test_the_agent_checks_allow_commands_in_conf_d(agent_factory):
    agent = agent_factory({})
    bad = agent.conf_d / "db.conf"
    bad.write_text(f'database db1 {{\n  port = {free_port()}\n  shard = "127.0.0.1:{free_port()}"\n'
                   '  allow_commands = "config set, config get"\n}\n')
    out = subprocess.run([str(CERTVISORD), "-c", str(agent.config), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert ("allow_commands: 'config get' is not a command the database endpoint refuses"
            in out.stderr), out.stderr
