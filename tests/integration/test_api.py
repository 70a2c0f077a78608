"""The REST API (certvisor-api) against a real certvisord: every endpoint with good and bad input,
the curl commands of Redis Enterprise's documents verbatim, HTTP Basic sign-in checked by the
agent for each request, the control plane's policy on the wire, plain HTTP following
http_support, and the limits on what one client may send."""
import base64
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BUILD, SANITIZER_MARKERS, wait_for
from test_apply import served_fingerprint
from test_certs import free_port, s_client, state
from test_supervision import svc

API = BUILD / "certvisor-api"
CURL = shutil.which("curl")
JQ = shutil.which("jq")

pytestmark = pytest.mark.skipif(not (API.exists() and CURL and JQ),
                                reason="needs certvisor-api, curl and jq")

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:  # pragma: no cover - python3-cryptography is a test dependency
    x509 = None

ADMIN = ("admin", "admin password")
VIEWER = ("viewer", "viewer password")

# Redis Enterprise's documented command (docs 6.x and 7.x, "Update TLS certificates"), verbatim;
# the test fills in the placeholders the way an operator does.
SEED_CURL = ('curl -k -X PUT -u "<username>:<password>" -H "Content-Type: application/json" '
             '-d \'{ "name": "<cert_name>", "key": "<key>", "certificate": "<cert>" }\' '
             'https://<cluster_address>:9443/v1/cluster/update_cert')
# The oldest document's form (5.x): the key and certificate given as JSON values.
SEED_CURL_5 = ('curl -k -X PUT -u "<username>:<password>" -H "Content-Type: application/json" '
               '-d \'{ "name": "<cert_name>", "key": <key>, "certificate": <cert> }\' '
               'https://<cluster_address>:9443/v1/cluster/update_cert')
# The documents' tip for the key's line breaks.
SED_TIP = "sed -z 's/\\n/\\\\\\n/g'"


def api_service(port, http_port, timeout=30):
    """The section conf.d ships for the api, on free loopback ports."""
    return f"""
        command   = "%{{libexec_dir}}/certvisor-api"
        arguments = {{"--config", "%{{run_dir}}/tls/%{{name}}.conf", "--port", "{port}",
                     "--bind", "127.0.0.1", "--http-port", "{http_port}",
                     "--control-socket", "%{{run_dir}}/control.sock",
                     "--request-timeout", "{timeout}"}}
        reload_signal = HUP
        tls {{
            certificate = api
            plane = control
            http = true
        }}
    """


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:600]!r}>"


class Node:
    """A running agent with the api; requests over HTTPS (verifying the cluster CA) or HTTP."""

    def __init__(self, agent, port, http_port):
        self.agent = agent
        self.port = port
        self.http_port = http_port
        self.ca = state(agent, "ca.pem")

    def connect(self, plain=False, timeout=120):
        if plain:
            return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        context = ssl.create_default_context(cafile=str(self.ca))
        context.check_hostname = False
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=context,
                                           timeout=timeout)

    def request(self, method, path, body=None, auth=ADMIN, headers=None, plain=False, conn=None,
                content_type="application/json"):
        own = conn is None
        conn = conn or self.connect(plain)
        sent = dict(headers or {})
        if auth:
            sent["Authorization"] = "Basic " + base64.b64encode(
                f"{auth[0]}:{auth[1]}".encode()).decode()
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if content_type:
                sent["Content-Type"] = content_type
        conn.request(method, path, body=data, headers=sent)
        resp = conn.getresponse()
        result = Response(resp.status, resp.getheaders(), resp.read())
        if own:
            conn.close()
        return result

    def fingerprints(self):
        """name -> SHA-256 fingerprint, as `certvisorctl cluster certificate list` says."""
        out = self.agent.ctl("--json", "cluster", "certificate", "list")
        assert out.returncode == 0, out.stderr
        items = json.loads(out.stdout.splitlines()[-1])["items"]
        return {i["name"]: i.get("fingerprint") for i in items}


def add_user(agent, name, password, role):
    secret = agent.root / f"{name}.pw"
    secret.write_text(password + "\n")
    out = agent.ctl("user", "add", name, "--role", role, "--password-file", str(secret))
    assert out.returncode == 0, out.stderr


def assert_clean_exit(agent, name="api"):
    """Stops the api; under a sanitizer build its report would be in its stderr."""
    out = agent.ctl("stop", name)
    assert out.returncode == 0, out.stdout + out.stderr
    text = agent.ctl("tail", name, "stderr").stdout
    assert "Stopping (signal 15)" in text, text
    assert not any(marker in text for marker in SANITIZER_MARKERS), text


def start_node(agent_factory, timeout=30, extra_services=None):
    port, http_port = free_port(), free_port()
    services = {"api": api_service(port, http_port, timeout), "web": svc()}
    services.update(extra_services or {})
    agent = agent_factory(services)
    agent.start()
    add_user(agent, *ADMIN, "admin")
    add_user(agent, *VIEWER, "viewer")
    return Node(agent, port, http_port)


@pytest.fixture
def node(agent_factory):
    n = start_node(agent_factory)
    yield n
    assert_clean_exit(n.agent)


# --- certificates for the tests ------------------------------------------------------------

def make_pair(directory, name, days=200, not_before=None, key=None, eku="both"):
    """An operator CA and a certificate from it for 127.0.0.1, as PEM files: (cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ops CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=800))
          .not_valid_after(now + datetime.timedelta(days=800))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf_key = key or ec.generate_private_key(ec.SECP256R1())
    start = not_before or now - datetime.timedelta(days=1)
    usages = {"both": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
              "server": [ExtendedKeyUsageOID.SERVER_AUTH]}[eku]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}.example")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(f"{name}.example"),
                x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}_cert.pem", directory / f"{name}_key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def pem_fingerprint(path):
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def bash(script, **env):
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=180,
                         env={**os.environ, **{k: str(v) for k, v in env.items()}})
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def seed_command(template, port, name, user=ADMIN, key="'\"$KEY\"'", cert="'\"$CERT\"'"):
    """The documented command with its placeholders filled in, as an operator types it: the
    key and certificate spliced into the single-quoted body from shell variables."""
    return (template.replace("<username>", user[0]).replace("<password>", user[1])
            .replace("<cert_name>", name).replace("<key>", key).replace("<cert>", cert)
            .replace("<cluster_address>:9443", f"127.0.0.1:{port}")
            + " -sS -w '\\n%{http_code}'")


def status_and_body(output):
    body, _, status = output.rpartition("\n")
    return int(status), json.loads(body) if body.strip() else None


needs_cryptography = pytest.mark.skipif(x509 is None, reason="needs python3-cryptography")


# --- update_cert: the documented commands ------------------------------------------------------

@needs_cryptography
def test_the_documented_curl_commands_replace_certificates(node, tmp_path):
    agent = node.agent
    before = node.fingerprints()
    # The tip, verbatim: it puts a backslash before every line break of the key (and here of the
    # certificate too); $(...) then drops the last line break and leaves a backslash before the
    # closing quote.
    cm_cert, cm_key = make_pair(tmp_path / "cm", "cm")
    escaped = bash(f"{SED_TIP} {cm_key}")
    assert "-----\\\n" in escaped
    out = bash(f'KEY=$({SED_TIP} "$KEY_FILE"); CERT=$({SED_TIP} "$CERT_FILE"); '
               + seed_command(SEED_CURL, node.port, "cm").replace("curl -k", f"curl --cacert {node.ca}"),
               KEY_FILE=cm_key, CERT_FILE=cm_cert)
    status, body = status_and_body(out)
    assert status == 200, out
    assert body["changes"][0]["certificate"] == "cm"
    assert body["changes"][0]["new"] == pem_fingerprint(cm_cert)
    assert node.fingerprints()["cm"] == pem_fingerprint(cm_cert)
    # The same body built by jq from the PEM files.
    proxy_cert, proxy_key = make_pair(tmp_path / "proxy", "proxy")
    out = bash(f'jq -n --arg name proxy --rawfile key "$KEY_FILE" --rawfile cert "$CERT_FILE" '
               f"'{{name: $name, key: $key, certificate: $cert}}' | "
               f'curl -k -X PUT -u "admin:admin password" -H "Content-Type: application/json" '
               f"-d @- https://127.0.0.1:{node.port}/v1/cluster/update_cert -sS -w '\\n%{{http_code}}'",
               KEY_FILE=proxy_key, CERT_FILE=proxy_cert)
    assert status_and_body(out)[0] == 200, out
    assert node.fingerprints()["proxy"] == pem_fingerprint(proxy_cert)
    # The same pair again: in force already, said with a JSON boolean.
    out = bash(f'jq -n --arg name proxy --rawfile key "$KEY_FILE" --rawfile cert "$CERT_FILE" '
               f"'{{name: $name, key: $key, certificate: $cert}}' | "
               f'curl -k -X PUT -u "admin:admin password" -H "Content-Type: application/json" '
               f"-d @- https://127.0.0.1:{node.port}/v1/cluster/update_cert -sS -w '\\n%{{http_code}}'",
               KEY_FILE=proxy_key, CERT_FILE=proxy_cert)
    status, body = status_and_body(out)
    assert status == 200 and body["changes"][0]["unchanged"] is True, out
    # The oldest document's form, the values given as JSON strings (jq -Rs makes them).
    me_cert, me_key = make_pair(tmp_path / "me", "metrics_exporter")
    out = bash(f'KEY=$(jq -Rs . "$KEY_FILE"); CERT=$(jq -Rs . "$CERT_FILE"); '
               + seed_command(SEED_CURL_5, node.port, "metrics_exporter"),
               KEY_FILE=me_key, CERT_FILE=me_cert)
    assert status_and_body(out)[0] == 200, out
    # A key pasted between the quotes as it is, line breaks and all.
    sy_cert, sy_key = make_pair(tmp_path / "syncer", "syncer")
    out = bash('KEY=$(cat "$KEY_FILE"); CERT=$(cat "$CERT_FILE"); '
               + seed_command(SEED_CURL, node.port, "syncer"), KEY_FILE=sy_key, CERT_FILE=sy_cert)
    assert status_and_body(out)[0] == 200, out
    # Last, the api's own certificate with the -k command: the answer comes on the connection
    # the request came on, while the agent reloads the api with its new certificate.
    api_pid = agent.pid_of("api")
    api_cert, api_key = make_pair(tmp_path / "api", "api")
    out = bash(f'KEY=$({SED_TIP} "$KEY_FILE"); CERT=$({SED_TIP} "$CERT_FILE"); '
               + seed_command(SEED_CURL, node.port, "api"), KEY_FILE=api_key, CERT_FILE=api_cert)
    status, body = status_and_body(out)
    assert status == 200, out
    assert body["services"] == ["api"]
    assert served_fingerprint(node.port) == pem_fingerprint(api_cert)
    assert agent.pid_of("api") == api_pid  # reloaded in place, not restarted
    after = node.fingerprints()
    changed = {n for n in after if after[n] != before[n]}
    assert changed == {"cm", "proxy", "metrics_exporter", "syncer", "api"}
    # The audit log names the REST user, and no key is logged anywhere.
    log = agent.log_text()
    assert "audit: REST user 'admin'" in log and "certificate 'api'" in log
    assert "PRIVATE KEY" not in log + agent.ctl("tail", "api", "stderr").stdout


@needs_cryptography
def test_update_cert_refuses_bad_input_and_changes_nothing(node, tmp_path):
    before = node.fingerprints()
    cert, key = make_pair(tmp_path / "good", "proxy")
    other_cert, other_key = make_pair(tmp_path / "other", "proxy")
    expired_cert, expired_key = make_pair(
        tmp_path / "expired", "proxy", days=30,
        not_before=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=60))
    good = {"name": "proxy", "certificate": cert.read_text(), "key": key.read_text()}

    def put(body, **kw):
        return node.request("PUT", "/v1/cluster/update_cert", body, **kw)

    def expect(resp, status, code):
        assert resp.status == status, resp
        body = resp.json
        assert body["error_code"] == code, body
        assert body["description"] and body["message"], body
        return body

    r = put(good, auth=None)
    expect(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Basic realm=")
    expect(put(good, auth=("admin", "wrong password")), 401, "unauthorized")
    expect(put(good, auth=("nobody", "admin password")), 401, "unauthorized")
    expect(put(good, auth=VIEWER), 403, "insufficient_permissions")
    expect(put({**good, "name": "bogus"}), 403, "unknown_certificate")
    body = expect(put({**good, "key": other_key.read_text()}), 400, "invalid_certificate")
    assert "does not match" in body["message"]
    expect(put({**good, "certificate": expired_cert.read_text(),
                "key": expired_key.read_text()}), 406, "expired_certificate")
    expect(put({**good, "certificate": "-----BEGIN CERTIFICATE-----\ngarbage\n"
                "-----END CERTIFICATE-----\n"}), 400, "invalid_certificate")
    expect(put({**good, "certificate": "not a certificate at all"}), 400, "invalid_certificate")
    text = json.dumps(good)
    body = expect(put(text[:len(text) // 2]), 400, "invalid_json")
    assert body["position"] > 0 and body["line"] == 1, body
    assert f"position {body['position']}" in body["message"]
    body = expect(put('{"name": "proxy",\n "certificate": }'), 400, "invalid_json")
    assert (body["line"], body["column"]) == (2, 17), body  # at the "}"
    expect(put({**good, "colour": "blue"}), 400, "unknown_field")
    expect(put({"name": "proxy", "key": key.read_text()}), 400, "invalid_schema")
    expect(put({**good, "name": 7}), 400, "invalid_schema")
    expect(put(json.dumps([good])), 400, "invalid_json")  # not an object
    expect(put(text, content_type="application/x-www-form-urlencoded"), 415,
           "unsupported_media_type")
    r = node.request("GET", "/v1/cluster/update_cert")
    expect(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "PUT"
    expect(node.request("PUT", "/v1/cluster/update_certs", good), 404, "not_found")
    # A dry run validates and plans, and changes nothing either.
    r = node.request("PUT", "/v1/cluster/update_cert?dry_run=true", good)
    assert r.status == 200 and r.json["dry_run"] is True, r
    assert [s["service"] for s in r.json["plan"]] == [], r.json  # no service here serves proxy
    expect(node.request("PUT", "/v1/cluster/update_cert?dry_run=maybe", good), 400, "invalid_query")
    assert node.fingerprints() == before
    # And then the good one goes in.
    r = put(good)
    assert r.status == 200, r
    assert node.fingerprints()["proxy"] == pem_fingerprint(cert)


# --- several certificates, all or none --------------------------------------------------------

@needs_cryptography
def test_put_certificates_applies_all_or_none(node, tmp_path):
    before = node.fingerprints()
    pairs = {name: make_pair(tmp_path / name, name) for name in ("cm", "proxy", "api")}
    entries = [{"name": n, "certificate": c.read_text(), "key": k.read_text()}
               for n, (c, k) in pairs.items()]
    _, stray_key = make_pair(tmp_path / "stray", "stray")
    bad = [entries[0], entries[1], {**entries[2], "key": stray_key.read_text()}]
    r = node.request("PUT", "/v1/cluster/certificates", {"certificates": bad})
    assert r.status == 400 and r.json["error_code"] == "invalid_certificate", r
    assert "'api'" in r.json["message"]
    assert node.fingerprints() == before  # cm and proxy were valid, and did not go in
    r = node.request("PUT", "/v1/cluster/certificates", {"certificates": [entries[0], entries[0]]})
    assert r.status == 400 and r.json["error_code"] == "invalid_schema", r
    r = node.request("PUT", "/v1/cluster/certificates",
                     {"certificates": [{**entries[0], "name": "nope"}, entries[1]]})
    assert r.status == 403 and r.json["error_code"] == "unknown_certificate", r
    r = node.request("PUT", "/v1/cluster/certificates", {"certificates": [{**entries[0], "x": 1}]})
    assert r.status == 400 and r.json["error_code"] == "unknown_field", r
    r = node.request("PUT", "/v1/cluster/certificates", {"certificates": []})
    assert r.status == 400 and r.json["error_code"] == "invalid_schema", r
    r = node.request("PUT", "/v1/cluster/certificates?dry_run", {"certificates": entries})
    assert r.status == 200 and r.json["dry_run"] is True, r
    assert [s["service"] for s in r.json["plan"]] == ["api"]
    assert node.fingerprints() == before
    r = node.request("PUT", "/v1/cluster/certificates", {"certificates": entries})
    assert r.status == 200, r
    assert {c["certificate"] for c in r.json["changes"]} == {"cm", "proxy", "api"}
    after = node.fingerprints()
    assert {n: after[n] for n in pairs} == {n: pem_fingerprint(c) for n, (c, _) in pairs.items()}
    assert served_fingerprint(node.port) == pem_fingerprint(pairs["api"][0])
    # certvisorctl has the same command.
    c2, k2 = make_pair(tmp_path / "cm2", "cm")
    out = node.agent.ctl("cluster", "certificate", "set-many", "cm", "certificate_file", str(c2),
                         "key_file", str(k2))
    assert out.returncode == 0 and "Set cm certificate" in out.stdout, out.stdout + out.stderr


def test_get_certificates_returns_certificates_never_keys(node):
    r = node.request("GET", "/v1/cluster/certificates", auth=VIEWER)
    assert r.status == 200, r
    body = r.json
    assert set(body) == {"api_cert", "cm_cert", "proxy_cert", "syncer_cert",
                         "metrics_exporter_cert", "ccs_internode_encryption_cert",
                         "data_internode_encryption_cert"}
    assert body["api_cert"] == state(node.agent, "certs", "api", "current", "cert.pem").read_text()
    assert b"PRIVATE KEY" not in r.body and not any(k.endswith("_key") for k in body)
    r = node.request("HEAD", "/v1/cluster/certificates")
    assert r.status == 200 and r.body == b"" and int(r.headers["content-length"]) > 1000
    r = node.request("POST", "/v1/cluster/certificates", {})
    assert r.status == 405 and r.headers["allow"] == "GET, HEAD, PUT", r


def test_certificate_details_and_the_audit_log(node):
    r = node.request("GET", "/v1/cluster/certificates?details=true", auth=VIEWER)
    assert r.status == 200, r
    by_name = {c["name"]: c for c in r.json["certificates"]}
    assert by_name["api"]["used_by"] == ["api"] and by_name["api"]["origin"] == "generated"
    assert by_name["api"]["generated"] is True and by_name["api"]["required"] is True
    assert by_name["ldap_client"] == {"name": "ldap_client", "error": "not set",
                                      "generated": False, "required": False,
                                      "purpose": "LDAP client (optional)"}
    assert by_name["proxy"]["purpose"] == "Database endpoints"
    assert b"-----BEGIN" not in r.body
    # A change, then the log shows it first, naming the REST user.
    assert node.request("POST", "/v1/cluster/certificates/rotate", {"name": "proxy"}).status == 200
    r = node.request("GET", "/v1/cluster/audit_log?limit=1", auth=VIEWER)
    assert r.status == 200, r
    (entry,) = r.json["entries"]
    assert entry["who"].startswith("REST user 'admin'") and "certificate 'proxy'" in entry["message"]
    assert abs(entry["time"] - time.time()) < 120
    r = node.request("GET", "/v1/cluster/audit_log?limit=0", auth=VIEWER)
    assert r.status == 400 and r.json["error_code"] == "invalid_query", r
    # The same entries from certvisorctl, oldest first.
    out = node.agent.ctl("audit", "-n", "5")
    assert out.returncode == 0 and "REST user 'admin'" in out.stdout.splitlines()[-1]
    assert "added REST user 'viewer' (role viewer)" in out.stdout
    # The cluster's status: a single node keeps its state locally.
    r = node.request("GET", "/v1/cluster/status", auth=VIEWER)
    assert r.status == 200, r
    assert r.json["store"] == "local" and r.json["cluster"] == "cluster" and "exit" not in r.json
    assert node.request("GET", "/v1/cluster/status", auth=None).status == 401


@needs_cryptography
def test_delete_takes_optional_certificates_only(node, tmp_path):
    def delete(name, query=""):
        return node.request("DELETE", f"/v1/cluster/certificates/{name}{query}")

    before = node.fingerprints()
    r = delete("api")
    assert r.status == 403 and r.json["error_code"] == "required_certificate", r
    r = delete("bogus")
    assert r.status == 404 and r.json["error_code"] == "unknown_certificate", r
    r = delete("ldap_client")
    assert r.status == 404 and r.json["error_code"] == "certificate_not_set", r
    assert node.fingerprints() == before
    cert, key = make_pair(tmp_path / "ldap", "ldap")
    r = node.request("PUT", "/v1/cluster/update_cert",
                     {"name": "ldap_client", "certificate": cert.read_text(),
                      "key": key.read_text()})
    assert r.status == 200, r
    r = delete("ldap_client", "?dry_run=true")
    assert r.status == 200 and r.json["dry_run"] is True, r
    assert node.fingerprints()["ldap_client"] == pem_fingerprint(cert)
    r = node.request("DELETE", "/v1/cluster/certificates/ldap_client", auth=VIEWER)
    assert r.status == 403 and r.json["error_code"] == "insufficient_permissions", r
    r = delete("ldap_client")
    assert r.status == 200 and r.json["changes"][0]["new"] == "(deleted)", r
    assert node.fingerprints()["ldap_client"] is None


def test_rotate_reissues_generated_certificates(node):
    before = node.fingerprints()
    r = node.request("POST", "/v1/cluster/certificates/rotate?dry_run=true")
    assert r.status == 200 and r.json["dry_run"] is True, r
    assert node.fingerprints() == before
    r = node.request("POST", "/v1/cluster/certificates/rotate", {"name": "ldap_client"})
    assert r.status == 403 and r.json["error_code"] == "certificate_not_generated", r
    r = node.request("POST", "/v1/cluster/certificates/rotate", {"name": "bogus"})
    assert r.status == 404 and r.json["error_code"] == "unknown_certificate", r
    r = node.request("POST", "/v1/cluster/certificates/rotate", {"name": "proxy", "x": 1})
    assert r.status == 400 and r.json["error_code"] == "unknown_field", r
    assert node.fingerprints() == before
    r = node.request("POST", "/v1/cluster/certificates/rotate", {"name": "proxy"})
    assert r.status == 200, r
    after = node.fingerprints()
    assert {n for n in after if after[n] != before[n]} == {"proxy"}
    r = node.request("POST", "/v1/cluster/certificates/rotate")  # no body: every one
    assert r.status == 200, r
    final = node.fingerprints()
    assert all(final[n] != after[n] for n in ("api", "cm", "syncer", "metrics_exporter")), final
    assert served_fingerprint(node.port) == final["api"]


# --- the cluster's TLS policy ---------------------------------------------------------------

def test_cluster_policy_is_read_and_changed_and_served_on_the_wire(node):
    r = node.request("GET", "/v1/cluster", auth=VIEWER)
    assert r.status == 200, r
    assert r.json["min_control_TLS_version"] == "1.2"
    assert r.json["http_support"] is True and r.json["sentinel_tls_mode"] == "allowed"
    assert s_client(node.port, "-tls1_2", cafile=node.ca).returncode == 0
    # Unknown or invalid fields: 400 and nothing applied, even with a good field beside them.
    r = node.request("PUT", "/v1/cluster", {"min_control_TLS_version": "1.3", "colour": "blue"})
    assert r.status == 400 and r.json["error_code"] == "unknown_field", r
    assert "colour" in r.json["message"]
    r = node.request("PUT", "/v1/cluster", {"min_control_TLS_version": "1.7"})
    assert r.status == 400 and r.json["error_code"] == "invalid_setting", r
    r = node.request("PUT", "/v1/cluster", {"min_control_TLS_version": "1.3",
                                            "control_cipher_suites": "NOT-A-CIPHER"})
    assert r.status == 400 and r.json["error_code"] == "invalid_setting", r
    r = node.request("PUT", "/v1/cluster", {"min_control_TLS_version": None})
    assert r.status == 400 and r.json["error_code"] == "invalid_setting", r
    r = node.request("PUT", "/v1/cluster", {})
    assert r.status == 400 and r.json["error_code"] == "invalid_schema", r
    r = node.request("PUT", "/v1/cluster", {"min_control_TLS_version": "1.3"}, auth=VIEWER)
    assert r.status == 403, r
    assert node.request("GET", "/v1/cluster").json["min_control_TLS_version"] == "1.2"
    assert s_client(node.port, "-tls1_2", cafile=node.ca).returncode == 0
    # The older names are taken (a dry run: the plan, nothing changed).
    r = node.request("PUT", "/v1/cluster?dry_run=true",
                     {"cipher_suites": "ECDHE-ECDSA-AES256-GCM-SHA384",
                      "sentinel_ssl_policy": "required"})
    assert r.status == 200 and r.json["dry_run"] is True, r
    assert [s["service"] for s in r.json["plan"]] == ["api"], r.json
    assert node.request("GET", "/v1/cluster").json.get("control_cipher_suites") is None
    # TLS 1.3 only on the control plane: the api reloads, and TLS 1.2 is refused on the wire.
    pid = node.agent.pid_of("api")
    r = node.request("PUT", "/v1/cluster", {"min_control_TLS_version": "1.3"})
    assert r.status == 200, r
    assert r.json["min_control_TLS_version"] == "1.3"
    assert s_client(node.port, "-tls1_2", cafile=node.ca).returncode != 0
    assert s_client(node.port, "-tls1_3", cafile=node.ca).returncode == 0
    assert node.agent.pid_of("api") == pid
    assert "audit: REST user 'admin'" in node.agent.log_text()
    assert "min_control_TLS_version=1.3" in node.agent.log_text()


def plain_refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_plain_http_follows_http_support(node):
    r = node.request("GET", "/v1/cluster", plain=True)
    assert r.status == 200 and r.json["http_support"] is True, r
    # Turned off over plain HTTP itself: the answer still comes, then the port closes.
    conn = node.connect(plain=True)
    r = node.request("PUT", "/v1/cluster", {"http_support": False}, conn=conn)
    assert r.status == 200 and r.json["http_support"] is False, r
    assert r.headers["connection"] == "close"
    conn.close()
    assert plain_refused(node.http_port)
    # And back, with the rladmin spelling.
    out = node.agent.ctl("cluster", "config", "http_support", "enabled")
    assert out.returncode == 0, out.stderr
    assert node.request("GET", "/v1/cluster", plain=True).status == 200
    r = node.request("PUT", "/v1/cluster", {"http_support": "disabled"})
    assert r.status == 200, r
    assert plain_refused(node.http_port)
    # HTTPS is not affected.
    assert node.request("GET", "/v1/cluster").json["http_support"] is False
    out = node.agent.ctl("cluster", "config", "http_support", "enabled")
    assert out.returncode == 0, out.stderr
    assert node.request("GET", "/v1/local/services", plain=True).status == 200
    out = node.agent.ctl("cluster", "config", "http_support", "disabled")
    assert out.returncode == 0, out.stderr
    assert plain_refused(node.http_port)


# --- the node's services ----------------------------------------------------------------------

def test_services_are_listed_and_restarted(node):
    r = node.request("GET", "/v1/local/services", auth=VIEWER)
    assert r.status == 200, r
    # Read as a script written for Redis Enterprise's API reads it: start_time, status, uptime.
    for name, service in r.json.items():
        assert {"start_time", "status", "uptime"} <= service.keys(), (name, service)
        assert all(isinstance(service[k], str) for k in ("start_time", "status", "uptime"))
    web = r.json["web"]
    assert web["status"] == "RUNNING" and re.fullmatch(r"(\d+ days?, )?\d+:\d\d:\d\d", web["uptime"])
    started = datetime.datetime.strptime(web["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    assert abs(time.time() - web["uptime_seconds"] - started.timestamp()) <= 2
    # certvisor's own fields beside them.
    assert web["restarts"] == 0 and r.json["api"]["pid"] == node.agent.pid_of("api")
    pid = node.agent.pid_of("web")

    def post(body, query="", **kw):
        return node.request("POST", "/v1/local/services" + query, body, **kw)

    r = post({"operation_type": "restart", "services": ["web", "nope"]})
    assert r.status == 404 and r.json["error_code"] == "unknown_service", r
    assert r.json["services"] == ["nope"]
    r = post({"operation_type": "reboot", "services": ["web"]})
    assert r.status == 400 and r.json["error_code"] == "invalid_schema", r
    r = post({"operation_type": "restart", "services": ["web"], "force": True})
    assert r.status == 400 and r.json["error_code"] == "unknown_field", r
    r = post({"operation_type": "restart", "services": ["web"]}, auth=VIEWER)
    assert r.status == 403 and r.json["error_code"] == "insufficient_permissions", r
    r = post({"operation_type": "restart", "services": ["web"]}, "?dry_run=true")
    assert r.status == 200, r
    assert r.json == {"dry_run": True, "plan": [{"service": "web", "action": "restart",
                                                 "state": "RUNNING"}]}
    assert node.agent.pid_of("web") == pid
    r = post({"operation_type": "restart", "services": ["web"]})
    assert r.status == 200 and r.json == {"web": True}, r  # Redis Enterprise's shape
    assert node.agent.pid_of("web") != pid
    # A restart asked for is counted apart from a crash; a kill nobody asked for is a crash.
    web = node.request("GET", "/v1/local/services", auth=VIEWER).json["web"]
    assert (web["restarts"], web["planned_restarts"], web["crashes"]) == (1, 1, 0), web
    os.kill(node.agent.pid_of("web"), signal.SIGKILL)
    wait_for(lambda: node.request("GET", "/v1/local/services", auth=VIEWER).json["web"]["crashes"]
             == 1 and node.agent.state("web") == "RUNNING", 30, what="web revived")
    web = node.request("GET", "/v1/local/services", auth=VIEWER).json["web"]
    assert (web["restarts"], web["planned_restarts"], web["crashes"]) == (2, 1, 1), web
    assert "Control: REST user 'admin'" in node.agent.log_text()
    # Stopping a stopped service is the request's conflict, not a server error.
    r = post({"operation_type": "stop", "services": ["web"]})
    assert r.status == 200 and r.json == {"web": True}, r
    r = node.request("GET", "/v1/local/services", auth=VIEWER)
    assert r.json["web"]["status"] == "STOPPED" and r.json["web"]["start_time"] == "", r
    r = post({"operation_type": "stop", "services": ["web"]})
    assert r.status == 409 and r.json["error_code"] == "invalid_service_state", r
    assert r.json["services"] == {"web": {"ok": False, "error": "not running"}}, r
    r = post({"operation_type": "start", "services": ["web"]})
    assert r.status == 200 and r.json == {"web": True}, r


def test_the_node_list_has_the_one_node_of_a_local_store(node):
    r = node.request("GET", "/v1/nodes", auth=VIEWER)
    assert r.status == 200, r
    status = json.loads(node.agent.ctl("--json", "cluster", "status").stdout)
    assert r.json == [{"uid": 1, "addr": "127.0.0.1", "status": "active", "name": status["node"],
                       "this_node": True}], r.json


# --- sign-in and limits -----------------------------------------------------------------------

ENDPOINTS = [  # method, path, a body it takes, the methods it takes
    ("PUT", "/v1/cluster/update_cert", {"name": "cm", "certificate": "x", "key": "y"}, "PUT"),
    ("PUT", "/v1/cluster/certificates", {"certificates": [{"name": "cm", "certificate": "x"}]},
     "GET, HEAD, PUT"),
    ("GET", "/v1/cluster/certificates", None, "GET, HEAD, PUT"),
    ("DELETE", "/v1/cluster/certificates/ldap_client", None, "DELETE"),
    ("POST", "/v1/cluster/certificates/rotate", {"name": "cm"}, "POST"),
    ("GET", "/v1/cluster", None, "GET, HEAD, PUT"),
    ("PUT", "/v1/cluster", {"http_support": False}, "GET, HEAD, PUT"),
    ("GET", "/v1/local/services", None, "GET, HEAD, POST"),
    ("GET", "/v1/nodes", None, "GET, HEAD"),
    ("POST", "/v1/local/services", {"operation_type": "restart", "services": ["web"]},
     "GET, HEAD, POST"),
]


def test_every_endpoint_refuses_what_it_must_and_nothing_changes(node):
    before = node.fingerprints()
    policy = node.request("GET", "/v1/cluster").json
    web = node.agent.pid_of("web")
    for i, (method, path, body, allowed) in enumerate(ENDPOINTS):
        where = f"{method} {path}"
        # (a name of its own each time: repeated failures of one name would lock it out)
        for auth in (None, ("admin", "wrong password"), (f"nobody{i}", "x")):
            r = node.request(method, path, body, auth=auth)
            assert r.status == 401 and r.json["error_code"] == "unauthorized", (where, r)
            assert r.headers["www-authenticate"] == 'Basic realm="certvisor", charset="UTF-8"'
        # A good sign-in clears admin's failures before they add up to a lock-out.
        assert node.request("GET", "/v1/cluster").status == 200
        r = node.request("PATCH", path, body)
        assert r.status == 405 and r.json["error_code"] == "method_not_allowed", (where, r)
        assert r.headers["allow"] == allowed, (where, r.headers)
        if method != "GET":
            r = node.request(method, path, body, auth=VIEWER)
            assert r.status == 403 and r.json["error_code"] == "insufficient_permissions", (where, r)
        if body is not None:
            r = node.request(method, path, json.dumps(body)[:-3])
            assert r.status == 400 and r.json["error_code"] == "invalid_json", (where, r)
            assert r.json["position"] > 0
            r = node.request(method, path, {**body, "unexpected": 1})
            assert r.status == 400 and r.json["error_code"] == "unknown_field", (where, r)
            r = node.request(method, path, "{" + " " * (1024 * 1024) + "}")
            assert r.status == 413 and r.json["error_code"] == "payload_too_large", (where, r)
            r = node.request(method, path, json.dumps(body), content_type="text/plain")
            assert r.status == 415 and r.json["error_code"] == "unsupported_media_type", (where, r)
    assert node.fingerprints() == before
    assert node.request("GET", "/v1/cluster").json == policy
    assert node.agent.pid_of("web") == web
    assert node.request("GET", "/v1/nothing/here").json["error_code"] == "not_found"


def test_repeated_failed_sign_ins_are_throttled(node):
    add_user(node.agent, "carol", "carol password", "admin")
    for _ in range(5):
        r = node.request("GET", "/v1/cluster", auth=("carol", "guess"))
        assert r.status == 401 and r.json["error_code"] == "unauthorized", r
    r = node.request("GET", "/v1/cluster", auth=("carol", "carol password"))
    assert r.status == 429 and r.json["error_code"] == "too_many_failed_sign_ins", r
    assert int(r.headers["retry-after"]) >= 1 and r.json["retry_after"] >= 1
    r = node.request("GET", "/v1/cluster", headers={"Authorization": "Bearer abc"}, auth=None)
    assert r.status == 401, r
    r = node.request("GET", "/v1/cluster", headers={"Authorization": "Basic !!!"}, auth=None)
    assert r.status == 401, r
    # A name that would forge a log line is refused before anything is logged of it.
    r = node.request("GET", "/v1/cluster", auth=("carol\naudit: forged", "carol password"))
    assert r.status == 401, r
    assert "forged" not in node.agent.log_text() + node.agent.ctl("tail", "api", "stderr").stdout


def raw_exchange(node, data, timeout=20):
    """Sends raw bytes over TLS and reads until the server closes; returns what came back."""
    context = ssl.create_default_context(cafile=str(node.ca))
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", node.port), timeout=timeout) as raw:
        with context.wrap_socket(raw) as s:
            s.sendall(data)
            got = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (ssl.SSLError, ConnectionResetError):
                    break
                if not chunk:
                    break
                got += chunk
    return got


def test_limits_on_what_a_client_may_send(agent_factory):
    node = start_node(agent_factory, timeout=2)
    before = node.fingerprints()
    auth = "Basic " + base64.b64encode(b"admin:admin password").decode()
    # A body over 1 MiB is refused before it is read.
    r = node.request("PUT", "/v1/cluster/update_cert", "x" * (1024 * 1024 + 1))
    assert r.status == 413 and r.json["error_code"] == "payload_too_large", r
    # A head over 16 KiB.
    r = node.request("GET", "/v1/cluster", headers={"X-Padding": "p" * 20000})
    assert r.status == 431 and r.json["error_code"] == "header_too_large", r
    # A request not complete in time.
    start = time.monotonic()
    got = raw_exchange(node, b"PUT /v1/cluster HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                       auth.encode() + b"\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 100\r\n\r\n{\"http_sup")
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert b'"error_code":"request_timeout"' in got
    assert time.monotonic() - start < 10
    # Chunked bodies are not taken.
    got = raw_exchange(node, b"PUT /v1/cluster HTTP/1.1\r\nHost: x\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 411 "), got
    # Several requests on one kept-alive connection, each answered in order.
    conn = node.connect()
    for path in ("/v1/cluster", "/v1/local/services", "/v1/cluster/certificates"):
        r = node.request("GET", path, conn=conn)
        assert r.status == 200 and r.headers["connection"] == "keep-alive", r
    conn.close()
    # Nothing was changed by all that.
    assert node.request("GET", "/v1/cluster").json["http_support"] is True
    assert node.fingerprints() == before
    assert_clean_exit(node.agent)


def test_the_api_goes_on_when_the_agent_is_away(agent_factory):
    node = start_node(agent_factory)
    api = node.agent.pid_of("api")
    # The agent dies: the api outlives it (the next agent adopts it) and says what is missing.
    os.kill(node.agent.proc.pid, signal.SIGKILL)
    node.agent.proc.wait(timeout=10)
    r = node.request("GET", "/v1/cluster")
    assert r.status == 503 and r.json["error_code"] == "agent_unavailable", r
    assert "certvisord is not running" in r.json["message"]
    # The next agent takes the same process over, and the api answers for it again.
    node.agent.start()
    assert node.agent.pid_of("api") == api
    r = node.request("GET", "/v1/cluster")
    assert r.status == 200, r
    # Its output reaches the new agent too (the stop below is logged on its stderr).
    assert_clean_exit(node.agent)


def test_one_setting_under_both_names_is_refused(node):
    r = node.request("PUT", "/v1/cluster", {"cipher_suites": "HIGH", "control_cipher_suites": "ECDHE+AESGCM"})
    assert r.status == 400 and r.json["error_code"] == "invalid_setting", r
    assert "two names of one setting (control_cipher_suites)" in r.json["message"]
    assert node.request("GET", "/v1/cluster").json.get("control_cipher_suites") is None
