"""Join tokens (issue 17): certvisorctl cluster token create|list|delete on a node whose store is
a real etcd member. A token lives at join/<id> on a lease whose TTL is its lifetime, holds the
SHA-256 of its secret and never the secret, and the printed join command carries the SHA-256
of the cluster CA's public key, as openssl computes it."""
import hashlib
import json
import re
import shutil
import subprocess
import time

import pytest

from conftest import wait_for
from test_certs import state
from test_cluster_etcd import cluster_agent
from test_cluster_sync import cluster_status, etcdctl
from test_etcd_client import ETCD

pytestmark = [
    pytest.mark.skipif(ETCD is None, reason="etcd-server is not installed"),
    pytest.mark.skipif(not shutil.which("etcdctl"), reason="etcd-client is not installed"),
]

TOKEN = re.compile(r"--token ([a-z0-9]{6})\.([a-z0-9]{16}) --ca-cert-hash (sha256:[0-9a-f]{64})")


def spki_sha256(ca_pem):
    """What kubeadm's --discovery-token-ca-cert-hash is: SHA-256 of the DER public key."""
    pub = subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", str(ca_pem)],
                         capture_output=True, text=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub.encode(),
                         capture_output=True, check=True).stdout
    return "sha256:" + hashlib.sha256(der).hexdigest()


@pytest.fixture
def node(agent_factory):
    return started_and_initialised(cluster_agent(agent_factory))


def started_and_initialised(agent):
    """A one-member cluster's node started, its store led, and cluster init run on it."""
    agent.start()
    wait_for(lambda: cluster_status(agent).get("has_leader"), 60, what="the store's leader")
    out = agent.ctl("cluster", "init")
    assert out.returncode == 0, out.stdout + out.stderr
    return agent


def test_create_list_and_delete_a_token(node):
    out = node.ctl("cluster", "token", "create", "--ttl", "30m", "--description", "node 4")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "expires in 30m 0s" in out.stdout, out.stdout
    token_id, secret, ca_hash = TOKEN.search(out.stdout).groups()
    assert f"certvisorctl cluster join 127.0.0.1:9443 --token {token_id}.{secret}" in out.stdout
    assert ca_hash == spki_sha256(state(node, "ca.pem"))

    # In the store: the hash of the secret, never the secret, on a lease of the token's TTL.
    raw = etcdctl(node, "get", f"/certvisor/test/join/{token_id}", "--print-value-only")
    assert raw.returncode == 0, raw.stderr
    value = json.loads(raw.stdout)
    assert value["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in raw.stdout and value["description"] == "node 4"
    assert value["expires"] - value["created"] == 1800
    assert "uid 0" in value["created_by"]
    kv = json.loads(etcdctl(node, "get", f"/certvisor/test/join/{token_id}", "-w", "json").stdout)
    lease = kv["kvs"][0]["lease"]
    ttl = etcdctl(node, "lease", "timetolive", format(lease, "x"), "-w", "json")
    assert 1790 <= json.loads(ttl.stdout)["ttl"] <= 1800, ttl.stdout
    assert secret not in node.log_text()

    listed = node.ctl("cluster", "token", "list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^{token_id}\s+(29m|30m) \d+s\s+\d{{4}}-\d\d-\d\d .*node 4$", listed.stdout,
                     re.M), listed.stdout
    assert secret not in listed.stdout
    as_json = json.loads(node.ctl("--json", "cluster", "token", "list").stdout)
    assert [t["id"] for t in as_json["items"]] == [token_id]

    out = node.ctl("cluster", "token", "delete", token_id)
    assert out.returncode == 0 and out.stdout.strip() == f"Join token '{token_id}' deleted", out
    assert etcdctl(node, "get", "--prefix", "/certvisor/test/join/").stdout == ""
    assert "lease not found" in etcdctl(node, "lease", "timetolive", format(lease, "x")).stdout \
        or "expired" in etcdctl(node, "lease", "timetolive", format(lease, "x")).stdout
    assert "No join tokens" in node.ctl("cluster", "token", "list").stdout
    out = node.ctl("cluster", "token", "delete", token_id)
    assert out.returncode == 1 and f"no join token '{token_id}'" in out.stderr, out.stderr


def test_a_token_is_gone_when_its_lifetime_is_over(node):
    """etcd ends the lease: no node has to clean up. The shortest lifetime is a minute; the
    lease is shortened by hand here to see it end."""
    out = node.ctl("--json", "cluster", "token", "create")
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply["ttl"] == 3600 and reply["expires"] - time.time() > 3500  # the default: 1 hour
    key = f"/certvisor/test/join/{reply['id']}"
    lease = json.loads(etcdctl(node, "get", key, "-w", "json").stdout)["kvs"][0]["lease"]
    short = etcdctl(node, "lease", "grant", "2")
    short_id = re.search(r"lease ([0-9a-f]+) granted", short.stdout).group(1)
    value = etcdctl(node, "get", key, "--print-value-only").stdout.strip()
    assert etcdctl(node, "put", key, value, f"--lease={short_id}").returncode == 0
    etcdctl(node, "lease", "revoke", format(lease, "x"))
    wait_for(lambda: etcdctl(node, "get", key).stdout == "", 15, what="the token to expire")
    assert "No join tokens" in node.ctl("cluster", "token", "list").stdout


def test_bad_input_is_refused_and_changes_nothing(node):
    for args, message in (
            (("--ttl", "10s"), "from 60 s to 7 days"),
            (("--ttl", "8d"), "from 60 s to 7 days"),
            (("--ttl", "1w"), "--ttl takes a lifetime such as 30m, 1h or 2d"),
            (("--ttl",), "--ttl needs a value"),
            (("--description", "x" * 300), "--description takes a text of at most 255 bytes"),
            (("extra",), "unexpected argument 'extra'")):
        out = node.ctl("cluster", "token", "create", *args)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)
    out = node.ctl("cluster", "token", "delete", "ABC")
    assert out.returncode == 2 and "six lowercase letters and digits" in out.stderr, out.stderr
    assert etcdctl(node, "get", "--prefix", "/certvisor/test/join/").stdout == ""
    out = node.ctl("cluster", "token", "create", "--dry-run")
    assert out.returncode == 2 and "--dry-run is not supported" in out.stderr, out.stderr


def test_a_node_on_its_own_says_what_tokens_need(agent_factory):
    agent = agent_factory({})
    agent.start()
    out = agent.ctl("cluster", "token", "create")
    assert out.returncode == 1, out.stdout
    assert "join tokens live in the cluster's etcd store, and this node's store is local" in \
        out.stderr, out.stderr


def test_an_uninitialised_store_is_named(agent_factory):
    agent = cluster_agent(agent_factory)
    agent.start()
    wait_for(lambda: cluster_status(agent).get("has_leader"), 60, what="the store's leader")
    wait_for(lambda: cluster_status(agent).get("state") == "not_initialised", 30,
             what="the store read as empty")
    out = agent.ctl("cluster", "token", "list")
    assert out.returncode == 1 and "run 'certvisorctl cluster init' first" in out.stderr, out
