"""Services built on lib/ serve what certvisord renders: a certificate change reaches exactly
the services that use it, by reload, without dropping established connections; a service
that rejects its new configuration brings a rollback, and the old certificate is served."""
import socket
import ssl

from conftest import BUILD, wait_for
from test_apply import external_pair, file_fingerprint
from test_certs import free_port, state
from test_supervision import svc

TLSSVC = BUILD / "certvisor-tlssvc"


def tls_service(certificate, port, extra_args=""):
    return f"""
        command = "{TLSSVC}"
        arguments = {{"--config", "%{{run_dir}}/tls/%{{name}}.conf", "--port", "{port}",
                     "--name", "%{{name}}" {extra_args}}}
        reload_signal = HUP
        start_retries = 0
        tls {{
            certificate = {certificate}
            plane = control
        }}
    """


class Client:
    """A TLS connection that asks the service which certificate it was served with."""

    def __init__(self, port):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = context.wrap_socket(raw)
        self.file = self.sock.makefile("rw", newline="\n")

    def ask(self, line):
        self.file.write(line + "\n")
        self.file.flush()
        return self.file.readline().strip()

    def close(self):
        self.file.close()
        self.sock.close()


def fingerprint_of_current(agent, name):
    return file_fingerprint(state(agent, "certs", name, "current", "cert.pem"))


def test_a_certificate_change_reloads_exactly_its_users_and_keeps_connections(agent_factory):
    proxy_port, api_port = free_port(), free_port()
    agent = agent_factory({
        "front": tls_service("proxy", proxy_port),
        "admin": tls_service("api", api_port),
        "bystander": svc(),
    })
    agent.start()
    pids = {name: agent.pid_of(name) for name in ("front", "admin", "bystander")}
    old_proxy = fingerprint_of_current(agent, "proxy")
    early = Client(proxy_port)
    assert early.ask("WHO") == old_proxy
    cert, key, _ = external_pair(agent.root / "ext")
    out = agent.ctl("cluster", "certificate", "set", "proxy", "certificate_file", str(cert),
                    "key_file", str(key))
    assert out.returncode == 0, out.stderr
    new_proxy = file_fingerprint(cert)
    # New connections get the new certificate as soon as the command returns.
    late = Client(proxy_port)
    assert late.ask("WHO") == new_proxy
    # The established connection was not dropped, and keeps the certificate it started with.
    assert early.ask("PING") == "PONG front"
    assert early.ask("WHO") == old_proxy
    # Reloaded in place, and nobody else touched.
    assert {name: agent.pid_of(name) for name in pids} == pids
    assert "front reloaded: certificate" in agent.ctl("tail", "front").stdout
    admin = Client(api_port)
    assert admin.ask("WHO") == fingerprint_of_current(agent, "api")
    for client in (early, late, admin):
        client.close()


def test_a_service_rejecting_its_new_configuration_brings_a_rollback(agent_factory):
    port = free_port()
    agent = agent_factory({"front": tls_service("proxy", port, ', "--reject-reload"')})
    agent.start()
    old = fingerprint_of_current(agent, "proxy")
    cert, key, _ = external_pair(agent.root / "ext")
    out = agent.ctl("cluster", "certificate", "set", "proxy", "certificate_file", str(cert),
                    "key_file", str(key))
    assert out.returncode == 1
    assert "service 'front' did not come back with the change" in out.stderr
    wait_for(lambda: agent.state("front") == "RUNNING", what="front restarted with the old files")
    client = Client(port)
    assert client.ask("WHO") == old
    client.close()
    assert fingerprint_of_current(agent, "proxy") == old


def test_a_policy_change_reaches_the_services_of_its_plane(agent_factory):
    port = free_port()
    agent = agent_factory({"front": tls_service("proxy", port), "bystander": svc()})
    agent.start()
    pid = agent.pid_of("bystander")
    out = agent.ctl("cluster", "config", "min_control_TLS_version", "1.3")
    assert out.returncode == 0, out.stderr
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            context.wrap_socket(raw)
        refused = False
    except ssl.SSLError:
        refused = True
    assert refused, "a TLS 1.2 client was accepted after min_control_TLS_version 1.3"
    client = Client(port)
    assert client.sock.version() == "TLSv1.3"
    client.close()
    assert agent.pid_of("bystander") == pid
