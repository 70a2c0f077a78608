"""What the agent takes from operators, checked as a TLS client would check it: a CA certificate
is refused as a service's certificate, the DHE suites of a cipher list are really offered
(sslscan), a PKCS#12 file is named as such with the commands that unpack it, and a reload
whose external certificate files cannot be taken says so and fails."""
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, wait_for
from test_apply import external_pair, file_fingerprint, served_fingerprint
from test_certs import free_port, state
from test_metrics import exporter_service
from test_tls_services import tls_service

openssl = shutil.which("openssl")
SSLSCAN = shutil.which("sslscan")
EXPORTER = BUILD / "certvisor-metrics-exporter"

# The Mozilla intermediate list, as the operators' guide gives it for cipher_suites.
MOZILLA_INTERMEDIATE = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                        "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384")


def run_openssl(*args):
    subprocess.run([openssl, *map(str, args)], check=True, capture_output=True, timeout=60)


def verifies(port, ca):
    """Whether a client that verifies the server (purpose sslserver, as s_client does) connects."""
    out = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-brief", "-CAfile", str(ca),
                          "-verify_return_error"], input="", capture_output=True, text=True, timeout=20)
    return out.returncode == 0


# ------------------------------------------------------------------ a CA certificate as a leaf


def test_a_ca_certificate_is_refused_as_a_server_certificate(agent_factory):
    """The issue's case: the operator's CA (keyCertSign, cRLSign) given as metrics_exporter's
    certificate. Refused with both problems and the fix; the old certificate keeps being served
    and still verifies."""
    port = free_port()
    agent = agent_factory({"metrics": tls_service("metrics_exporter", port)})
    agent.start()
    d = agent.root / "ops"
    d.mkdir()
    run_openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", d / "ca.key", "-out", d / "ca.pem", "-days", "30", "-subj", "/CN=Ops CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    before = served_fingerprint(port)
    assert verifies(port, state(agent, "ca.pem"))
    out = agent.ctl("cluster", "certificate", "set", "metrics_exporter", "certificate_file", str(d / "ca.pem"),
                    "key_file", str(d / "ca.key"))
    assert out.returncode == 1, out.stdout
    assert ("certificate 'metrics_exporter' is a CA certificate (basicConstraints CA:TRUE) and its key usage "
            "lacks digitalSignature (it has keyCertSign, cRLSign), so TLS clients refuse it as a server's "
            "certificate: issue a leaf certificate from that CA") in out.stderr, out.stderr
    assert served_fingerprint(port) == before
    assert verifies(port, state(agent, "ca.pem"))

    # What openssl req -x509 makes by default (CA:TRUE): refused, with the option that fixes it...
    run_openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", d / "self.key", "-out", d / "self.pem", "-days", "30",
                "-subj", "/CN=metrics.example", "-addext", "subjectAltName=IP:127.0.0.1")
    out = agent.ctl("cluster", "certificate", "set", "metrics_exporter", "certificate_file", str(d / "self.pem"),
                    "key_file", str(d / "self.key"))
    assert out.returncode == 1
    assert "-addext basicConstraints=critical,CA:FALSE" in out.stderr, out.stderr
    assert served_fingerprint(port) == before
    # ... and that option gives a certificate that is taken and verifies as a server's.
    run_openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", d / "self.key", "-out", d / "self.pem", "-days", "30",
                "-subj", "/CN=metrics.example", "-addext", "subjectAltName=IP:127.0.0.1",
                "-addext", "basicConstraints=critical,CA:FALSE")
    out = agent.ctl("cluster", "certificate", "set", "metrics_exporter", "certificate_file", str(d / "self.pem"),
                    "key_file", str(d / "self.key"))
    assert out.returncode == 0, out.stderr
    wait_for(lambda: served_fingerprint(port) == file_fingerprint(d / "self.pem"), 15,
             what="the self-signed leaf to be served")
    assert verifies(port, d / "self.pem")


def test_a_key_usage_without_digital_signature_is_refused(agent_factory):
    """A leaf whose key usage is keyEncipherment alone: ECDHE and TLS 1.3 clients would refuse it."""
    port = free_port()
    agent = agent_factory({"front": tls_service("api", port)})
    agent.start()
    d = agent.root / "ops"
    d.mkdir()
    run_openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d / "ca.key", "-out", d / "ca.pem",
                "-days", "30", "-subj", "/CN=Ops CA")
    run_openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", d / "api.key", "-out", d / "api.csr",
                "-subj", "/CN=api.example")
    (d / "ext.cnf").write_text("keyUsage=critical,keyEncipherment\n")
    run_openssl("x509", "-req", "-in", d / "api.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
                "-CAcreateserial", "-out", d / "api.pem", "-days", "30", "-extfile", d / "ext.cnf")
    before = served_fingerprint(port)
    out = agent.ctl("cluster", "certificate", "set", "api", "certificate_file", str(d / "api.pem"),
                    "key_file", str(d / "api.key"))
    assert out.returncode == 1
    assert ("certificate 'api' has a key usage without digitalSignature (it has keyEncipherment), so TLS "
            "clients refuse it (unsuitable certificate purpose): have it reissued with keyUsage = "
            "digitalSignature, keyEncipherment") in out.stderr, out.stderr
    assert served_fingerprint(port) == before


# ------------------------------------------------------------------ DHE


def accepted_tls12(port):
    out = subprocess.run([SSLSCAN, "--no-colour", "--no-fallback", "--no-renegotiation", "--no-compression",
                          "--no-heartbleed", "--no-groups", "--tls12", f"127.0.0.1:{port}"],
                         capture_output=True, text=True, timeout=120)
    return {m.group(1) for m in re.finditer(r"^(?:Preferred|Accepted)\s+TLSv1\.2\s+\d+ bits\s+(\S+)",
                                            out.stdout, re.M)}


@pytest.mark.skipif(not (SSLSCAN and EXPORTER.exists()), reason="needs sslscan and certvisor-metrics-exporter")
def test_the_dhe_suites_of_a_cipher_list_are_offered(agent_factory):
    """With RSA certificates, the Mozilla intermediate list's two DHE-RSA suites are offered by a
    service on lib/ and by the metrics exporter, and a DHE-only list still lets TLS 1.2 clients in."""
    ports = {"front": free_port(), "metrics": free_port()}
    agent = agent_factory({"front": tls_service("api", ports["front"]),
                           "metrics": exporter_service(ports["metrics"])})
    (agent.conf_d / "00-certificates.conf").write_text('certificates {\n  key_type = "rsa-2048"\n}\n')
    agent.start()
    out = agent.ctl("cluster", "config", "cipher_suites", MOZILLA_INTERMEDIATE)
    assert out.returncode == 0, out.stderr
    for name, port in ports.items():
        offered = wait_for(lambda: accepted_tls12(port) or None, 30, what=f"{name} to answer sslscan")
        assert {"DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES128-GCM-SHA256"} <= offered, (name, offered)
        assert not {c for c in offered if "ECDSA" in c}, offered  # RSA certificates
    out = agent.ctl("cluster", "config", "cipher_suites", "DHE-RSA-AES256-GCM-SHA384")
    assert out.returncode == 0, out.stderr
    for name, port in ports.items():
        assert accepted_tls12(port) == {"DHE-RSA-AES256-GCM-SHA384"}, name
        hello = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-brief",
                                "-cipher", "DHE-RSA-AES256-GCM-SHA384", "-CAfile", str(state(agent, "ca.pem")),
                                "-verify_return_error"], input="", capture_output=True, text=True, timeout=20)
        assert hello.returncode == 0, hello.stderr
        assert "DHE-RSA-AES256-GCM-SHA384" in hello.stderr + hello.stdout


# ------------------------------------------------------------------ PKCS#12


def test_a_pkcs12_file_is_named_with_the_commands_that_unpack_it(agent_factory):
    agent = agent_factory({"front": tls_service("cm", free_port())})
    agent.start()
    d = agent.root / "files"
    d.mkdir()
    cert, key, _ = external_pair(d, cn="cm.example.com")
    p12 = d / "cm.p12"
    run_openssl("pkcs12", "-export", "-in", cert, "-inkey", key, "-out", p12, "-passout", "pass:")
    before = file_fingerprint(state(agent, "certs", "cm", "current", "cert.pem"))
    for keyword_args in (("certificate_file", str(p12), "key_file", str(key)),
                         ("certificate_file", str(cert), "key_file", str(p12))):
        out = agent.ctl("cluster", "certificate", "set", "cm", *keyword_args)
        assert out.returncode == 1
        assert f"is not PEM: {p12} is PKCS#12 (a .p12/.pfx bundle of certificates and a key)" in out.stderr
        assert f"openssl pkcs12 -in {p12} -nokeys -out cert.pem" in out.stderr, out.stderr
        assert f"openssl pkcs12 -in {p12} -nocerts -nodes -out key.pem" in out.stderr
        assert "openssl x509" not in out.stderr and "DER" not in out.stderr
    assert file_fingerprint(state(agent, "certs", "cm", "current", "cert.pem")) == before
    # The two commands, as given, make files the agent takes.
    subprocess.run([openssl, "pkcs12", "-in", str(p12), "-nokeys", "-out", "cert.pem", "-passin", "pass:"],
                   check=True, capture_output=True, cwd=d)
    subprocess.run([openssl, "pkcs12", "-in", str(p12), "-nocerts", "-nodes", "-out", "key.pem",
                    "-passin", "pass:"], check=True, capture_output=True, cwd=d)
    out = agent.ctl("cluster", "certificate", "set", "cm", "certificate_file", str(d / "cert.pem"),
                    "key_file", str(d / "key.pem"))
    assert out.returncode == 0, out.stderr
    assert file_fingerprint(state(agent, "certs", "cm", "current", "cert.pem")) == file_fingerprint(cert)


# ------------------------------------------------------------------ reload and external files


def warnings_of(out):
    return [line for line in out.stderr.splitlines() if line.startswith("certvisorctl: warning: ")]


def test_a_reload_says_when_external_certificate_files_cannot_be_taken(agent_factory):
    """A certificate section whose files are missing, do not match, or hold a certificate that
    validation refuses: the reload names the problem and exits 1, the certificate in force stays;
    fixed files are taken by the next reload, which exits 0."""
    port = free_port()
    agent = agent_factory({"front": tls_service("api", port)})
    agent.start()
    before = served_fingerprint(port)
    files = agent.root / "files"
    section = agent.conf_d / "05-external.conf"

    def point_at(cert, key):
        section.write_text(f'certificate api {{\n    cert_file = "{cert}"\n    key_file = "{key}"\n}}\n')

    # Files that are not there.
    point_at(files / "missing.pem", files / "missing.key")
    out = agent.ctl("reload")
    assert out.returncode == 1, (out.stdout, out.stderr)
    [warning] = warnings_of(out)
    assert f"certificate 'api' ({section}:1): cannot read {files}/missing.pem: No such file or directory" in warning
    assert "nothing is applied until this is fixed" in warning
    assert served_fingerprint(port) == before

    # A certificate and the key of another.
    cert, key, _ = external_pair(files)
    other_cert, other_key, _ = external_pair(agent.root / "other")
    point_at(cert, other_key)
    out = agent.ctl("reload")
    assert out.returncode == 1
    assert "key does not match certificate" in "\n".join(warnings_of(out)), out.stderr
    assert served_fingerprint(port) == before

    # A consistent pair that validation refuses (here, a CA certificate): said before the answer.
    ca_dir = agent.root / "ca"
    ca_dir.mkdir()
    run_openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", ca_dir / "ca.key", "-out", ca_dir / "ca.pem", "-days", "30", "-subj", "/CN=Ops CA",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    point_at(ca_dir / "ca.pem", ca_dir / "ca.key")
    out = agent.ctl("reload")
    assert out.returncode == 1
    [warning] = warnings_of(out)
    assert f"certificate 'api' ({section}:1): certificate 'api' is a CA certificate" in warning, warning
    assert "the certificate in force stays until the files are fixed" in warning
    assert served_fingerprint(port) == before

    # Fixed: no warning, exit 0, and the files' certificate is served.
    point_at(cert, key)
    out = agent.ctl("reload")
    assert out.returncode == 0, out.stderr
    assert warnings_of(out) == []
    wait_for(lambda: served_fingerprint(port) == file_fingerprint(cert), 15, what="the external certificate")
    out = agent.ctl("reload")
    assert (out.returncode, out.stdout.strip(), warnings_of(out)) == (0, "No changes", [])
