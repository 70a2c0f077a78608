"""The shipped Redis shard takes TLS changes in place (reload_command) and keeps its data.

The shard is conf.d/10-redis-db1.conf itself, on free ports, behind the proxy: a certificate
or data-plane policy change must reach redis-server's TLS port without a restart (same pid,
same data, open connections kept), a refused or hanging reload rolls the change back, and a
restart or a crash keeps the data (the append-only file).
"""
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
import redis

from conftest import BUILD, REPO, pid_alive, wait_for
from test_apply import external_pair, file_fingerprint, served_fingerprint
from test_certs import free_port, s_client, state
from test_proxy import PROXY_SERVICE
from test_supervision import svc

RELOAD = BUILD / "certvisor-redis-reload"

pytestmark = [
    pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed"),
    pytest.mark.skipif(not RELOAD.exists(), reason="certvisor-redis-reload not built"),
]


class Shard:
    """An agent running the shipped redis-db1 section and database db1 (its ports moved to free
    ones), and the proxy in front of it."""

    def __init__(self, agent_factory, edit=lambda text: text):
        self.db_port, self.plain_port, self.tls_port = free_port(), free_port(), free_port()
        text = (REPO / "conf.d/10-redis-db1.conf").read_text()
        text = (text.replace("12000", str(self.db_port)).replace("12100", str(self.plain_port))
                .replace("12101", str(self.tls_port)).replace('"0.0.0.0"', '"127.0.0.1"'))
        self.agent = agent_factory({"proxy": PROXY_SERVICE})
        (self.agent.conf_d / "10-redis-db1.conf").write_text(edit(text))
        self.agent.start()
        assert self.agent.state("redis-db1") == "RUNNING", self.agent.ctl("tail", "redis-db1").stdout

    def client(self):
        """A redis-py client through the proxy (TLS, verified against the cluster CA)."""
        return redis.Redis(host="127.0.0.1", port=self.db_port, ssl=True,
                           ssl_ca_certs=str(state(self.agent, "ca.pem")), ssl_check_hostname=False,
                           socket_timeout=10)

    def shard(self):
        return redis.Redis(host="127.0.0.1", port=self.plain_port, socket_timeout=10)

    def pid(self):
        return self.agent.pid_of("redis-db1")

    def current_cert(self):
        return state(self.agent, "certs", "data_internode_encryption", "current", "cert.pem")

    def ctl_ok(self, *args):
        out = self.agent.ctl(*args)
        assert out.returncode == 0, out.stdout + out.stderr + self.agent.ctl("tail", "redis-db1").stdout
        return out


class TlsConnection:
    """One TLS connection straight to the shard's TLS port, kept open across changes."""

    def __init__(self, port):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))

    def command(self, *words):
        self.sock.sendall(b"*%d\r\n" % len(words) +
                          b"".join(b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in words))
        return self.sock.recv(4096)

    def close(self):
        self.sock.close()


@pytest.fixture
def shipped(agent_factory):
    return lambda **kw: Shard(agent_factory, **kw)


def test_tls_changes_reload_the_shard_in_place_and_keep_its_data(shipped):
    shard = shipped()
    client = shard.client()
    for i in range(50):
        client.set(f"qa:k{i}", f"v{i}")
    pid = shard.pid()
    direct = TlsConnection(shard.tls_port)
    assert direct.command("GET", "qa:k2") == b"$2\r\nv2\r\n"

    plan = shard.ctl_ok("cluster", "config", "min_data_TLS_version", "1.3", "--dry-run").stdout
    assert "Dry run: reload redis-db1 (RUNNING)" in plan, plan
    assert "restart redis-db1" not in plan

    out = shard.ctl_ok("cluster", "config", "min_data_TLS_version", "1.3")
    assert out.stdout.strip() == "Cluster configured successfully"
    assert shard.pid() == pid
    assert client.get("qa:k2") == b"v2" and client.dbsize() == 50
    assert s_client(shard.tls_port, "-tls1_2").returncode != 0  # the old protocol is refused
    assert s_client(shard.tls_port, "-tls1_3").returncode == 0
    assert direct.command("PING") == b"+PONG\r\n"  # opened before the change, still served

    for target in ("data_internode_encryption", "all"):
        before = served_fingerprint(shard.tls_port)
        shard.ctl_ok("cluster", "certificate", "rotate", target)
        now = file_fingerprint(shard.current_cert())
        assert now != before and served_fingerprint(shard.tls_port) == now
        assert shard.pid() == pid, target
        assert client.get("qa:k49") == b"v49" and client.dbsize() == 50
        assert direct.command("GET", "qa:k0") == b"$2\r\nv0\r\n"
    # certvisorctl reload runs the same command.
    assert shard.agent.ctl("reload", "redis-db1").returncode == 0
    assert shard.pid() == pid and client.dbsize() == 50
    direct.close()
    log = shard.agent.log_text()
    assert log.count("Service 'redis-db1' reloaded") == 4
    assert "Started service 'redis-db1'" in log and log.count("Started service 'redis-db1'") == 1
    assert "PRIVATE" not in log


def fail_once(flag, then):
    """A reload command that fails (exit 1, a message on stderr) while flag exists, once."""
    return (f'"/bin/sh", "-c", "if [ -e {flag} ]; then rm {flag}; '
            f'echo first line >&2; echo simulated refusal of the TLS files >&2; exit 1; fi; '
            f'exec \\"$0\\" \\"$@\\"", {then}')


def test_a_failed_reload_rolls_back_in_place(shipped, tmp_path):
    flag = tmp_path / "fail-next"
    shard = shipped(edit=lambda text: re.sub(
        r'reload_command = \{("[^"]+certvisor-redis-reload")',
        lambda m: "reload_command = {" + fail_once(flag, m.group(1)), text))
    shard.client().set("qa:k", "v")
    pid, before = shard.pid(), served_fingerprint(shard.tls_port)
    flag.touch()
    out = shard.agent.ctl("cluster", "certificate", "rotate", "data_internode_encryption")
    assert out.returncode == 1
    assert ("service 'redis-db1' did not come back with the change: reload command /bin/sh "
            "exited with status 1: simulated refusal of the TLS files") in out.stderr, out.stderr
    assert "rolled back: the previous certificate is in force again" in out.stderr
    # The restored files went in by a second reload: same process, same data, old certificate.
    assert shard.pid() == pid
    assert served_fingerprint(shard.tls_port) == before == file_fingerprint(shard.current_cert())
    assert shard.client().get("qa:k") == b"v"
    # Its stderr is in the service's log.
    assert "simulated refusal of the TLS files" in shard.agent.ctl("tail", "redis-db1").stdout
    # certvisorctl reload says the same, and leaves the service as it is.
    flag.touch()
    out = shard.agent.ctl("reload", "redis-db1")
    assert out.returncode == 1
    assert ("redis-db1: ERROR (reload command /bin/sh exited with status 1: simulated refusal of "
            "the TLS files)") in out.stdout + out.stderr, out.stdout + out.stderr
    assert shard.pid() == pid and shard.agent.state("redis-db1") == "RUNNING"


def test_a_server_that_refuses_config_set_is_restarted_with_the_old_files(shipped):
    # An operator hardened the shard: CONFIG is renamed away, so redis-server itself refuses.
    shard = shipped(edit=lambda text: text.replace('"--logfile", "",',
                                                   '"--logfile", "", "--rename-command", "CONFIG", "",'))
    shard.client().set("qa:k", "v")
    pid, before = shard.pid(), served_fingerprint(shard.tls_port)
    out = shard.agent.ctl("cluster", "config", "min_data_TLS_version", "1.3")
    assert out.returncode == 1
    assert re.search(r"reload command \S+certvisor-redis-reload exited with status 1: "
                     r"certvisor-redis-reload: redis-server on 127.0.0.1:\d+ refused the TLS settings "
                     r"of \S+: ERR unknown command 'CONFIG'", out.stderr), out.stderr
    assert "rolled back: the previous TLS settings are in force again" in out.stderr
    # It cannot reload the restored files either: restarted, and the append-only file keeps the data.
    wait_for(lambda: shard.agent.state("redis-db1") == "RUNNING", what="redis-db1 back")
    assert shard.pid() != pid
    assert served_fingerprint(shard.tls_port) == before
    assert s_client(shard.tls_port, "-tls1_2").returncode == 0
    assert shard.client().get("qa:k") == b"v"


def test_a_hanging_reload_command_is_killed_at_the_timeout(agent_factory, tmp_path):
    flag = tmp_path / "hang-next"
    agent = agent_factory({"slow": svc(extra=f"""
        start_timeout = 2
        reload_command = {{"/bin/sh", "-c", "if [ -e {flag} ]; then rm {flag}; exec sleep 60; fi"}}
        tls {{
            certificate = data_internode_encryption
            plane = data
        }}""")})
    agent.start()
    pid = agent.pid_of("slow")
    flag.touch()
    started = time.monotonic()
    out = agent.ctl("cluster", "config", "min_data_TLS_version", "1.3")
    assert out.returncode == 1
    assert "service 'slow' did not come back with the change: reload command /bin/sh did not " \
           "finish within 2s: killed" in out.stderr, out.stderr
    assert "rolled back" in out.stderr
    assert time.monotonic() - started < 15
    hung = int(re.search(r"Reloading service 'slow' \(command /bin/sh, pid (\d+)\)",
                         agent.log_text()).group(1))
    wait_for(lambda: not pid_alive(hung), what="the hung reload command to be gone")
    assert agent.pid_of("slow") == pid  # the rollback's reload worked: no restart
    assert re.search(r"min_data_TLS_version\s+1\.2\b", agent.ctl("cluster", "config", "show").stdout)


def test_reload_command_beside_reload_signal_is_a_configuration_error(agent_factory):
    agent = agent_factory({"both": svc(extra="""
        reload_signal = HUP
        reload_command = {"/bin/true"}""")})
    assert agent.start(expect_fail=True) != 0
    assert re.search(r"both.conf:1: service 'both': reload_command and reload_signal = HUP are both "
                     r"set: a service reloads one way", agent.log_text()), agent.log_text()
    agent = agent_factory({"relative": svc(extra='reload_command = {"bin/true"}')})
    assert agent.start(expect_fail=True) != 0
    assert "reload_command: 'bin/true' is not an absolute path" in agent.log_text()


def test_a_restart_or_a_crash_keeps_the_data(shipped):
    shard = shipped()
    client = shard.client()
    client.set("qa:k2", "v2")
    client.hset("qa:h", mapping={"a": "1", "b": "2"})
    pid = shard.pid()
    shard.ctl_ok("restart", "redis-db1")
    assert shard.pid() != pid
    assert shard.shard().get("qa:k2") == b"v2"
    assert shard.shard().hgetall("qa:h") == {b"a": b"1", b"b": b"2"}
    assert any((state(shard.agent, "redis-db1", "appendonlydir")).iterdir())
    # A crash: the append-only file is fsynced every second.
    shard.shard().set("qa:k3", "v3")
    time.sleep(1.5)
    pid = shard.pid()
    os.kill(pid, signal.SIGKILL)
    # The pid first: a state read before the agent saw the crash would still say RUNNING, and a
    # new pid read after it then belongs to a process that may not be ready yet.
    wait_for(lambda: shard.pid() != pid and shard.agent.state("redis-db1") == "RUNNING", 20,
             what="redis-db1 restarted after the crash")
    assert shard.shard().get("qa:k3") == b"v3" and shard.shard().get("qa:k2") == b"v2"


def test_the_reload_program_on_its_own(tmp_path):
    """certvisor-redis-reload against a redis-server of the test's: changes, refusals, errors."""
    plain, tls = free_port(), free_port()
    a_cert, a_key, ca = external_pair(tmp_path / "a")
    b_cert, b_key, _ = external_pair(tmp_path / "b")
    include = tmp_path / "tls.conf"

    def write(cert, key, protocols="TLSv1.2 TLSv1.3", port=tls, extra=""):
        include.write_text(f'tls-port {port}\ntls-cert-file "{cert}"\ntls-key-file "{key}"\n'
                           f'tls-protocols "{protocols}"\ntls-auth-clients no\n{extra}')

    def reload(*extra):
        return subprocess.run([str(RELOAD), "--port", str(plain), "--include", str(include), *extra],
                              capture_output=True, text=True, timeout=30)

    write(a_cert, a_key, extra=f'tls-ca-cert-file "{ca}"\n')
    server = subprocess.Popen(["redis-server", "--port", str(plain), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--include", str(include)], stdout=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=plain)
        wait_for(lambda: _pings(r), what="redis-server")
        pid = server.pid
        write(b_cert, b_key, protocols="TLSv1.3")  # trust removed too
        out = reload()
        assert out.returncode == 0, out.stderr
        assert served_fingerprint(tls) == file_fingerprint(b_cert)
        assert r.config_get("tls-ca-cert-file") == {"tls-ca-cert-file": ""}
        assert s_client(tls, "-tls1_2").returncode != 0
        # An invalid file: Redis keeps its TLS context, the command says why.
        bad = tmp_path / "bad.pem"
        bad.write_text("not a certificate\n")
        write(bad, b_key)
        out = reload()
        assert out.returncode == 1
        assert "refused the TLS settings" in out.stderr and "Unable to update TLS configuration" in out.stderr
        assert served_fingerprint(tls) == file_fingerprint(b_cert)
        # A new TLS port: the old one closes, the new one serves.
        moved = free_port()
        write(b_cert, b_key, port=moved)
        assert reload().returncode == 0
        assert served_fingerprint(moved) == file_fingerprint(b_cert)
        assert s_client(tls).returncode != 0
        assert server.pid == pid and server.poll() is None
        # A file that is not the agent's include, and a server that is not there.
        include.write_text("port 1\n")
        out = reload()
        assert out.returncode == 2 and "line 1: 'port' is not a tls-* setting" in out.stderr
        write(b_cert, b_key)
        out = subprocess.run([str(RELOAD), "--port", str(free_port()), "--include", str(include)],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 1 and "cannot connect to redis-server" in out.stderr
        assert subprocess.run([str(RELOAD), "--include", str(include)],
                              capture_output=True).returncode == 2
        # A server with a password: the command signs in from a file, never the command line.
        r.config_set("requirepass", "s3cret")
        r = redis.Redis(port=plain, password="s3cret")
        out = reload()
        assert out.returncode == 1 and "(it has a password: give it with --password-file)" in out.stderr
        secret = tmp_path / "password"
        secret.write_text("wrong\n")
        out = reload("--password-file", str(secret))
        assert out.returncode == 1 and "AUTH refused: WRONGPASS" in out.stderr, out.stderr
        secret.write_text("s3cret\n")
        write(a_cert, a_key)
        out = reload("--password-file", str(secret))
        assert out.returncode == 0, out.stderr
        assert served_fingerprint(tls) == file_fingerprint(a_cert)
        assert "s3cret" not in out.stdout + out.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)


def _pings(client):
    try:
        return client.ping()
    except redis.ConnectionError:
        return False
