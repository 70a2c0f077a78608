"""Certificates and TLS policy at start-up: generation, the store, rendering, real TLS."""
import atexit
import os
import pathlib
import random
import shutil
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import CERTVISORD
from test_supervision import svc

openssl = shutil.which("openssl")


# Ports handed out by free_port(), one file each, across the test processes ctest runs at once:
# two tests that drew the same free port would otherwise both bind it, and the later one fails
# ("Address already in use"; it happened in CI). Each process removes its own files at exit; a
# file left by a process that was killed is taken over after an hour.
PORT_CLAIMS = pathlib.Path(tempfile.gettempdir()) / "certvisor-test-ports"
PORT_CLAIM_STALE_S = 3600
_claimed = []


def _release_ports():
    for path in _claimed:
        try:
            path.unlink()
        except OSError:
            pass


atexit.register(_release_ports)


def _claim(port):
    """True when this process may use port: no other test process holds its claim."""
    PORT_CLAIMS.mkdir(mode=0o1777, exist_ok=True)
    path = PORT_CLAIMS / str(port)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        try:
            if time.time() - path.stat().st_mtime < PORT_CLAIM_STALE_S:
                return False
            path.unlink()
        except OSError:
            return False
        return _claim(port)
    except OSError:
        return True  # no place for claims: the bind check alone, as before
    _claimed.append(path)
    return True


def free_port():
    """A port to listen on, below the kernel's ephemeral range (net.ipv4.ip_local_port_range,
    32768 and up by default): a port the kernel hands out for a bind to port 0 can be taken
    as the local port of another test's outgoing connection before the service binds it.
    Claimed for this process, so that no test running beside it is given the same port."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if _claim(port):
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def state(agent, *parts):
    return agent.prefix.joinpath("var/lib/certvisor", *parts)


def fingerprint(path):
    out = subprocess.run([openssl, "x509", "-in", str(path), "-noout", "-fingerprint", "-sha256"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def redis_service(tls_port, plain_port, extra_tls="", reload_in_place=False):
    """A redis-server with the include certvisord renders; reload_in_place: TLS changes reach
    it by CONFIG SET (certvisor-redis-reload, as the shipped conf.d does) instead of a
    restart."""
    reload = (f"""reload_command = {{"%{{libexec_dir}}/certvisor-redis-reload", "--port", "{plain_port}",
                          "--include", "%{{run_dir}}/tls/%{{name}}.conf"}}"""
              if reload_in_place else "")
    return f"""
        command = "/usr/bin/redis-server"
        arguments = {{"--port", "{plain_port}", "--bind", "127.0.0.1", "--supervised", "systemd",
                     "--daemonize", "no", "--dir", "%{{state_dir}}", "--save", "", "--appendonly", "no",
                     "--include", "%{{run_dir}}/tls/%{{name}}.conf"}}
        {reload}
        tls {{
            certificate = data_internode_encryption
            plane = data
            format = redis
            port = {tls_port}
            {extra_tls}
        }}
    """


def s_client(port, *flags, cafile=None):
    cmd = [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-brief", *flags]
    if cafile:
        cmd += ["-CAfile", str(cafile), "-verify_return_error"]
    return subprocess.run(cmd, input="", capture_output=True, text=True, timeout=20)


def test_first_start_generates_a_ca_and_every_certificate(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    ca = state(agent, "ca.pem")
    assert stat.S_IMODE(os.stat(ca).st_mode) == 0o644
    for name in ("api", "cm", "proxy", "syncer", "metrics_exporter", "ccs_internode_encryption",
                 "data_internode_encryption"):
        cert = state(agent, "certs", name, "current", "cert.pem")
        key = state(agent, "certs", name, "current", "key.pem")
        verify = subprocess.run([openssl, "verify", "-CAfile", str(ca), "-purpose", "sslserver", str(cert)],
                                capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        text = subprocess.run([openssl, "x509", "-in", str(cert), "-noout", "-text"],
                              capture_output=True, text=True, check=True).stdout
        assert "DNS:cluster.local, DNS:*.cluster.local, DNS:internal.cluster.local" in text
        assert "IP Address:127.0.0.1" in text and "IP Address:0:0:0:0:0:0:0:1" in text
        assert "DNS:localhost" in text
        assert "TLS Web Server Authentication, TLS Web Client Authentication" in text
        assert "ASN1 OID: prime256v1" in text
    assert not state(agent, "certs", "ldap_client").exists()
    assert "Generated 8 certificates" in agent.log_text()


def test_a_restart_keeps_the_certificates(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    before = fingerprint(state(agent, "certs", "proxy", "current", "cert.pem"))
    assert agent.stop() == 0
    agent.start()
    assert fingerprint(state(agent, "certs", "proxy", "current", "cert.pem")) == before
    assert agent.log_text().count("Generated 8 certificates") == 1


def test_rsa_keys_and_settings_from_the_certificates_section(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.write_service("unused", 'command = "TESTSVC"\n  autostart = false')
    (agent.conf_d / "certs.conf").write_text(
        'certificates {\n cluster_fqdn = "db.example.com"\n key_type = "rsa-2048"\n'
        ' validity_days = 90\n extra_dns_names = {"redis.example.com"}\n extra_ip_addresses = {"10.0.0.7"}\n}\n')
    agent.start()
    text = subprocess.run([openssl, "x509", "-in", str(state(agent, "certs", "api", "current", "cert.pem")),
                           "-noout", "-text"], capture_output=True, text=True, check=True).stdout
    assert "Public-Key: (2048 bit)" in text
    assert "DNS:db.example.com, DNS:*.db.example.com, DNS:internal.db.example.com" in text
    assert "DNS:redis.example.com" in text and "IP Address:10.0.0.7" in text
    assert "Key Encipherment" in text


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")
def test_the_redis_shard_serves_tls_from_its_rendered_include(agent_factory):
    tls_port, plain_port = free_port(), free_port()
    agent = agent_factory({"redis-db1": redis_service(tls_port, plain_port)})
    agent.start()
    rendered = agent.prefix / "run/certvisor/tls/redis-db1.conf"
    assert stat.S_IMODE(os.stat(rendered).st_mode) == 0o640
    assert f"tls-port {tls_port}" in rendered.read_text()
    ca = state(agent, "ca.pem")
    ping = subprocess.run(["redis-cli", "--tls", "--cacert", str(ca), "-p", str(tls_port), "ping"],
                          capture_output=True, text=True, timeout=20)
    assert ping.stdout.strip() == "PONG", ping.stderr
    assert s_client(tls_port, "-tls1_2", cafile=ca).returncode == 0
    assert s_client(tls_port, "-tls1_1").returncode != 0


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")
def test_the_data_plane_policy_reaches_the_shard(agent_factory):
    tls_port, plain_port = free_port(), free_port()
    agent = agent_factory({"redis-db1": redis_service(tls_port, plain_port)})
    (agent.conf_d / "policy.conf").write_text('policy {\n  min_data_TLS_version = "1.3"\n}\n')
    agent.start()
    assert 'tls-protocols "TLSv1.3"' in (agent.prefix / "run/certvisor/tls/redis-db1.conf").read_text()
    ca = state(agent, "ca.pem")
    assert s_client(tls_port, "-tls1_3", cafile=ca).returncode == 0
    assert s_client(tls_port, "-tls1_2").returncode != 0


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")
def test_the_runtime_state_file_overrides_conf_d(agent_factory):
    tls_port, plain_port = free_port(), free_port()
    agent = agent_factory({"redis-db1": redis_service(tls_port, plain_port)})
    (agent.conf_d / "policy.conf").write_text('policy {\n  min_data_TLS_version = "1.2"\n}\n')
    state(agent).mkdir(parents=True, exist_ok=True)
    state(agent, "policy.json").write_text('{"min_data_TLS_version": "1.3"}\n')
    agent.start()
    assert 'tls-protocols "TLSv1.3"' in (agent.prefix / "run/certvisor/tls/redis-db1.conf").read_text()


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed")
def test_tls_1_0_really_works_when_asked_for(agent_factory):
    tls_port, plain_port = free_port(), free_port()
    agent = agent_factory({"redis-db1": redis_service(tls_port, plain_port)})
    (agent.conf_d / "policy.conf").write_text('policy {\n  min_data_TLS_version = "1"\n}\n')
    agent.start()
    assert "obsolete and insecure" in agent.log_text()
    out = s_client(tls_port, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Protocol version: TLSv1" in out.stdout + out.stderr


def test_bad_policy_and_tls_sections_refuse_to_start_with_file_and_line(agent_factory):
    agent = agent_factory({"web": svc()})
    bad = agent.conf_d / "policy.conf"
    bad.write_text('policy {\n  min_data_TLS_version = "1.2"\n  data_cipher_list = "aNULL"\n}\n')
    assert agent.start(expect_fail=True) == 1
    assert f"{bad}:3: data plane: no cipher in 'aNULL' is usable with TLS 1.2" in agent.log_text()
    bad.write_text('policy {\n  sentinel_ssl_policy = "sometimes"\n}\n')
    out = subprocess.run([str(CERTVISORD), "-c", str(agent.config), "--check"], capture_output=True, text=True)
    assert f"{bad}:2: sentinel_tls_mode: 'sometimes' is not allowed, required or disabled" in out.stderr
    bad.write_text('policy {\n  cipher_suites = "HIGH"\n  control_cipher_suites = "HIGH"\n}\n')
    out = subprocess.run([str(CERTVISORD), "-c", str(agent.config), "--check"], capture_output=True, text=True)
    assert "cipher_suites is already set at" in out.stderr and "(as control_cipher_suites)" in out.stderr
    bad.unlink()
    path = agent.write_service("tlsweb", 'command = "TESTSVC"\n  tls {\n    certificate = frontend\n  }')
    out = subprocess.run([str(CERTVISORD), "-c", str(agent.config), "--check"], capture_output=True, text=True)
    assert f"{path}:4: certificate: unknown certificate 'frontend'" in out.stderr


def test_certificate_list_show_and_ca(agent_factory):
    tls_port, plain_port = free_port(), free_port()
    agent = agent_factory({"redis-db1": redis_service(tls_port, plain_port)})
    agent.start()
    out = agent.ctl("cluster", "certificate", "list")
    assert out.returncode == 0, out.stderr
    blocks = {b.split("\n", 1)[0]: b for b in out.stdout.strip().split("\n\n")}
    assert set(blocks) == {"api", "cm", "proxy", "syncer", "metrics_exporter", "ccs_internode_encryption",
                           "data_internode_encryption", "ldap_client", "mtls_trusted_ca",
                           "ldap_server_ca"}
    data = blocks["data_internode_encryption"]
    assert "issuer:       CN=certvisor cluster CA cluster.local" in data
    assert "origin:       generated" in data and "key:          ECDSA P-256" in data
    assert "used by:      redis-db1" in data
    assert "IP:127.0.0.1" in data and "IP:::1" in data
    cert = state(agent, "certs", "data_internode_encryption", "current", "cert.pem")
    expected = fingerprint(cert).split("=", 1)[1]
    assert f"fingerprint:  SHA256 {expected}" in data
    assert "not set" in blocks["ldap_client"]
    show = agent.ctl("cluster", "certificate", "show", "proxy")
    assert show.returncode == 0 and "-----BEGIN CERTIFICATE-----" in show.stdout
    assert "PRIVATE KEY" not in out.stdout + show.stdout
    assert agent.ctl("cluster", "certificate", "show", "ldap_client").returncode == 1
    unknown = agent.ctl("cluster", "certificate", "show", "frontend")
    assert unknown.returncode == 4 and "unknown certificate 'frontend'" in unknown.stderr
    ca = agent.ctl("cluster", "certificate", "ca")
    assert ca.stdout == state(agent, "ca.pem").read_text()
    # The printed CA is what a client needs to verify the node without --insecure.
    ca_file = agent.root / "printed-ca.pem"
    ca_file.write_text(ca.stdout)
    ping = subprocess.run(["redis-cli", "--tls", "--cacert", str(ca_file), "-p", str(tls_port), "ping"],
                          capture_output=True, text=True, timeout=20)
    assert ping.stdout.strip() == "PONG"


def test_config_show_names_every_source(agent_factory):
    agent = agent_factory({"web": svc()})
    policy = agent.conf_d / "policy.conf"
    policy.write_text('policy {\n  min_control_TLS_version = "1.3"\n  sentinel_ssl_policy = "required"\n}\n')
    state(agent).mkdir(parents=True, exist_ok=True)
    state(agent, "policy.json").write_text('{"http_support": "disabled"}\n')
    agent.start()
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in agent.ctl("cluster", "config", "show").stdout.splitlines()}
    assert rows["min_control_TLS_version"] == ["1.3", f"{policy}:2"]
    assert rows["sentinel_tls_mode"] == ["required", f"{policy}:3"]
    assert rows["http_support"] == ["disabled", "runtime (state file)"]
    assert rows["min_data_TLS_version"] == ["1.2", "default"]
    assert rows["min_sentinel_TLS_version"] == ["1.2", "follows min_data_TLS_version"]
    assert rows["data_cipher_list"] == ["-", "default (OpenSSL's)"]
    assert len(agent.ctl("help", "cluster").stdout.splitlines()) == 27  # with the cluster and membership commands


def test_a_bad_runtime_policy_file_is_refused_with_its_reason(agent_factory):
    agent = agent_factory({"web": svc()})
    state(agent).mkdir(parents=True, exist_ok=True)
    state(agent, "policy.json").write_text('{"sentinel_tls_mode": "bogus"}\n')
    assert agent.start(expect_fail=True) == 1
    assert "policy.json: sentinel_tls_mode: 'bogus' is not allowed, required or disabled" in agent.log_text()


def seed_003_pair(directory, cn="cm.example.com", extfile=None):
    """A key and certificate made as the operators' guide says (genrsa, req -new, x509 -req -CA),
    which gives a certificate without extensions, so without an extended key usage."""
    d = directory
    d.mkdir(exist_ok=True)
    run = lambda *args: subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)
    if not (d / "ca.pem").exists():
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d / "ca.key", "-out", d / "ca.pem",
            "-days", "400", "-subj", "/CN=Ops CA")
    run("genrsa", "-out", d / f"{cn}.key", "2048")
    run("req", "-new", "-key", d / f"{cn}.key", "-out", d / f"{cn}.csr", "-subj", f"/CN={cn}")
    extra = ["-extfile", extfile] if extfile else []
    run("x509", "-req", "-in", d / f"{cn}.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
        "-CAcreateserial", "-out", d / f"{cn}.pem", "-days", "200", *extra)
    return d / f"{cn}.pem", d / f"{cn}.key"


def current_fingerprint(agent, name):
    return fingerprint(state(agent, "certs", name, "current", "cert.pem"))


def test_a_certificate_without_extended_key_usage_is_accepted(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    cert, key = seed_003_pair(agent.root / "ops")
    assert "Extended Key Usage" not in subprocess.run(
        [openssl, "x509", "-in", str(cert), "-noout", "-text"], capture_output=True, text=True).stdout
    out = agent.ctl("cluster", "certificate", "set", "cm", "certificate_file", str(cert), "key_file", str(key))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"Set cm certificate to contents of file {cert}"
    assert current_fingerprint(agent, "cm") == fingerprint(cert)
    # The syncer is a client: no extension allows that too.
    cert, key = seed_003_pair(agent.root / "ops", cn="syncer.example.com")
    out = agent.ctl("cluster", "certificate", "set", "syncer", "certificate_file", str(cert), "key_file", str(key))
    assert out.returncode == 0, out.stderr


def test_an_extended_key_usage_without_the_purpose_is_still_refused(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    ext = agent.root / "client-only.cnf"
    ext.parent.mkdir(exist_ok=True)
    ext.write_text("extendedKeyUsage=clientAuth\n")
    cert, key = seed_003_pair(agent.root / "ops", extfile=ext)
    before = current_fingerprint(agent, "cm")
    out = agent.ctl("cluster", "certificate", "set", "cm", "certificate_file", str(cert), "key_file", str(key))
    assert out.returncode == 1
    assert ("certificate 'cm' is not for serverAuth: its extended key usage lacks it; have it reissued "
            "with extendedKeyUsage = serverAuth") in out.stderr
    assert current_fingerprint(agent, "cm") == before
    ext.write_text("extendedKeyUsage=serverAuth\n")
    cert, key = seed_003_pair(agent.root / "ops", cn="syncer.example.com", extfile=ext)
    before = current_fingerprint(agent, "syncer")
    out = agent.ctl("cluster", "certificate", "set", "syncer", "certificate_file", str(cert), "key_file", str(key))
    assert out.returncode == 1
    assert "certificate 'syncer' is not for clientAuth" in out.stderr
    assert current_fingerprint(agent, "syncer") == before


def not_pem_files(agent):
    """The files operators hand over by mistake, each with what the refusal must say."""
    d = agent.root / "files"
    d.mkdir()
    pem = state(agent, "certs", "cm", "current", "cert.pem")
    der = d / "cm_cert.der"
    subprocess.run([openssl, "x509", "-in", str(pem), "-outform", "der", "-out", str(der)], check=True)
    utf16 = d / "cm_windows.pem"
    utf16.write_bytes(pem.read_text().encode("utf-16"))  # with a byte order mark, as Windows saves it
    noise = d / "random.bin"
    noise.write_bytes(bytes(range(256)) * 4)
    nul = d / "nul.pem"
    nul.write_bytes(b"-----BEGIN CERTIFICATE-----\nabc\0def\n")
    latin1 = d / "latin1.pem"
    latin1.write_bytes(pem.read_bytes() + "# Zertifikat für cm\n".encode("latin-1"))
    return [
        (der, f"certificate 'cm' is not PEM: {der} is DER (binary); convert it with: openssl x509 "
              f"-inform der -in {der} -out {der}.pem"),
        (utf16, f"certificate 'cm' is not PEM: {utf16} is UTF-16 text (as Windows tools save it); save it "
                f"as UTF-8 or ASCII, e.g. with: iconv -f UTF-16LE -t UTF-8 {utf16} > {utf16}.pem"),
        (noise, f"certificate 'cm' is not PEM: {noise} holds binary data (NUL bytes)"),
        (nul, f"certificate 'cm' is not PEM: {nul} holds binary data (NUL bytes)"),
        (latin1, f"certificate 'cm' is not PEM: {latin1} holds binary data (byte "),
    ]


def test_files_that_cannot_be_pem_are_refused_naming_the_file_and_the_fix(agent_factory):
    agent = agent_factory({"web": svc()})
    agent.start()
    key = state(agent, "certs", "cm", "current", "key.pem")
    before = current_fingerprint(agent, "cm")
    for path, message in not_pem_files(agent):
        out = agent.ctl("cluster", "certificate", "set", "cm", "certificate_file", str(path), "key_file", str(key))
        assert out.returncode == 1, (path, out.stderr)  # as for any invalid certificate
        assert out.stderr.startswith(f"certvisorctl: {message}"), (path, out.stderr)
        assert "JSON" not in out.stderr and "memory" not in out.stderr
    der_key = agent.root / "files" / "cm_key.der"
    subprocess.run([openssl, "pkey", "-in", str(key), "-outform", "der", "-out", str(der_key)], check=True)
    pem = state(agent, "certs", "cm", "current", "cert.pem")
    out = agent.ctl("cluster", "certificate", "set", "cm", "certificate_file", str(pem), "key_file", str(der_key))
    assert out.returncode == 1
    assert (f"the key of certificate 'cm' is not PEM: {der_key} is DER (binary); convert it with: "
            f"openssl pkey -inform der -in {der_key}") in out.stderr
    out = agent.ctl("cluster", "certificate", "set", "cm", "certificate_file", str(agent.root / "files"))
    assert out.returncode == 2
    assert f"{agent.root / 'files'} is a directory; name the PEM file in it" in out.stderr
    assert current_fingerprint(agent, "cm") == before
    assert agent.ctl("status", "web").returncode == 0  # the agent is unharmed
