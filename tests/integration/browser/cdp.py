"""A small driver for headless Chromium over the DevTools protocol, for tests that use a real browser.

Chromium is started with --remote-debugging-pipe: the protocol runs over two pipes (the
browser reads commands from its fd 3 and writes answers and events to its fd 4, each message
JSON ended by a NUL byte), so there is no debugging port to bind, no WebSocket client to need,
and nothing but the test can drive the browser. Only the Python standard library is used.

Every wait has a deadline: a command that gets no answer, a page that never loads or a
condition that never holds raises BrowserError after its timeout, never hangs the test.

    with Browser.launch(profile_dir, spki_pins=[...]) as browser:
        page = browser.new_page(width=1280, height=900)
        page.goto("https://127.0.0.1:8443/")
        page.fill("#user", "admin")
        page.click("#sign-in button[type=submit]")
        page.wait_for("document.querySelector('#certificates tbody tr') !== null")
        page.screenshot("/tmp/shot.png")
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import threading
import time

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserError(Exception):
    pass


def find_chromium():
    """The browser's path, or None. $CHROMIUM overrides the search."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def spki_pin(cert_pem_path):
    """base64(SHA-256(SubjectPublicKeyInfo)) of a certificate, for --ignore-certificate-errors-spki-list."""
    pub = subprocess.run(["openssl", "x509", "-in", str(cert_pem_path), "-noout", "-pubkey"],
                         capture_output=True, check=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True, timeout=30).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der,
                            capture_output=True, check=True, timeout=30).stdout
    return base64.b64encode(digest).decode()


class Browser:
    """One Chromium process and the pipe connection to it."""

    def __init__(self, proc, to_browser, from_browser, log_path):
        self.proc = proc
        self._out = to_browser
        self._in = from_browser
        self.log_path = log_path
        self._next_id = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._answers = {}
        self._events = []  # (session id, method, params), in arrival order
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def launch(cls, profile_dir, spki_pins=(), extra_args=(), timeout=30.0):
        chromium = find_chromium()
        if not chromium:
            raise BrowserError("no Chromium found (apt-get install chromium)")
        os.makedirs(profile_dir, exist_ok=True)
        args = [
            chromium, "--headless", "--remote-debugging-pipe", f"--user-data-dir={profile_dir}",
            "--no-first-run", "--no-default-browser-check", "--disable-gpu",
            "--disable-dev-shm-usage", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update",
            "--disable-default-apps", "--disable-features=Translate,MediaRouter,OptimizationHints",
            "--metrics-recording-only", "--password-store=basic", "--use-mock-keychain",
            # Names resolve to nothing: whatever the page does, the browser reaches only the
            # loopback addresses the test gives it.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
            "--lang=en-US", "about:blank",
        ]
        if spki_pins:
            # Accepts exactly these keys (the test's own certificates), not any certificate.
            args.insert(-1, "--ignore-certificate-errors-spki-list=" + ",".join(spki_pins))
        if os.geteuid() == 0:
            args.insert(-1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        args[-1:-1] = list(extra_args)
        log_path = os.path.join(profile_dir, "chromium.log")
        cmd_r, cmd_w = os.pipe()  # test -> browser (its fd 3)
        ev_r, ev_w = os.pipe()    # browser -> test (its fd 4)

        def child_fds():
            os.dup2(cmd_r, 3)
            os.dup2(ev_w, 4)

        with open(log_path, "ab") as log:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    pass_fds=(3, 4), preexec_fn=child_fds, start_new_session=True,
                                    env={**os.environ, "LANG": "en_US.UTF-8", "TZ": "UTC"})
        os.close(cmd_r)
        os.close(ev_w)
        browser = cls(proc, cmd_w, ev_r, log_path)
        try:
            browser.version = browser.call("Browser.getVersion", timeout=timeout)
        except Exception:
            browser.close()
            raise
        return browser

    # --- the protocol ---------------------------------------------------------------
    def _read(self):
        buf = b""
        while True:
            try:
                data = os.read(self._in, 1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                with self._cond:
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self._events.append((message.get("sessionId"), message.get("method"),
                                             message.get("params", {})))
                    self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def call(self, method, params=None, session=None, timeout=30.0):
        """Sends a command and returns its result; raises BrowserError on an error or no answer."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._out, json.dumps(message).encode() + b"\0")
        except OSError as e:
            raise BrowserError(f"{method}: the browser is gone ({e})") from e
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self._answers:
                left = deadline - time.monotonic()
                if self._closed:
                    raise BrowserError(f"{method}: the browser closed the connection")
                if left <= 0:
                    raise BrowserError(f"{method}: no answer after {timeout}s")
                self._cond.wait(left)
            answer = self._answers.pop(ident)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')} "
                               f"{answer['error'].get('data', '')}".strip())
        return answer.get("result", {})

    def events(self, session=None, method=None, since=0):
        """Events so far (optionally of one session and method), from index since."""
        with self._lock:
            items = self._events[since:]
        return [(s, m, p) for s, m, p in items
                if (session is None or s == session) and (method is None or m == method)]

    def event_count(self):
        with self._lock:
            return len(self._events)

    def wait_event(self, method, session=None, since=0, timeout=30.0, predicate=None):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for s, m, p in self._events[since:]:
                    if m == method and (session is None or s == session) and \
                            (predicate is None or predicate(p)):
                        return p
                left = deadline - time.monotonic()
                if self._closed:
                    raise BrowserError(f"waiting for {method}: the browser closed the connection")
                if left <= 0:
                    raise BrowserError(f"no {method} event after {timeout}s")
                self._cond.wait(left)

    # --- pages ----------------------------------------------------------------------
    def new_page(self, width=1280, height=900):
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page

    # --- ending ---------------------------------------------------------------------
    def close(self, timeout=10.0):
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", timeout=5)
            except BrowserError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        # Helpers (zygote, GPU, renderers) share the browser's process group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass
        self._reader.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Page:
    """One tab: navigation, script, clicks and typing the way a user's input arrives, screenshots."""

    def __init__(self, browser, target, session):
        self.browser = browser
        self.target = target
        self.session = session

    def call(self, method, params=None, timeout=30.0):
        return self.browser.call(method, params, session=self.session, timeout=timeout)

    def goto(self, url, timeout=30.0):
        since = self.browser.event_count()
        result = self.call("Page.navigate", {"url": url}, timeout=timeout)
        if result.get("errorText"):
            raise BrowserError(f"cannot load {url}: {result['errorText']}")
        self.browser.wait_event("Page.loadEventFired", self.session, since, timeout)

    def evaluate(self, expression, timeout=30.0):
        """The value of a JavaScript expression (promises awaited); page exceptions raise."""
        result = self.call("Runtime.evaluate",
                           {"expression": expression, "returnByValue": True, "awaitPromise": True,
                            "userGesture": True}, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"script failed: {text}\n  in: {expression[:200]}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression, timeout=20.0, what=None):
        """Polls a JavaScript expression until it is truthy (in JavaScript's sense)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.evaluate(f"Boolean({expression})"):
                return True
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout}s waiting for {what or expression}")
            time.sleep(0.1)

    def text(self, selector):
        return self.evaluate(f"(document.querySelector({json.dumps(selector)}) || {{}}).innerText || ''")

    def visible(self, selector):
        return self.evaluate(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) return false;
            const r = e.getBoundingClientRect(), s = getComputedStyle(e);
            return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
        }})()""")

    def _center(self, selector):
        box = self.evaluate(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) return null;
            e.scrollIntoView({{block: 'center', inline: 'center'}});
            const r = e.getBoundingClientRect();
            if (r.width === 0 || r.height === 0) return null;
            return {{x: r.left + r.width / 2, y: r.top + r.height / 2}};
        }})()""")
        if not box:
            raise BrowserError(f"{selector}: no such visible element")
        return box

    def click(self, selector):
        """A left click at the element's centre, as the mouse sends it (so what covers it gets it)."""
        box = self._center(selector)
        hit = self.evaluate(f"""(() => {{
            const e = document.elementFromPoint({box['x']}, {box['y']});
            const t = document.querySelector({json.dumps(selector)});
            return !!e && (e === t || t.contains(e));
        }})()""")
        if not hit:
            raise BrowserError(f"{selector}: covered by another element, a user could not click it")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"],
                                                   "button": "left", "clickCount": 1})

    def fill(self, selector, text):
        """Focuses a field, selects what it holds and types text over it."""
        self.click(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).select && "
                      f"document.querySelector({json.dumps(selector)}).select()")
        self.call("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Delete", "code": "Delete",
                                             "windowsVirtualKeyCode": 46})
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Delete", "code": "Delete",
                                             "windowsVirtualKeyCode": 46})
        if text:
            self.call("Input.insertText", {"text": text})

    def select(self, selector, value):
        """Chooses an option of a <select> as a user would, firing input and change."""
        ok = self.evaluate(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e || ![...e.options].some(o => o.value === {json.dumps(value)})) return false;
            e.focus();
            e.value = {json.dumps(value)};
            e.dispatchEvent(new Event('input', {{bubbles: true}}));
            e.dispatchEvent(new Event('change', {{bubbles: true}}));
            return true;
        }})()""")
        if not ok:
            raise BrowserError(f"{selector}: no such select, or no option {value!r}")

    def set_files(self, selector, paths):
        """Puts files into an <input type=file>, as choosing them in the file dialog does."""
        doc = self.call("DOM.getDocument", {"depth": 0})
        node = self.call("DOM.querySelector", {"nodeId": doc["root"]["nodeId"], "selector": selector})
        if not node.get("nodeId"):
            raise BrowserError(f"{selector}: no such element")
        self.call("DOM.setFileInputFiles", {"nodeId": node["nodeId"],
                                            "files": [str(p) for p in paths]})

    def press(self, key, code=None, key_code=0, text=None):
        """A key pressed and released in the focused element (Enter: key_code 13, text "\\r")."""
        down = {"type": "keyDown", "key": key, "code": code or key, "windowsVirtualKeyCode": key_code}
        if text:
            down["text"] = text
        self.call("Input.dispatchKeyEvent", down)
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": code or key,
                                             "windowsVirtualKeyCode": key_code})

    def screenshot(self, path, full_page=True):
        params = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                              "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", params, timeout=60)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def problems(self):
        """What went wrong in the page: uncaught exceptions, console errors, CSP violations
        (not HTTP error statuses: answers like 400 are what tests of refusals look for)."""
        found = []
        for _, method, params in self.browser.events(self.session):
            if method == "Runtime.exceptionThrown":
                d = params.get("exceptionDetails", {})
                found.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append("console.error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                          for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error" \
                    and params["entry"].get("source") != "network":
                # Network entries are HTTP error statuses, which tests of refusals expect.
                entry = params["entry"]
                found.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
        return found

    def responses(self, since=0):
        """(status, url, headers) of every response the page received."""
        return [(p["response"]["status"], p["response"]["url"], p["response"].get("headers", {}))
                for _, _, p in self.browser.events(self.session, "Network.responseReceived", since)]
