"""Joining a running cluster (issue 17): certvisorctl cluster join <peer> --token --ca-cert-hash
on a node whose store is local. The joiner checks the peer's CA against the hash before it
sends the token, the peer issues the node's internode certificates from the cluster CA for the
joiner's CSRs, adds its etcd member as a learner, and the joiner starts that member, has it
promoted and applies the cluster's certificates and policy. Real etcd members, real agents,
real REST APIs, real TLS clients."""
import json
import re
import shutil
import subprocess

import pytest

from conftest import CERTVISORCTL, wait_for
from test_certs import free_port, redis_service, state
from test_cluster_etcd import cluster_agent, etcd_service_body
from test_cluster_sync import cluster_status, etcdctl, file_fingerprint, served
from test_cluster_tokens import started_and_initialised
from test_etcd_client import ETCD

try:
    from test_api import api_service
except ImportError:  # pragma: no cover - the API tests' own dependencies are missing
    api_service = None

pytestmark = [
    pytest.mark.skipif(ETCD is None or not shutil.which("redis-server"),
                       reason="etcd-server or redis-server is not installed"),
    pytest.mark.skipif(not shutil.which("etcdctl"), reason="etcd-client is not installed"),
    pytest.mark.skipif(api_service is None, reason="the REST API tests cannot run here"),
]

TOKEN = re.compile(r"--token ([a-z0-9]{6}\.[a-z0-9]{16}) --ca-cert-hash (sha256:[0-9a-f]{64})")


def node_services(api_port, tls_port):
    redis = redis_service(tls_port, free_port()).replace(
        "certificate = data_internode_encryption", "certificate = proxy")
    return {"etcd": etcd_service_body(), "redis-db1": redis,
            "api": api_service(api_port, free_port())}


def first_node(agent_factory):
    """Node n1: a one-member etcd cluster, initialised, with its REST API."""
    api, tls = free_port(), free_port()
    services = node_services(api, tls)
    del services["etcd"]
    agent = cluster_agent(agent_factory, extra_services=services)
    agent.api_peer = f"127.0.0.1:{api}"
    agent.tls_port = tls
    agent.node = "n1"
    return started_and_initialised(agent)


def new_node(agent_factory):
    """A node on its own (store local), with its REST API and shard, ready to join."""
    api, tls = free_port(), free_port()
    agent = agent_factory(node_services(api, tls))
    agent.api_peer = f"127.0.0.1:{api}"
    agent.tls_port = tls
    agent.client_port, agent.peer_port = free_port(), free_port()
    agent.etcd_endpoint = f"127.0.0.1:{agent.client_port}"
    agent.start()
    return agent


def token(peer):
    out = peer.ctl("cluster", "token", "create", "--peer", peer.api_peer)
    assert out.returncode == 0, out.stdout + out.stderr
    return TOKEN.search(out.stdout).groups()


def join(agent, peer, secret, ca_hash, *extra):
    """A join answers within its steps' bounds: 60 s for the promotion, 90 s for the first apply."""
    return agent.ctl("cluster", "join", peer.api_peer, "--token", secret, "--ca-cert-hash",
                     ca_hash, "--client-port", str(agent.client_port), "--peer-port",
                     str(agent.peer_port), *extra, timeout=240)


def members(agent):
    out = etcdctl(agent, "member", "list", "-w", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["members"]


def subject_and_issuer(path):
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-issuer", "-nameopt", "RFC2253",
                          "-in", str(path)], capture_output=True, text=True, check=True).stdout
    return out


@pytest.fixture
def n1(agent_factory):
    return first_node(agent_factory)


def test_a_node_joins_with_a_token_and_serves_the_clusters_certificates(n1, agent_factory):
    n2 = new_node(agent_factory)
    own_ca = file_fingerprint(state(n2, "ca.pem"))
    secret, ca_hash = token(n1)
    out = join(n2, n1, secret, ca_hash)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Joined cluster 'test' through" in out.stdout and "as node 'n2'" in out.stdout, out

    # The cluster's CA and proxy certificate, in place of what n2 generated at its first start.
    assert file_fingerprint(state(n2, "ca.pem")) == file_fingerprint(state(n1, "ca.pem")) != own_ca
    proxy = file_fingerprint(state(n1, "certs", "proxy", "current", "cert.pem"))
    wait_for(lambda: served(n2) == proxy, 30, what="n2 to serve the cluster's proxy certificate")

    # Its own internode certificates: issued by the cluster CA for n2, distinct from n1's.
    for name in ("ccs_internode_encryption", "data_internode_encryption"):
        mine = state(n2, "certs", name, "current", "cert.pem")
        text = subject_and_issuer(mine)
        assert "subject=CN=n2" in text, text
        assert file_fingerprint(mine) != file_fingerprint(
            state(n1, "certs", name, "current", "cert.pem"))
        verify = subprocess.run(["openssl", "verify", "-CAfile", str(state(n1, "ca.pem")),
                                 str(mine)], capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr

    # A voting member of etcd, known by the store's registry, alive.
    listed = members(n1)
    assert sorted(m["name"] for m in listed) == ["n1", "n2"]
    assert not any(m.get("isLearner") for m in listed), listed
    registry = json.loads(etcdctl(n1, "get", "/certvisor/test/nodes/n2",
                                  "--print-value-only").stdout)
    assert registry["address"] == "127.0.0.1" and registry["peer_port"] == n2.peer_port
    wait_for(lambda: "n2" in cluster_status(n1).get("alive", []), 30, what="n2 to be alive")
    membership = json.loads(state(n2, "membership.json").read_text())
    assert membership["node"] == "n2" and membership["cluster"] == "test"

    # A change on n2 now reaches n1: the node is a full member.
    out = n2.ctl("cluster", "certificate", "rotate", "proxy")
    assert out.returncode == 0, out.stdout + out.stderr
    rotated = file_fingerprint(state(n2, "certs", "proxy", "current", "cert.pem"))
    wait_for(lambda: served(n1) == rotated, 30, what="n1 to serve n2's rotation")

    # The token admitted one node: used again, it is refused.
    n3 = new_node(agent_factory)
    again = join(n3, n1, secret, ca_hash)
    assert again.returncode != 0
    assert "unknown, expired, already used" in again.stderr, again.stderr
    assert not state(n3, "membership.json").exists()
    assert sorted(m["name"] for m in members(n1)) == ["n1", "n2"]

    # A new token for n3, through n2 this time: three voting members.
    secret3, ca_hash3 = token(n2)
    out = join(n3, n2, secret3, ca_hash3)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "as node 'n3'" in out.stdout
    assert sorted(m["name"] for m in members(n1)) == ["n1", "n2", "n3"]
    wait_for(lambda: served(n3) == rotated, 30, what="n3 to serve the cluster's proxy certificate")
    # The node list (cluster status, GET /v1/nodes) holds the nodes that joined.
    wait_for(lambda: [(m["name"], m["address"]) for m in cluster_status(n1)["members"]] ==
             [("n1", "127.0.0.1"), ("n2", "127.0.0.1"), ("n3", "127.0.0.1")], 30,
             what="n1's node list to hold n2 and n3")


def test_a_wrong_ca_hash_is_refused_before_the_token_is_sent(n1, agent_factory):
    n2 = new_node(agent_factory)
    secret, _ = token(n1)
    wrong = "sha256:" + "ab" * 32
    out = join(n2, n1, secret, wrong)
    assert out.returncode != 0
    assert f"not the {wrong} given" in out.stderr, out.stderr
    assert "nothing was sent" in out.stderr
    # The peer never saw the token: it is still there, and no member was added.
    listed = json.loads(n1.ctl("--json", "cluster", "token", "list").stdout)["items"]
    assert [t["id"] for t in listed] == [secret.split(".")[0]]
    assert "join/admit" not in n1.log_text() and "admitted" not in n1.log_text()
    assert [m["name"] for m in members(n1)] == ["n1"]
    assert not state(n2, "membership.json").exists()
    assert cluster_status(n2)["store"] == "local"


def test_an_unknown_or_deleted_token_is_refused_and_nothing_changes(n1, agent_factory):
    n2 = new_node(agent_factory)
    own_ca = file_fingerprint(state(n2, "ca.pem"))
    secret, ca_hash = token(n1)
    out = n1.ctl("cluster", "token", "delete", secret.split(".")[0])
    assert out.returncode == 0, out.stderr
    out = join(n2, n1, secret, ca_hash)
    assert out.returncode != 0
    assert "unknown, expired, already used" in out.stderr, out.stderr
    assert file_fingerprint(state(n2, "ca.pem")) == own_ca
    assert not list(state(n2, "certs").glob("*/pending-key.pem"))  # the CSRs' keys are gone
    assert [m["name"] for m in members(n1)] == ["n1"]
    # A secret that does not match its id: the same answer, which tells a guesser nothing.
    secret, ca_hash = token(n1)
    out = join(n2, n1, secret[:7] + "0" * 16, ca_hash)
    assert out.returncode != 0 and "unknown, expired, already used" in out.stderr, out.stderr


def test_bad_join_arguments_are_usage_errors(n1, agent_factory):
    n2 = new_node(agent_factory)
    cases = [
        (["cluster", "join", "example.com:9443", "--token", "abcdef.0123456789abcdef",
          "--ca-cert-hash", "sha256:" + "0" * 64], "is not <IP address>:<port>"),
        (["cluster", "join", n1.api_peer, "--token", "nope", "--ca-cert-hash",
          "sha256:" + "0" * 64], "token"),
        (["cluster", "join", n1.api_peer, "--token", "abcdef.0123456789abcdef",
          "--ca-cert-hash", "md5:00"], "--ca-cert-hash takes sha256:"),
        (["cluster", "join", n1.api_peer, "--ca-cert-hash", "sha256:" + "0" * 64],
         "give --token (as 'certvisorctl cluster token create' printed it"),
        (["cluster", "join", n1.api_peer, "--token", "abcdef.0123456789abcdef"],
         "--ca-cert-hash is needed"),  # no terminal to confirm the CA on
    ]
    for args, expected in cases:
        out = n2.ctl(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert expected in out.stderr, (args, out.stderr)
    # A node of a cluster does not join another.
    secret, ca_hash = token(n1)
    out = n1.ctl("cluster", "join", n1.api_peer, "--token", secret, "--ca-cert-hash", ca_hash)
    assert out.returncode == 1 and "already a node of cluster 'test'" in out.stderr, out.stderr


def test_the_admission_endpoint_refuses_hostile_requests(n1):
    """/v1/join/admit takes no credentials but the token: malformed, oversized and token-less
    requests are refused with 4xx and change nothing."""
    import ssl
    import http.client

    def post(body, content_type="application/json"):
        ctx = ssl.create_default_context(cafile=str(state(n1, "ca.pem")))
        ctx.check_hostname = False
        host, port = n1.api_peer.rsplit(":", 1)
        conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=20)
        conn.request("POST", "/v1/join/admit", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, response.read()

    status, body = post(b"{}")
    assert status == 400, body
    status, body = post(json.dumps({"token": "abcdef.0123456789abcdef", "address": "not-an-ip",
                                    "client_port": 1, "peer_port": 2,
                                    "csrs": {}}).encode())
    assert status == 400 and b"not an IP address" in body, body
    status, body = post(b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert status == 413, body
    csr = subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-subj",
                          "/CN=x"], capture_output=True, text=True, check=True).stdout
    status, body = post(json.dumps({"token": "abcdef.0123456789abcdef", "address": "127.0.0.1",
                                    "client_port": 1, "peer_port": 2,
                                    "csrs": {"ccs_internode_encryption": csr,
                                             "data_internode_encryption": csr}}).encode())
    assert status == 403 and b"join_refused" in body, body
    # A flood of admissions with made-up tokens, and truncated ones: each refused (403, or 503
    # while another is being checked), the agent answers on, and a real join still works.
    import concurrent.futures
    bogus = json.dumps({"token": "abcdef.0123456789abcdef", "address": "127.0.0.1",
                        "client_port": 1, "peer_port": 2,
                        "csrs": {"ccs_internode_encryption": csr,
                                 "data_internode_encryption": csr}}).encode()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda i: post(bogus if i % 4 else bogus[:len(bogus) // 2])[0],
                                 range(64)))
    assert set(statuses) <= {400, 403, 503}, statuses
    assert statuses.count(403) >= 1, statuses
    assert n1.ctl("status").returncode == 0
    # The CA is public: anyone may read it, and that is all.
    ctx = ssl.create_default_context(cafile=str(state(n1, "ca.pem")))
    ctx.check_hostname = False
    host, port = n1.api_peer.rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=20)
    conn.request("GET", "/v1/join/ca")
    response = conn.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["pem"] == state(n1, "ca.pem").read_text()
    assert [m["name"] for m in members(n1)] == ["n1"]


def voters(agent):
    return sorted(m["name"] for m in members(agent) if not m.get("isLearner"))


def joined(agent_factory, peer):
    node = new_node(agent_factory)
    secret, ca_hash = token(peer)
    out = join(node, peer, secret, ca_hash)
    assert out.returncode == 0, out.stdout + out.stderr
    node.node = re.search(r"as node '([^']+)'", out.stdout).group(1)
    return node


def test_four_nodes_three_voters_a_dead_one_removed_and_joined_again(n1, agent_factory):
    """1 -> 4 by join: the 4th node keeps a copy of the store without voting; a voter that is
    gone is removed (the learner votes in its place), and, once it left by itself too, joins
    again with a new token."""
    n2 = joined(agent_factory, n1)
    n3 = joined(agent_factory, n2)
    n4 = joined(agent_factory, n3)
    assert [n.node for n in (n2, n3, n4)] == ["n2", "n3", "n4"]
    assert voters(n1) == ["n1", "n2", "n3"]
    assert sorted(m["name"] for m in members(n1)) == ["n1", "n2", "n3", "n4"]
    # cluster status says who votes.
    wait_for(lambda: (sorted(cluster_status(n2).get("voters", [])),
                      cluster_status(n2).get("learners")) == (["n1", "n2", "n3"], ["n4"]), 30,
             what="n2's status to show the voters and the learner")
    shown = n2.ctl("cluster", "status").stdout
    assert re.search(r"^learners: n4$", shown, re.M), shown
    proxy = file_fingerprint(state(n1, "certs", "proxy", "current", "cert.pem"))
    for node in (n2, n3, n4):
        wait_for(lambda: served(node) == proxy, 30, what=f"{node.node} to serve the cluster's")
    # n4, a learner, still takes changes through the others.
    out = n4.ctl("cluster", "certificate", "rotate", "proxy")
    assert out.returncode == 0, out.stdout + out.stderr
    proxy = file_fingerprint(state(n4, "certs", "proxy", "current", "cert.pem"))
    wait_for(lambda: served(n1) == proxy, 30, what="n1 to serve n4's rotation")

    n3.stop()
    wait_for(lambda: "n3" not in cluster_status(n1).get("alive", ["n3"]), 30, what="n3 gone")
    alive = n1.ctl("cluster", "remove", "n2")
    assert alive.returncode == 1 and "node 'n2' is alive" in alive.stderr, alive.stderr
    out = n1.ctl("cluster", "remove", "n3")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Node 'n3' removed from the cluster" in out.stdout
    assert voters(n1) == ["n1", "n2", "n4"]  # 4 -> 3: the learner votes now
    assert etcdctl(n1, "get", "--prefix", "/certvisor/test/nodes/n3").stdout == ""
    # The cluster keeps its quorum and takes changes.
    out = n2.ctl("cluster", "certificate", "rotate", "proxy")
    assert out.returncode == 0, out.stdout + out.stderr

    # n3 comes back: its member is gone. It leaves (the local half only), then joins again.
    n3.start()
    out = n3.ctl("cluster", "leave")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "left cluster 'test'" in out.stdout and "removed already" in out.stdout, out.stdout
    wait_for(lambda: cluster_status(n3)["store"] == "local", 30, what="n3 on its own")
    assert not state(n3, "membership.json").exists() and not state(n3, "cluster.key").exists()
    secret, ca_hash = token(n1)
    out = join(n3, n1, secret, ca_hash)
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(m["name"] for m in members(n1)) == ["n1", "n2", "n3", "n4"]
    assert voters(n1) == ["n1", "n2", "n4"]


def test_a_node_leaves_and_keeps_serving_its_certificates(n1, agent_factory):
    n2 = joined(agent_factory, n1)
    proxy = file_fingerprint(state(n1, "certs", "proxy", "current", "cert.pem"))
    wait_for(lambda: served(n2) == proxy, 30, what="n2 to serve the cluster's certificate")
    out = n2.ctl("cluster", "leave")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "node 'n2' left cluster 'test'" in out.stdout
    assert [m["name"] for m in members(n1)] == ["n1"]
    assert etcdctl(n1, "get", "--prefix", "/certvisor/test/nodes/").stdout == ""
    wait_for(lambda: cluster_status(n2)["store"] == "local", 30, what="n2 on its own")
    wait_for(lambda: "etcd" not in n2.ctl("--json", "status").stdout, 30, what="n2's member to stop")
    assert served(n2) == proxy
    # On its own, a change is its own again: n1 does not see it.
    out = n2.ctl("cluster", "certificate", "rotate", "proxy")
    assert out.returncode == 0, out.stdout + out.stderr
    assert served(n1) == proxy != served(n2)
    # The first node cannot leave what it made with its configuration.
    out = n1.ctl("cluster", "leave")
    assert out.returncode == 1 and "certvisor.conf's cluster section" in out.stderr, out.stderr


def test_a_node_joins_while_a_voter_is_down_and_not_without_quorum(n1, agent_factory):
    n2 = joined(agent_factory, n1)
    n3 = joined(agent_factory, n2)
    n3.stop()
    n4 = joined(agent_factory, n1)  # two of three voters up: quorum holds
    assert n4.node == "n4"
    n2.stop()
    wait_for(lambda: not cluster_status(n1).get("has_leader"), 60, what="n1 to lose quorum")
    n5 = new_node(agent_factory)
    out = n1.ctl("cluster", "token", "create", "--peer", n1.api_peer)
    assert out.returncode != 0  # no token can be made without quorum either
    out = join(n5, n1, "abcdef.0123456789abcdef", "sha256:" + spki_hex(n1))
    assert out.returncode != 0
    assert "no quorum" in out.stderr, out.stderr
    assert not state(n5, "membership.json").exists()


def spki_hex(agent):
    from test_cluster_tokens import spki_sha256
    return spki_sha256(state(agent, "ca.pem")).split(":", 1)[1]


def test_an_administrator_joins_a_node_without_a_token(n1, agent_factory, tmp_path):
    """Redis Enterprise's operators join with an admin's name and password: the CA is still
    pinned, by its hash or by the operator's confirmation on the terminal."""
    password = tmp_path / "password"
    password.write_text("s3cret-Passw0rd\n")
    out = n1.ctl("user", "add", "ops", "--role", "admin", "--password-file", str(password))
    assert out.returncode == 0, out.stdout + out.stderr
    viewer = n1.ctl("user", "add", "watcher", "--role", "viewer", "--password-file",
                    str(password))
    assert viewer.returncode == 0, viewer.stderr
    from test_cluster_tokens import spki_sha256
    ca_hash = spki_sha256(state(n1, "ca.pem"))
    n2 = new_node(agent_factory)

    # A viewer is not enough, and a wrong password is refused: nothing joins.
    for user, secret, expected in (("watcher", "s3cret-Passw0rd", "a join needs a join token"),
                                   ("ops", "wrong", "(HTTP 401)")):
        (tmp_path / "try").write_text(secret + "\n")
        out = n2.ctl("cluster", "join", n1.api_peer, "--user", user, "--password-file",
                     str(tmp_path / "try"), "--ca-cert-hash", ca_hash, "--client-port",
                     str(n2.client_port), "--peer-port", str(n2.peer_port))
        assert out.returncode != 0, out.stdout
        assert expected in out.stderr, out.stderr
    assert [m["name"] for m in members(n1)] == ["n1"]

    # The operator confirms the CA on the terminal (script(1) gives certvisorctl one).
    command = " ".join([str(CERTVISORCTL), "-s", str(n2.socket), "cluster", "join", n1.api_peer,
                        "--user", "ops", "--password-file", str(password), "--client-port",
                        str(n2.client_port), "--peer-port", str(n2.peer_port)])
    out = subprocess.run(["script", "-qec", command, "/dev/null"], input="y\n",
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert ca_hash in out.stdout and "Is this the cluster's CA? [y/N]" in out.stdout, out.stdout
    assert "as node 'n2'" in out.stdout, out.stdout
    assert sorted(m["name"] for m in members(n1)) == ["n1", "n2"]
    assert "s3cret" not in n1.log_text() and "s3cret" not in n2.log_text()
    assert "admitted by REST user 'ops'" in n1.log_text()

    # Answered no on the terminal: nothing is sent.
    n3 = new_node(agent_factory)
    command = " ".join([str(CERTVISORCTL), "-s", str(n3.socket), "cluster", "join", n1.api_peer,
                        "--user", "ops", "--password-file", str(password)])
    out = subprocess.run(["script", "-qec", command, "/dev/null"], input="n\n",
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "was not confirmed: nothing was sent" in out.stdout, out.stdout


def test_a_join_that_fails_after_admission_is_undone(n1, agent_factory):
    """The joiner's etcd member cannot start (its peer port is taken): it never catches up, is
    never promoted, and the join is undone: its member removed and its registry entry deleted
    in the store, its membership file gone, its own CA back; the answer names the step."""
    import socket
    n2 = new_node(agent_factory)
    own_ca = file_fingerprint(state(n2, "ca.pem"))
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", n2.peer_port))
    blocker.listen(1)
    try:
        secret, ca_hash = token(n1)
        out = join(n2, n1, secret, ca_hash)
    finally:
        blocker.close()
    assert out.returncode != 0
    assert "failed while promoting this node's etcd member" in out.stderr, out.stderr
    assert "what the join had done was undone" in out.stderr, out.stderr
    assert [m["name"] for m in members(n1)] == ["n1"]
    assert etcdctl(n1, "get", "--prefix", "/certvisor/test/nodes/").stdout == ""
    assert not state(n2, "membership.json").exists()
    wait_for(lambda: cluster_status(n2)["store"] == "local", 30, what="n2 on its own again")
    assert file_fingerprint(state(n2, "ca.pem")) == own_ca
    # Its internode certificates are its own CA's again.
    wait_for(lambda: subprocess.run(
        ["openssl", "verify", "-CAfile", str(state(n2, "ca.pem")),
         str(state(n2, "certs", "ccs_internode_encryption", "current", "cert.pem"))],
        capture_output=True).returncode == 0, 30, what="n2's internode certificates re-issued")
    # And it can join for good once the port is free.
    secret, ca_hash = token(n1)
    out = join(n2, n1, secret, ca_hash)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_learner_is_promoted_when_a_voter_goes_behind_certvisors_back(n1, agent_factory):
    """The voters follow the nodes even when nothing of certvisor removed the voter (etcdctl
    here; a joiner stopped before its promotion is the same case): the renewer promotes the
    learner once the cluster has fewer voters than its nodes need."""
    n2 = joined(agent_factory, n1)
    n3 = joined(agent_factory, n2)
    n4 = joined(agent_factory, n1)
    assert voters(n1) == ["n1", "n2", "n3"]
    n3_id = next(m["ID"] for m in members(n1) if m["name"] == "n3")
    out = etcdctl(n1, "member", "remove", format(n3_id, "x"))
    assert out.returncode == 0, out.stderr
    wait_for(lambda: voters(n1) == ["n1", "n2", "n4"], 60, what="n4 to be promoted")
    assert "a learner was promoted: the cluster needed its vote" in \
        n1.log_text() + n2.log_text() + n4.log_text()


def test_an_automation_joins_over_rest(n1, agent_factory):
    """POST /v1/cluster/join on the node that joins, as its admin: the REST form of cluster join,
    with the same checks (a wrong hash is 409 ca_mismatch and sends nothing)."""
    from test_api import ADMIN, Node, add_user
    n2 = new_node(agent_factory)
    add_user(n2, ADMIN[0], ADMIN[1], "admin")
    api = Node(n2, int(n2.api_peer.rsplit(":", 1)[1]), None)
    secret, ca_hash = token(n1)
    body = {"peer": n1.api_peer, "token": secret, "ca_cert_hash": "sha256:" + "0" * 64,
            "client_port": n2.client_port, "peer_port": n2.peer_port}
    wrong = api.request("POST", "/v1/cluster/join", body)
    assert wrong.status == 409 and wrong.json["error_code"] == "ca_mismatch", wrong
    unknown = api.request("POST", "/v1/cluster/join", {**body, "colour": "blue"})
    assert unknown.status == 400 and unknown.json["error_code"] == "unknown_field", unknown
    viewer = api.request("POST", "/v1/cluster/join", {**body, "ca_cert_hash": ca_hash},
                         auth=("nobody", "nothing"))
    assert viewer.status == 401, viewer
    done = api.request("POST", "/v1/cluster/join", {**body, "ca_cert_hash": ca_hash})
    assert done.status == 200, done
    assert done.json["node"] == "n2" and done.json["cluster"] == "test", done.json
    assert sorted(m["name"] for m in members(n1)) == ["n1", "n2"]
