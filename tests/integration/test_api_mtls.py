"""Certificate-based sign-in to the REST API: mtls_certificate_authentication and
mtls_client_cert_subject_validation_type, users with a certificate subject line, curl --cert/--key
against a real certvisord, and the agent taking a certificate only from the api service."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import CERTVISORCTL, SANITIZER_MARKERS
from test_api import API, ADMIN, VIEWER, Node, add_user, api_service
from test_certs import free_port, state
from test_supervision import svc
from test_users import control

CURL = shutil.which("curl")
OPENSSL = shutil.which("openssl")

pytestmark = pytest.mark.skipif(not (API.exists() and CURL and OPENSSL),
                                reason="needs certvisor-api, curl and openssl")

OPS_SUBJECT = "CN=ops, OU=Platform, O=Example, L=Austin, ST=TX, C=US"
# The same subject as openssl's -subj takes it.
OPS_DN = "/C=US/ST=TX/L=Austin/O=Example/OU=Platform/CN=ops"


# --- certificates, made with openssl as an operator would ----------------------------------------

def openssl(*args, cwd=None):
    out = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return out.stdout


def make_ca(directory, name):
    """A client CA: (cert, key) paths."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "30", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_client(directory, name, ca, subj, san=None):
    """A client certificate from ca with the subject subj ("/CN=x/O=y"): (cert, key) paths."""
    cert, key, csr = (directory / f"{name}.pem", directory / f"{name}.key",
                      directory / f"{name}.csr")
    ext = directory / f"{name}.ext"
    ext.write_text("extendedKeyUsage=clientAuth\n" + (f"subjectAltName={san}\n" if san else ""))
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", subj)
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
            "-CAcreateserial", "-days", "10", "-out", str(cert), "-extfile", str(ext))
    return cert, key


# --- the node -----------------------------------------------------------------------------------

def mtls_api_service(port, http_port):
    """The api as conf.d ships it: its tls section signs users in by certificate."""
    return api_service(port, http_port).replace(
        "http = true", "http = true\n            certificate_auth = true")


@pytest.fixture
def node(agent_factory, tmp_path):
    port, http_port = free_port(), free_port()
    agent = agent_factory({"api": mtls_api_service(port, http_port), "web": svc()})
    agent.start()
    add_user(agent, *ADMIN, "admin")
    add_user(agent, *VIEWER, "viewer")
    n = Node(agent, port, http_port)
    n.certs = tmp_path / "pki"
    n.ca = make_ca(n.certs, "Ops Client CA")
    yield n
    out = agent.ctl("stop", "api")
    assert out.returncode == 0, out.stdout + out.stderr
    text = agent.ctl("tail", "api", "stderr").stdout
    assert not any(marker in text for marker in SANITIZER_MARKERS), text


def curl(node, path, cert=None, method="GET", body=None, user=None, plain=False):
    """curl as an operator runs it: (status, body); status 0 when there was no HTTP answer."""
    url = (f"http://127.0.0.1:{node.http_port}{path}" if plain
           else f"https://127.0.0.1:{node.port}{path}")
    # -k as Redis Enterprise's documents have it: the server's name is not what is tested here.
    cmd = [CURL, "-sS", "-k", "-X", method, "-w", "\n%{http_code}", "--max-time", "60", url]
    if cert:
        cmd += ["--cert", str(cert[0]), "--key", str(cert[1])]
    if user:
        cmd += ["-u", f"{user[0]}:{user[1]}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    text, _, status = out.stdout.rpartition("\n")
    status = int(status or 0)
    return status, (json.loads(text) if text.strip() else out.stderr)


def ctl_ok(agent, *args):
    out = agent.ctl(*args)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def set_trusted_ca(node):
    ctl_ok(node.agent, "cluster", "certificate", "set", "mtls_trusted_ca", "certificate_file",
           str(node.ca[0]))


def api_file(node):
    return node.agent.prefix.joinpath("run/certvisor/tls/api.conf").read_text()


def add_cert_user(agent, name, subject, role):
    out = agent.ctl("user", "add", name, "--role", role, "--certificate-subject", subject)
    assert out.returncode == 0, out.stderr
    return out.stdout


# --- the tests ----------------------------------------------------------------------------------

def test_enabling_without_mtls_trusted_ca_is_refused_and_nothing_changes(node):
    before = api_file(node)
    out = node.agent.ctl("cluster", "config", "mtls_certificate_authentication", "enabled")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "mtls_trusted_ca is not set" in out.stderr
    assert "certvisorctl cluster certificate set mtls_trusted_ca" in out.stderr
    status, body = curl(node, "/v1/cluster", method="PUT", user=ADMIN,
                        body={"mtls_certificate_authentication": True})
    assert status == 400 and body["error_code"] == "invalid_setting", body
    assert "mtls_trusted_ca is not set" in body["message"]
    status, body = curl(node, "/v1/cluster", user=VIEWER)
    assert status == 200 and body["mtls_certificate_authentication"] is False, body
    assert body["mtls_client_cert_subject_validation_type"] == "san_cn"
    assert api_file(node) == before and "verify_peer" not in before
    assert not state(node.agent, "policy.json").exists() or \
        "mtls" not in state(node.agent, "policy.json").read_text()
    # Enabled in conf.d, the configuration reload is refused, naming the certificate to set.
    (node.agent.conf_d / "policy.conf").write_text(
        'policy {\n    mtls_certificate_authentication = "enabled"\n}\n')
    out = node.agent.ctl("reload")
    assert out.returncode != 0, out.stdout
    assert "mtls_trusted_ca is not set" in out.stdout + out.stderr
    assert api_file(node) == before
    status, body = curl(node, "/v1/cluster", user=VIEWER)
    assert body["mtls_certificate_authentication"] is False, body


def test_a_certificate_signs_in_its_user_with_the_users_role(node):
    agent = node.agent
    set_trusted_ca(node)
    # The REST form, a JSON boolean; the dry run's plan reloads the api and nothing else.
    status, body = curl(node, "/v1/cluster?dry_run=true", method="PUT", user=ADMIN,
                        body={"mtls_certificate_authentication": True})
    assert status == 200, body
    assert [step["service"] for step in body["plan"]] == ["api"], body
    web_starts = len(agent.records("start", "web"))
    api_pid = agent.pid_of("api")
    status, body = curl(node, "/v1/cluster", method="PUT", user=ADMIN,
                        body={"mtls_certificate_authentication": True})
    assert status == 200 and body["mtls_certificate_authentication"] is True, body
    assert agent.pid_of("api") == api_pid  # reloaded, not restarted
    assert len(agent.records("start", "web")) == web_starts
    out = ctl_ok(agent, "--json", "cluster", "certificate", "list")
    items = {i["name"]: i for i in json.loads(out.splitlines()[-1])["items"]}
    assert items["mtls_trusted_ca"]["used_by"] == ["api"], items["mtls_trusted_ca"]
    text = api_file(node)
    assert "verify_peer = optional" in text
    assert f"ca_file = {state(agent, 'certs/mtls_trusted_ca')}/" in text

    add_cert_user(agent, "ops", OPS_SUBJECT, "admin")
    add_cert_user(agent, "auditor", "CN=auditor, O=Example", "viewer")
    ops = make_client(node.certs, "ops", node.ca, OPS_DN)
    auditor = make_client(node.certs, "auditor", node.ca, "/O=Example/CN=auditor")
    stranger = make_client(node.certs, "stranger", node.ca, "/O=Example/CN=stranger")

    # No -u: the certificate alone signs in, with its user's role.
    status, body = curl(node, "/v1/cluster", cert=ops)
    assert status == 200 and body["mtls_certificate_authentication"] is True, body
    status, body = curl(node, "/v1/cluster", cert=ops, method="PUT",
                        body={"min_control_TLS_version": "1.3"})
    assert status == 200 and body["min_control_TLS_version"] == "1.3", body
    assert f"audit: REST user 'ops' by certificate (uid {os.getuid()}) changed policy " \
           "min_control_TLS_version=1.3" in agent.log_text()
    status, body = curl(node, "/v1/cluster/certificates", cert=auditor)
    assert status == 200 and "api_cert" in body, body
    status, body = curl(node, "/v1/cluster", cert=auditor, method="PUT",
                        body={"min_control_TLS_version": "1.2"})
    assert status == 403 and body["error_code"] == "insufficient_permissions", body
    # A certificate from the trusted CA whose subject is nobody's: 401, the usual body.
    status, body = curl(node, "/v1/cluster", cert=stranger)
    assert status == 401 and body["error_code"] == "unauthorized", body
    assert set(body) >= {"error_code", "description", "message"}
    assert "REST sign-in by certificate failed: no user's certificate subject matches" \
        in agent.log_text()
    # Passwords keep working beside it, and Basic credentials come first.
    status, body = curl(node, "/v1/cluster", user=ADMIN)
    assert status == 200, body
    status, body = curl(node, "/v1/cluster", cert=auditor, user=ADMIN, method="PUT",
                        body={"min_control_TLS_version": "1.2"})
    assert status == 200 and body["min_control_TLS_version"] == "1.2", body
    status, body = curl(node, "/v1/cluster", cert=ops, user=("admin", "wrong password"))
    assert status == 401, body
    # A certificate-only user has no password to sign in with.
    status, body = curl(node, "/v1/cluster", user=("ops", ""))
    assert status == 401, body
    # Plain HTTP never asks for a certificate.
    status, body = curl(node, "/v1/cluster", plain=True)
    assert status == 401, body


def test_a_certificate_from_another_ca_is_refused_in_the_handshake(node):
    set_trusted_ca(node)
    ctl_ok(node.agent, "cluster", "config", "mtls_certificate_authentication", "enabled")
    add_cert_user(node.agent, "ops", OPS_SUBJECT, "admin")
    other_ca = make_ca(node.certs / "other", "Other CA")
    forged = make_client(node.certs / "other", "ops", other_ca,
                         "/C=US/ST=TX/L=Austin/O=Example/OU=Platform/CN=ops")
    # The api verifies what it asked for: a certificate that does not chain to mtls_trusted_ca
    # ends the handshake (an alert, so no HTTP status at all), even with a matching subject.
    status, detail = curl(node, "/v1/cluster", cert=forged)
    assert status == 0, detail
    out = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{node.port}", "-cert",
                          str(forged[0]), "-key", str(forged[1]), "-brief", "-ign_eof"],
                         input="GET /v1/cluster HTTP/1.0\r\n\r\n", capture_output=True, text=True,
                         timeout=30)
    assert "HTTP/1." not in out.stdout
    assert "alert" in out.stderr.lower() and "unknown ca" in out.stderr.lower(), out.stderr


def test_san_cn_and_full_subject_match_differently(node):
    agent = node.agent
    set_trusted_ca(node)
    ctl_ok(agent, "cluster", "config", "mtls_certificate_authentication", "enabled")
    add_cert_user(agent, "ops", OPS_SUBJECT, "viewer")
    exact = make_client(node.certs, "exact", node.ca,
                        "/C=US/ST=TX/L=Austin/O=Example/OU=Platform/CN=ops")
    reordered = make_client(node.certs, "reordered", node.ca,
                            "/CN=ops/OU=Platform/O=Example/L=Austin/ST=TX/C=US")
    cn_only = make_client(node.certs, "cn_only", node.ca, "/O=Elsewhere/CN=ops")
    by_san = make_client(node.certs, "by_san", node.ca, "/CN=robot-17", san="DNS:ops")
    by_email = make_client(node.certs, "by_email", node.ca, "/CN=robot-18",
                           san="email:ops")
    lower = make_client(node.certs, "lower", node.ca,
                        "/C=US/ST=TX/L=Austin/O=example/OU=Platform/CN=ops")

    def statuses():
        return {name: curl(node, "/v1/cluster", cert=cert)[0] for name, cert in (
            ("exact", exact), ("reordered", reordered), ("cn_only", cn_only),
            ("by_san", by_san), ("by_email", by_email), ("lower", lower))}

    # san_cn (the default): the CN, or a DNS or email SAN, is the CN of the subject line.
    assert statuses() == {"exact": 200, "reordered": 200, "cn_only": 200, "by_san": 200,
                          "by_email": 200, "lower": 200}
    # full_subject: every attribute, in any order, values case-sensitive. Nothing is reloaded.
    out = agent.ctl("cluster", "config", "mtls_client_cert_subject_validation_type",
                    "full_subject", "--dry-run")
    assert out.returncode == 0 and "Nothing was changed" in out.stdout, out.stdout
    status, body = curl(node, "/v1/cluster?dry_run=true", method="PUT", user=ADMIN,
                        body={"mtls_client_cert_subject_validation_type": "full_subject"})
    assert status == 200 and body["plan"] == [], body
    ctl_ok(agent, "cluster", "config", "mtls_client_cert_subject_validation_type", "full_subject")
    assert statuses() == {"exact": 200, "reordered": 200, "cn_only": 401, "by_san": 401,
                          "by_email": 401, "lower": 401}
    # Redis Enterprise's "disabled" has no meaning here: refused, saying what to do instead.
    out = agent.ctl("cluster", "config", "mtls_client_cert_subject_validation_type", "disabled")
    assert out.returncode == 1 and "set mtls_certificate_authentication disabled" in out.stderr
    out = agent.ctl("cluster", "config", "mtls_client_cert_subject_validation_type", "cn")
    assert out.returncode == 1 and "'cn' is not san_cn or full_subject" in out.stderr
    status, body = curl(node, "/v1/cluster", user=VIEWER)
    assert body["mtls_client_cert_subject_validation_type"] == "full_subject"


def test_disabled_means_certificates_are_not_asked_for(node):
    agent = node.agent
    set_trusted_ca(node)
    add_cert_user(agent, "ops", OPS_SUBJECT, "admin")
    ops = make_client(node.certs, "ops", node.ca, OPS_DN)
    # Never enabled: the certificate is not asked for, so it is not there to sign in with.
    status, body = curl(node, "/v1/cluster", cert=ops)
    assert status == 401 and body["error_code"] == "unauthorized", body
    ctl_ok(agent, "cluster", "config", "mtls_certificate_authentication", "enabled")
    assert curl(node, "/v1/cluster", cert=ops)[0] == 200
    status, body = curl(node, "/v1/cluster", method="PUT", user=ADMIN,
                        body={"mtls_certificate_authentication": False})
    assert status == 200 and body["mtls_certificate_authentication"] is False, body
    assert "verify_peer" not in api_file(node) and "ca_file" not in api_file(node)
    status, body = curl(node, "/v1/cluster", cert=ops)
    assert status == 401 and body["error_code"] == "unauthorized", body


def test_mtls_trusted_ca_cannot_be_deleted_while_enabled(node):
    agent = node.agent
    set_trusted_ca(node)
    ctl_ok(agent, "cluster", "config", "mtls_certificate_authentication", "enabled")
    out = agent.ctl("cluster", "certificate", "delete", "mtls_trusted_ca")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "in use" in out.stderr and "mtls_certificate_authentication disabled" in out.stderr
    status, body = curl(node, "/v1/cluster/certificates/mtls_trusted_ca", method="DELETE",
                        user=ADMIN)
    assert status == 409 and body["error_code"] == "certificate_in_use", body
    assert state(agent, "certs/mtls_trusted_ca/current").exists()
    assert "ca_file" in api_file(node)
    # A new CA while enabled: the api, and only it, reloads with it.
    new_ca = make_ca(node.certs / "new", "New Client CA")
    status, body = curl(node, "/v1/cluster/certificates?dry_run=true", method="PUT", user=ADMIN,
                        body={"certificates": [{"name": "mtls_trusted_ca",
                                                "certificate": new_ca[0].read_text()}]})
    assert status == 200 and [s["service"] for s in body["plan"]] == ["api"], body
    ctl_ok(agent, "cluster", "config", "mtls_certificate_authentication", "disabled")
    ctl_ok(agent, "cluster", "certificate", "delete", "mtls_trusted_ca")
    assert not state(agent, "certs/mtls_trusted_ca").exists()


def test_only_the_api_may_assert_a_certificate(node):
    agent = node.agent
    set_trusted_ca(node)
    ctl_ok(agent, "cluster", "config", "mtls_certificate_authentication", "enabled")
    add_cert_user(agent, "ops", OPS_SUBJECT, "admin")
    ops = make_client(node.certs, "ops", node.ca, OPS_DN)
    # A local caller (root, even) pastes a valid, matching certificate: it holds no key proof,
    # so the agent refuses it because the caller is not the api service.
    request = {"command": "cluster config", "args": ["min_control_TLS_version", "1.3"],
               "options": {}, "as_certificate": {"chain": ops[0].read_text()}}
    reply = control(agent, request)
    assert reply["exit"] == 4 and reply["auth"] == "failed", reply
    assert "only taken from the REST API service" in reply["error"]
    assert "Refused a certificate sign-in from pid" in agent.log_text()
    status, body = curl(node, "/v1/cluster", user=VIEWER)
    assert body["min_control_TLS_version"] == "1.2", body


def test_users_get_a_certificate_subject_with_certvisorctl(node):
    agent = node.agent
    out = add_cert_user(agent, "ops", "cn=ops,o=Example", "viewer")
    assert out.strip() == 'Added user ops (viewer), signing in with a certificate ' \
                          '"CN=ops, O=Example" (no password)'
    out = agent.ctl("user", "add", "bad", "--certificate-subject", "ops at example")
    assert out.returncode == 2 and "expected TYPE=value" in out.stderr, out.stderr
    out = agent.ctl("user", "add", "bad", "--certificate-subject", "CN=a, C=USA")
    assert out.returncode == 2 and "two-letter country code" in out.stderr, out.stderr
    lines = ctl_ok(agent, "user", "list").splitlines()
    assert any(line.split()[:2] == ["ops", "viewer"] and
               'certificate "CN=ops, O=Example" (no password)' in line for line in lines), lines
    assert not any(line.startswith("bad") for line in lines)
    # Set and clear the subject of a user that has a password.
    root_subject = OPS_SUBJECT.replace("ops", "root")
    out = ctl_ok(agent, "user", "subject", "admin", root_subject)
    assert out.strip() == f'User admin signs in with a certificate "{root_subject}"'
    assert "set the certificate subject of REST user 'admin'" in agent.log_text()
    out = ctl_ok(agent, "user", "subject", "admin", "--clear")
    assert out.strip() == "User admin no longer signs in with a certificate"
    # A certificate-only user keeps its subject: without it, it could not sign in.
    out = agent.ctl("user", "subject", "ops", "--clear")
    assert out.returncode == 2 and "user passwd" in out.stderr, out.stderr
    out = agent.ctl("user", "subject", "ops", "garbage")
    assert out.returncode == 2 and "expected TYPE=value" in out.stderr
    out = agent.ctl("user", "subject", "nobody", "CN=x")
    assert out.returncode == 4
    # A password and a subject together: the password from --password-file (here stdin).
    out = subprocess.run([str(CERTVISORCTL), "-s", str(agent.socket), "user", "add", "both",
                          "--certificate-subject", "CN=both", "--password-file", "-"],
                         input="both password\n", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "or its password" in out.stdout, out.stdout + out.stderr
    users = json.loads(state(agent, "users.json").read_text())["users"]
    assert users["ops"] == {"role": "viewer", "certificate_subject": "CN=ops, O=Example"}
    assert users["both"]["certificate_subject"] == "CN=both" and "hash" in users["both"]
    assert "certificate_subject" not in users["admin"]

