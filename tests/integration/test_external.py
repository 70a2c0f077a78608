"""Certificates kept in external files (as certbot keeps them): applied at start, applied again
when the pair on disk changes and is consistent, never while it is half-written."""
import os
import shutil
import subprocess
import time

from conftest import wait_for
from test_apply import external_pair, file_fingerprint, served_fingerprint
from test_certs import free_port
from test_tls_services import tls_service

openssl = shutil.which("openssl")


def certbot_layout(root, pair_dir, generation):
    """live/fullchain.pem and live/privkey.pem as symlinks into archive/, as certbot makes them."""
    archive, live = root / "archive", root / "live"
    archive.mkdir(exist_ok=True)
    live.mkdir(exist_ok=True)
    cert, key = pair_dir / "new.pem", pair_dir / "new.key"
    (archive / f"fullchain{generation}.pem").write_bytes(cert.read_bytes())
    (archive / f"privkey{generation}.pem").write_bytes(key.read_bytes())
    return archive, live


def relink(live, name, target):
    """certbot's switch: a new symlink renamed over the old one."""
    tmp = live / f".{name}.tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, live / name)


def applied_lines(agent):
    return [line for line in agent.log_text().splitlines() if "audit:" in line and "applied" in line]


def test_external_files_are_applied_at_start_and_on_each_consistent_change(agent_factory):
    port = free_port()
    agent = agent_factory({"front": tls_service("api", port)})
    le = agent.root / "letsencrypt"
    le.mkdir()
    first = agent.root / "first"
    external_pair(first)
    archive, live = certbot_layout(le, first, 1)
    relink(live, "fullchain.pem", "../archive/fullchain1.pem")
    relink(live, "privkey.pem", "../archive/privkey1.pem")
    (agent.conf_d / "05-external.conf").write_text(
        f'certificate api {{\n    cert_file = "{live}/fullchain.pem"\n    key_file = "{live}/privkey.pem"\n}}\n')
    agent.start()
    wait_for(lambda: served_fingerprint(port) == file_fingerprint(first / "new.pem"), 15,
             what="the external certificate to be served")
    assert "origin:       external" in agent.ctl("cluster", "certificate", "show", "api").stdout
    pid = agent.pid_of("front")

    # The operator cannot set or rotate it behind the files' back.
    out = agent.ctl("cluster", "certificate", "rotate", "api")
    assert out.returncode == 1 and "is kept in files named by" in out.stderr
    out = agent.ctl("cluster", "certificate", "set", "api", "certificate_file", str(first / "new.pem"),
                    "key_file", str(first / "new.key"))
    assert out.returncode == 1 and "05-external.conf:1" in out.stderr

    # A renewal: the new key's link switches first, the certificate's a moment later. The pair
    # in between does not match and must never be applied.
    second = agent.root / "second"
    external_pair(second)
    certbot_layout(le, second, 2)
    before = len(applied_lines(agent))
    relink(live, "privkey.pem", "../archive/privkey2.pem")
    time.sleep(1.0)
    assert served_fingerprint(port) == file_fingerprint(first / "new.pem")
    assert len(applied_lines(agent)) == before
    relink(live, "fullchain.pem", "../archive/fullchain2.pem")
    wait_for(lambda: served_fingerprint(port) == file_fingerprint(second / "new.pem"), 15,
             what="the renewed certificate to be served")
    assert len(applied_lines(agent)) == before + 1
    assert f"audit: file {live}/fullchain.pem changed certificate 'api'" in applied_lines(agent)[-1]
    assert agent.pid_of("front") == pid  # reloaded in place
    assert "PRIVATE" not in agent.log_text()


def test_an_invalid_external_certificate_is_refused_and_the_old_one_stays(agent_factory):
    port = free_port()
    agent = agent_factory({"front": tls_service("api", port)})
    files = agent.root / "files"
    external_pair(files)
    (agent.conf_d / "05-external.conf").write_text(
        f'certificate api {{\n    cert_file = "{files}/new.pem"\n    key_file = "{files}/new.key"\n}}\n')
    agent.start()
    wait_for(lambda: served_fingerprint(port) == file_fingerprint(files / "new.pem"), 15)
    in_force = served_fingerprint(port)
    # A consistent pair that fails validation (a client-only certificate for a server):
    # logged, refused, and the one in force keeps being served.
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", files / "tmp.key", "-out", files / "tmp.pem", "-subj", "/CN=client",
                    "-addext", "extendedKeyUsage=clientAuth"],
                   check=True, capture_output=True)
    os.replace(files / "tmp.key", files / "new.key")
    os.replace(files / "tmp.pem", files / "new.pem")
    wait_for(lambda: "External certificate 'api' refused" in agent.log_text(), 15)
    assert "serverAuth" in agent.log_text().split("External certificate 'api' refused")[1].splitlines()[0]
    assert served_fingerprint(port) == in_force
