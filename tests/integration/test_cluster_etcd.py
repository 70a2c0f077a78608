"""The cluster's etcd member as a service of the agent (conf.d/80-etcd.conf, issue 16): it runs
only where certvisor.conf's cluster section says store = etcd, ready by sd_notify, with mTLS on
its client and peer ports from the node's ccs_internode_encryption certificate and the cluster
CA; a rotation of that certificate is served from the next handshake on, without a restart."""
import re
import subprocess

import pytest

from conftest import REPO, wait_for
from test_certs import free_port
from test_etcd_client import ETCD, PROBE

pytestmark = pytest.mark.skipif(ETCD is None, reason="etcd-server is not installed")

SHIPPED = (REPO / "conf.d" / "80-etcd.conf").read_text()


def etcd_service_body():
    """The shipped section's body, as agent_factory writes a service."""
    body = SHIPPED[SHIPPED.index("service etcd {") + len("service etcd {"):]
    return body[:body.rindex("}")]


def cluster_agent(agent_factory, store="etcd"):
    client_port, peer_port = free_port(), free_port()
    agent = agent_factory({"etcd": etcd_service_body()}, main_extra=f"""
        cluster {{
            name  = "test"
            node  = "n1"
            store = {store}
            member n1 {{
                address     = "127.0.0.1"
                client_port = {client_port}
                peer_port   = {peer_port}
            }}
        }}
        """)
    agent.etcd_endpoint = f"127.0.0.1:{client_port}"
    return agent


def state_dir(agent):
    return agent.prefix / "var/lib/certvisor"


def probe(agent, *args):
    certs = state_dir(agent) / "certs" / "ccs_internode_encryption" / "current"
    return subprocess.run([str(PROBE), "--endpoint", agent.etcd_endpoint, "--ca",
                           str(state_dir(agent) / "ca.pem"), "--cert", str(certs / "cert.pem"),
                           "--key", str(certs / "key.pem"), *args],
                          capture_output=True, text=True, timeout=30)


def served_fingerprint(endpoint, agent):
    certs = state_dir(agent) / "certs" / "ccs_internode_encryption" / "current"
    out = subprocess.run(["openssl", "s_client", "-connect", endpoint, "-CAfile",
                          str(state_dir(agent) / "ca.pem"), "-cert", str(certs / "cert.pem"),
                          "-key", str(certs / "key.pem"), "-verify_return_error"],
                         input="", capture_output=True, text=True, timeout=20)
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out.stdout,
                    re.S)
    assert pem, out.stdout + out.stderr
    fp = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
                        input=pem.group(0), capture_output=True, text=True, check=True)
    return fp.stdout.strip()


def file_fingerprint(path):
    fp = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(path)],
                        capture_output=True, text=True, check=True)
    return fp.stdout.strip()


def test_the_etcd_member_runs_under_the_agent_with_mtls(agent_factory):
    agent = cluster_agent(agent_factory)
    agent.start()
    agent.wait_state("etcd", "RUNNING", timeout=60)
    status = probe(agent, "status")
    assert status.returncode == 0, status.stdout + status.stderr + agent.ctl("tail", "etcd").stdout
    assert '"leader":true' in status.stdout
    assert probe(agent, "put", "/certvisor/test/x", "1").returncode == 0
    assert '"value":"1"' in probe(agent, "get", "/certvisor/test/x").stdout
    # Without a client certificate, etcd refuses the connection.
    bare = subprocess.run(["curl", "-sS", "--cacert", str(state_dir(agent) / "ca.pem"),
                           "-X", "POST", "-d", "{}",
                           f"https://{agent.etcd_endpoint}/v3/maintenance/status"],
                          capture_output=True, text=True, timeout=20)
    assert bare.returncode != 0 or '"leader"' not in bare.stdout
    # The data directory is the service's own, under the state directory.
    assert (state_dir(agent) / "etcd" / "data" / "member").is_dir()


def test_a_rotated_certificate_is_served_without_a_restart(agent_factory):
    agent = cluster_agent(agent_factory)
    agent.start()
    agent.wait_state("etcd", "RUNNING", timeout=60)
    pid = agent.pid_of("etcd")
    current = state_dir(agent) / "certs" / "ccs_internode_encryption" / "current" / "cert.pem"
    before = served_fingerprint(agent.etcd_endpoint, agent)
    assert before == file_fingerprint(current)
    out = agent.ctl("cluster", "certificate", "rotate", "ccs_internode_encryption")
    assert out.returncode == 0, out.stdout + out.stderr
    after = file_fingerprint(current)
    assert after != before
    wait_for(lambda: served_fingerprint(agent.etcd_endpoint, agent) == after, 10,
             what="etcd to serve the rotated certificate")
    assert agent.pid_of("etcd") == pid
    assert probe(agent, "status").returncode == 0


def test_a_node_on_the_local_store_runs_no_etcd(agent_factory):
    agent = cluster_agent(agent_factory, store="local")
    agent.start()
    names = [line.split()[0] for line in agent.ctl("status").stdout.splitlines()]
    assert "etcd" not in names
