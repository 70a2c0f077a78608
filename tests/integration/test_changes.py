"""Every other way a change arrives, through the same pipeline: rotation, deletion, a CSR whose
key never leaves the store, a burst coalesced into one plan, conf.d edits with reload, dry runs
with the rendered diff, and renewal before expiry."""
import json
import os
import re
import shutil
import stat
import subprocess
import threading

import pytest

from conftest import wait_for
from test_apply import external_pair, file_fingerprint, served_fingerprint
from test_certs import free_port, state
from test_tls_services import tls_service

openssl = shutil.which("openssl")


def two_services(agent_factory, env_extra=None):
    ports = {"front": free_port(), "console": free_port()}
    agent = agent_factory({"front": tls_service("api", ports["front"]),
                           "console": tls_service("cm", ports["console"])}, env_extra=env_extra)
    return agent, ports


def audit_lines(agent):
    return [line for line in agent.log_text().splitlines() if "audit:" in line]


def test_rotate_reissues_one_certificate_and_reloads_only_its_user(agent_factory):
    agent, ports = two_services(agent_factory)
    agent.start()
    before_front, before_console = served_fingerprint(ports["front"]), served_fingerprint(ports["console"])
    pids = agent.pid_of("front"), agent.pid_of("console")
    out = agent.ctl("cluster", "certificate", "rotate", "api")
    assert out.returncode == 0, out.stderr
    new = served_fingerprint(ports["front"])
    assert new != before_front and out.stdout.strip() == f"Rotated api certificate (SHA256 {new})"
    assert served_fingerprint(ports["console"]) == before_console
    assert (agent.pid_of("front"), agent.pid_of("console")) == pids  # reloaded, not restarted
    block = agent.ctl("cluster", "certificate", "show", "api").stdout
    assert "origin:       generated" in block and new in block
    # The new certificate verifies against the same cluster CA.
    assert subprocess.run([openssl, "verify", "-CAfile", state(agent, "ca.pem"),
                           state(agent, "certs/api/current/cert.pem")], capture_output=True).returncode == 0
    assert "PRIVATE" not in agent.log_text()


def test_rotate_all_is_one_plan_and_keeps_operator_certificates(agent_factory, tmp_path):
    agent, ports = two_services(agent_factory)
    agent.start()
    cert, key, _ = external_pair(agent.root / "ext")
    assert agent.ctl("cluster", "certificate", "set", "cm", "certificate_file", str(cert),
                     "key_file", str(key)).returncode == 0
    before = served_fingerprint(ports["front"])
    out = agent.ctl("cluster", "certificate", "rotate", "all")
    assert out.returncode == 0, out.stderr
    rotated = re.findall(r"^Rotated (\S+) certificate", out.stdout, re.M)
    assert "api" in rotated and "proxy" in rotated and "cm" not in rotated  # the operator's stays
    assert "warning: left as they are, not generated here: cm (" in out.stderr, out.stderr
    assert served_fingerprint(ports["front"]) != before
    assert served_fingerprint(ports["console"]) == file_fingerprint(cert)
    last = audit_lines(agent)[-1]
    assert "changed certificate 'api'" in last and "certificate 'proxy'" in last
    assert last.count('"front"') == 1  # one reload, whatever the number of certificates


def test_rotate_and_delete_refuse_what_they_cannot_do(agent_factory):
    agent, _ = two_services(agent_factory)
    agent.start()
    out = agent.ctl("cluster", "certificate", "rotate", "ldap_client")
    assert out.returncode == 1 and "provided by the operator, not generated" in out.stderr
    out = agent.ctl("cluster", "certificate", "rotate", "frontend")
    assert out.returncode == 4 and "unknown certificate 'frontend'" in out.stderr
    out = agent.ctl("cluster", "certificate", "delete", "api")
    assert out.returncode == 1 and "is required and cannot be deleted" in out.stderr
    out = agent.ctl("cluster", "certificate", "delete", "ldap_client")
    assert out.returncode == 1 and "certificate 'ldap_client' is not set" in out.stderr


def test_delete_an_optional_certificate_unless_a_service_trusts_it(agent_factory):
    port = free_port()
    agent = agent_factory({"front": tls_service("api", port)})
    agent.start()
    _, _, ca = external_pair(agent.root / "ext")
    out = agent.ctl("cluster", "certificate", "set", "mtls_trusted_ca", "certificate_file", str(ca))
    assert out.returncode == 0, out.stderr
    # A service that verifies clients against it: deleting it would break that service.
    agent.write_service("front", tls_service("api", port).replace(
        "plane = control", "plane = control\n            trust = mtls_trusted_ca\n            verify_peer = require"))
    assert agent.ctl("reload").returncode == 0
    out = agent.ctl("cluster", "certificate", "delete", "mtls_trusted_ca")
    assert out.returncode == 1 and "service 'front'" in out.stderr and "mtls_trusted_ca" in out.stderr
    assert state(agent, "certs/mtls_trusted_ca/current").exists()
    agent.write_service("front", tls_service("api", port))
    assert agent.ctl("reload").returncode == 0
    out = agent.ctl("cluster", "certificate", "delete", "mtls_trusted_ca", "--dry-run")
    assert out.returncode == 0 and "Nothing was changed" in out.stdout
    out = agent.ctl("cluster", "certificate", "delete", "mtls_trusted_ca")
    assert out.returncode == 0 and out.stdout.strip() == "Deleted mtls_trusted_ca certificate"
    assert not state(agent, "certs/mtls_trusted_ca").exists()
    assert "not set" in agent.ctl("cluster", "certificate", "list").stdout


def test_csr_keeps_the_key_in_the_store_and_set_pairs_with_it(agent_factory):
    agent, ports = two_services(agent_factory)
    agent.start()
    out = agent.ctl("cluster", "certificate", "csr", "api", "--subject", "/O=Example/CN=api.example.com",
                    "--san", "api.example.com,127.0.0.1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("-----BEGIN CERTIFICATE REQUEST-----") and "PRIVATE" not in out.stdout
    assert "cluster certificate set api certificate_file" in out.stderr
    pending = state(agent, "certs/api/pending-key.pem")
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    d = agent.root / "opsca"
    _, _, _ = external_pair(d)
    (agent.root / "api.csr").write_text(out.stdout)
    text = subprocess.run([openssl, "req", "-in", agent.root / "api.csr", "-noout", "-text", "-verify"],
                          capture_output=True, text=True, check=True).stdout
    assert "CN = api.example.com" in text and "DNS:api.example.com" in text and "IP Address:127.0.0.1" in text
    (d / "ext2.cnf").write_text("subjectAltName=DNS:api.example.com,IP:127.0.0.1\n"
                                "extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n")
    signed = agent.root / "api.pem"
    subprocess.run([openssl, "x509", "-req", "-in", agent.root / "api.csr", "-CA", d / "ca.pem", "-CAkey",
                    d / "ca.key", "-CAcreateserial", "-out", signed, "-days", "90", "-extfile", d / "ext2.cnf"],
                   check=True, capture_output=True)
    out = agent.ctl("cluster", "certificate", "set", "api", "certificate_file", str(signed))
    assert out.returncode == 0, out.stderr
    assert served_fingerprint(ports["front"]) == file_fingerprint(signed)
    assert not pending.exists()
    assert "origin:       csr" in agent.ctl("cluster", "certificate", "show", "api").stdout
    # Without a pending key, set needs key_file again.
    out = agent.ctl("cluster", "certificate", "set", "api", "certificate_file", str(signed))
    assert out.returncode == 1 and "key_file is required" in out.stderr


def test_a_burst_from_several_clients_becomes_one_plan(agent_factory):
    agent, ports = two_services(agent_factory, env_extra={"CERTVISOR_TEST_COALESCE_MS": "1500"})
    agent.start()
    results = {}

    def run(label, *args):
        results[label] = agent.ctl(*args)

    threads = [threading.Thread(target=run, args=("api", "cluster", "certificate", "rotate", "api")),
               threading.Thread(target=run, args=("cm", "cluster", "certificate", "rotate", "cm")),
               threading.Thread(target=run, args=("bad", "cluster", "certificate", "rotate", "nope"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["api"].returncode == 0 and results["cm"].returncode == 0, results
    assert results["bad"].returncode == 4  # refused alone; the others go on
    assert "Apply: 2 changes coalesced into one plan" in agent.log_text()
    assert len([l for l in audit_lines(agent) if "applied" in l]) == 2


def test_conf_d_policy_edit_reaches_services_on_reload(agent_factory):
    agent, ports = two_services(agent_factory)
    agent.start()
    pid = agent.pid_of("front")
    assert subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{ports['front']}", "-tls1_2"],
                          input="", capture_output=True, timeout=20).returncode == 0
    policy = agent.conf_d / "00-policy.conf"
    policy.write_text("policy {\n    min_control_TLS_version = \"1.3\"\n}\n")
    rendered = agent.prefix / "run/certvisor/tls/front.conf"
    text = rendered.read_text()
    out = agent.ctl("reload", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "Dry run: reload front (RUNNING)" in out.stdout and "+min_version = 1.3" in out.stdout
    assert rendered.read_text() == text and "1.3" not in agent.ctl("cluster", "config", "show").stdout
    out = agent.ctl("reload", "front", "--dry-run")  # reloading named services has no plan
    assert out.returncode == 2 and "--dry-run is not supported by 'reload' with service names" in out.stderr
    out = agent.ctl("stop", "front", "--dry-run")
    assert out.returncode == 2 and agent.pid_of("front") == pid
    out = agent.ctl("reload")
    assert out.returncode == 0, out.stderr
    assert "front: TLS configuration changed (reloaded)" in out.stdout
    assert "console: TLS configuration changed (reloaded)" in out.stdout
    assert agent.pid_of("front") == pid
    assert subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{ports['front']}", "-tls1_2"],
                          input="", capture_output=True, timeout=20).returncode != 0
    assert f"{policy}:2" in agent.ctl("cluster", "config", "show").stdout
    # A value OpenSSL cannot use: the reload is refused and the running files stay.
    text = rendered.read_text()
    policy.write_text("policy {\n    control_cipher_suites = \"NO-SUCH-CIPHER\"\n}\n")
    out = agent.ctl("reload")
    assert out.returncode == 1 and "00-policy.conf:2: control plane: cipher list" in out.stderr
    assert rendered.read_text() == text and agent.pid_of("front") == pid
    # A reload without TLS changes reloads nothing.
    policy.write_text("policy {\n    min_control_TLS_version = \"1.3\"\n}\n")
    out = agent.ctl("reload")
    assert out.returncode == 0 and out.stdout.strip() == "No changes"


def test_a_service_without_a_reload_is_said_to_be_restarted(agent_factory):
    port = free_port()
    agent = agent_factory({"norl": tls_service("api", port).replace("reload_signal = HUP",
                                                                      "reload_signal = none")})
    agent.start()
    pid = agent.pid_of("norl")
    policy = agent.conf_d / "00-policy.conf"
    policy.write_text("policy {\n    min_control_TLS_version = \"1.3\"\n}\n")
    out = agent.ctl("reload")
    assert out.returncode == 0, out.stderr
    assert "norl: TLS configuration changed (restarted: it has no reload)" in out.stdout, out.stdout
    assert agent.pid_of("norl") != pid
    out = agent.ctl("--json", "cluster", "config", "min_control_TLS_version", "1.2")
    assert json.loads(out.stdout)["restarted"] == ["norl"], out.stdout


def test_a_cipher_list_for_another_kind_of_key_is_refused(agent_factory):
    """The generated certificates have ECDSA keys: a control-plane list of ECDHE-RSA ciphers alone
    would leave every TLS 1.2 client of the api and cm without a handshake."""
    agent, ports = two_services(agent_factory)
    agent.start()
    rendered = agent.prefix / "run/certvisor/tls/front.conf"
    text = rendered.read_text()
    out = agent.ctl("cluster", "config", "cipher_suites", "ECDHE-RSA-AES128-GCM-SHA256")
    assert out.returncode != 0
    assert "can be used with the ECDSA key of" in out.stderr, out.stderr
    assert "such as ECDHE-ECDSA-AES128-GCM-SHA256" in out.stderr, out.stderr
    assert rendered.read_text() == text
    assert "ECDHE-RSA" not in agent.ctl("cluster", "config", "show").stdout
    # With TLS 1.3 as the floor the list is never used for a handshake: accepted.
    out = agent.ctl("cluster", "config", "min_control_TLS_version", "1.3",
                    "cipher_suites", "ECDHE-RSA-AES128-GCM-SHA256")
    assert out.returncode == 0, out.stderr


def test_dry_run_prints_the_rendered_diff(agent_factory):
    agent, ports = two_services(agent_factory)
    agent.start()
    rendered = agent.prefix / "run/certvisor/tls/front.conf"
    text = rendered.read_text()
    out = agent.ctl("cluster", "config", "min_control_TLS_version", "1.3", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "Dry run: reload front (RUNNING)" in out.stdout
    assert f"--- {rendered}" in out.stdout
    assert "-min_version = 1.2" in out.stdout and "+min_version = 1.3" in out.stdout
    assert " cert_file = " in out.stdout  # context lines are shown unmarked
    assert rendered.read_text() == text
    out = agent.ctl("cluster", "certificate", "rotate", "api", "--dry-run")
    assert out.returncode == 0 and "-cert_file = " in out.stdout and "+cert_file = " in out.stdout
    assert "Dry run: reload console" not in out.stdout
    assert len(os.listdir(state(agent, "certs/api"))) == 2  # generation 1 and current: nothing staged


def test_renewal_reissues_generated_certificates_and_warns_about_the_others(agent_factory):
    agent, ports = two_services(agent_factory)
    agent.start()
    cert, key, _ = external_pair(agent.root / "ext", days=370)
    assert agent.ctl("cluster", "certificate", "set", "cm", "certificate_file", str(cert),
                     "key_file", str(key)).returncode == 0
    before = served_fingerprint(ports["front"])
    assert agent.stop() == 0
    # 340 days on: the generated certificates (365 days) have 25 left, the operator's 30.
    agent.env_extra = {"CERTVISOR_TEST_CLOCK_OFFSET_DAYS": "340"}
    agent.start()
    wait_for(lambda: "Renewal: certificate 'api' re-issued" in agent.log_text(), 30, what="renewal")
    log = agent.log_text()
    assert re.search(r"Renewal: certificate 'api' has 2[45] days left; re-issuing it", log)
    assert served_fingerprint(ports["front"]) != before
    assert re.search(r"Certificate 'cm' \(user-provided\) expires in (29|30) days", log)
    assert served_fingerprint(ports["console"]) == file_fingerprint(cert)
