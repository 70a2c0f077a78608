#!/usr/bin/python3
"""Clients of the packaged proxy that run across a package upgrade (check_deb.sh).

Two kinds of client, each checking every reply (a SET, then a GET that must return it):
  - new connections: a fresh TLS connection for each request, so a refused connection
    during the proxy's hand-over to its upgraded binary shows;
  - one established connection, kept for the whole run: it must be served to the end
    by the process it connected to (drained, not cut).
Prints the counts every half second ("progress ...") and, at SIGTERM, once more ("final ...")
and exits 0; the caller checks them.
"""
import argparse
import signal
import threading

import redis


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="the proxy's database port")
    parser.add_argument("--ca", required=True, help="the cluster CA (PEM) to verify it with")
    parser.add_argument("--new-connection-clients", type=int, default=2)
    return parser.parse_args()


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.new_ok = self.new_failed = self.established_ok = self.established_failed = 0
        self.first_failures = []

    def add(self, kind, failure=None):
        with self.lock:
            if failure is None:
                setattr(self, kind + "_ok", getattr(self, kind + "_ok") + 1)
                return
            setattr(self, kind + "_failed", getattr(self, kind + "_failed") + 1)
            if len(self.first_failures) < 5:
                self.first_failures.append(f"{kind}: {failure}")


def set_and_get(client, key, value):
    client.set(key, value)
    got = client.get(key)
    return None if got == value.encode() else f"GET {key} returned {got!r}, not {value!r}"


def run_new_connections(args, index, stop, counts):
    i = 0
    while not stop.is_set():
        i += 1
        client = redis.Redis(host="127.0.0.1", port=args.port, ssl=True, ssl_ca_certs=args.ca,
                             ssl_check_hostname=False, socket_timeout=10)
        try:
            counts.add("new", set_and_get(client, f"pkg-upgrade:{index}:{i % 50}", f"v{i}"))
        except redis.RedisError as e:
            counts.add("new", repr(e))
        finally:
            client.connection_pool.disconnect()


def run_established(args, stop, counts):
    # One connection, never re-made: a pool of one that fails rather than reconnects.
    client = redis.Redis(host="127.0.0.1", port=args.port, ssl=True, ssl_ca_certs=args.ca,
                         ssl_check_hostname=False, socket_timeout=10, retry_on_timeout=False)
    i = 0
    while not stop.is_set():
        i += 1
        try:
            counts.add("established", set_and_get(client, f"pkg-upgrade:kept:{i % 50}", f"v{i}"))
        except redis.RedisError as e:
            counts.add("established", repr(e))
            stop.wait(0.1)
    client.connection_pool.disconnect()


def report(what, counts):
    with counts.lock:
        print(f"{what} new_ok={counts.new_ok} new_failed={counts.new_failed} "
              f"established_ok={counts.established_ok} "
              f"established_failed={counts.established_failed} "
              f"first_failures={counts.first_failures!r}", flush=True)


def main():
    args = parse_args()
    stop, counts = threading.Event(), Counts()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads = [threading.Thread(target=run_established, args=(args, stop, counts))]
    threads += [threading.Thread(target=run_new_connections, args=(args, i, stop, counts))
                for i in range(args.new_connection_clients)]
    for thread in threads:
        thread.start()
    while not stop.wait(0.5):
        report("progress", counts)
    for thread in threads:
        thread.join()
    report("final", counts)


if __name__ == "__main__":
    main()
