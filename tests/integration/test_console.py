"""The admin console (certvisor-cm): its static files served safely over HTTPS with the cm
certificate and the control plane's policy, /v1/ requests forwarded to the REST API, and the
single page itself used in a real browser (headless Chromium driven over the DevTools protocol,
tests/integration/browser/cdp.py) against a real agent, REST API and services."""
import hashlib
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from browser.cdp import Browser, BrowserError, find_chromium, spki_pin
from conftest import BUILD, REPO, SANITIZER_MARKERS, wait_for
from test_apply import external_pair, file_fingerprint
from test_certs import free_port, s_client, state
from test_tls_services import TLSSVC, tls_service

CM = BUILD / "certvisor-cm"
API = BUILD / "certvisor-api"
WWW = REPO / "services/cm/www"

pytestmark = pytest.mark.skipif(not CM.exists(), reason=f"{CM} is not built")


def cm_service(port, api_port, www=WWW, extra="", after_api=True):
    """The section a node runs the console with, on a free port and the loopback address."""
    after = 'after = {"api"}' if after_api else ""
    return f"""
        command   = "%{{libexec_dir}}/certvisor-cm"
        arguments = {{"--config", "%{{run_dir}}/tls/%{{name}}.conf", "--port", "{port}",
                     "--bind", "127.0.0.1", "--www", "{www}", "--api", "127.0.0.1:{api_port}"
                     {extra}}}
        reload_signal = HUP
        start_retries = 0
        {after}
        tls {{
            certificate = cm
            plane = control
            trust = api
        }}
    """


def cluster_ca_context(agent):
    context = ssl.create_default_context(cafile=str(state(agent, "ca.pem")))
    return context


def request(agent, port, method, path, body=None, headers=None, timeout=30):
    """(status, headers as a lower-cased dict, body bytes) of one HTTPS request verifying the node."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=cluster_ca_context(agent),
                                       timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        data = body.encode() if isinstance(body, str) else body
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        response = conn.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        conn.close()


def served_certificate_sha256(port):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def store_fingerprint(agent, name):
    return file_fingerprint(state(agent, "certs", name, "current", "cert.pem"))


def assert_security_headers(headers):
    csp = headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, headers
    assert headers.get("x-content-type-options") == "nosniff", headers
    assert headers.get("x-frame-options") == "DENY", headers
    assert headers.get("cache-control") == "no-store", headers
    assert "strict-transport-security" not in headers, headers


def stop_cleanly(agent, name):
    """Stops a running service; under a sanitizer build its report would be in its stderr."""
    running = agent.state(name) == "RUNNING"
    if running:
        out = agent.ctl("stop", name)
        assert out.returncode == 0, out.stdout + out.stderr
    text = agent.ctl("tail", name, "stderr").stdout
    assert not running or "Stopping (signal 15)" in text, text
    assert not any(marker in text for marker in SANITIZER_MARKERS), text


# --- the server, without a REST API behind it -------------------------------------------------

@pytest.fixture
def console_alone(agent_factory):
    """cm with nothing on its API port, and a copy of the console's files to play tricks with."""
    port, api_port = free_port(), free_port()
    agent = agent_factory({})
    www = agent.root / "www"
    shutil.copytree(WWW, www)
    (www / ".secret").write_text("hidden\n")
    (www / "passwd.txt").symlink_to("/etc/passwd")
    (www / "sub").mkdir()
    (www / "sub" / "page.txt").write_text("in a subdirectory\n")
    agent.write_service("cm", cm_service(port, api_port, www, after_api=False))
    agent.start()
    agent.wait_state("cm", "RUNNING")
    yield agent, port
    stop_cleanly(agent, "cm")


def test_the_console_files_are_served_with_their_types_and_security_headers(console_alone):
    agent, port = console_alone
    status, headers, body = request(agent, port, "GET", "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert b'<form id="sign-in"' in body and body == (WWW / "index.html").read_bytes()
    assert_security_headers(headers)
    for path, media_type in (("/app.js", "text/javascript; charset=utf-8"),
                             ("/style.css", "text/css; charset=utf-8"),
                             ("/favicon.svg", "image/svg+xml"),
                             ("/sub/page.txt", "text/plain; charset=utf-8")):
        status, headers, body = request(agent, port, "GET", path)
        assert (status, headers["content-type"]) == (200, media_type), path
        assert_security_headers(headers)
    # HEAD: the same head, no body.
    status, headers, body = request(agent, port, "HEAD", "/app.js")
    assert status == 200 and body == b""
    assert int(headers["content-length"]) == (WWW / "app.js").stat().st_size
    # Only reading: other methods on files are refused, with Allow.
    status, headers, body = request(agent, port, "POST", "/index.html", body="x")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert json.loads(body)["error_code"] == "method_not_allowed"


@pytest.mark.parametrize("path", [
    "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
    "/sub/../../etc/passwd", "/.secret", "/%2esecret", "/passwd.txt", "//index.html",
    "/index.html/", "/INDEX.HTML", "/index.html%00", "/sub", "/sub/", "/nothing.js",
])
def test_paths_outside_the_console_files_find_nothing(console_alone, path):
    agent, port = console_alone
    status, headers, body = request(agent, port, "GET", path)
    assert status == 404, (path, body)
    assert b"root:" not in body and b"hidden" not in body
    assert json.loads(body)["error_code"] == "not_found"
    assert_security_headers(headers)


def test_it_serves_the_cm_certificate_with_the_control_plane_policy(console_alone):
    agent, port = console_alone
    assert served_certificate_sha256(port) == store_fingerprint(agent, "cm")
    assert s_client(port, "-tls1_2").returncode == 0
    assert s_client(port, "-tls1_1").returncode != 0  # min_control_TLS_version 1.2 by default


def test_api_requests_without_an_api_get_a_clear_error(console_alone):
    agent, port = console_alone
    status, headers, body = request(agent, port, "GET", "/v1/cluster",
                                    headers={"Authorization": "Basic YWRtaW46eA=="})
    assert status == 502, body
    error = json.loads(body)
    assert error["error_code"] == "api_unreachable"
    assert error["description"] == "The console cannot reach the REST API"
    assert "Connection refused" in error["message"]
    assert_security_headers(headers)
    # Said once in its log, not at every request.
    request(agent, port, "GET", "/v1/cluster")
    log = agent.ctl("tail", "cm", "stderr").stdout
    assert log.count("Cannot forward to the REST API") == 1, log


def test_oversized_and_malformed_requests_are_refused_in_the_api_error_shape(console_alone):
    agent, port = console_alone
    status, _, body = request(agent, port, "PUT", "/v1/cluster/update_cert", body=b"x" * (3 << 20))
    assert status == 413
    assert json.loads(body)["error_code"] == "content_too_large"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with cluster_ca_context(agent).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
            answer = tls.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 "), answer


def test_a_new_cm_certificate_is_served_after_a_reload_in_place(console_alone):
    agent, port = console_alone
    pid = agent.pid_of("cm")
    before = served_certificate_sha256(port)
    out = agent.ctl("cluster", "certificate", "rotate", "cm")
    assert out.returncode == 0, out.stdout + out.stderr
    assert served_certificate_sha256(port) == store_fingerprint(agent, "cm") != before
    assert agent.pid_of("cm") == pid  # reloaded, not restarted
    assert "Reloaded" in agent.ctl("tail", "cm", "stderr").stdout


def test_sighup_rereads_the_files_and_keeps_them_when_they_are_gone(console_alone):
    agent, port = console_alone
    www = agent.root / "www"
    pid = agent.pid_of("cm")
    (www / "index.html").write_text("<!DOCTYPE html><title>new console</title>\n")
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: b"new console" in request(agent, port, "GET", "/")[2], what="the new index.html")
    # The folder gone: the files in memory stay served; the TLS reload itself succeeded.
    shutil.rmtree(www)
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: "Keeping the previous console files" in agent.ctl("tail", "cm", "stderr").stdout,
             what="the warning")
    assert b"new console" in request(agent, port, "GET", "/")[2]
    assert agent.pid_of("cm") == pid and agent.state("cm") == "RUNNING"


def test_a_tls_file_that_does_not_load_on_reload_ends_the_service(console_alone):
    agent, port = console_alone
    pid = agent.pid_of("cm")
    rendered = agent.prefix / "run/certvisor/tls/cm.conf"
    assert "cert_file" in rendered.read_text()
    rendered.write_text("cert_file = /nonexistent/cert.pem\nkey_file = /nonexistent/key.pem\n"
                        "min_version = 1.2\n")
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: agent.state("cm") != "RUNNING" or agent.pid_of("cm") != pid,
             what="cm to exit")
    log = agent.ctl("tail", "cm", "stderr").stdout
    assert "Reload failed, exiting so that the agent rolls back" in log, log
    assert "/nonexistent/cert.pem" in log, log


# --- a real browser ---------------------------------------------------------------------------

BROWSER_TEST_LIMIT = 420  # seconds: a browser still running then is killed and the test fails


@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    """Skips, saying why, only when no Chromium can run here at all."""
    if not find_chromium():
        pytest.skip("Chromium is not installed (apt-get install chromium; scripts/install-deps.sh "
                    "lists it)")
    profile = tmp_path_factory.mktemp("chromium-probe")
    try:
        Browser.launch(str(profile), timeout=60).close()
    except BrowserError as e:
        log = profile / "chromium.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        pytest.skip(f"Chromium cannot run here: {e}\n{tail}")
    return find_chromium()


@pytest.fixture
def browser_for(tmp_path, chromium):
    """Starts Chromium trusting exactly the given certificates' keys; bounded in time."""
    browsers = []

    def launch(*cert_paths):
        browser = Browser.launch(str(tmp_path / f"profile{len(browsers)}"),
                                 spki_pins=[spki_pin(p) for p in cert_paths])
        browsers.append(browser)
        return browser

    def watchdog():
        for browser in browsers:
            if browser.proc.poll() is None:
                browser.proc.kill()  # every call waiting on it fails at once

    timer = threading.Timer(BROWSER_TEST_LIMIT, watchdog)
    timer.daemon = True
    timer.start()
    yield launch
    timer.cancel()
    for browser in browsers:
        browser.close()


@pytest.fixture
def screenshots(tmp_path, request):
    """shot(page, name): saves a PNG into the test's directory and, under CI, the build's artifacts."""
    folders = [tmp_path / "screenshots"]
    if os.environ.get("CERTVISOR_SCREENSHOTS"):
        folders.append(pathlib.Path(os.environ["CERTVISOR_SCREENSHOTS"]))
    elif os.environ.get("CI"):
        folders.append(BUILD / "screenshots")
    saved = []

    def shot(page, name, full_page=True):
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        path = folders[0] / f"{name}.png"
        page.screenshot(str(path), full_page=full_page)
        assert path.stat().st_size > 1000, path  # a picture, not an empty file
        for folder in folders[1:]:
            shutil.copy(path, folder / path.name)
        saved.append(path)
        return path

    shot.saved = saved
    yield shot
    if saved:
        print(f"\nscreenshots of {request.node.name}: {folders}")


def cm_certificate(agent):
    return state(agent, "certs", "cm", "current", "cert.pem")


def test_in_a_browser_the_page_runs_cleanly_and_says_when_the_api_is_unreachable(
        console_alone, browser_for, screenshots):
    agent, port = console_alone
    page = browser_for(cm_certificate(agent)).new_page()
    page.goto(f"https://127.0.0.1:{port}/")
    page.wait_for("document.activeElement && document.activeElement.id === 'user'",
                  what="focus in the user name field")
    assert page.visible("#sign-in") and not page.visible("#console-view")
    # Empty fields are caught in the page, without a request.
    page.click("#sign-in button[type=submit]")
    assert page.text("#sign-in-error") == "Enter your user name."
    page.fill("#user", "admin")
    page.fill("#password", "a password")
    page.press("Enter", key_code=13, text="\r")  # the keyboard alone signs in
    page.wait_for("document.querySelector('#sign-in-error').textContent.includes('REST API')")
    assert page.text("#sign-in-error").startswith("The console cannot reach the REST API: "), \
        page.text("#sign-in-error")
    assert not page.visible("#console-view")
    screenshots(page, "console-api-unreachable", full_page=False)
    # The page obeys its own Content-Security-Policy: no violation, no script error.
    assert page.problems() == []
    # No password in the page's storage after a failed sign-in.
    assert page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))") == "{}"


# --- the console in a browser, with the REST API and a service behind it ------------------------

ADMIN = ("admin", "console admin password")


@pytest.fixture
def node(agent_factory):
    """An agent running the api, cm and a TLS service using the proxy certificate; a REST admin."""
    if not API.exists():
        pytest.skip(f"{API} is not built")
    from test_api import api_service
    ports = {name: free_port() for name in ("api", "http", "cm", "proxy")}
    agent = agent_factory({
        "api": api_service(ports["api"], ports["http"]),
        "cm": cm_service(ports["cm"], ports["api"]),
        "proxy": tls_service("proxy", ports["proxy"]),
    })
    agent.start()
    for name in ("api", "cm", "proxy"):
        agent.wait_state(name, "RUNNING")
    secret = agent.root / "admin.pw"
    secret.write_text(ADMIN[1] + "\n")
    out = agent.ctl("user", "add", ADMIN[0], "--password-file", str(secret))
    assert out.returncode == 0, out.stdout + out.stderr
    yield agent, ports
    for name in ("cm", "api"):
        stop_cleanly(agent, name)


def basic(user, password):
    import base64
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_api_requests_are_forwarded_with_the_browsers_credentials(node):
    agent, ports = node
    direct = request(agent, ports["api"], "GET", "/v1/cluster",
                     headers={"Authorization": basic(*ADMIN)})
    status, headers, body = request(agent, ports["cm"], "GET", "/v1/cluster",
                                    headers={"Authorization": basic(*ADMIN)})
    assert (status, body) == (direct[0], direct[2]) and status == 200
    assert json.loads(body)["min_control_TLS_version"] == "1.2"
    assert_security_headers(headers)
    # HEAD: the API's head, no body, and no wait for a body that never comes.
    status, headers, body = request(agent, ports["cm"], "HEAD", "/v1/cluster", timeout=10,
                                    headers={"Authorization": basic(*ADMIN)})
    assert (status, body) == (200, b"")
    # Refused credentials: the API's 401 and its error, without the header that would make a
    # browser open its own password dialog over the console.
    status, headers, body = request(agent, ports["cm"], "GET", "/v1/cluster",
                                    headers={"Authorization": basic("admin", "wrong")})
    assert status == 401 and json.loads(body)["error_code"] == "unauthorized"
    assert "www-authenticate" in request(agent, ports["api"], "GET", "/v1/cluster")[1]
    assert "www-authenticate" not in headers
    # A change goes through with its body and query: a dry run of a policy change.
    status, _, body = request(agent, ports["cm"], "PUT", "/v1/cluster?dry_run=true",
                              body=json.dumps({"min_control_TLS_version": "1.3"}),
                              headers={"Authorization": basic(*ADMIN),
                                       "Content-Type": "application/json"})
    assert status == 200, body
    plan = json.loads(body)
    assert plan["dry_run"] is True and {s["service"] for s in plan["plan"]} >= {"api", "cm"}
    assert json.loads(request(agent, ports["api"], "GET", "/v1/cluster",
                              headers={"Authorization": basic(*ADMIN)})[2])[
        "min_control_TLS_version"] == "1.2"


def test_an_operators_api_certificate_is_followed_by_the_console(node, tmp_path):
    """The api certificate replaced by one of the operator's CA, naming the node rather than
    127.0.0.1: the agent renders it as cm's trust for the API, reloads cm after the api, and the
    console still reaches the API."""
    agent, ports = node
    d = tmp_path / "ops"
    d.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", d / "ca.key", "-out",
                    d / "ca.pem", "-days", "400", "-subj", "/CN=Ops CA"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", d / "api.key", "-out", d / "api.csr", "-subj",
                    "/CN=api.node.example"], check=True, capture_output=True)
    (d / "ext.cnf").write_text("subjectAltName=DNS:api.node.example\n"
                               "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n")
    subprocess.run(["openssl", "x509", "-req", "-in", d / "api.csr", "-CA", d / "ca.pem",
                    "-CAkey", d / "ca.key", "-CAcreateserial", "-out", d / "api.pem", "-days",
                    "200", "-extfile", d / "ext.cnf"], check=True, capture_output=True)
    auth = {"Authorization": basic(*ADMIN)}
    assert request(agent, ports["cm"], "GET", "/v1/cluster", headers=auth)[0] == 200
    out = agent.ctl("cluster", "certificate", "set", "api", "certificate_file", str(d / "api.pem"),
                    "key_file", str(d / "api.key"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert served_certificate_sha256(ports["api"]) == file_fingerprint(d / "api.pem")
    status, _, body = request(agent, ports["cm"], "GET", "/v1/cluster", headers=auth)
    assert status == 200, body
    # Back to a generated one: followed too.
    assert agent.ctl("cluster", "certificate", "rotate", "api").returncode == 0
    status, _, body = request(agent, ports["cm"], "GET", "/v1/cluster", headers=auth)
    assert status == 200, body


def sign_in(page, user, password):
    page.fill("#user", user)
    page.fill("#password", password)
    page.click("#sign-in button[type=submit]")


def cert_row_text(page, name):
    """Everything the row says, folded parts (the SANs beyond the first four) too."""
    return page.evaluate(f"document.querySelector('#cert-{name}').textContent")


def test_the_console_in_a_browser(node, browser_for, screenshots, tmp_path):
    agent, ports = node
    page = browser_for(cm_certificate(agent)).new_page(width=1360, height=900)
    url = f"https://127.0.0.1:{ports['cm']}/"

    # Sign in: a wrong password first, refused by the REST API and said in the form.
    page.goto(url)
    page.wait_for("document.activeElement && document.activeElement.id === 'user'")
    screenshots(page, "console-01-sign-in", full_page=False)
    sign_in(page, ADMIN[0], "not the password")
    page.wait_for("document.querySelector('#sign-in-error').textContent !== ''")
    assert page.text("#sign-in-error") == "The user name or password was refused."
    sign_in(page, *ADMIN)
    page.wait_for("document.body.dataset.loaded", timeout=30, what="the console to load")
    assert page.visible("#console-view") and not page.visible("#sign-in-view")
    assert page.text("#who") == ADMIN[0]
    # The cluster section: a single node keeps its state locally.
    page.wait_for("document.querySelector('#cluster-facts').textContent.includes('local')",
                  what="the cluster section")
    facts = page.evaluate("[...document.querySelectorAll('#cluster-facts dd')].map(d => d.textContent)")
    assert len(facts) == 4 and facts[0] == "cluster" and facts[2] == "local (this node only)", facts
    # OCSP stapling (GET /v1/ocsp): off by default, and no revocation alert.
    assert facts[3].startswith("disabled"), facts
    assert page.text("#ocsp-alert") == ""
    # Directory sign-in (GET /v1/cluster/ldap), in its own card: off by default.
    page.wait_for("document.querySelector('#ldap-facts').textContent.includes('disabled')",
                  what="the LDAP card")
    # The cluster's nodes (GET /v1/nodes): on the local store, this one.
    page.wait_for("document.querySelectorAll('#nodes-table tbody tr').length === 1",
                  what="the node list")
    nodes = page.text("#nodes-table tbody")
    assert "(this node)" in nodes and "127.0.0.1" in nodes and "active" in nodes, nodes

    # Every certificate, with its details as the store has them.
    names = page.evaluate("[...document.querySelectorAll('#cert-table tbody tr')].map(r => r.dataset.name)")
    assert {"api", "cm", "proxy", "syncer", "metrics_exporter"} <= set(names), names
    proxy_fp = store_fingerprint(agent, "proxy")
    row = cert_row_text(page, "proxy")
    assert proxy_fp in row, row
    assert "IP:127.0.0.1" in row and "days left" in row, row
    expected_expiry = subprocess.run(
        ["openssl", "x509", "-in", str(state(agent, "certs", "proxy", "current", "cert.pem")),
         "-noout", "-enddate", "-dateopt", "iso_8601"], capture_output=True, text=True).stdout
    assert expected_expiry.split("=", 1)[1][:10] in row, (expected_expiry, row)
    # A fingerprint wraps only after its colons, on lines that each end with one: never in
    # the middle of a pair of hex digits.
    lines = page.evaluate("""(() => {
        const code = document.querySelector('#cert-proxy code.fingerprint');
        const range = document.createRange(), tops = new Map();
        for (const node of code.childNodes) {
            if (node.nodeType !== Node.TEXT_NODE) continue;
            range.selectNodeContents(node);
            const top = Math.round(range.getClientRects()[0].top);
            tops.set(top, (tops.get(top) || '') + node.textContent);
        }
        return [...tops.values()];
    })()""")
    assert len(lines) > 1 and "".join(lines) == proxy_fp, lines
    assert all(line.endswith(":") for line in lines[:-1]), lines
    screenshots(page, "console-02-overview")

    # A bad certificate: caught in the page when it is plainly wrong, refused by the API when
    # it is a well-formed certificate that does not match its key. Nothing changes.
    cert, key, _ = external_pair(tmp_path / "pair")
    other_cert, other_key, _ = external_pair(tmp_path / "other", cn="other.example.com")
    page.click("#cert-proxy [data-action=replace]")
    assert page.evaluate("document.querySelector('#upload-name').value") == "proxy"
    page.fill("#upload-cert", key.read_text())
    page.fill("#upload-key", key.read_text())
    page.click("#upload-check")
    assert page.text("#upload-cert-error") == "This is a private key; it goes in the key field."
    assert not page.visible("#upload-plan")
    page.set_files("#upload-cert-file", [cert])
    page.set_files("#upload-key-file", [other_key])
    page.wait_for("document.querySelector('#upload-cert-summary').textContent.includes('db.example.com')",
                  what="the summary of the chosen certificate")
    page.click("#upload-check")
    page.wait_for("document.querySelector('#upload-error').textContent !== ''",
                  what="the API's refusal in the form")
    refusal = page.text("#upload-error")
    assert "key" in refusal.lower(), refusal
    assert not page.visible("#upload-plan")
    screenshots(page, "console-03-upload-refused", full_page=False)
    assert store_fingerprint(agent, "proxy") == proxy_fp

    # The good pair: the preview names the service that reloads, then the change, then the new
    # certificate is what the service serves.
    page.set_files("#upload-key-file", [key])
    page.wait_for(f"document.querySelector('#upload-key').value === {json.dumps(key.read_text())}")
    page.click("#upload-check")
    page.wait_for("document.querySelector('#upload-plan button.apply')", what="the upload's preview")
    preview = page.text("#upload-plan")
    assert "proxy: reload" in preview, preview
    screenshots(page, "console-04-upload-preview", full_page=False)
    assert served_certificate_sha256(ports["proxy"]) == proxy_fp  # a preview changes nothing
    page.click("#upload-plan button.apply")
    page.wait_for("document.querySelector('#upload-plan .done')", timeout=60, what="the upload")
    new_fp = file_fingerprint(cert)
    assert served_certificate_sha256(ports["proxy"]) == new_fp
    assert store_fingerprint(agent, "proxy") == new_fp
    assert page.evaluate("document.querySelector('#upload-key').value") == ""  # the key is gone
    page.wait_for(f"document.querySelector('#cert-proxy').innerText.includes({json.dumps(new_fp)})",
                  what="the table to show the new certificate")
    assert "CN=db.example.com" in cert_row_text(page, "proxy")
    screenshots(page, "console-05-upload-applied", full_page=False)

    # Rotating a generated certificate: its preview, then a new certificate in the store and
    # in the table.
    syncer_fp = store_fingerprint(agent, "syncer")
    page.click("#cert-syncer [data-action=rotate]")
    page.wait_for("document.querySelector('#cert-plan button.apply')", what="the rotation's preview")
    assert "rotate the syncer certificate" in page.text("#cert-plan")
    assert store_fingerprint(agent, "syncer") == syncer_fp
    page.click("#cert-plan button.apply")
    page.wait_for("document.querySelector('#cert-plan .done')", timeout=60, what="the rotation")
    rotated_fp = store_fingerprint(agent, "syncer")
    assert rotated_fp != syncer_fp
    page.wait_for(f"document.querySelector('#cert-syncer').textContent.includes({json.dumps(rotated_fp)})",
                  what="the table to show the rotated certificate")

    # The minimum TLS version of the control plane: preview, apply, and on the wire.
    assert s_client(ports["cm"], "-tls1_2").returncode == 0
    page.select("#policy-min_control_TLS_version", "1.3")
    page.click("#setting-min_control_TLS_version [data-action=preview]")
    page.wait_for("document.querySelector('#policy-plan button.apply')", what="the policy preview")
    preview = page.text("#policy-plan")
    assert "min_control_TLS_version = 1.3" in preview, preview
    for service in ("api", "cm", "proxy"):
        assert f"{service}: reload" in preview, preview
    screenshots(page, "console-06-policy-preview", full_page=False)
    assert s_client(ports["cm"], "-tls1_2").returncode == 0  # still: a preview changes nothing
    page.click("#policy-plan button.apply")
    page.wait_for("document.querySelector('#policy-plan .done')", timeout=90, what="the policy change")
    for port in (ports["cm"], ports["api"], ports["proxy"]):
        assert s_client(port, "-tls1_2").returncode != 0, port
        assert s_client(port, "-tls1_3").returncode == 0, port
    page.wait_for("document.querySelector('#setting-min_control_TLS_version .in-force').innerText.includes('TLS 1.3')",
                  what="the policy table to show TLS 1.3")
    screenshots(page, "console-07-policy-applied", full_page=False)

    # Services: state, uptime and restarts; a restart asks first, then happens.
    page.click("#refresh")
    page.wait_for("document.querySelector('#status').textContent === 'Up to date.'")
    services = page.text("#services-table")
    for name in ("api", "cm", "proxy"):
        assert name in services
    assert page.text("#service-proxy").count("RUNNING") == 1
    pid = agent.pid_of("proxy")
    page.click("#service-proxy [data-action=restart]")
    assert "Restart proxy?" in page.text("#service-proxy")
    screenshots(page, "console-08-services", full_page=False)
    page.click("#service-proxy [data-action=confirm-restart]")
    page.wait_for("document.querySelector('#status').textContent === 'Restarted proxy.'", timeout=60)
    assert agent.pid_of("proxy") not in (0, pid)
    # A restart asked for is no crash: counted apart ("0 (+1 planned)"), as is the one the
    # policy change above made.
    page.wait_for("document.querySelector('#service-proxy td:nth-of-type(3)') && "
                  "document.querySelector('#service-proxy td:nth-of-type(3)').textContent.startsWith('0 (+')",
                  what="the proxy's crashes and planned restarts")
    assert "CRASHES" in page.text("#services-table thead").upper()

    # The audit's times each on one line (they wrapped in a column too narrow).
    page.wait_for("document.querySelectorAll('#audit-table td.audit-time time').length > 0",
                  what="the audit log's entries")
    assert page.evaluate("[...document.querySelectorAll('#audit-table td.audit-time time')]"
                         ".every(t => t.getClientRects().length === 1)")

    # The whole page after all that, then sign out: nothing read stays on screen.
    screenshots(page, "console-09-after-changes")
    assert page.problems() == []
    page.click("#sign-out")
    page.wait_for("!document.querySelector('#sign-in-view').hidden")
    assert page.evaluate("document.querySelectorAll('#cert-table tbody tr').length") == 0
    assert page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))") == "{}"
