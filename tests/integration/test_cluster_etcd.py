"""The cluster's etcd member as a service of the agent (conf.d/80-etcd.conf, issue 16): it runs
only where certvisor.conf's cluster section says store = etcd, ready as soon as it runs (the
node's start never waits for the cluster's quorum), with mTLS on
its client and peer ports from the node's ccs_internode_encryption certificate and the cluster
CA; a rotation of that certificate is served from the next handshake on, without a restart."""
import json
import re
import subprocess
import time

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


def cluster_agent(agent_factory, store="etcd", extra_services=None):
    client_port, peer_port = free_port(), free_port()
    services = {"etcd": etcd_service_body(), **(extra_services or {})}
    agent = agent_factory(services, main_extra=f"""
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
    wait_for(lambda: probe(agent, "status").returncode == 0, 30, what="the member to answer")
    status = probe(agent, "status")
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
    wait_for(lambda: probe(agent, "status").returncode == 0, 30, what="the member to answer")
    current = state_dir(agent) / "certs" / "ccs_internode_encryption" / "current" / "cert.pem"
    before = served_fingerprint(agent.etcd_endpoint, agent)
    assert before == file_fingerprint(current)
    # Changes wait for the store's state to be known (an uninitialised store: this node's own).
    wait_for(lambda: cluster_status(agent).get("state") == "not_initialised", 10,
             what="the store to be read")
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
    out = agent.ctl("cluster", "status")
    assert out.returncode == 0
    assert out.stdout == "cluster:  test\nnode:     n1\nstore:    local\n"


def cluster_status(agent):
    out = agent.ctl("--json", "cluster", "status")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_cluster_status_follows_the_store_and_the_nodes_alive(agent_factory):
    """The agent polls its store (never while a client waits): reachable with a leader and
    this node alive on its lease; the member stopped: unreachable within a few seconds, the
    log says so, and the services keep running; started again: reachable again."""
    agent = cluster_agent(agent_factory)
    agent.start()
    agent.wait_state("etcd", "RUNNING", timeout=60)
    wait_for(lambda: cluster_status(agent).get("alive") == ["n1"], 15,
             what="n1 alive in the store")
    status = cluster_status(agent)
    assert status["reachable"] and status["has_leader"] and status["alive_published"]
    assert status["endpoint"] == agent.etcd_endpoint and status["revision"] > 0
    assert status["seconds_since_sync"] < 5 and "last_error" not in status
    text = agent.ctl("cluster", "status").stdout
    assert f"etcd:     has a leader through {agent.etcd_endpoint}" in text
    # The same for the metrics exporter.
    metrics = json.loads(agent.ctl("metrics").stdout)["cluster"]
    assert metrics["store"] == "etcd" and metrics["reachable"] and metrics["has_leader"]
    assert metrics["alive"] == ["n1"] and metrics["seconds_since_sync"] < 5
    assert "alive:    n1\n" in text
    # n1 is alive through a lease (which the agent keeps alive at every poll).
    lease_key = probe(agent, "get", "/certvisor/test/alive/n1").stdout
    assert '"lease":' in lease_key and '"lease":0' not in lease_key
    assert agent.ctl("stop", "etcd").returncode == 0
    began = time.monotonic()
    wait_for(lambda: not cluster_status(agent)["reachable"], 10, what="the store unreachable")
    assert time.monotonic() - began < 6.5  # within the 2 s poll and the 2 s deadline
    status = cluster_status(agent)
    # A member on its way down can still answer through its HTTP gateway, with the gateway's
    # own failure to reach the member's gRPC server; once it is gone nothing answers at all.
    assert any(why in status["last_error"] for why in (
        "no etcd endpoint answered", "did not answer", "etcd refused the status")), status
    assert "Cluster store:" in agent.log_text() and "services keep serving" in agent.log_text()
    assert "unreachable" in agent.ctl("cluster", "status").stdout
    assert agent.ctl("start", "etcd").returncode == 0
    wait_for(lambda: cluster_status(agent)["reachable"], 30, what="the store reachable again")
    wait_for(lambda: cluster_status(agent).get("alive") == ["n1"], 15, what="n1 alive again")


def alive_lease(agent):
    out = probe(agent, "get", "/certvisor/test/alive/n1")
    kvs = json.loads(out.stdout)["kvs"] if out.returncode == 0 else []
    return kvs[0]["lease"] if kvs else None


def test_the_alive_lease_is_kept_alive_past_its_ttl(agent_factory):
    agent = cluster_agent(agent_factory)
    agent.start()
    agent.wait_state("etcd", "RUNNING", timeout=60)
    wait_for(lambda: alive_lease(agent), 15, what="n1's alive key")
    lease = alive_lease(agent)
    time.sleep(12)  # past the lease's 10 s TTL: only the agent's keepalives hold it
    assert alive_lease(agent) == lease
    assert "lost its lease" not in agent.log_text()


def test_the_rest_api_gives_the_cluster_status(agent_factory):
    from test_api import ADMIN, VIEWER, Node, add_user, api_service

    port, http_port = free_port(), free_port()
    agent = cluster_agent(agent_factory, extra_services={"api": api_service(port, http_port)})
    agent.start()
    add_user(agent, *ADMIN, "admin")
    add_user(agent, *VIEWER, "viewer")
    node = Node(agent, port, http_port)
    agent.wait_state("etcd", "RUNNING", timeout=60)
    wait_for(lambda: node.request("GET", "/v1/cluster/status", auth=VIEWER).json.get("alive")
             == ["n1"], 20, what="n1 alive through the REST API")
    body = node.request("GET", "/v1/cluster/status", auth=VIEWER).json
    assert body["store"] == "etcd" and body["node"] == "n1" and body["cluster"] == "test"
    assert body["reachable"] and body["has_leader"] and body["revision"] > 0


def service_names(agent):
    return [line.split()[0] for line in agent.ctl("status").stdout.splitlines()]


def test_a_reload_moves_a_running_node_to_etcd_and_back(agent_factory):
    """Editing the cluster section and reloading: store = etcd starts the member and the watch
    of the store; store = local again stops the member and ends the watch."""
    agent = cluster_agent(agent_factory, store="local")
    agent.start()
    local_main = agent.main_extra
    assert "reachable" not in cluster_status(agent)
    agent.write_main(local_main.replace("store = local", "store = etcd"))
    out = agent.ctl("reload")
    assert out.returncode == 0, out.stdout + out.stderr
    agent.wait_state("etcd", "RUNNING", timeout=60)
    wait_for(lambda: cluster_status(agent).get("alive") == ["n1"], 20, what="n1 alive")
    assert "the cluster section changed (store etcd, node 'n1')" in agent.log_text()
    agent.write_main(local_main)
    assert agent.ctl("reload").returncode == 0
    wait_for(lambda: "etcd" not in service_names(agent), 30, what="the member to stop")
    status = cluster_status(agent)
    assert status["store"] == "local" and "reachable" not in status


def test_a_node_starts_without_its_cluster_s_quorum(agent_factory):
    """A member of a two-member cluster whose peer does not exist never gets quorum: the node
    still starts at once (the member counts as ready when it runs), serves, and says what is
    wrong with the store."""
    client_port, peer_port, absent_peer = free_port(), free_port(), free_port()
    agent = agent_factory({"etcd": etcd_service_body(), "web": "command = \"/bin/sleep\"\n"
                           "arguments = {\"1000\"}\nreadiness = started\n"},
                          main_extra=f"""
        cluster {{
            name  = "test"
            node  = "n1"
            store = etcd
            member n1 {{
                address     = "127.0.0.1"
                client_port = {client_port}
                peer_port   = {peer_port}
            }}
            member n2 {{
                address     = "127.0.0.1"
                client_port = {free_port()}
                peer_port   = {absent_peer}
            }}
        }}
        """)
    began = time.monotonic()
    agent.start()  # returns at the agent's READY=1
    assert time.monotonic() - began < 30
    assert agent.state("etcd") == "RUNNING" and agent.state("web") == "RUNNING"
    wait_for(lambda: cluster_status(agent).get("last_error", "") not in ("", "not asked yet"), 15,
             what="the first poll")
    status = cluster_status(agent)
    assert not (status.get("reachable") and status.get("has_leader")), status
    assert status["last_error"], status
