"""OCSP stapling of the proxy certificate: certvisord asks the responder that the certificate
names (its Authority Information Access), verifies the answer against the issuer that follows
the leaf in the certificate file, keeps it, and certvisor-proxy staples it to the clients that
ask for one.

Everything is a real program: the openssl CLI is the CA (openssl ca, with its index.txt) and
its responder (openssl ocsp), openssl s_client -status is the client that asks for a staple,
and the settings go through certvisorctl and the REST API as an operator's would.

OpenSSL's responder re-reads a changed index.txt only when it goes back to waiting for a
connection, so the first request after a revocation still gets the old answer: the tests ask
it themselves until it says "revoked" before they look at what the agent makes of it.
"""
import datetime
import json
import re
import shutil
import socket
import subprocess

import pytest

from conftest import wait_for
from test_api import ADMIN, API, Node, add_user, api_service
from test_apply import file_fingerprint, served_fingerprint
from test_certs import free_port
from test_proxy import PROXY, Cluster, client_context
from test_sentinel import sentinel_service

openssl = shutil.which("openssl")

pytestmark = [
    pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server not installed"),
    pytest.mark.skipif(not (PROXY.exists() and API.exists()),
                       reason="certvisor-proxy or certvisor-api not built"),
]

DEFAULTS = {"ocsp_functionality": False, "query_frequency": 3600, "response_timeout": 1,
            "recovery_frequency": 60, "recovery_max_tries": 5}
RANGES = {"query_frequency": (60, 86400), "response_timeout": (1, 60),
          "recovery_frequency": (60, 86400), "recovery_max_tries": (1, 100)}
REST_TIME = "%Y-%m-%dT%H:%M:%SZ"  # "2026-12-06T22:50:00Z"
# What `certvisorctl cluster ocsp status` and `test` print, "name: value" a line.
STATUS_LINES = ("cert_status", "responder_url", "produced_at", "this_update", "next_update",
                "revocation_time", "error")


# ------------------------------------------------------------------ the CA and its responder


def run_openssl(*args):
    """Runs the openssl CLI; a failure shows openssl's own words, not just its exit status."""
    out = subprocess.run([openssl, *map(str, args)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"openssl {' '.join(map(str, args))}:\n{out.stdout}{out.stderr}"
    return out.stdout


CA_CONFIG = """\
[ca]
default_ca = ocsp_test_ca

[ocsp_test_ca]
database        = {dir}/index.txt
new_certs_dir   = {dir}/issued
serial          = {dir}/serial
certificate     = {dir}/ca.pem
private_key     = {dir}/ca.key
default_md      = sha256
default_days    = 200
policy          = any_name
unique_subject  = no
copy_extensions = none

[any_name]
commonName = supplied

[ca_itself]
basicConstraints     = critical, CA:TRUE
keyUsage             = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
"""

# What the agent requires of a server certificate (test_certs, x509_check.c), and, when the
# test wants one, the responder's address where clients and certvisord look for it.
LEAF_EXTENSIONS = """\
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage         = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName   = DNS:localhost, IP:127.0.0.1
"""


class OcspCa:
    """A CA kept by `openssl ca`: its database (index.txt) is what its responder answers from,
    so revoking a certificate there is revoking it for OCSP."""

    def __init__(self, directory):
        self.dir = directory
        self.dir.mkdir(parents=True)
        (self.dir / "issued").mkdir()
        self.cert, self.key = self.dir / "ca.pem", self.dir / "ca.key"
        self.index = self.dir / "index.txt"
        self.index.touch()
        (self.dir / "serial").write_text("1000\n")
        self.config = self.dir / "ca.cnf"
        self.config.write_text(CA_CONFIG.format(dir=self.dir))
        run_openssl("req", "-x509", "-config", self.config, "-extensions", "ca_itself",
                    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", self.key, "-out", self.cert, "-days", "400",
                    "-subj", "/CN=certvisor OCSP test CA")

    def issue(self, name, responder_url=None):
        """A server certificate for 127.0.0.1: (leaf, leaf then this CA in one file, key). With
        responder_url, its Authority Information Access names that OCSP responder."""
        key, csr = self.dir / f"{name}.key", self.dir / f"{name}.csr"
        leaf, chain = self.dir / f"{name}.pem", self.dir / f"{name}-chain.pem"
        extensions = self.dir / f"{name}-ext.cnf"
        extensions.write_text(LEAF_EXTENSIONS + (f"authorityInfoAccess = OCSP;URI:{responder_url}\n"
                                                 if responder_url else ""))
        run_openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}.example")
        run_openssl("ca", "-batch", "-config", self.config, "-extfile", extensions,
                    "-extensions", "leaf", "-notext", "-in", csr, "-out", leaf)
        chain.write_text(leaf.read_text() + self.cert.read_text())
        key.chmod(0o600)
        return leaf, chain, key

    def revoke(self, leaf):
        run_openssl("ca", "-config", self.config, "-revoke", leaf, "-crl_reason", "keyCompromise")

    def revocation_time(self, leaf):
        """When the database says leaf was revoked, in the REST API's format: the time the
        responder puts in its answer, to the second."""
        serial = run_openssl("x509", "-in", leaf, "-noout", "-serial").strip().split("=", 1)[1]
        for line in self.index.read_text().splitlines():
            status, _, revoked, number = line.split("\t")[:4]
            if number == serial and status == "R":
                when = datetime.datetime.strptime(revoked.split(",")[0], "%y%m%d%H%M%SZ")
                return when.strftime(REST_TIME)
        raise AssertionError(f"serial {serial} is not revoked in {self.index}")

    def status_from(self, url, leaf):
        """What the responder at url says of leaf ("good", "revoked", "unknown"), its answer
        verified against this CA as certvisord verifies it; None when it does not answer."""
        out = subprocess.run([openssl, "ocsp", "-issuer", str(self.cert), "-cert", str(leaf),
                              "-url", url, "-CAfile", str(self.cert), "-timeout", "5"],
                             capture_output=True, text=True, timeout=30)
        found = re.search(rf"^{re.escape(str(leaf))}: (\w+)$", out.stdout, re.M)
        if out.returncode != 0 or "Response verify OK" not in out.stdout + out.stderr:
            return None
        return found.group(1) if found else None


class Responder:
    """`openssl ocsp` answering for the CA from its index.txt, signing with the CA's own key
    (the issuer may sign the answers about its certificates: RFC 6960 4.2.2.2), each answer's
    nextUpdate next_update_minutes after its thisUpdate."""

    WAITING = "waiting for OCSP client connections"

    def __init__(self, ca, port, next_update_minutes):
        self.ca = ca
        self.port = port
        self.next_update_minutes = next_update_minutes
        self.url = f"http://127.0.0.1:{port}"
        self.log = ca.dir / f"responder-{port}.log"
        self.proc = None

    def output(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def requests(self):
        """How many requests it has received (it logs each one)."""
        return self.output().count("Received request")

    def start(self):
        """Starts it and returns once it listens: it says so itself. (Not a probe connection:
        the responder serves one connection at a time and would wait on an empty one.)"""
        waiting_before = self.output().count(self.WAITING)
        with open(self.log, "ab") as log:
            # -ignore_err: a malformed request is answered, and the responder goes on.
            self.proc = subprocess.Popen(
                [openssl, "ocsp", "-index", str(self.ca.index), "-port", str(self.port),
                 "-rsigner", str(self.ca.cert), "-rkey", str(self.ca.key), "-CA", str(self.ca.cert),
                 "-nmin", str(self.next_update_minutes), "-timeout", "5", "-ignore_err"],
                stdout=log, stderr=subprocess.STDOUT)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"openssl ocsp exited with {self.proc.returncode}:\n"
                                     f"{self.output()}")
            return self.output().count(self.WAITING) > waiting_before

        wait_for(listening, timeout=10, what=f"openssl ocsp to listen on port {self.port}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# ------------------------------------------------------------------ the node


class OcspNode:
    """An agent running the Redis shard, the proxy in front of it (test_proxy's Cluster), the
    api and sentinel_service; then (serve()) a CA's responder, and a proxy certificate from that
    CA given with the CA after it (the issuer the agent verifies answers against)."""

    def __init__(self, agent_factory):
        api_port, api_http_port = free_port(), free_port()
        # sentinel_service serves the proxy certificate too: it staples the same answer.
        self.sentinel_port = free_port()

        def with_the_api(services):
            return agent_factory({**services, "api": api_service(api_port, api_http_port),
                                  "sentinel_service": sentinel_service(self.sentinel_port)})

        self.cluster = Cluster(with_the_api, db1={"tls_mode": "enabled"})
        self.agent = self.cluster.agent
        self.port = self.cluster.ports["db1"]
        add_user(self.agent, *ADMIN, "admin")
        self.rest = Node(self.agent, api_port, api_http_port)
        self.ca = OcspCa(self.agent.root / "ocsp-ca")
        self.responder = None
        self.leaf = None
        self.requests_from_the_test = 0

    def serve(self, next_update_minutes, names_responder):
        self.responder = Responder(self.ca, free_port(), next_update_minutes)
        self.leaf, chain, key = self.ca.issue(
            "proxy", self.responder.url if names_responder else None)
        # Started once the certificate is in the index: a responder started before would answer
        # its first request from the index it read at its start ("unknown").
        self.responder.start()
        assert self.responder_says() == "good", self.responder.output()
        self.requests_from_the_test = self.responder.requests()
        out = self.agent.ctl("cluster", "certificate", "set", "proxy", "certificate_file",
                             str(chain), "key_file", str(key))
        assert out.returncode == 0, out.stdout + out.stderr
        assert served_fingerprint(self.port) == file_fingerprint(self.leaf)

    def requests_from_the_agent(self):
        return self.responder.requests() - self.requests_from_the_test

    def responder_says(self):
        return self.ca.status_from(self.responder.url, self.leaf)

    def stapled(self):
        return stapled(self.port)

    def finish(self):
        """Stops the responder and the agent; returns any sanitizer report of the proxy."""
        if self.responder:
            self.responder.stop()
        return self.cluster.finish()


@pytest.fixture
def ocsp_node(agent_factory):
    made = []

    def make(next_update_minutes=60, names_responder=True):
        made.append(OcspNode(agent_factory))
        # Kept before serve(): a responder started by a serve() that then fails is stopped too.
        made[-1].serve(next_update_minutes, names_responder)
        return made[-1]

    yield make
    reports = [report for node in made if (report := node.finish())]
    assert not reports, "sanitizer report in the proxy's output:\n" + "\n".join(reports)


# ------------------------------------------------------------------ what clients and operators see


def stapled(port):
    """The certificate status in what the proxy staples for a client that asks (openssl
    s_client -status): "good", "revoked" or "unknown"; None when it sends no response. Not
    -brief: that leaves the OCSP part out of s_client's output."""
    out = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-status"],
                         input="", capture_output=True, text=True, timeout=20)
    text = out.stdout + out.stderr
    if "OCSP response: no response sent" in text:
        return None
    # Anything else must be a whole stapled answer: a failed handshake is not "no staple".
    assert "OCSP Response Status: successful" in text, text
    return re.search(r"^\s*Cert Status: (\w+)", text, re.M).group(1)


def set_policy(agent, name, value):
    """`certvisorctl cluster config NAME VALUE`, the command every policy setting is set with."""
    return agent.ctl("cluster", "config", name, str(value))


def fields(text):
    """certvisorctl's "name: value" lines as a dict (the value as printed, maybe empty)."""
    found = {}
    for line in text.splitlines():
        m = re.match(r"\s*(\w+):\s*(.*?)\s*$", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def ocsp_status(agent):
    out = agent.ctl("cluster", "ocsp", "status")
    assert out.returncode == 0, out.stdout + out.stderr
    return fields(out.stdout)


def ocsp_test(agent):
    return agent.ctl("cluster", "ocsp", "test")


def ocsp_config_shown(agent):
    """`certvisorctl cluster ocsp config` as name -> first word of its value, the names without
    their "ocsp_" prefix: the interface fixes what it prints (the five settings and the
    responder's URL, one a line), not whether a line says "name: value" or "name  value", nor
    whether a heading comes first."""
    out = agent.ctl("cluster", "ocsp", "config")
    assert out.returncode == 0, out.stdout + out.stderr
    shown = {}
    for line in out.stdout.splitlines():
        m = re.match(r"\s*(?:ocsp_)?(\w+)(?::\s*|\s+)(\S*)", line)
        if m and m.group(1) in (*RANGES, "functionality", "responder_url"):
            shown[m.group(1)] = m.group(2)
    return shown


def as_shown(config):
    """The REST API's OCSP object as ocsp_config_shown() reads certvisorctl's."""
    shown = {name: str(value) for name, value in config.items() if name in RANGES}
    shown["functionality"] = "enabled" if config["ocsp_functionality"] else "disabled"
    shown["responder_url"] = config["responder_url"]
    return shown


def rest_time(text):
    return datetime.datetime.strptime(text, REST_TIME).replace(tzinfo=datetime.timezone.utc)


def assert_a_fresh_good_answer(status, node):
    """status (GET /v1/ocsp/status, or POST /v1/ocsp/test's answer) holds the responder's
    answer as it made it: good, from its URL, times in the API's format whose nextUpdate is
    the responder's -nmin after thisUpdate (to the second it may tick in between), made now."""
    assert status["cert_status"] == "GOOD", status
    assert status["responder_url"] == node.responder.url, status
    produced, this, following = (rest_time(status[k])
                                 for k in ("produced_at", "this_update", "next_update"))
    window = datetime.timedelta(minutes=node.responder.next_update_minutes)
    assert window <= following - this <= window + datetime.timedelta(seconds=1), status
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs(now - this) < datetime.timedelta(minutes=5) and abs(now - produced) < \
        datetime.timedelta(minutes=5), status
    assert not status.get("revocation_time"), status


def enable_by_ctl(agent):
    out = agent.ctl("cluster", "ocsp", "config", "proxy", "enable")
    assert out.returncode == 0, out.stdout + out.stderr


def error_message(response):
    """The words of a REST error: its "error", or its "message" as the API's other errors have."""
    return " ".join(str(response.json.get(key, "")) for key in ("error", "message"))


def refused_naming(response, field):
    """A 400 answer that names the field it refuses (in its message or its "field")."""
    assert response.status == 400, response
    assert field in json.dumps(response.json), response


# ------------------------------------------------------------------ the tests


def test_a_good_answer_is_stapled_once_enabled_and_shown_by_ctl_and_rest(ocsp_node):
    node = ocsp_node()
    agent, url = node.agent, node.responder.url
    # Off by default: the defaults, the URL the certificate names, and no staple.
    r = node.rest.request("GET", "/v1/ocsp")
    assert r.status == 200, r
    assert r.json == {**DEFAULTS, "responder_url": url}, r.json
    assert ocsp_config_shown(agent) == as_shown(r.json)
    assert node.stapled() is None
    assert ocsp_status(agent)["cert_status"] == "NONE"
    enable_by_ctl(agent)
    assert node.rest.request("GET", "/v1/ocsp").json["ocsp_functionality"] is True
    # The test queries now, and the answer is stapled by the time it returns.
    out = ocsp_test(agent)
    assert out.returncode == 0, out.stdout + out.stderr
    tested = fields(out.stdout)
    assert tested.get("cert_status") == "GOOD" and tested.get("responder_url") == url, out.stdout
    assert all(tested.get(k) for k in ("produced_at", "this_update", "next_update")), out.stdout
    assert "revocation_time" not in tested and not tested.get("error"), out.stdout
    assert node.stapled() == "good"
    # So does the other service that serves the proxy certificate, reloaded in place too.
    assert stapled(node.sentinel_port) == "good"
    status = ocsp_status(agent)
    assert {k: status.get(k) for k in STATUS_LINES} == {k: tested.get(k) for k in STATUS_LINES}
    r = node.rest.request("GET", "/v1/ocsp/status")
    assert r.status == 200, r
    assert_a_fresh_good_answer(r.json, node)
    # And through the REST API, the same.
    r = node.rest.request("POST", "/v1/ocsp/test")
    assert r.status == 200, r
    assert_a_fresh_good_answer(r.json, node)
    assert node.stapled() == "good"
    # The agent asked the responder itself, each time.
    assert node.requests_from_the_agent() >= 2


def test_a_revoked_certificate_is_reported_logged_and_still_stapled(ocsp_node):
    node = ocsp_node()
    agent = node.agent
    out = set_policy(agent, "ocsp_functionality", "enabled")
    assert out.returncode == 0, out.stdout + out.stderr
    out = ocsp_test(agent)
    assert out.returncode == 0 and fields(out.stdout).get("cert_status") == "GOOD", \
        out.stdout + out.stderr
    assert node.stapled() == "good"
    node.ca.revoke(node.leaf)
    wait_for(lambda: node.responder_says() == "revoked", timeout=20, interval=0.2,
             what="the responder to read the revocation from its index.txt")
    # An answer that says revoked is an answer: the query worked.
    out = ocsp_test(agent)
    assert out.returncode == 0, out.stdout + out.stderr
    tested = fields(out.stdout)
    assert tested.get("cert_status") == "REVOKED" and tested.get("revocation_time"), out.stdout
    assert ocsp_status(agent)["cert_status"] == "REVOKED"
    r = node.rest.request("GET", "/v1/ocsp/status")
    assert r.status == 200, r
    assert r.json["cert_status"] == "REVOKED", r.json
    assert r.json["revocation_time"] == node.ca.revocation_time(node.leaf), r.json
    # An operator must hear of it; clients get the answer as it is, to judge for themselves.
    assert re.search(r" error: .*revoked", agent.log_text(), re.I), agent.log_text()[-3000:]
    assert node.stapled() == "revoked"
    # The metrics exporter's input (its rendering is unit-tested): an alert has what it needs.
    metrics = json.loads(agent.ctl("metrics").stdout)["ocsp"]
    assert metrics["enabled"] and metrics["cert_status"] == "REVOKED", metrics
    assert metrics["queries"] >= 2 and metrics["next_update"] > 0, metrics


def test_a_responder_gone_leaves_the_last_answer_stapled_until_its_next_update(ocsp_node):
    # Answers that last a minute keep the wait for the last one to expire short.
    node = ocsp_node(next_update_minutes=1)
    agent, url = node.agent, node.responder.url
    enable_by_ctl(agent)
    out = ocsp_test(agent)
    assert out.returncode == 0, out.stdout + out.stderr
    r = node.rest.request("GET", "/v1/ocsp/status")
    assert r.status == 200, r
    assert_a_fresh_good_answer(r.json, node)
    next_update = rest_time(r.json["next_update"])
    assert node.stapled() == "good"
    node.responder.stop()
    # The failure names where the agent went, from certvisorctl and from the REST API.
    out = ocsp_test(agent)
    assert out.returncode != 0, out.stdout
    assert url in out.stdout + out.stderr, out.stdout + out.stderr
    r = node.rest.request("POST", "/v1/ocsp/test")
    assert 400 <= r.status < 600, r
    assert url in error_message(r), r.json
    # The last good answer stays in force, and the status says what went wrong since.
    status = ocsp_status(agent)
    assert status["cert_status"] == "GOOD" and status.get("error"), status
    assert node.rest.request("GET", "/v1/ocsp/status").json["cert_status"] == "GOOD"
    assert node.stapled() == "good"
    # Until its nextUpdate: then no answer is better than a stale one.
    wait_for(lambda: node.stapled() is None, timeout=100, interval=2,
             what="the proxy to stop stapling the answer past its nextUpdate")
    assert datetime.datetime.now(datetime.timezone.utc) >= next_update - datetime.timedelta(
        seconds=2), f"the staple went before its nextUpdate ({next_update})"


def test_a_new_answer_reloads_only_the_proxy_and_keeps_its_connections(ocsp_node):
    node = ocsp_node()
    agent = node.agent
    pids = {name: agent.pid_of(name) for name in ("proxy", "redis-db1", "api")}
    # A client connected before any answer, through to the shard.
    raw = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    connection = client_context().wrap_socket(raw)

    def pong():
        connection.sendall(b"PING\r\n")
        return connection.recv(100) == b"+PONG\r\n"

    def produced_at():
        out = ocsp_test(agent)
        assert out.returncode == 0, out.stdout + out.stderr
        return fields(out.stdout)["produced_at"]

    try:
        assert pong()
        assert node.stapled() is None
        enable_by_ctl(agent)
        first = produced_at()
        assert node.stapled() == "good"
        assert pong()
        # A second answer, a newer one (two made within one second are alike).
        wait_for(lambda: produced_at() != first, timeout=10, interval=0.5,
                 what="an answer produced after the first")
        assert node.stapled() == "good"
        assert pong()
    finally:
        connection.close()
    assert {name: agent.pid_of(name) for name in pids} == pids


def test_settings_keep_to_their_ranges_and_types_and_a_refusal_changes_nothing(ocsp_node):
    node = ocsp_node()
    agent = node.agent
    before = node.rest.request("GET", "/v1/ocsp").json
    shown_before = agent.ctl("cluster", "ocsp", "config").stdout
    # certvisorctl: each setting just outside its range, and words that are not numbers.
    for name, (low, high) in RANGES.items():
        for value in (low - 1, high + 1, "ten", "1.5"):
            out = set_policy(agent, f"ocsp_{name}", value)
            assert out.returncode != 0, (name, value, out.stdout)
            assert f"ocsp_{name}" in out.stderr, (name, value, out.stderr)
            if isinstance(value, int):
                assert str(low) in out.stderr and str(high) in out.stderr, out.stderr
        out = agent.ctl("cluster", "ocsp", "config", "set", name, str(high + 1))
        assert out.returncode != 0, (name, out.stdout)
        assert name in out.stderr and str(low) in out.stderr and str(high) in out.stderr, \
            out.stderr
    out = set_policy(agent, "ocsp_functionality", "sometimes")
    assert out.returncode != 0 and "ocsp_functionality" in out.stderr, out.stdout + out.stderr
    out = agent.ctl("cluster", "ocsp", "config", "set", "frequency", "600")
    assert out.returncode == 2 and "unknown OCSP setting 'frequency'" in out.stderr, out.stderr
    out = agent.ctl("cluster", "ocsp", "config", "set", "query_frequency", "600",
                    "query_frequency", "700")
    assert out.returncode == 2 and "'query_frequency' is given twice" in out.stderr, out.stderr
    # REST: a wrong type or a value out of range, alone or beside a good one.
    for body, field in [({"query_frequency": "600"}, "query_frequency"),
                        ({"query_frequency": 600.5}, "query_frequency"),
                        ({"recovery_max_tries": True}, "recovery_max_tries"),
                        ({"ocsp_functionality": "enabled"}, "ocsp_functionality"),
                        ({"ocsp_functionality": 1}, "ocsp_functionality"),
                        ({"response_timeout": 61}, "response_timeout"),
                        ({"response_timeout": None}, "response_timeout"),
                        ({"ocsp_functionality": True, "recovery_frequency": 59},
                         "recovery_frequency")]:
        refused_naming(node.rest.request("PUT", "/v1/ocsp", body), field)
    # The URL is the certificate's to say, not a setting.
    r = node.rest.request("PUT", "/v1/ocsp", {"responder_url": "http://127.0.0.1:1"})
    assert r.status == 400, r
    assert node.rest.request("GET", "/v1/ocsp").json == before
    assert agent.ctl("cluster", "ocsp", "config").stdout == shown_before
    assert node.stapled() is None  # nothing was switched on either
    # The ends of the ranges are in them, by each way of setting them.
    out = set_policy(agent, "ocsp_query_frequency", 60)
    assert out.returncode == 0, out.stderr
    out = agent.ctl("cluster", "ocsp", "config", "set", "recovery_max_tries", "100")
    assert out.returncode == 0, out.stderr
    r = node.rest.request("PUT", "/v1/ocsp", {"response_timeout": 60, "recovery_frequency": 86400,
                                              "ocsp_functionality": True})
    assert r.status == 200, r
    expected = {**before, "query_frequency": 60, "recovery_max_tries": 100,
                "response_timeout": 60, "recovery_frequency": 86400, "ocsp_functionality": True}
    assert r.json == expected
    assert node.rest.request("GET", "/v1/ocsp").json == expected
    assert ocsp_config_shown(agent) == as_shown(expected)
    out = agent.ctl("cluster", "ocsp", "config", "set", "query_frequency", "600")
    assert out.returncode == 0, out.stderr
    out = agent.ctl("cluster", "ocsp", "config", "proxy", "disable")
    assert out.returncode == 0, out.stderr
    assert node.rest.request("GET", "/v1/ocsp").json == {**expected, "query_frequency": 600,
                                                         "ocsp_functionality": False}


def says_no_responder(text):
    """A message that the certificate names no OCSP responder, whatever its exact words ("names
    no OCSP responder", "has no OCSP URL", "does not name an OCSP responder")."""
    return (re.search(r"\b(no|not)\b[^.\n]*\bOCSP\b", text, re.I) is not None
            and re.search(r"certificate|proxy", text, re.I) is not None)


def test_a_certificate_naming_no_responder_is_a_clear_error(ocsp_node):
    node = ocsp_node(names_responder=False)
    agent = node.agent
    enable_by_ctl(agent)
    assert node.rest.request("GET", "/v1/ocsp").json["responder_url"] == ""
    out = ocsp_test(agent)
    assert out.returncode != 0, out.stdout
    assert says_no_responder(out.stdout + out.stderr), out.stdout + out.stderr
    r = node.rest.request("POST", "/v1/ocsp/test")
    assert 400 <= r.status < 600, r
    assert says_no_responder(error_message(r)), r.json
    status = ocsp_status(agent)
    assert status["cert_status"] == "NONE" and "http" not in status.get("responder_url", ""), \
        status
    assert node.stapled() is None
    # The responder was there all along; the agent could not know to ask it.
    assert node.requests_from_the_agent() == 0
