"""Publish, then converge (issue 16): three nodes, each with its etcd member and a Redis shard
serving TLS with the cluster's 'proxy' certificate and data-plane policy. A change taken on
any node is published to etcd as one transaction, every node applies it from its watch, and
the node that took it answers once every node has: success, or the nodes that did not and
why. Real etcd, real agents, real TLS clients (openssl s_client)."""
import json
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from conftest import wait_for
from test_certs import free_port, redis_service, seed_003_pair, state
from test_cluster_etcd import etcd_service_body
from test_etcd_client import ETCD
from test_supervision import quoted, svc

try:
    from test_api import add_user, api_service
except ImportError:  # pragma: no cover - the API tests' own dependencies are missing
    api_service = None

pytestmark = pytest.mark.skipif(ETCD is None or not shutil.which("redis-server"),
                                reason="etcd-server or redis-server is not installed")


def members_text(ports, addresses=None):
    return "".join(f"""
            member n{i + 1} {{
                address     = "{addresses[i] if addresses else '127.0.0.1'}"
                client_port = {client}
                peer_port   = {peer}
            }}""" for i, (client, peer) in enumerate(ports))


def cluster_status(agent):
    out = agent.ctl("--json", "cluster", "status")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def in_netns(agent):
    """The command prefix that runs a client where the node runs (its network namespace)."""
    netns = getattr(agent, "netns", None)
    return ["ip", "netns", "exec", netns] if netns else []


def served(agent):
    """The SHA-256 fingerprint of the certificate the node's shard serves."""
    out = subprocess.run([*in_netns(agent), "openssl", "s_client", "-connect",
                          f"127.0.0.1:{agent.tls_port}"],
                         input="", capture_output=True, text=True, timeout=20)
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out.stdout, re.S)
    if not pem:
        return None
    fp = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
                        input=pem.group(0), capture_output=True, text=True, check=True)
    return fp.stdout.strip().split("=", 1)[1]


def file_fingerprint(path):
    fp = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(path)],
                        capture_output=True, text=True, check=True)
    return fp.stdout.strip().split("=", 1)[1]


def all_applied(nodes, revision):
    def check():
        status = cluster_status(nodes[0]).get("nodes", {})
        return all(status.get(f"n{i + 1}", {}).get("revision", 0) >= revision and
                   status[f"n{i + 1}"].get("result") == "applied" for i in range(len(nodes)))
    return check


def make_cluster(agent_factory, third_extra=None, second_extra=None, netns=None,
                 reload_in_place=False):
    """Three nodes on 127.0.0.1: node 1 starts first and makes the CA, which nodes 2 and 3
    get before their first start (what 'cluster join' will do); then cluster init on node 1,
    and the data key copied to the others. third_extra: more services on node 3, which then
    starts with node 1's proxy certificate too (so that they start with nothing to apply).
    netns: [(namespace, address)] per node, each node then runs in its namespace, on its
    address, with etcd's usual ports."""
    ports = [(2379, 2380)] * 3 if netns else [(free_port(), free_port()) for _ in range(3)]
    addresses = [address for _, address in netns] if netns else None
    nodes = []
    for i in range(3):
        tls, plain = (16379, 16380) if netns else (free_port(), free_port())
        redis = redis_service(tls, plain, reload_in_place=reload_in_place).replace("certificate = data_internode_encryption",
                                                  "certificate = proxy")
        services = {"etcd": etcd_service_body(), "redis-db1": redis,
                    **((third_extra or {}) if i == 2 else {}),
                    **((second_extra or {}) if i == 1 else {})}
        agent = agent_factory(services, main_extra=f"""
            cluster {{
                name  = "test"
                node  = "n{i + 1}"
                store = etcd{members_text(ports, addresses)}
            }}
            """)
        agent.tls_port = tls
        agent.node = f"n{i + 1}"
        agent.etcd_endpoint = f"{addresses[i] if netns else '127.0.0.1'}:{ports[i][0]}"
        if netns:
            agent.netns = netns[i][0]
            wrapper = agent.root / "certvisord-in-netns"
            wrapper.write_text(f"#!/bin/sh\nexec ip netns exec {agent.netns} {agent.binary} \"$@\"\n")
            wrapper.chmod(0o755)
            agent.binary = wrapper
        nodes.append(agent)
    nodes[0].start()
    for agent in nodes[1:]:
        for name in ("cluster_ca", "proxy") if third_extra and agent is nodes[2] else ("cluster_ca",):
            shutil.copytree(state(nodes[0], "certs", name), state(agent, "certs", name),
                            symlinks=True)
        agent.start()
    for agent in nodes:
        wait_for(lambda: cluster_status(agent).get("has_leader"), 60,
                 what=f"{agent.node}'s store to have a leader")
    out = nodes[0].ctl("--json", "cluster", "init")
    assert out.returncode == 0, out.stdout + out.stderr
    revision = json.loads(out.stdout)["revision"]
    key = state(nodes[0], "cluster.key")
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"
    for agent in nodes[1:]:
        shutil.copy2(key, state(agent, "cluster.key"))
    wait_for(all_applied(nodes, revision), 60, what="every node to apply the cluster")
    return nodes


@pytest.fixture
def cluster(agent_factory):
    return make_cluster(agent_factory)


def test_init_makes_every_node_serve_the_same_certificate(cluster):
    first = served(cluster[0])
    assert first == file_fingerprint(state(cluster[0], "certs", "proxy", "current", "cert.pem"))
    wait_for(lambda: all(served(agent) == first for agent in cluster), 20,
             what="every node to serve node 1's proxy certificate")


def test_a_certificate_set_on_node_2_is_served_by_all_three(cluster, tmp_path):
    cert, key = seed_003_pair(tmp_path / "pki", cn="proxy.example.com")
    out = cluster[1].ctl("cluster", "certificate", "set", "proxy", "certificate_file", str(cert),
                         "key_file", str(key))
    assert out.returncode == 0, out.stdout + out.stderr
    new = file_fingerprint(cert)
    # Answered once every node applied it: no waiting here.
    assert [served(agent) for agent in cluster] == [new] * 3
    status = cluster_status(cluster[2])
    assert status["state"] == "initialised"


def test_a_policy_change_reaches_every_node_on_the_wire(cluster):
    out = cluster[2].ctl("cluster", "config", "min_data_TLS_version", "1.3")
    assert out.returncode == 0, out.stdout + out.stderr
    for agent in cluster:
        tls12 = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{agent.tls_port}",
                                "-tls1_2"], input="", capture_output=True, text=True, timeout=20)
        assert tls12.returncode != 0, agent.node
        tls13 = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{agent.tls_port}",
                                "-tls1_3"], input="", capture_output=True, text=True, timeout=20)
        assert tls13.returncode == 0, agent.node
    # conf.d is each node's own file: a reload that changes a setting there says that it applies
    # to this node only, and how the cluster's nodes change it together.
    (cluster[1].conf_d / "policy.conf").write_text('policy {\n  min_control_TLS_version = "1.3"\n}\n')
    out = cluster[1].ctl("reload")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "min_control_TLS_version changed in conf.d applies to this node only" in out.stderr
    assert "certvisorctl cluster config min_control_TLS_version <value>" in out.stderr


def test_a_node_down_during_a_change_is_named_then_catches_up(cluster, tmp_path):
    cluster[2].stop()
    cert, key = seed_003_pair(tmp_path / "pki", cn="proxy2.example.com")
    started = time.monotonic()
    out = cluster[0].ctl("--json", "cluster", "certificate", "set", "proxy", "certificate_file",
                         str(cert), "key_file", str(key))
    assert out.returncode != 0
    reply = json.loads(out.stdout or out.stderr)
    assert reply["reason"] == "not_all_nodes_updated", reply
    assert "n3" in reply["error"], reply
    assert time.monotonic() - started < 30
    new = file_fingerprint(cert)
    assert served(cluster[0]) == new and served(cluster[1]) == new
    cluster[2].start()
    wait_for(lambda: served(cluster[2]) == new, 30, what="node 3 to catch up by itself")


def test_a_race_has_one_winner_and_every_node_ends_identical(cluster, tmp_path):
    pairs = [seed_003_pair(tmp_path / f"pki{i}", cn=f"race{i}.example.com") for i in range(2)]
    results = [None, None]

    def change(i):
        results[i] = cluster[i].ctl("--json", "cluster", "certificate", "set", "proxy",
                                    "certificate_file", str(pairs[i][0]), "key_file",
                                    str(pairs[i][1]))
    threads = [threading.Thread(target=change, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = [r.returncode for r in results]
    assert 0 in codes, [r.stdout + r.stderr for r in results] + [cluster_status(a) for a in cluster]
    for r in results:
        if r.returncode != 0:
            assert json.loads(r.stdout or r.stderr)["reason"] == "conflict", r.stdout + r.stderr
    wait_for(lambda: len({served(agent) for agent in cluster}) == 1, 20,
             what="every node to serve the same certificate")


def etcdctl(agent, *args):
    certs = state(agent, "certs", "ccs_internode_encryption", "current")
    return subprocess.run(["etcdctl", f"--endpoints=https://{agent.etcd_endpoint}",
                           f"--cacert={state(agent, 'ca.pem')}", f"--cert={certs / 'cert.pem'}",
                           f"--key={certs / 'key.pem'}", *args],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "ETCDCTL_API": "3"})


@pytest.mark.skipif(not shutil.which("etcdctl"), reason="etcd-client is not installed")
def test_etcd_holds_no_private_key(cluster):
    """Every value in etcd, read with etcdctl: certificates yes, private keys never (they are
    sealed with the data key, which stays in each node's state directory)."""
    out = etcdctl(cluster[0], "get", "--prefix", "/certvisor/")
    assert out.returncode == 0, out.stderr
    assert "BEGIN CERTIFICATE" in out.stdout
    assert "PRIVATE KEY" not in out.stdout
    key = state(cluster[0], "cluster.key").read_bytes()
    assert key not in out.stdout.encode()
    proxy_key = state(cluster[0], "certs", "proxy", "current", "key.pem").read_text()
    body = proxy_key.splitlines()[1]
    assert body not in out.stdout


@pytest.mark.skipif(not shutil.which("etcdctl"), reason="etcd-client is not installed")
def test_a_secret_setting_is_sealed_in_etcd_and_opened_on_every_node(cluster):
    """ldap_bind_password set on node 2: every node holds it (in its own state file, 0600),
    etcd only sealed with the data key, and nothing shows it."""
    secret = "directory-reader-s3cret"
    out = cluster[1].ctl("cluster", "config", "ldap_bind_password", secret)
    assert out.returncode == 0, out.stdout + out.stderr
    assert secret not in out.stdout + out.stderr
    for i, agent in enumerate(cluster):
        wait_for(lambda: secret in (state(agent, "policy.json").read_text()
                                    if state(agent, "policy.json").exists() else ""), 20,
                 what=f"node {i + 1} to open the sealed password")
        assert state(agent, "policy.json").stat().st_mode & 0o777 == 0o600
        shown = agent.ctl("cluster", "config", "show").stdout
        assert "(set)" in shown and secret not in shown
    stored = etcdctl(cluster[0], "get", "/certvisor/test/spec/policy", "--print-value-only")
    assert stored.returncode == 0 and "ldap_bind_password" in stored.stdout, stored.stderr
    assert secret not in stored.stdout and '"sealed:' in stored.stdout, stored.stdout


def test_without_quorum_a_change_is_refused_at_once_and_nothing_moves(cluster, tmp_path):
    before = served(cluster[0])
    pids = [agent.pid_of("redis-db1") for agent in cluster]
    for agent in cluster[1:]:
        assert agent.ctl("stop", "etcd").returncode == 0
    cert, key = seed_003_pair(tmp_path / "pki", cn="noquorum.example.com")
    started = time.monotonic()
    out = cluster[0].ctl("--json", "cluster", "certificate", "set", "proxy", "certificate_file",
                         str(cert), "key_file", str(key))
    took = time.monotonic() - started
    assert out.returncode != 0
    reply = json.loads(out.stdout or out.stderr)
    assert reply["reason"] == "cluster_unavailable", reply
    assert "services keep serving" in reply["error"]
    assert took < 3.5, took
    assert [served(agent) for agent in cluster] == [before] * 3
    assert [agent.pid_of("redis-db1") for agent in cluster] == pids
    # Reads answer from the node's own copy, marked stale (on stderr: stdout stays the list).
    stale = "this is the node's own copy, which may be behind the cluster's"
    wait_for(lambda: stale in cluster[0].ctl("cluster", "certificate", "list").stderr, 10,
             what="the certificate list marked stale")
    listed = cluster[0].ctl("--json", "cluster", "certificate", "list")
    assert listed.returncode == 0, listed.stderr
    why = json.loads(listed.stdout)["stale"]
    assert "has had no leader" in why or "unreachable" in why, why
    shown = cluster[0].ctl("cluster", "config", "show")
    assert shown.returncode == 0 and stale in shown.stderr, shown.stderr
    assert "\nstale:    " in cluster[0].ctl("cluster", "status").stdout
    # The same reason, give or take the seconds it counts.
    assert json.loads(cluster[0].ctl("metrics").stdout)["cluster"]["reads_stale"].split(" for ")[0] \
        == why.split(" for ")[0]
    # Quorum back: the same change goes through.
    for agent in cluster[1:]:
        assert agent.ctl("start", "etcd").returncode == 0
    wait_for(lambda: cluster_status(cluster[0]).get("has_leader"), 30, what="quorum again")
    wait_for(lambda: stale not in cluster[0].ctl("cluster", "certificate", "list").stderr, 10,
             what="the certificate list no longer stale")
    out = cluster[0].ctl("cluster", "certificate", "set", "proxy", "certificate_file", str(cert),
                         "key_file", str(key))
    assert out.returncode == 0, out.stdout + out.stderr
    assert [served(agent) for agent in cluster] == [file_fingerprint(cert)] * 3


def leader_index(cluster):
    """Which node's etcd member leads, from etcdctl's status of every endpoint."""
    out = etcdctl(cluster[0], "endpoint", "status", "--cluster", "-w", "json")
    assert out.returncode == 0, out.stderr
    statuses = json.loads(out.stdout)
    leader = statuses[0]["Status"]["leader"]
    endpoint = [s["Endpoint"] for s in statuses if s["Status"]["header"]["member_id"] == leader]
    return [i for i, agent in enumerate(cluster) if endpoint and
            endpoint[0].endswith(agent.etcd_endpoint)][0]


@pytest.mark.skipif(not shutil.which("etcdctl"), reason="etcd-client is not installed")
def test_with_one_etcd_member_down_changes_still_apply_on_every_node(cluster, tmp_path):
    """The leader's member stopped, then (the leader back) a follower's: every node, the one
    whose member is down included, applies a change through the other members."""
    leader = leader_index(cluster)
    follower = (leader + 1) % 3
    for down in (cluster[leader], cluster[follower]):
        assert down.ctl("stop", "etcd").returncode == 0
        cert, key = seed_003_pair(tmp_path / f"pki-{down.node}", cn=f"{down.node}.example.com")
        out = down.ctl("cluster", "certificate", "set", "proxy", "certificate_file", str(cert),
                       "key_file", str(key))
        assert out.returncode == 0, out.stdout + out.stderr
        assert [served(agent) for agent in cluster] == [file_fingerprint(cert)] * 3
        assert down.ctl("start", "etcd").returncode == 0
        wait_for(lambda: all(cluster_status(a).get("has_leader") for a in cluster), 30,
                 what="quorum of all three again")


def test_a_node_that_fails_to_apply_rolls_back_and_is_named_with_its_reason(agent_factory,
                                                                           tmp_path):
    """Node 3 has a service that does not come back from a reload: it rolls the change back
    and reports why; nodes 1 and 2 keep it; the answer is 409-like, naming n3 and the reason."""
    fragile = svc(quoted("--reject-reload"), extra="""reload_signal = HUP
        start_retries = 0
        tls {
            certificate = proxy
            plane = data
            output = "%{run_dir}/tls/fragile.conf"
        }""")
    nodes = make_cluster(agent_factory, third_extra={"fragile": fragile})
    before = served(nodes[2])
    cert, key = seed_003_pair(tmp_path / "pki", cn="fragile.example.com")
    out = nodes[0].ctl("--json", "cluster", "certificate", "set", "proxy", "certificate_file",
                       str(cert), "key_file", str(key))
    assert out.returncode != 0
    reply = json.loads(out.stdout or out.stderr)
    assert reply["reason"] == "not_all_nodes_updated", reply
    third = [n for n in reply["nodes"] if n["node"] == "n3"][0]
    assert third["result"] == "failed", reply
    assert "fragile" in third["reason"], reply
    new = file_fingerprint(cert)
    assert served(nodes[0]) == new and served(nodes[1]) == new
    wait_for(lambda: nodes[2].state("redis-db1") == "RUNNING", what="node 3's shard back")
    assert served(nodes[2]) == before
    status = cluster_status(nodes[2])
    assert "fragile" in status.get("apply_error", ""), status


@pytest.mark.skipif(api_service is None or not shutil.which("curl"), reason="needs curl")
def test_rest_update_cert_on_node_2_answers_for_every_node(agent_factory, tmp_path):
    """PUT /v1/cluster/update_cert on node 2's REST API: 200 once all three serve it; with
    node 3's agent stopped, 409 not_all_nodes_updated with each node's outcome."""
    port = free_port()
    nodes = make_cluster(agent_factory, second_extra={"api": api_service(port, free_port())})
    add_user(nodes[1], "admin", "admin password", "admin")

    def update_cert(cn):
        cert, key = seed_003_pair(tmp_path / cn, cn=f"{cn}.example.com")
        body = json.dumps({"name": "proxy", "certificate": cert.read_text(),
                           "key": key.read_text()})
        out = subprocess.run(["curl", "-sk", "-X", "PUT", "-u", "admin:admin password",
                              "-H", "Content-Type: application/json", "-d", body,
                              "-w", "\n%{http_code}",
                              f"https://127.0.0.1:{port}/v1/cluster/update_cert"],
                             capture_output=True, text=True, timeout=60)
        text, code = out.stdout.rsplit("\n", 1)
        return int(code), json.loads(text) if text.strip() else {}, file_fingerprint(cert)

    code, body, new = update_cert("rest1")
    assert code == 200, body
    assert [served(agent) for agent in nodes] == [new] * 3

    def node_list():
        out = subprocess.run(["curl", "-sk", "-u", "admin:admin password",
                              f"https://127.0.0.1:{port}/v1/nodes"],
                             capture_output=True, text=True, timeout=30)
        return json.loads(out.stdout)

    # GET /v1/nodes: every node, its address and status, what it applied; node 2 answers.
    listed = node_list()
    assert [(n["uid"], n["name"], n["addr"], n["status"]) for n in listed] == \
        [(1, "n1", "127.0.0.1", "active"), (2, "n2", "127.0.0.1", "active"),
         (3, "n3", "127.0.0.1", "active")], listed
    assert [n["this_node"] for n in listed] == [False, True, False]
    assert all(n["apply_result"] == "applied" and n["applied_revision"] > 0 for n in listed)
    nodes[2].stop()
    wait_for(lambda: node_list()[2]["status"] == "down", 30, what="n3 listed down")
    code, body, new = update_cert("rest2")
    assert code == 409 and body["error_code"] == "not_all_nodes_updated", body
    outcome = {n["node"]: n["result"] for n in body["nodes"]}
    assert outcome == {"n1": "applied", "n2": "applied", "n3": "down"} or \
        outcome == {"n1": "applied", "n2": "applied", "n3": "no_answer"}, body
    assert served(nodes[0]) == new and served(nodes[1]) == new
    # Node 2 alone (node 1's member stopped too): a change is 503 cluster_unavailable, and a
    # read is answered from node 2's copy with HTTP's stale warning.
    assert nodes[0].ctl("stop", "etcd").returncode == 0
    wait_for(lambda: not cluster_status(nodes[1]).get("has_leader"), 15, what="no quorum")
    code, body, _ = update_cert("rest3")
    assert code == 503 and body["error_code"] == "cluster_unavailable", body
    out = subprocess.run(["curl", "-sk", "-D", "-", "-o", "/dev/null", "-u", "admin:admin password",
                          f"https://127.0.0.1:{port}/v1/cluster/certificates"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.startswith("HTTP/1.1 200"), out.stdout
    assert 'Warning: 110 certvisor "Response is Stale"' in out.stdout, out.stdout
    assert "X-Certvisor-Stale: the cluster's store" in out.stdout, out.stdout


def can_make_namespaces():
    return os.geteuid() == 0 and shutil.which("ip") is not None


@pytest.fixture
def namespaces():
    """Three network namespaces on one bridge, each with one veth pair and an address; the
    test takes a node's link down to cut it off. Removed afterwards."""
    tag = f"cv{os.getpid() % 100000}"
    bridge = f"{tag}br"
    made = []

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)

    try:
        ip("link", "add", bridge, "type", "bridge")
        ip("link", "set", bridge, "up")
        for i in range(3):
            ns, host, inner = f"{tag}n{i + 1}", f"{tag}h{i + 1}", f"{tag}i{i + 1}"
            address = f"10.213.{os.getpid() % 200}.{i + 1}"
            ip("netns", "add", ns)
            made.append(ns)
            ip("link", "add", host, "type", "veth", "peer", "name", inner)
            ip("link", "set", inner, "netns", ns)
            ip("link", "set", host, "master", bridge)
            ip("link", "set", host, "up")
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", inner)
            ip("-n", ns, "link", "set", inner, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield [(f"{tag}n{i + 1}", f"10.213.{os.getpid() % 200}.{i + 1}") for i in range(3)], \
            [f"{tag}h{i + 1}" for i in range(3)]
    finally:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        for i in range(3):
            subprocess.run(["ip", "link", "del", f"{tag}h{i + 1}"], capture_output=True)
        # The test asks for this fixture before agent_factory, so the agents are cleaned up
        # first; whatever still runs in a namespace is killed before it goes.
        for ns in made:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-9", pid], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.mark.skipif(not can_make_namespaces(), reason="network namespaces need root and ip(8)")
def test_a_partitioned_node_refuses_changes_keeps_serving_and_converges_after_healing(
        namespaces, agent_factory, tmp_path):
    """Each node in its own network namespace on a bridge; node 3's veth taken down: node 3
    refuses a change (no quorum where it is), keeps serving; the others take a change and name
    node 3; the link back up, node 3 serves the change without any command."""
    netns, links = namespaces
    nodes = make_cluster(agent_factory, netns=netns)
    before = served(nodes[2])
    subprocess.run(["ip", "link", "set", links[2], "down"], check=True, timeout=20)
    cert, key = seed_003_pair(tmp_path / "pki3", cn="partitioned.example.com")
    started = time.monotonic()
    out = nodes[2].ctl("--json", "cluster", "certificate", "set", "proxy", "certificate_file",
                       str(cert), "key_file", str(key))
    assert out.returncode != 0
    assert json.loads(out.stdout or out.stderr)["reason"] == "cluster_unavailable", out.stdout
    assert time.monotonic() - started < 5
    assert served(nodes[2]) == before
    cert, key = seed_003_pair(tmp_path / "pki1", cn="majority.example.com")
    out = nodes[0].ctl("--json", "cluster", "certificate", "set", "proxy", "certificate_file",
                       str(cert), "key_file", str(key))
    reply = json.loads(out.stdout or out.stderr)
    assert out.returncode != 0 and reply["reason"] == "not_all_nodes_updated", reply
    assert [n["node"] for n in reply["nodes"] if n["result"] != "applied"] == ["n3"], reply
    new = file_fingerprint(cert)
    assert served(nodes[0]) == new and served(nodes[1]) == new
    assert served(nodes[2]) == before
    subprocess.run(["ip", "link", "set", links[2], "up"], check=True, timeout=20)
    wait_for(lambda: served(nodes[2]) == new, 60, what="node 3 to converge after healing")


def trusted(agent, list_name):
    """The fingerprints a node's trust list holds (its own copy, as its services read it)."""
    out = agent.ctl("--json", "replica", "trust", "list", list_name)
    assert out.returncode == 0, out.stdout + out.stderr
    reply = json.loads(out.stdout)
    items = [item for item in reply["items"] if item["name"] == list_name]
    return sorted(c["fingerprint"] for item in items for c in item.get("certificates", []))


def test_a_trust_list_changed_on_node_2_is_the_same_on_every_node(cluster, tmp_path):
    cert, _ = seed_003_pair(tmp_path / "peer", cn="peer.example.com")
    ca = tmp_path / "peer" / "ca.pem"
    out = cluster[1].ctl("replica", "trust", "add", "peers", str(ca))
    assert out.returncode == 0, out.stdout + out.stderr
    expected = [file_fingerprint(ca)]
    assert [trusted(agent, "peers") for agent in cluster] == [expected] * 3
    out = cluster[2].ctl("replica", "trust", "remove", "peers", str(ca))
    assert out.returncode == 0, out.stdout + out.stderr
    assert [trusted(agent, "peers") for agent in cluster] == [[]] * 3


def test_the_console_says_when_it_shows_a_stale_copy(agent_factory, tmp_path):
    """The console on node 2 (cm in front of node 2's REST API): once node 2's store has no
    quorum, the certificates and policy it shows are marked as node 2's own copy, with the
    reason; the mark goes once the store is back."""
    try:
        from test_console import ADMIN, cm_certificate, cm_service, sign_in
    except ImportError as e:  # pragma: no cover - the console's test helpers need more modules
        pytest.skip(f"the console's test helpers cannot be imported: {e}")
    if api_service is None:
        pytest.skip("the REST API's test helpers cannot be imported")
    api_port, cm_port = free_port(), free_port()
    nodes = make_cluster(agent_factory, second_extra={
        "api": api_service(api_port, free_port()), "cm": cm_service(cm_port, api_port)})
    add_user(nodes[1], ADMIN[0], ADMIN[1], "admin")
    browser_fixture = chromium_browser(tmp_path, cm_certificate(nodes[1]))
    try:
        page = browser_fixture.new_page()
        page.goto(f"https://127.0.0.1:{cm_port}/")
        page.wait_for("document.activeElement && document.activeElement.id === 'user'")
        sign_in(page, *ADMIN)
        page.wait_for("document.body.dataset.loaded", timeout=30, what="the console to load")
        assert not page.visible("#stale-notice")
        for agent in (nodes[0], nodes[2]):
            assert agent.ctl("stop", "etcd").returncode == 0
        page.wait_for("!document.querySelector('#stale-notice').hidden", timeout=60,
                      what="the stale notice")
        notice = page.text("#stale-notice")
        assert "shown from this node's own copy" in notice and "cluster's store" in notice, notice
        for agent in (nodes[0], nodes[2]):
            assert agent.ctl("start", "etcd").returncode == 0
        page.wait_for("document.querySelector('#stale-notice').hidden", timeout=90,
                      what="the stale notice to go")
    finally:
        browser_fixture.close()


def chromium_browser(tmp_path, cert_path):
    """Chromium trusting the console's certificate, or a skip saying why it cannot run here."""
    from browser.cdp import Browser, BrowserError, find_chromium, spki_pin

    if not find_chromium():
        pytest.skip("Chromium is not installed (scripts/install-deps.sh lists it)")
    try:
        return Browser.launch(str(tmp_path / "profile"), spki_pins=[spki_pin(cert_path)])
    except BrowserError as e:
        pytest.skip(f"Chromium cannot run here: {e}")


def test_one_node_renews_what_every_node_shares(agent_factory):
    """340 days on, every node finds the shared certificates (365 days) near expiry: only the
    node holding the renewer key (on its alive lease) re-issues them, and the others apply its
    publication; each node re-issues its own internode certificates. No conflict anywhere (every
    node renewing the same certificate made all but one fail). A rolling restart, so the store
    keeps its quorum."""
    nodes = make_cluster(agent_factory)
    before = served(nodes[0])
    for agent in nodes:
        assert agent.stop() == 0
        agent.env_extra = {"CERTVISOR_TEST_CLOCK_OFFSET_DAYS": "340"}
        agent.start()
        wait_for(lambda: cluster_status(agent).get("has_leader") and
                 cluster_status(agent).get("state") == "initialised", 60,
                 what=f"{agent.node} back in the cluster")
    wait_for(lambda: len({served(agent) for agent in nodes}) == 1 and served(nodes[0]) != before,
             90, what="every node to serve the renewed proxy certificate")
    for agent in nodes:
        try:
            wait_for(lambda: "Renewal: certificate 'ccs_internode_encryption' re-issued"
                     in agent.log_text(), 60, what=f"{agent.node}'s own certificates renewed")
        except AssertionError as e:
            lines = [line for line in agent.log_text().splitlines()
                     if "Renewal" in line or "Cluster" in line or "Apply" in line]
            raise AssertionError(f"{e}\n" + "\n".join(lines[-40:])) from None
    renewers = [agent.node for agent in nodes
                if "Renewal: certificate 'proxy' has" in agent.log_text()]
    assert len(renewers) == 1, renewers
    assert "this node renews the certificates every node shares" in \
        next(a for a in nodes if a.node == renewers[0]).log_text()
    for agent in nodes:
        assert "conflict" not in agent.log_text(), agent.node
