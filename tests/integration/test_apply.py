"""The apply pipeline: certificate replacement and policy changes reach exactly the services
that use them, a dry run changes nothing, and a service that fails brings a rollback."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import wait_for
from test_certs import free_port, redis_service, s_client, state
from test_supervision import quoted, svc

openssl = shutil.which("openssl")
pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")


def external_pair(directory, days=200, cn="db.example.com", key_type="ec"):
    """A CA of the operator's and a certificate from it, made with the openssl CLI."""
    d = directory
    d.mkdir(exist_ok=True)
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", d / "ca.key", "-out", d / "ca.pem", "-days", "400", "-subj", "/CN=Ops CA"],
                   check=True, capture_output=True)
    subprocess.run([openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", d / "new.key", "-out", d / "new.csr", "-subj", f"/CN={cn}"],
                   check=True, capture_output=True)
    (d / "ext.cnf").write_text("subjectAltName=DNS:db.example.com,IP:127.0.0.1\n"
                               "extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n")
    subprocess.run([openssl, "x509", "-req", "-in", d / "new.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
                    "-CAcreateserial", "-out", d / "new.pem", "-days", str(days), "-extfile", d / "ext.cnf"],
                   check=True, capture_output=True)
    return d / "new.pem", d / "new.key", d / "ca.pem"


def served_fingerprint(port):
    out = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-showcerts"], input="",
                         capture_output=True, text=True, timeout=20).stdout
    pem = out[out.index("-----BEGIN CERTIFICATE-----"):out.index("-----END CERTIFICATE-----") + 25]
    fp = subprocess.run([openssl, "x509", "-noout", "-fingerprint", "-sha256"], input=pem,
                        capture_output=True, text=True, check=True).stdout
    return fp.strip().split("=", 1)[1]


def file_fingerprint(path):
    fp = subprocess.run([openssl, "x509", "-in", str(path), "-noout", "-fingerprint", "-sha256"],
                        capture_output=True, text=True, check=True).stdout
    return fp.strip().split("=", 1)[1]


@pytest.fixture
def shard(agent_factory):
    tls_port = free_port()
    agent = agent_factory({"redis-db1": redis_service(tls_port, free_port()), "bystander": svc()})
    agent.start()
    return agent, tls_port


def test_setting_a_certificate_reaches_exactly_its_services(shard):
    agent, port = shard
    cert, key, ca = external_pair(agent.root / "ext", days=20)
    bystander = agent.pid_of("bystander")
    out = agent.ctl("cluster", "certificate", "set", "data_internode_encryption",
                    "certificate_file", str(cert), "key_file", str(key))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"Set data_internode_encryption certificate to contents of file {cert}"
    assert re.search(r"warning: certificate 'data_internode_encryption' expires in (19|20) days",
                     out.stderr)  # a warning, not a failure
    assert served_fingerprint(port) == file_fingerprint(cert)
    assert s_client(port, cafile=ca).returncode == 0
    assert agent.pid_of("bystander") == bystander
    listing = agent.ctl("cluster", "certificate", "list").stdout
    block = listing[listing.index("data_internode_encryption"):].split("\n\n")[0]
    assert "origin:       user-provided" in block and "issuer:       CN=Ops CA" in block
    audit = [line for line in agent.log_text().splitlines() if "audit:" in line]
    assert len(audit) == 1 and "uid 0 changed certificate 'data_internode_encryption'" in audit[0]
    assert f"-> {file_fingerprint(cert)}: applied" in audit[0] and "redis-db1" in audit[0]
    assert "PRIVATE" not in agent.log_text()


def test_a_dry_run_prints_the_plan_and_changes_nothing(shard):
    agent, port = shard
    cert, key, _ = external_pair(agent.root / "ext")
    before = served_fingerprint(port)
    rendered = (agent.prefix / "run/certvisor/tls/redis-db1.conf").read_text()
    out = agent.ctl("cluster", "certificate", "set", "data_internode_encryption", "certificate_file",
                    str(cert), "key_file", str(key), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "Dry run: restart redis-db1 (RUNNING)" in out.stdout and "Nothing was changed" in out.stdout
    assert served_fingerprint(port) == before
    assert (agent.prefix / "run/certvisor/tls/redis-db1.conf").read_text() == rendered
    gens = [p.name for p in state(agent, "certs", "data_internode_encryption").iterdir() if p.name.isdigit()]
    assert gens == ["1"]


def test_bad_input_changes_nothing(shard):
    agent, port = shard
    cert, key, ca = external_pair(agent.root / "ext")
    before = served_fingerprint(port)
    out = agent.ctl("cluster", "certificate", "set", "data_internode_encryption", "certificate_file",
                    str(cert), "key_file", str(agent.root / "ext" / "ca.key"))
    assert out.returncode == 1
    assert "key does not match certificate 'data_internode_encryption'" in out.stderr
    out = agent.ctl("cluster", "certificate", "set", "frontend", "certificate_file", str(cert),
                    "key_file", str(key))
    assert out.returncode == 4 and "unknown certificate 'frontend'" in out.stderr
    out = agent.ctl("cluster", "certificate", "set", "proxy", "certificate_file", str(cert))
    assert out.returncode == 1 and "key_file is required" in out.stderr
    out = agent.ctl("cluster", "certificate", "set", "proxy", "cert", str(cert))
    assert out.returncode == 2
    assert served_fingerprint(port) == before
    assert "audit:" not in agent.log_text()


def test_a_policy_change_is_kept_and_applied(shard):
    agent, port = shard
    out = agent.ctl("cluster", "config", "min_data_TLS_version", "1.3")
    assert (out.returncode, out.stdout.strip()) == (0, "Cluster configured successfully"), out.stderr
    assert s_client(port, "-tls1_2").returncode != 0
    assert s_client(port, "-tls1_3").returncode == 0
    assert '"min_data_TLS_version": "1.3"' in state(agent, "policy.json").read_text()
    rows = agent.ctl("cluster", "config", "show").stdout
    assert "min_data_TLS_version             1.3                      runtime (state file)" in rows
    # At 1.3 the TLS 1.2 list is not used; going back to 1.2 with it is refused, as a whole.
    bad = agent.ctl("cluster", "config", "data_cipher_list", "aNULL", "min_data_TLS_version", "1.2")
    assert bad.returncode == 1 and "data plane: no cipher in 'aNULL' is usable with TLS 1.2" in bad.stderr
    assert s_client(port, "-tls1_2").returncode != 0  # nothing of it was applied
    assert agent.ctl("cluster", "config", "no_such", "1").returncode == 2
    # The compound form operators already use, with the older name.
    out = agent.ctl("cluster", "config", "sentinel_ssl_policy", "required", "min_data_TLS_version", "1.2")
    assert out.returncode == 0, out.stderr
    assert s_client(port, "-tls1_2").returncode == 0


def test_a_service_that_does_not_come_back_brings_a_rollback(agent_factory):
    tls_port = free_port()
    agent = agent_factory({
        "redis-db1": redis_service(tls_port, free_port()),
        "fragile": svc(quoted("--reject-reload"), extra="""reload_signal = HUP
            tls {
                certificate = data_internode_encryption
                plane = data
                output = "%{run_dir}/tls/fragile.conf"
            }"""),
    })
    agent.start()
    before = served_fingerprint(tls_port)
    cert, key, _ = external_pair(agent.root / "ext")
    out = agent.ctl("cluster", "certificate", "set", "data_internode_encryption", "certificate_file",
                    str(cert), "key_file", str(key))
    assert out.returncode == 1
    assert "service 'fragile' did not come back with the change" in out.stderr
    assert "rolled back: the previous certificate is in force again" in out.stderr
    wait_for(lambda: agent.state("fragile") == "RUNNING" and agent.state("redis-db1") == "RUNNING",
             what="both services back")
    assert served_fingerprint(tls_port) == before
    current = os.readlink(state(agent, "certs", "data_internode_encryption", "current"))
    assert current == "1"
    assert not state(agent, "certs", "data_internode_encryption", "2").exists()
    assert "cert_file" in (agent.prefix / "run/certvisor/tls/fragile.conf").read_text()
    assert "/data_internode_encryption/1/" in (agent.prefix / "run/certvisor/tls/fragile.conf").read_text()
