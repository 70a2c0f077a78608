"""The HTTP server of the api (lib/http_server.c) under what an attacker or a careless operator
sends, against the real certvisord and certvisor-api with real clients (curl, python's ssl and
sockets): update_cert bodies large enough to move the server's input buffer, bodies and heads over
the limits (the answers name them), slowloris (idle TCP connections and stalled TLS handshakes)
while an admin's request still goes through, and a raw DER certificate or key in a JSON body."""
import errno
import http.client
import json
import socket
import ssl
import subprocess
import time

import pytest

from conftest import wait_for
from test_api import (ADMIN, CURL, Node, add_user, api_service, assert_clean_exit, make_pair,
                      needs_cryptography, pem_fingerprint, start_node)
from test_certs import free_port
from test_supervision import svc

try:
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - python3-cryptography is a test dependency
    serialization = None

pytestmark = pytest.mark.skipif(CURL is None, reason="needs curl")

MAX_BODY = 1024 * 1024  # API_MAX_BODY in services/api/main.c
MAX_HEAD = 16 * 1024  # API_MAX_HEAD
PER_ADDRESS = 32  # API_MAX_CONNS_PER_ADDRESS
MAX_CONNS = 128  # API_MAX_CONNS
HANDSHAKE_TIMEOUT = 5  # HTTP_DEFAULT_HANDSHAKE_TIMEOUT in lib/http_server.h


def padded_body(fields, size):
    """fields as a JSON object of exactly size bytes: blanks between its members (JSON allows
    them anywhere between tokens), so the API reads every byte and parses the same object."""
    text = json.dumps(fields)
    pad = size - len(text)
    assert pad >= 0
    return ("{" + " " * pad + text[1:]).encode()


def curl_put(node, body_file, path="/v1/cluster/update_cert", extra=()):
    """PUT with curl (which sends Expect: 100-continue for large bodies): (status, JSON body)."""
    out = subprocess.run(
        [CURL, "-sS", "--cacert", str(node.ca), "-X", "PUT", "-u", f"{ADMIN[0]}:{ADMIN[1]}",
         "-H", "Content-Type: application/json", "--data-binary", f"@{body_file}",
         "-w", "\n%{http_code}", *extra, f"https://127.0.0.1:{node.port}{path}"],
        capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    body, _, status = out.stdout.rpartition(b"\n")
    return int(status), json.loads(body) if body.strip() else None


@needs_cryptography
def test_large_update_cert_bodies_are_read_whole(agent_factory, tmp_path):
    node = start_node(agent_factory)
    cert, key = make_pair(tmp_path / "proxy", "proxy")
    good = {"name": "proxy", "certificate": cert.read_text(), "key": key.read_text()}
    bad = {**good, "certificate": "-----BEGIN CERTIFICATE-----\nnot base64\n"
                                  "-----END CERTIFICATE-----\n"}
    before = node.fingerprints()["proxy"]
    # 300 KB and just under the 1 MiB limit: each byte read (the head parsed before the buffer
    # grew stays the request's), the bad certificate refused by the agent, the good one taken.
    for size in (300 * 1024, MAX_BODY - 64):
        body_file = tmp_path / f"bad-{size}.json"
        body_file.write_bytes(padded_body(bad, size))
        status, body = curl_put(node, body_file)
        assert status == 400 and body["error_code"] == "invalid_certificate", (size, status, body)
        assert node.fingerprints()["proxy"] == before
        r = node.request("PUT", "/v1/cluster/update_cert", padded_body(bad, size))
        assert r.status == 400 and r.json["error_code"] == "invalid_certificate", (size, r)
    body_file = tmp_path / "good-300k.json"
    body_file.write_bytes(padded_body(good, 300 * 1024))
    status, body = curl_put(node, body_file)
    assert status == 200, (status, body)
    assert node.fingerprints()["proxy"] == pem_fingerprint(cert)
    cert2, key2 = make_pair(tmp_path / "proxy2", "proxy")
    good2 = {"name": "proxy", "certificate": cert2.read_text(), "key": key2.read_text()}
    r = node.request("PUT", "/v1/cluster/update_cert", padded_body(good2, MAX_BODY))
    assert r.status == 200, r
    assert node.fingerprints()["proxy"] == pem_fingerprint(cert2)
    # One byte over: refused before it is read, the answer naming the limit.
    body_file = tmp_path / "over.json"
    body_file.write_bytes(padded_body(good, MAX_BODY + 1))
    status, body = curl_put(node, body_file)
    assert status == 413 and body["error_code"] == "payload_too_large", (status, body)
    assert f"request body exceeds {MAX_BODY} bytes (Content-Length: {MAX_BODY + 1})" in \
        body["message"], body
    # A head over 16 KiB, the same.
    r = node.request("GET", "/v1/cluster", headers={"X-Padding": "p" * (MAX_HEAD + 1)})
    assert r.status == 431 and r.json["error_code"] == "header_too_large", r
    assert f"request head exceeds {MAX_HEAD} bytes" in r.json["message"], r
    assert node.fingerprints()["proxy"] == pem_fingerprint(cert2)
    assert_clean_exit(node.agent)


def tls_stall_bytes():
    """The start of a TLS ClientHello record (header, then a few bytes of a 512-byte body): the
    server's handshake waits for the rest, which never comes."""
    return b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 8


def open_idle(port, sources, per_source):
    """per_source connections from each source address, alternately silent TCP and a stalled TLS
    handshake. Returns the sockets, non-blocking."""
    socks = []
    for source in sources:
        for i in range(per_source):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((source, 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            if i % 2:
                s.sendall(tls_stall_bytes())
            s.setblocking(False)
            socks.append(s)
    return socks


def closed_by_server(s):
    """True once the server closed the connection (EOF, or a reset)."""
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError as e:
        return e.errno in (errno.ECONNRESET, errno.EPIPE)


def timed_request(node, source):
    """An admin's GET /v1/cluster from source: (status, seconds)."""
    context = ssl.create_default_context(cafile=str(node.ca))
    context.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", node.port, context=context, timeout=60,
                                       source_address=(source, 0))
    start = time.monotonic()
    try:
        r = node.request("GET", "/v1/cluster", conn=conn)
    finally:
        conn.close()
    return r.status, time.monotonic() - start


def test_slowloris_cannot_starve_the_api(agent_factory):
    node = start_node(agent_factory)
    status, normal = timed_request(node, "127.0.0.1")
    assert status == 200
    # 200 idle connections from one address: it keeps at most its cap of them, and the admin's
    # request, from that address or another, goes through at once (not after the attackers'
    # connections time out: the api's --request-timeout here is 30 s).
    socks = open_idle(node.port, ["127.0.0.1"], 200)
    try:
        wait_for(lambda: sum(not closed_by_server(s) for s in socks) <= PER_ADDRESS, 3,
                 what=f"the api to keep at most {PER_ADDRESS} connections from one address")
        for source in ("127.0.0.2", "127.0.0.1"):
            status, seconds = timed_request(node, source)
            assert status == 200 and seconds < 10, (source, status, seconds, normal)
        # The rest are closed by the handshake timeout, long before the request timeout.
        start = time.monotonic()
        wait_for(lambda: all(closed_by_server(s) for s in socks), HANDSHAKE_TIMEOUT + 7,
                 interval=0.2, what="the idle connections to be closed")
        assert time.monotonic() - start < HANDSHAKE_TIMEOUT + 7
    finally:
        for s in socks:
            s.close()
    # 200 from 8 addresses, each under its cap, more than the 128 in all: the new connection
    # takes the place of one that waited longest without a request.
    socks = open_idle(node.port, [f"127.0.0.{i}" for i in range(2, 10)], 25)
    try:
        wait_for(lambda: sum(not closed_by_server(s) for s in socks) <= MAX_CONNS, 3,
                 what=f"the api to keep at most {MAX_CONNS} connections")
        status, seconds = timed_request(node, "127.0.0.1")
        assert status == 200 and seconds < 10, (status, seconds, normal)
    finally:
        for s in socks:
            s.close()
    assert_clean_exit(node.agent)


def test_behind_a_load_balancer_the_per_address_cap_can_be_lifted(agent_factory):
    # Every client of an api behind a proxy arrives from the proxy's address.
    port, http_port = free_port(), free_port()
    section = api_service(port, http_port).replace(
        '"--request-timeout", "30"', '"--request-timeout", "30", "--max-conns-per-address", "0"')
    assert "--max-conns-per-address" in section
    agent = agent_factory({"api": section, "web": svc()})
    agent.start()
    add_user(agent, *ADMIN, "admin")
    node = Node(agent, port, http_port)
    socks = open_idle(node.port, ["127.0.0.1"], 3 * PER_ADDRESS)
    try:
        # With the default cap all but 32 would be closed at once (the slowloris test above).
        time.sleep(1.5)
        assert sum(not closed_by_server(s) for s in socks) == 3 * PER_ADDRESS
        status, _ = timed_request(node, "127.0.0.1")
        assert status == 200
    finally:
        for s in socks:
            s.close()
    assert_clean_exit(agent)


@needs_cryptography
def test_raw_der_in_a_json_body_gets_an_operators_message(agent_factory, tmp_path):
    node = start_node(agent_factory)
    cert, key = make_pair(tmp_path / "proxy", "proxy")
    before = node.fingerprints()
    from cryptography import x509
    der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(
        serialization.Encoding.DER)
    key_der = serialization.load_pem_private_key(key.read_bytes(), None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    # DER read as Latin-1 and encoded by a JSON library: "\u0000" escapes.
    r = node.request("PUT", "/v1/cluster/update_cert",
                     {"name": "proxy", "certificate": der.decode("latin-1"),
                      "key": key.read_text()})
    assert r.status == 400 and r.json["error_code"] == "invalid_certificate", r
    assert r.json["field"] == "certificate"
    assert "must be PEM text" in r.json["message"]
    assert "openssl x509 -inform der -in cert.der -out cert.pem" in r.json["message"]
    assert "JSON_ALLOW_NUL" not in r.body.decode()
    r = node.request("PUT", "/v1/cluster/update_cert",
                     {"name": "proxy", "certificate": cert.read_text(),
                      "key": key_der.decode("latin-1")})
    assert r.status == 400 and r.json["field"] == "key", r
    assert "openssl pkey -inform der -in key.der -out key.pem" in r.json["message"]
    # The DER bytes spliced into the body as they are, sent by curl.
    body_file = tmp_path / "raw.json"
    body_file.write_bytes(b'{"name": "proxy", "certificate": "' + der + b'"}')
    status, body = curl_put(node, body_file)
    assert status == 400 and body["error_code"] == "invalid_json", (status, body)
    assert "not UTF-8 text" in body["message"]
    assert "openssl x509 -inform der -in cert.der -out cert.pem" in body["message"]
    assert node.fingerprints() == before
    assert_clean_exit(node.agent)
