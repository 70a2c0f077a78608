"""The metrics exporter: certvisord's state as Prometheus text over HTTPS, validated by promtool,
with the values a user would check (certificate expiry, restarts, the last change, what services
report); the control plane's TLS policy on the wire; certificate rotation reloading it in place;
and a clear 503 (certvisor_up 0) when the agent does not answer."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import time

import pytest

from conftest import BUILD, SANITIZER_MARKERS, wait_for
from test_apply import file_fingerprint, served_fingerprint
from test_certs import free_port, s_client, state
from test_supervision import svc
from test_tls_services import tls_service

EXPORTER = BUILD / "certvisor-metrics-exporter"
PROMTOOL = shutil.which("promtool")
CURL = shutil.which("curl")

pytestmark = pytest.mark.skipif(not (PROMTOOL and CURL and EXPORTER.exists()),
                                reason="needs promtool, curl and certvisor-metrics-exporter")


def exporter_service(port):
    """The section conf.d would ship, on a free port and the loopback address."""
    return f"""
        command   = "%{{libexec_dir}}/certvisor-metrics-exporter"
        arguments = {{"--config", "%{{run_dir}}/tls/%{{name}}.conf", "--port", "{port}",
                     "--bind", "127.0.0.1", "--control-socket", "%{{run_dir}}/control.sock"}}
        reload_signal = HUP
        tls {{
            certificate = metrics_exporter
            plane = control
        }}
    """


def curl(agent_or_ca, port, path="/metrics", *flags):
    """(status, content type, headers, body) of one request, verifying the cluster CA."""
    ca = agent_or_ca if isinstance(agent_or_ca, (str, os.PathLike)) else state(agent_or_ca, "ca.pem")
    out = subprocess.run([CURL, "-sS", "--max-time", "20", "--cacert", str(ca), "-D", "/dev/stderr",
                          "-w", "\n%{http_code} %{content_type}", *flags,
                          f"https://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    body, _, tail = out.stdout.rpartition("\n")
    status, _, content_type = tail.partition(" ")
    return int(status), content_type, out.stderr, body


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def unescape(value):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse(text):
    """{(name, ((label, value), ...)): value} of every sample."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = tuple(sorted((k, unescape(v)) for k, v in LABEL.findall(m.group(2) or "")))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples, metric, /, **labels):
    return samples.get((metric, tuple(sorted(labels.items()))))


def promtool_check(text):
    out = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), \
        f"promtool check metrics:\n{out.stdout}{out.stderr}\n--- text ---\n{text}"


def scrape(agent, port):
    status, content_type, _, body = curl(agent, port)
    assert status == 200, body
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    promtool_check(body)
    return parse(body)


def cluster_labels(agent):
    """The cluster and node labels of the node's certificate metrics, as cluster status says."""
    status = json.loads(agent.ctl("--json", "cluster", "status").stdout)
    return {"cluster": status["cluster"], "node": status["node"]}


def current_generation(agent, name):
    return int(os.readlink(state(agent, "certs", name, "current")))


def assert_clean_exit(agent, name="metrics_exporter"):
    """Stops the exporter; under a sanitizer build its report would be in its stderr."""
    out = agent.ctl("stop", name)
    assert out.returncode == 0, out.stdout + out.stderr
    text = agent.ctl("tail", name, "stderr").stdout
    assert "Stopping (signal 15)" in text, text  # its own log: the check below looks at the right place
    assert not any(marker in text for marker in SANITIZER_MARKERS), text


@pytest.fixture
def exporter(agent_factory):
    port = free_port()
    agent = agent_factory({"metrics_exporter": exporter_service(port), "web": svc()})
    agent.start()
    yield agent, port
    assert_clean_exit(agent)


def test_a_scrape_reports_certificates_services_and_the_agent(exporter):
    agent, port = exporter
    samples = scrape(agent, port)
    assert value(samples, "certvisor_up") == 1
    gen = current_generation(agent, "proxy")
    # Labelled as Redis Enterprise labels it, with the path through the store's `current` link.
    path = str(state(agent, "certs", "proxy", "current", "cert.pem"))
    left = value(samples, "node_cert_expiration_seconds", logical_name="proxy", path=path,
                 **cluster_labels(agent))
    assert left is not None, sorted(k for k in samples if k[0] == "node_cert_expiration_seconds")
    assert abs(left - 365 * 86400) < 86400 + 60
    assert value(samples, "node_cert_expires_in_seconds", logical_name="proxy", path=path,
                 **cluster_labels(agent)) == left  # the v2 name
    expiry = value(samples, "certvisor_certificate_expiry_timestamp_seconds", name="proxy")
    assert abs(expiry - (time.time() + left)) < 60
    assert value(samples, "certvisor_certificate_info", name="proxy", origin="generated",
                 generation=str(gen)) == 1
    # Every certificate the node has is there, the CA too; optional ones that are not set are not.
    names = {dict(k[1])["logical_name"] for k in samples if k[0] == "node_cert_expiration_seconds"}
    assert names == {"api", "cm", "proxy", "syncer", "metrics_exporter", "ccs_internode_encryption",
                     "data_internode_encryption", "cluster_ca"}
    for service in ("web", "metrics_exporter"):
        assert value(samples, "certvisor_service_up", service=service) == 1
        assert value(samples, "certvisor_service_state", service=service, state="RUNNING") == 1
        assert value(samples, "certvisor_service_state", service=service, state="FATAL") == 0
        assert value(samples, "certvisor_service_restarts_total", service=service) == 0
        assert 0 <= value(samples, "certvisor_service_uptime_seconds", service=service) < 60
    assert value(samples, "certvisor_agent_info", version="0.1.0") == 1
    assert abs(value(samples, "certvisor_agent_start_time_seconds") - time.time()) < 120
    # No change yet: counters at zero and no "last" change to speak of.
    assert value(samples, "certvisor_applies_total", result="applied") == 0
    assert value(samples, "certvisor_applies_total", result="failed") == 0
    assert value(samples, "certvisor_last_apply_timestamp_seconds") is None
    # certvisorctl prints the same state as JSON.
    out = agent.ctl("metrics")
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert {"agent", "certificates", "services", "apply", "service_states"} <= reply.keys()
    assert any(c["name"] == "proxy" and c["current_path"] == path and
               c["path"] == str(state(agent, "certs", "proxy", str(gen), "cert.pem"))
               for c in reply["certificates"])


def test_restarts_and_changes_show_in_the_next_scrape(exporter):
    agent, port = exporter
    out = agent.ctl("restart", "web")
    assert out.returncode == 0, out.stderr
    samples = scrape(agent, port)
    assert value(samples, "certvisor_service_restarts_total", service="web") == 1
    assert value(samples, "certvisor_service_restarts_total", service="metrics_exporter") == 0
    before = time.time()
    out = agent.ctl("cluster", "config", "min_data_TLS_version", "1.3")
    assert out.returncode == 0, out.stderr
    samples = scrape(agent, port)
    assert value(samples, "certvisor_applies_total", result="applied") == 1
    assert value(samples, "certvisor_last_apply_success") == 1
    assert before - 2 <= value(samples, "certvisor_last_apply_timestamp_seconds") <= time.time() + 2
    # A request refused before anything changed is not a change.
    out = agent.ctl("cluster", "certificate", "set", "proxy", "certificate_file", "/dev/null")
    assert out.returncode != 0
    samples = scrape(agent, port)
    assert value(samples, "certvisor_applies_total", result="applied") == 1
    assert value(samples, "certvisor_applies_total", result="failed") == 0
    out = agent.ctl("stop", "web")
    assert out.returncode == 0, out.stderr
    samples = scrape(agent, port)
    assert value(samples, "certvisor_service_up", service="web") == 0
    assert value(samples, "certvisor_service_state", service="web", state="STOPPED") == 1
    assert value(samples, "certvisor_service_uptime_seconds", service="web") == 0


def test_a_rolled_back_change_is_a_failed_last_apply(agent_factory):
    port = free_port()
    agent = agent_factory({"metrics_exporter": exporter_service(port),
                           "front": tls_service("proxy", free_port(), ', "--reject-reload"')})
    agent.start()
    out = agent.ctl("cluster", "certificate", "rotate", "proxy")
    assert out.returncode == 1 and "did not come back with the change" in out.stderr
    wait_for(lambda: agent.state("front") == "RUNNING", what="front back with the old files")
    samples = scrape(agent, port)
    assert value(samples, "certvisor_applies_total", result="applied") == 0
    assert value(samples, "certvisor_applies_total", result="failed") == 1
    assert value(samples, "certvisor_last_apply_success") == 0
    assert abs(value(samples, "certvisor_last_apply_timestamp_seconds") - time.time()) < 60
    assert value(samples, "certvisor_service_restarts_total", service="front") >= 1
    assert_clean_exit(agent)


STATS_SERVICE = r'''
import os, signal, socket, sys, time

def notify(text):
    path = os.environ["NOTIFY_SOCKET"]
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(text.encode(), path)

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
notify("READY=1")
notify('CERTVISOR_STATS={"databases":{"db1":{"connections":3,"connections_total":10,'
       '"handshakes":9,"handshake_failures":1,"auth_failures":0,"bytes_in":123,"bytes_out":456,'
       '"errors":0},"we\\"ird\\\\db\\nname":{"connections":1}}}')
# Neither of these replaces it: not an object, and too large.
notify("CERTVISOR_STATS=[1, 2]")
notify('CERTVISOR_STATS={"databases":{"db1":{"connections":' + " " * 66000 + '4}}}')
notify("STATUS=stats sent")
while True:
    time.sleep(1)
'''


def test_stats_a_service_sends_become_proxy_metrics(agent_factory):
    port = free_port()
    agent = agent_factory({"metrics_exporter": exporter_service(port)})
    script = agent.root / "stats_service.py"
    script.write_text(STATS_SERVICE)
    agent.write_service("front", f'command = "/usr/bin/python3"\narguments = {{"{script}"}}')
    agent.start()
    wait_for(lambda: "stats sent" in agent.ctl("--json", "status", "front").stdout,
             what="the stats sent")
    samples = scrape(agent, port)
    labels = {"service": "front", "database": "db1"}
    assert value(samples, "certvisor_proxy_connections", **labels) == 3
    assert value(samples, "certvisor_proxy_connections_total", **labels) == 10
    assert value(samples, "certvisor_proxy_handshakes_total", **labels) == 9
    assert value(samples, "certvisor_proxy_handshake_failures_total", **labels) == 1
    assert value(samples, "certvisor_proxy_auth_failures_total", **labels) == 0
    assert value(samples, "certvisor_proxy_bytes_received_total", **labels) == 123
    assert value(samples, "certvisor_proxy_bytes_sent_total", **labels) == 456
    assert value(samples, "certvisor_proxy_errors_total", **labels) == 0
    # A label value with a quote, a backslash and a line feed survives escaping (promtool passed).
    assert value(samples, "certvisor_proxy_connections", service="front",
                 database='we"ird\\db\nname') == 1
    assert "not a JSON object" in agent.log_text()
    assert "CERTVISOR_STATS of 66" in agent.log_text()
    # What a stopped service said is gone with it.
    assert agent.ctl("stop", "front").returncode == 0
    reply = json.loads(agent.ctl("metrics").stdout)
    assert "stats" not in next(s for s in reply["services"] if s["name"] == "front")
    samples = scrape(agent, port)
    assert not [k for k in samples if k[0].startswith("certvisor_proxy_")]
    assert_clean_exit(agent)


def test_other_paths_and_methods_and_bad_requests(exporter):
    agent, port = exporter
    # "/" as well: Redis Enterprise's Prometheus quick start scrapes with metrics_path: /
    status, content_type, _, body = curl(agent, port, "/")
    assert status == 200 and "certvisor_up 1" in body and content_type.startswith("text/plain")
    promtool_check(body)
    status, _, _, body = curl(agent, port, "/metrics/extra")
    assert status == 404 and "/metrics (and /)" in body
    status, _, _, _ = curl(agent, port, "/index.html")
    assert status == 404
    status, _, headers, _ = curl(agent, port, "/metrics", "-X", "POST", "-d", "x=1")
    assert status == 405
    assert re.search(r"^Allow: GET, HEAD\r?$", headers, re.M)
    status, _, _, _ = curl(agent, port, "/metrics", "-X", "DELETE")
    assert status == 405
    status, content_type, headers, _ = curl(agent, port, "/metrics", "--head")
    assert status == 200 and "# HELP" not in headers  # the head only
    assert int(re.search(r"Content-Length: (\d+)", headers)[1]) > 1000
    status, _, _, body = curl(agent, port, "/metrics?name[]=certvisor_up")
    assert status == 200 and "certvisor_up 1" in body
    # Raw requests: malformed, a version it does not speak, a head too large.
    for request, expected in ((b"GARBAGE\r\n\r\n", b"HTTP/1.1 400"),
                              (b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", b"HTTP/1.1 505"),
                              (b"GET /metrics HTTP/1.1\r\n\r\n", b"HTTP/1.1 400"),
                              (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
                               b"HTTP/1.1 431")):
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-quiet",
                              "-ign_eof"], input=request, capture_output=True, timeout=30)
        assert out.stdout.startswith(expected), (request[:40], out.stdout[:200], out.stderr[-300:])
    # The exporter is still there for the next scraper.
    assert scrape(agent, port)[("certvisor_up", ())] == 1


def test_the_control_plane_policy_is_on_the_wire(exporter):
    agent, port = exporter
    pid = agent.pid_of("metrics_exporter")
    assert s_client(port, "-tls1_2").returncode == 0
    out = agent.ctl("cluster", "config", "min_control_TLS_version", "1.3")
    assert out.returncode == 0, out.stderr
    assert s_client(port, "-tls1_2").returncode != 0
    assert s_client(port, "-tls1_3", cafile=state(agent, "ca.pem")).returncode == 0
    assert agent.pid_of("metrics_exporter") == pid, "reloaded in place, not restarted"
    assert scrape(agent, port)[("certvisor_up", ())] == 1


def test_rotating_its_certificate_reloads_it_in_place(exporter):
    agent, port = exporter
    pid = agent.pid_of("metrics_exporter")
    old = served_fingerprint(port)
    assert old == file_fingerprint(state(agent, "certs", "metrics_exporter", "current", "cert.pem"))
    out = agent.ctl("cluster", "certificate", "rotate", "metrics_exporter")
    assert out.returncode == 0, out.stderr
    new = served_fingerprint(port)
    assert new != old
    assert new == file_fingerprint(state(agent, "certs", "metrics_exporter", "current", "cert.pem"))
    assert agent.pid_of("metrics_exporter") == pid
    samples = scrape(agent, port)
    gen = current_generation(agent, "metrics_exporter")
    assert gen >= 2
    assert value(samples, "certvisor_certificate_info", name="metrics_exporter",
                 origin="generated", generation=str(gen)) == 1
    # The same time series before and after the rotation: its path is the `current` link's.
    path = str(state(agent, "certs", "metrics_exporter", "current", "cert.pem"))
    assert value(samples, "node_cert_expiration_seconds", logical_name="metrics_exporter",
                 path=path, **cluster_labels(agent)) > 364 * 86400
    assert len([k for k in samples if k[0] == "node_cert_expiration_seconds" and
                dict(k[1])["logical_name"] == "metrics_exporter"]) == 1
    assert value(samples, "certvisor_applies_total", result="applied") == 1


class Standalone:
    """The exporter run by hand on a TLS file of the test's, against a socket of the test's."""

    def __init__(self, agent, control_socket):
        self.port = free_port()
        self.config = agent.root / "exporter-tls.conf"
        cert = state(agent, "certs", "metrics_exporter", "current")
        self.config.write_text(textwrap.dedent(f"""\
            cert_file = {cert}/cert.pem
            key_file = {cert}/key.pem
            min_version = 1.2
            """))
        self.log = open(agent.root / "standalone.log", "w+")
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        self.proc = subprocess.Popen([str(EXPORTER), "--config", str(self.config), "--port",
                                      str(self.port), "--bind", "127.0.0.1", "--control-socket",
                                      str(control_socket)], stdout=self.log, stderr=self.log, env=env)
        wait_for(self.listening, what="the exporter to listen")

    def listening(self):
        assert self.proc.poll() is None, self.log_text()
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def close(self):
        """Stops it as the agent would (SIGTERM): a clean exit, and no sanitizer report."""
        if self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(timeout=10) == 0, self.log_text()
        text = self.log_text()
        self.log.close()
        assert not any(marker in text for marker in SANITIZER_MARKERS), text


@pytest.fixture
def standalone(agent_factory):
    made = []

    def make(control_socket):
        agent = agent_factory({"web": svc()})
        agent.start()
        exporter = Standalone(agent, control_socket)
        made.append(exporter)
        return agent, exporter

    yield make
    for exporter in made:
        exporter.close()


def test_no_agent_is_a_clear_503_with_certvisor_up_0(standalone, tmp_path):
    agent, exporter = standalone("/nonexistent/control.sock")
    status, content_type, _, body = curl(agent, exporter.port)
    assert status == 503
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert "certvisord is not running" in body and "/nonexistent/control.sock" in body
    promtool_check(body)
    assert parse(body) == {("certvisor_up", ()): 0}


def test_a_stuck_agent_is_a_503_within_the_timeout(standalone):
    path = f"/tmp/certvisor-stuck-{os.getpid()}.sock"
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    stuck.bind(path)
    stuck.listen(16)  # accepts (in the backlog) and never answers
    try:
        agent, exporter = standalone(path)
        started = time.monotonic()
        status, _, _, body = curl(agent, exporter.port)
        elapsed = time.monotonic() - started
        assert status == 503 and "did not answer within 5000 ms" in body, body
        assert 4 < elapsed < 20  # the timeout, not a hang (the upper bound leaves room for a loaded machine)
        promtool_check(body)
        # Scrapes at once share the agent query and its answer; the exporter stays responsive.
        procs = [subprocess.Popen([CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                                   "20", "--cacert", str(state(agent, "ca.pem")),
                                   f"https://127.0.0.1:{exporter.port}/metrics"],
                                  stdout=subprocess.PIPE, text=True) for _ in range(5)]
        status, _, _, _ = curl(agent, exporter.port, "/other")
        assert status == 404  # answered while the scrapes wait
        assert [p.communicate(timeout=30)[0] for p in procs] == ["503"] * 5
    finally:
        stuck.close()
        os.unlink(path)


def test_a_failed_reload_ends_the_exporter_so_that_the_agent_rolls_back(standalone):
    agent, exporter = standalone("/nonexistent/control.sock")
    assert served_fingerprint(exporter.port)
    exporter.config.write_text("cert_file = /nonexistent/cert.pem\nkey_file = /x\nmin_version = 1.2\n")
    exporter.proc.send_signal(signal.SIGHUP)
    assert exporter.proc.wait(timeout=10) == 1
    assert "Reload failed" in exporter.log_text() and "/nonexistent/cert.pem" in exporter.log_text()
