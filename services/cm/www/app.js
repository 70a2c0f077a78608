/*
 * certvisor console: one page over the node's REST API.
 *
 * Every request goes to this page's own origin under /v1/; certvisor-cm forwards it to the REST
 * API. The page holds no credentials of its own: the user's name and password, given at sign-in,
 * are kept in this tab's sessionStorage (gone when the tab closes or on sign-out) and sent as
 * HTTP Basic authentication with each request, exactly as a script would call the API. Private
 * keys pasted or chosen for an upload live only in the form until the change is made.
 *
 * Nothing from the API is ever inserted as HTML: elements are built with textContent, so a
 * certificate's subject or a service's message cannot become markup (and the Content Security
 * Policy allows only this file to run).
 */
"use strict";

(() => {
  const SESSION_KEY = "certvisor.console.session";
  const READ_TIMEOUT_MS = 20000;
  const CHANGE_TIMEOUT_MS = 180000; // a change reloads services one at a time, each waited for
  const LIVE_REFRESH_MS = 10000;
  const MAX_PEM_BYTES = 1024 * 1024;

  const VERSIONS = [
    ["1", "TLS 1.0"], ["1.1", "TLS 1.1"], ["1.2", "TLS 1.2"], ["1.3", "TLS 1.3"],
  ];

  /* The TLS policy settings (agent/policy/policy.c), newer names first, with the older spelling. */
  const SETTINGS = [
    { name: "min_control_TLS_version", kind: "version",
      label: "Minimum TLS version, control plane", help: "Console, REST API, metrics" },
    { name: "min_data_TLS_version", kind: "version",
      label: "Minimum TLS version, data plane", help: "Database endpoints, shards, syncer" },
    { name: "min_sentinel_TLS_version", kind: "version",
      label: "Minimum TLS version, discovery", help: "Sentinel", unset: "as the data plane" },
    { name: "control_cipher_suites", alias: "cipher_suites", kind: "text",
      label: "Control plane ciphers", help: "TLS 1.2 and below, OpenSSL syntax", unset: "OpenSSL default" },
    { name: "control_cipher_suites_tls_1_3", kind: "text",
      label: "Control plane TLS 1.3 suites", unset: "OpenSSL default" },
    { name: "data_cipher_list", kind: "text",
      label: "Data plane ciphers", help: "TLS 1.2 and below, OpenSSL syntax", unset: "OpenSSL default" },
    { name: "data_cipher_suites_tls_1_3", kind: "text",
      label: "Data plane TLS 1.3 suites", unset: "OpenSSL default" },
    { name: "sentinel_cipher_suites", kind: "text",
      label: "Discovery ciphers", help: "TLS 1.2 and below", unset: "OpenSSL default" },
    { name: "sentinel_tls_mode", alias: "sentinel_ssl_policy", kind: "choice",
      choices: ["allowed", "required", "disabled"],
      label: "Discovery TLS mode", help: "allowed: TLS and plain; required: TLS only; disabled: plain only" },
    { name: "http_support", kind: "choice", choices: ["enabled", "disabled"],
      label: "Plain HTTP for the REST API", help: "Port 8080; disabled closes it" },
    { name: "mtls_certificate_authentication", kind: "choice", choices: ["enabled", "disabled"],
      label: "REST API sign-in by client certificate",
      help: "Certificates from mtls_trusted_ca, matched to users by their certificate subject" },
    { name: "mtls_client_cert_subject_validation_type", kind: "choice",
      choices: ["san_cn", "full_subject"], label: "Client certificate subject match",
      help: "san_cn: the CN or a SAN is the user's CN; full_subject: every attribute" },
  ];

  const $ = (selector) => document.querySelector(selector);

  /* --- building elements: text only, never HTML ----------------------------------------- */

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  function announce(text, ok) {
    const status = $("#status");
    status.textContent = text || "";
    status.classList.toggle("ok", !!ok);
  }

  function showError(selector, error) {
    $(selector).textContent = error ? errorText(error) : "";
  }

  /* --- the session ----------------------------------------------------------------------- */

  const session = { user: null, auth: null, timer: null };

  function basicAuth(user, password) {
    const bytes = new TextEncoder().encode(`${user}:${password}`);
    let binary = "";
    for (const b of bytes) binary += String.fromCharCode(b);
    return "Basic " + btoa(binary);
  }

  function saveSession() {
    try {
      sessionStorage.setItem(SESSION_KEY, JSON.stringify({ user: session.user, auth: session.auth }));
    } catch (e) {
      /* storage refused (private mode): the session lives in memory only */
    }
  }

  function restoreSession() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
      if (saved && typeof saved.user === "string" && typeof saved.auth === "string") return saved;
    } catch (e) {
      /* nothing usable */
    }
    return null;
  }

  function forgetSession() {
    session.user = null;
    session.auth = null;
    try {
      sessionStorage.removeItem(SESSION_KEY);
    } catch (e) {
      /* nothing stored */
    }
  }

  /* --- the REST API ---------------------------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, body, fallback) {
      const description = body && typeof body.description === "string" ? body.description : "";
      const detail = body && typeof body.message === "string" ? body.message : "";
      super(description || detail || fallback || `HTTP ${status}`);
      this.status = status;
      this.code = body && body.error_code ? String(body.error_code) : "";
      this.description = description;
      this.detail = detail;
      this.retryAfter = null;
    }
  }

  /* One line for a person: what failed and why, without repeating itself. */
  function errorText(error) {
    if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
    if (error.status === 401) return "The user name or password was refused.";
    if (error.status === 429) {
      const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : " Try again later.";
      return "Too many failed sign-ins." + wait;
    }
    let text = error.description || "";
    if (error.detail && error.detail !== text)
      text = text ? `${text.replace(/[.:]$/, "")}: ${error.detail}` : error.detail;
    if (!text) text = error.message;
    if (error.status === 403 && !/permission|may not|forbidden|role/i.test(text))
      text = `Not allowed: ${text}`;
    return text;
  }

  /* A read the node answered from its own copy while the cluster's store was out of reach. */
  function showStale(reason) {
    const notice = $("#stale-notice");
    notice.textContent = reason
      ? `Certificates and TLS policy are shown from this node's own copy, which may be behind ` +
        `the cluster's: ${reason}.`
      : "";
    notice.hidden = !reason;
  }

  async function api(method, path, body, options = {}) {
    const auth = options.auth || session.auth;
    const timeout = options.timeout || READ_TIMEOUT_MS;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeout);
    const headers = { Accept: "application/json" };
    if (auth) headers.Authorization = auth;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    let text;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        redirect: "error",
        signal: controller.signal,
      });
      text = await response.text();
    } catch (e) {
      const error = new ApiError(0, null, e.name === "AbortError"
        ? `No answer within ${Math.round(timeout / 1000)} s.`
        : "The console's server cannot be reached.");
      error.network = true;
      throw error;
    } finally {
      clearTimeout(timer);
    }
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = null;
      }
    }
    if (response.ok && method === "GET" && /^\/v1\/cluster(\/certificates)?([?]|$)/.test(path))
      showStale(response.headers.get("X-Certvisor-Stale"));
    if (!response.ok) {
      const error = new ApiError(response.status, data, text && text.length < 300 ? text.trim() : "");
      error.retryAfter = response.headers.get("Retry-After");
      if (response.status === 401 && !options.auth && session.auth) signOut(
        "The REST API no longer accepts your credentials. Sign in again.");
      throw error;
    }
    return data;
  }

  /* --- formatting ------------------------------------------------------------------------ */

  /* "2026-11-22 15:48:43 UTC" (the agent's form) or ISO 8601 -> Date, or null. */
  function parseTime(text) {
    if (!text || typeof text !== "string") return null;
    const iso = text.replace(/ UTC$/, "Z").replace(" ", "T");
    const date = new Date(iso);
    return isNaN(date.getTime()) ? null : date;
  }

  function isoDate(date) {
    return date.toISOString().slice(0, 10);
  }

  function isoMinute(date) {
    return date.toISOString().slice(0, 16).replace("T", " ");
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(Number(seconds) || 0));
    const d = Math.floor(seconds / 86400);
    const hh = Math.floor((seconds % 86400) / 3600);
    const mm = Math.floor((seconds % 3600) / 60);
    if (d) return `${d} d ${hh} h`;
    if (hh) return `${hh} h ${mm} min`;
    if (mm) return `${mm} min ${seconds % 60} s`;
    return `${seconds} s`;
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  function shortFingerprint(fp) {
    return typeof fp === "string" && fp.length > 23 ? fp.slice(0, 23) + "…" : fp || "";
  }

  /* --- previews and changes (shared by certificates, rotation, policy) ------------------ */

  function describeChange(change) {
    if (!change || typeof change !== "object") return String(change);
    if (change.setting && "value" in change) return `${change.setting} = ${change.value}`;
    if (change.certificate && change.unchanged === true)
      return `certificate ${change.certificate}: unchanged (this pair is already in force)`;
    if (change.setting) {
      const old = change.old === undefined || change.old === null || change.old === "" ? "default" : change.old;
      const now = change.new === undefined || change.new === null || change.new === "" ? "default" : change.new;
      return `${change.setting}: ${old} → ${now}`;
    }
    if (change.certificate) {
      let text = `certificate ${change.certificate}`;
      if (change.old || change.new)
        text += `: ${shortFingerprint(change.old) || "none"} → ${shortFingerprint(change.new) || "removed"}`;
      return text;
    }
    if (change.configuration) return `configuration ${change.configuration}`;
    return JSON.stringify(change);
  }

  function diffBlock(text) {
    const pre = h("pre", { class: "diff" });
    for (const line of String(text).split("\n")) {
      const cls = line.startsWith("+") ? "diff-add" : line.startsWith("-") ? "diff-del" : null;
      pre.append(h("span", { class: cls }, line), "\n");
    }
    return pre;
  }

  function planSteps(result) {
    const plan = result && (result.plan || result.steps);
    return Array.isArray(plan) ? plan : [];
  }

  function renderPlan(box, result, note) {
    const steps = planSteps(result);
    const changes = result && Array.isArray(result.changes) ? result.changes : [];
    if (changes.length)
      box.append(h("p", null, "Changes: "), h("ul", null, changes.map((c) => h("li", null, describeChange(c)))));
    if (!steps.length) {
      box.append(h("p", null, "No service needs a reload or restart for this change."));
    } else {
      box.append(h("p", null, `${plural(steps.length, "service")} would change, one at a time, in this order:`));
      const list = h("ul", { class: "plan-steps" });
      for (const step of steps) {
        const name = step.service || step.name || "?";
        const action = step.action || "reload";
        const li = h("li", { "data-service": name },
          h("strong", null, name), `: ${action}`, step.state ? ` (now ${step.state})` : "");
        const files = Array.isArray(step.files) ? step.files : [];
        const diffs = files.filter((f) => f && typeof f === "object" && f.diff);
        if (diffs.length) {
          const details = h("details", null, h("summary", null, `What changes in ${plural(diffs.length, "file")}`));
          for (const file of diffs) details.append(h("div", { class: "small-text mono" }, file.path), diffBlock(file.diff));
          li.append(details);
        }
        list.append(li);
      }
      box.append(list);
    }
    if (result && result.warning) box.append(h("p", { class: "warning" }, result.warning));
    if (note) box.append(h("p", { class: "warning" }, note));
  }

  /*
   * Runs a change the way the console always does: a dry run first, whose plan is shown with
   * Apply and Cancel; only Apply makes the change. send(dryRun) returns the request's promise.
   * errorBox receives a refusal of the dry run (a validation error), next to what caused it.
   */
  async function previewChange({ box, title, send, errorBox, note, onApplied, applyLabel }) {
    clear(box);
    box.hidden = false;
    box.setAttribute("aria-busy", "true");
    box.append(h("p", null, "Checking…"));
    if (errorBox) $(errorBox).textContent = "";
    let preview;
    try {
      preview = await send(true);
    } catch (error) {
      box.hidden = true;
      clear(box);
      if (errorBox) showError(errorBox, error);
      else announce(errorText(error));
      return false;
    } finally {
      box.removeAttribute("aria-busy");
    }
    clear(box);
    const heading = h("h4", { tabindex: "-1" }, `Preview: ${title}`);
    const error = h("p", { class: "error", role: "alert" });
    const apply = h("button", { type: "button", class: "apply" }, applyLabel || "Apply");
    const cancel = h("button", { type: "button", class: "secondary cancel" }, "Cancel");
    box.append(heading);
    renderPlan(box, preview || {}, typeof note === "function" ? note(preview || {}) : note);
    box.append(error, h("div", { class: "buttons" }, apply, cancel));
    cancel.addEventListener("click", () => {
      box.hidden = true;
      clear(box);
    });
    apply.addEventListener("click", async () => {
      apply.disabled = cancel.disabled = true;
      apply.textContent = "Applying…";
      error.textContent = "";
      box.setAttribute("aria-busy", "true");
      try {
        const result = (await send(false)) || {};
        clear(box);
        /* What was done: the agent's list when the answer has one, else the plan it carried out. */
        const planned = planSteps(preview || {});
        const done = Array.isArray(result.services) ? result.services
          : planned.map((step) => `${step.service || step.name} (${step.action || "reload"})`);
        box.append(h("h4", { tabindex: "-1" }, `Applied: ${title}`),
          h("p", { class: "done" }, done.length
            ? `Done. Reloaded or restarted: ${done.join(", ")}.`
            : "Done. No service needed a reload or restart."));
        if (result.warning) box.append(h("p", { class: "warning" }, result.warning));
        box.append(h("div", { class: "buttons" },
          h("button", { type: "button", class: "secondary", onclick: () => { box.hidden = true; clear(box); } }, "Close")));
        box.querySelector("h4").focus();
        announce(`Applied: ${title}.`, true);
        if (onApplied) await onApplied(result);
      } catch (e) {
        error.textContent = errorText(e);
        apply.disabled = cancel.disabled = false;
        apply.textContent = "Try again";
      } finally {
        box.removeAttribute("aria-busy");
      }
    });
    heading.focus();
    return true;
  }

  /* --- reading X.509 certificates (DER), for PEMs without details and for uploads --------- */

  const OID_NAMES = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
    "2.5.4.11": "OU", "2.5.4.5": "serialNumber", "1.2.840.113549.1.9.1": "emailAddress",
    "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
  };
  const CURVES = { "1.2.840.10045.3.1.7": "P-256", "1.3.132.0.34": "P-384", "1.3.132.0.35": "P-521" };

  /* One DER element at pos: its tag and where its contents start and end. */
  function derAt(bytes, pos, limit) {
    if (pos + 2 > limit) throw new Error("truncated DER");
    const tag = bytes[pos];
    let len = bytes[pos + 1];
    let start = pos + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 4 || start + n > limit) throw new Error("bad DER length");
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + bytes[start + i];
      start += n;
    }
    if (start + len > limit) throw new Error("truncated DER");
    return { tag, start, end: start + len };
  }

  function derChildren(bytes, node) {
    const out = [];
    for (let pos = node.start; pos < node.end;) {
      const child = derAt(bytes, pos, node.end);
      out.push(child);
      pos = child.end;
    }
    return out;
  }

  function derOid(bytes, node) {
    const parts = [];
    let value = 0;
    for (let i = node.start; i < node.end; i++) {
      value = value * 128 + (bytes[i] & 0x7f);
      if (!(bytes[i] & 0x80)) {
        if (!parts.length) parts.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
        else parts.push(value);
        value = 0;
      }
    }
    return parts.join(".");
  }

  function derString(bytes, node) {
    const raw = bytes.subarray(node.start, node.end);
    if (node.tag === 0x1e) { // BMPString: UTF-16 big-endian
      let text = "";
      for (let i = 0; i + 1 < raw.length; i += 2) text += String.fromCharCode(raw[i] * 256 + raw[i + 1]);
      return text;
    }
    return new TextDecoder(node.tag === 0x0c ? "utf-8" : "latin1").decode(raw);
  }

  /* A Name as the agent prints it (RFC 2253: the most specific part first). */
  function derName(bytes, node) {
    const parts = [];
    for (const set of derChildren(bytes, node)) {
      for (const pair of derChildren(bytes, set)) {
        const [oid, value] = derChildren(bytes, pair);
        const key = derOid(bytes, oid);
        parts.push(`${OID_NAMES[key] || key}=${derString(bytes, value)}`);
      }
    }
    return parts.reverse().join(",");
  }

  /* UTCTime or GeneralizedTime -> "YYYY-MM-DD HH:MM:SS UTC". */
  function derTime(bytes, node) {
    let text = new TextDecoder("latin1").decode(bytes.subarray(node.start, node.end));
    if (node.tag === 0x17) text = (Number(text.slice(0, 2)) < 50 ? "20" : "19") + text;
    return `${text.slice(0, 4)}-${text.slice(4, 6)}-${text.slice(6, 8)} ` +
      `${text.slice(8, 10)}:${text.slice(10, 12)}:${text.slice(12, 14)} UTC`;
  }

  function derSans(bytes, extensions) {
    const sans = [];
    for (const ext of derChildren(bytes, derChildren(bytes, extensions)[0])) {
      const fields = derChildren(bytes, ext);
      if (derOid(bytes, fields[0]) !== "2.5.29.17") continue;
      const names = derAt(bytes, fields[fields.length - 1].start, fields[fields.length - 1].end);
      for (const gn of derChildren(bytes, names)) {
        const raw = bytes.subarray(gn.start, gn.end);
        if (gn.tag === 0x82) sans.push("DNS:" + new TextDecoder("latin1").decode(raw));
        else if (gn.tag === 0x81) sans.push("email:" + new TextDecoder("latin1").decode(raw));
        else if (gn.tag === 0x86) sans.push("URI:" + new TextDecoder("latin1").decode(raw));
        else if (gn.tag === 0x87 && raw.length === 4) sans.push("IP:" + Array.from(raw).join("."));
        else if (gn.tag === 0x87 && raw.length === 16) sans.push("IP:" + ipv6Text(raw));
      }
    }
    return sans;
  }

  /* RFC 5952: the longest run of two or more zero groups becomes "::". */
  function ipv6Text(raw) {
    const groups = [];
    for (let i = 0; i < 16; i += 2) groups.push((raw[i] << 8) | raw[i + 1]);
    let best = -1;
    let bestLen = 1;
    for (let i = 0; i < 8;) {
      let j = i;
      while (j < 8 && groups[j] === 0) j++;
      if (j - i > bestLen) {
        best = i;
        bestLen = j - i;
      }
      i = j > i ? j : i + 1;
    }
    const hex = (list) => list.map((g) => g.toString(16)).join(":");
    if (best < 0) return hex(groups);
    return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
  }

  function derKey(bytes, spki) {
    const [algorithm, bits] = derChildren(bytes, spki);
    const [oidNode, params] = derChildren(bytes, algorithm);
    const oid = derOid(bytes, oidNode);
    if (oid === "1.2.840.10045.2.1") return `ECDSA ${params ? CURVES[derOid(bytes, params)] || "" : ""}`.trim();
    if (oid === "1.3.101.112") return "ED25519";
    if (oid === "1.2.840.113549.1.1.1") {
      const rsa = derAt(bytes, bits.start + 1, bits.end); // after the unused-bits byte
      const modulus = derChildren(bytes, rsa)[0];
      let len = modulus.end - modulus.start;
      if (bytes[modulus.start] === 0) len -= 1;
      return `RSA ${len * 8}`;
    }
    return oid;
  }

  function pemBlocks(text, label) {
    const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
    const blocks = [];
    for (let m; (m = re.exec(text));) {
      const binary = atob(m[1].replace(/[^A-Za-z0-9+/=]/g, ""));
      blocks.push(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
    }
    return blocks;
  }

  /* The first certificate of a PEM text, described as the agent describes one. Throws if unreadable. */
  async function describePem(pem) {
    const der = pemBlocks(pem, "CERTIFICATE")[0];
    if (!der) throw new Error("no certificate");
    const cert = derAt(der, 0, der.length);
    const tbs = derChildren(der, derChildren(der, cert)[0]);
    const at = tbs[0].tag === 0xa0 ? 1 : 0; // the optional version
    const [serial, , issuer, validity, subject, spki] = tbs.slice(at);
    const [notBefore, notAfter] = derChildren(der, validity);
    const extensions = tbs.find((n) => n.tag === 0xa3);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der.subarray(0, cert.end)));
    const info = {
      subject: derName(der, subject),
      issuer: derName(der, issuer),
      sans: extensions ? derSans(der, extensions) : [],
      not_before: derTime(der, notBefore),
      not_after: derTime(der, notAfter),
      key: derKey(der, spki),
      fingerprint: Array.from(digest, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":"),
      serial: Array.from(der.subarray(serial.start, serial.end), (b) => b.toString(16).padStart(2, "0"))
        .join("").replace(/^0+(?=.)/, "").toUpperCase(),
    };
    info.days_left = Math.floor((parseTime(info.not_after) - Date.now()) / 86400000);
    return info;
  }

  /* --- certificates ---------------------------------------------------------------------- */

  const state = { certificates: [], policy: {}, services: "", audit: "", auditOffered: true,
    cluster: "" };

  function normalizeCertificates(data) {
    let items = null;
    if (Array.isArray(data)) items = data;
    else if (data && Array.isArray(data.certificates)) items = data.certificates;
    else if (data && Array.isArray(data.items)) items = data.items;
    else if (data && typeof data === "object") {
      /* The plain GET /v1/cluster/certificates: {"<name>_cert": "PEM"} only. */
      items = Object.keys(data).filter((k) => k.endsWith("_cert"))
        .map((k) => ({ name: k.slice(0, -5), pem: data[k], noDetails: true }));
    }
    if (!items) return [];
    /*
     * What each certificate is for, whether the agent generates it and whether it may be
     * deleted come from the agent's one table (agent/pki/cert_names.c) through the API's details.
     * An API that gives PEMs only says none of it: nothing is offered for deletion then.
     */
    return items.filter((c) => c && typeof c.name === "string").map((c) => Object.assign({}, c, {
      purpose: typeof c.purpose === "string" ? c.purpose : "",
      generated: c.generated === true,
      required: typeof c.required === "boolean" ? c.required : true,
      isSet: !c.error,
    }));
  }

  /*
   * The certificates with their details. The REST API gives them with ?details=true (what the
   * agent's `cluster certificate list` says, services included); an API that answers with PEMs
   * only (Redis Enterprise's shape) gets them read here, without the services that use them.
   */
  async function fetchCertificates() {
    const items = normalizeCertificates(await api("GET", "/v1/cluster/certificates?details=true"));
    return Promise.all(items.map(async (cert) => {
      if (!cert.noDetails || typeof cert.pem !== "string") return cert;
      try {
        return Object.assign(cert, await describePem(cert.pem), { noDetails: false });
      } catch (e) {
        return cert;
      }
    }));
  }

  function expiryClass(days) {
    if (days < 0 || days <= 7) return "bad";
    if (days <= 30) return "warn";
    return "ok";
  }

  function expiryCell(cert) {
    const notAfter = parseTime(cert.not_after);
    if (!notAfter) return h("td", { class: "expiry" }, cert.not_after || "—");
    const notBefore = parseTime(cert.not_before);
    const days = typeof cert.days_left === "number"
      ? cert.days_left : Math.floor((notAfter - Date.now()) / 86400000);
    const cls = expiryClass(days);
    const lifetime = notBefore ? (notAfter - notBefore) / 86400000 : 365;
    const fraction = Math.max(0, Math.min(1, days / Math.max(lifetime, 1)));
    const fill = h("span");
    fill.style.width = days > 0 ? `${Math.max(2, Math.round(fraction * 100))}%` : "100%";
    const text = days < 0 ? `expired ${plural(-days, "day")} ago`
      : days === 0 ? "expires today" : `${plural(days, "day")} left`;
    return h("td", { class: "expiry" },
      h("time", { datetime: notAfter.toISOString(), title: cert.not_after }, isoDate(notAfter)),
      h("div", { class: `bar ${cls}`, "aria-hidden": "true" }, fill),
      h("div", { class: `days ${cls}` }, text));
  }

  /* text with a break opportunity (<wbr>) after each of the separators, so that a long
   * fingerprint or name wraps between its parts ("AB:CD:", "node1.", "cluster.") and never in
   * the middle of one. */
  function breakable(text, separators) {
    const parts = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      if (separators.includes(text[i])) {
        parts.push(text.slice(start, i + 1), h("wbr"));
        start = i + 1;
      }
    }
    parts.push(text.slice(start));
    return parts;
  }

  function sansCell(sans) {
    if (!Array.isArray(sans) || !sans.length) return h("td", { class: "small-text" }, "—");
    const shown = sans.slice(0, 4);
    const cell = h("td", null, h("ul", { class: "plain small-text" },
      shown.map((s) => h("li", null, breakable(String(s), ".:-")))));
    if (sans.length > shown.length) {
      cell.append(h("details", { class: "small-text" },
        h("summary", null, `${sans.length - shown.length} more`),
        h("ul", { class: "plain" },
          sans.slice(shown.length).map((s) => h("li", null, breakable(String(s), ".:-"))))));
    }
    return cell;
  }

  function certificateRow(cert) {
    const actions = h("div", { class: "actions" });
    actions.append(h("button", {
      type: "button", class: "secondary small", "data-action": "replace",
      "aria-label": `Replace the ${cert.name} certificate`, onclick: () => startUpload(cert.name),
    }, cert.isSet ? "Replace…" : "Upload…"));
    if (cert.generated)
      actions.append(h("button", {
        type: "button", class: "secondary small", "data-action": "rotate",
        "aria-label": `Rotate the ${cert.name} certificate`, onclick: () => rotate(cert.name),
      }, "Rotate…"));
    if (!cert.required && cert.isSet)
      actions.append(h("button", {
        type: "button", class: "secondary small", "data-action": "delete",
        "aria-label": `Remove the ${cert.name} certificate`, onclick: () => removeCertificate(cert.name),
      }, "Remove…"));
    const nameCell = h("td", null, h("div", { class: "name" }, cert.name),
      cert.purpose ? h("div", { class: "small-text" }, cert.purpose) : null,
      cert.origin ? h("span", { class: `badge ${cert.origin === "generated" ? "neutral" : "ok"}` }, cert.origin) : null);
    const usedBy = Array.isArray(cert.used_by) ? cert.used_by : [];
    if (!cert.isSet) {
      return h("tr", { id: `cert-${cert.name}`, "data-name": cert.name }, nameCell,
        h("td", { colspan: 5 }, h("span", { class: "badge neutral" }, "not set"),
          " ", h("span", { class: "small-text" }, cert.required ? cert.error : "Optional: upload one to use it.")),
        h("td", null, actions));
    }
    if (cert.noDetails) {
      return h("tr", { id: `cert-${cert.name}`, "data-name": cert.name }, nameCell,
        h("td", { colspan: 5, class: "small-text" }, "The REST API gives no details for this certificate."),
        h("td", null, actions));
    }
    return h("tr", { id: `cert-${cert.name}`, "data-name": cert.name }, nameCell,
      h("td", { class: "dn" },
        h("div", null, h("strong", null, "Subject "), cert.subject || "—"),
        h("div", null, h("strong", null, "Issuer "), cert.issuer || "—"),
        cert.key ? h("div", null, h("strong", null, "Key "), cert.key) : null),
      sansCell(cert.sans),
      expiryCell(cert),
      h("td", null, h("code", { class: "fingerprint" },
        cert.fingerprint ? breakable(cert.fingerprint, ":") : "—")),
      h("td", { class: "used-by" }, !Array.isArray(cert.used_by)
        ? h("span", { class: "small-text", title: "The REST API does not say which services use it." }, "—")
        : usedBy.length ? usedBy.join(", ") : h("span", { class: "small-text" }, "no service")),
      h("td", null, actions));
  }

  async function loadCertificates() {
    try {
      const items = await fetchCertificates();
      state.certificates = items;
      const body = clear($("#cert-table tbody"));
      for (const cert of items) body.append(certificateRow(cert));
      if (!items.length) body.append(h("tr", null, h("td", { colspan: 7 }, "No certificates.")));
      fillUploadNames(items);
      showError("#cert-error", null);
    } catch (error) {
      showError("#cert-error", error);
    }
  }

  function rotate(name) {
    previewChange({
      box: $("#cert-plan"),
      title: `rotate the ${name} certificate`,
      applyLabel: "Rotate",
      errorBox: "#cert-error",
      note: (plan) => selfNote(plan, name),
      send: (dryRun) => api("POST", `/v1/cluster/certificates/rotate${dryRun ? "?dry_run=true" : ""}`,
        { name }, { timeout: dryRun ? READ_TIMEOUT_MS * 3 : CHANGE_TIMEOUT_MS }),
      onApplied: refreshAfterChange,
    });
  }

  function removeCertificate(name) {
    previewChange({
      box: $("#cert-plan"),
      title: `remove the ${name} certificate`,
      applyLabel: "Remove",
      errorBox: "#cert-error",
      send: (dryRun) => api("DELETE", `/v1/cluster/certificates/${encodeURIComponent(name)}${dryRun ? "?dry_run=true" : ""}`,
        undefined, { timeout: dryRun ? READ_TIMEOUT_MS * 3 : CHANGE_TIMEOUT_MS }),
      onApplied: refreshAfterChange,
    });
  }

  /* A change that reloads this console's own server with a new certificate can surprise a browser. */
  function selfNote(plan, certName) {
    const steps = planSteps(plan);
    if (certName === "cm" || steps.some((s) => s.service === "cm" && certName && certName !== "policy"))
      return "The console's own certificate changes: after it reloads your browser may ask you to trust the new certificate.";
    return null;
  }

  /* --- uploading a certificate and key --------------------------------------------------- */

  function fillUploadNames(items) {
    const select = $("#upload-name");
    const current = select.value;
    clear(select);
    select.append(h("option", { value: "" }, "Choose a certificate…"));
    const names = items.map((c) => c.name);
    for (const name of names) select.append(h("option", { value: name }, name));
    if (names.includes(current)) select.value = current;
  }

  function startUpload(name) {
    $("#upload-name").value = name;
    invalidateUpload();
    $("#upload").scrollIntoView({ block: "start" });
    $("#upload-cert").focus();
  }

  function invalidateUpload() {
    const box = $("#upload-plan");
    if (!box.hasAttribute("aria-busy")) {
      box.hidden = true;
      clear(box);
    }
  }

  function setFieldError(field, message) {
    const input = $(field);
    $(`${field}-error`).textContent = message || "";
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    return !message;
  }

  function checkCertificateText(text) {
    if (!text.trim()) return "Paste the certificate or choose its file.";
    if (text.length > MAX_PEM_BYTES) return "This is more than 1 MiB: not a certificate file.";
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text) && !/-----BEGIN CERTIFICATE-----/.test(text))
      return "This is a private key; it goes in the key field.";
    if (!/-----BEGIN CERTIFICATE-----/.test(text)) return "No \"-----BEGIN CERTIFICATE-----\" line: this is not a PEM certificate.";
    if (!/-----END CERTIFICATE-----/.test(text)) return "The certificate is cut short: no \"-----END CERTIFICATE-----\" line.";
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text))
      return "This text holds a private key too; put only certificates here and the key in its own field.";
    return null;
  }

  function checkKeyText(text, name) {
    if (!text.trim()) return name === "mtls_trusted_ca" ? null : "Paste the private key or choose its file.";
    if (name === "mtls_trusted_ca") return "A trusted CA bundle has no private key: leave this empty.";
    if (text.length > MAX_PEM_BYTES) return "This is more than 1 MiB: not a key file.";
    if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text) || /Proc-Type: 4,ENCRYPTED/.test(text))
      return "This key is protected by a passphrase; decrypt it first (openssl pkey -in key.pem -out plain.pem).";
    if (/-----BEGIN CERTIFICATE-----/.test(text) && !/PRIVATE KEY-----/.test(text))
      return "This is a certificate, not a private key.";
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) return "No \"-----BEGIN … PRIVATE KEY-----\" line: this is not a PEM private key.";
    if (!/-----END [A-Z ]*PRIVATE KEY-----/.test(text)) return "The key is cut short: no \"-----END … PRIVATE KEY-----\" line.";
    return null;
  }

  /* What the pasted certificate is, under its field, so a wrong file shows before it is sent. */
  let summaryTimer = null;

  function summarizeUpload() {
    clearTimeout(summaryTimer);
    summaryTimer = setTimeout(async () => {
      const out = $("#upload-cert-summary");
      const text = $("#upload-cert").value;
      out.textContent = "";
      out.classList.remove("warning");
      if (!/-----BEGIN CERTIFICATE-----/.test(text)) return;
      try {
        const info = await describePem(text);
        const count = pemBlocks(text, "CERTIFICATE").length;
        const days = info.days_left;
        out.textContent = `${info.subject || "(no subject)"}, issued by ${info.issuer}; ` +
          (days < 0 ? `expired on ${info.not_after.slice(0, 10)}` : `expires ${info.not_after.slice(0, 10)} (${plural(days, "day")} left)`) +
          (info.sans.length ? `; names ${info.sans.join(", ")}` : "") +
          (count > 1 ? `; with ${plural(count - 1, "more certificate")} (the chain)` : "");
        if (days < 0) out.classList.add("warning");
      } catch (e) {
        /* Not readable here: the REST API, which decides, says why when it is sent. */
      }
    }, 150);
  }

  async function readChosenFile(input, target) {
    const file = input.files && input.files[0];
    if (!file) return;
    const field = `#${target.id}`;
    if (file.size > MAX_PEM_BYTES) {
      setFieldError(field, `${file.name} is larger than 1 MiB: not a PEM file.`);
      return;
    }
    try {
      target.value = await file.text();
      setFieldError(field, null);
      if (target.id === "upload-cert") summarizeUpload();
      announce(`Read ${file.name} (${file.size} bytes).`);
    } catch (e) {
      setFieldError(field, `Cannot read ${file.name}.`);
    }
    invalidateUpload();
  }

  async function submitUpload(event) {
    event.preventDefault();
    const name = $("#upload-name").value;
    const certificate = $("#upload-cert").value;
    const key = $("#upload-key").value;
    $("#upload-error").textContent = "";
    const okName = setFieldError("#upload-name", name ? null : "Choose which certificate to replace.");
    const okCert = setFieldError("#upload-cert", checkCertificateText(certificate));
    const okKey = setFieldError("#upload-key", checkKeyText(key, name));
    if (!okName) {
      $("#upload-name").focus();
      return;
    }
    if (!okCert || !okKey) {
      (okCert ? $("#upload-key") : $("#upload-cert")).focus();
      return;
    }
    const body = { name, certificate };
    if (key.trim()) body.key = key;
    const button = $("#upload-check");
    button.disabled = true;
    try {
      await previewChange({
        box: $("#upload-plan"),
        title: `replace the ${name} certificate`,
        applyLabel: "Replace certificate",
        errorBox: "#upload-error",
        note: (plan) => selfNote(plan, name),
        send: (dryRun) => api("PUT", `/v1/cluster/update_cert${dryRun ? "?dry_run=true" : ""}`, body,
          { timeout: dryRun ? READ_TIMEOUT_MS * 3 : CHANGE_TIMEOUT_MS }),
        onApplied: async () => {
          /* The key leaves the page once it is in the store. */
          $("#upload-key").value = "";
          $("#upload-cert").value = "";
          $("#upload-cert-file").value = "";
          $("#upload-key-file").value = "";
          $("#upload-cert-summary").textContent = "";
          delete body.key;
          await refreshAfterChange();
        },
      });
    } finally {
      button.disabled = false;
    }
  }

  /* --- the TLS policy -------------------------------------------------------------------- */

  function normalizePolicy(data) {
    const values = {};
    const sources = {};
    if (data && Array.isArray(data.items)) {
      for (const item of data.items) {
        if (!item || typeof item.name !== "string") continue;
        values[item.name] = item.value;
        if (item.source) sources[item.name] = item.source;
      }
    } else if (data && typeof data === "object") {
      const policy = data.policy && typeof data.policy === "object" ? data.policy : data;
      Object.assign(values, policy);
      if (data.sources && typeof data.sources === "object") Object.assign(sources, data.sources);
    }
    /* An answer that has any setting leaves out the ones at their default (OpenSSL's). */
    const answered = SETTINGS.some((st) => st.name in values || (st.alias && st.alias in values));
    const result = {};
    for (const setting of SETTINGS) {
      let value;
      if (setting.name in values) value = values[setting.name];
      else if (setting.alias && setting.alias in values) value = values[setting.alias];
      if (typeof value === "boolean") value = value ? "enabled" : "disabled"; // the switches
      result[setting.name] = { value: value === undefined ? null : value,
        known: value !== undefined || answered, source: sources[setting.name] || sources[setting.alias] };
    }
    return result;
  }

  function shownValue(setting, value) {
    if (value === null || value === undefined || value === "") return setting.unset || "default";
    if (setting.kind === "version") {
      const found = VERSIONS.find(([v]) => v === String(value) || v === String(value).replace(/^1\.0$/, "1"));
      return found ? found[1] : String(value);
    }
    return String(value);
  }

  function policyControl(setting, current) {
    const id = `policy-${setting.name}`;
    let control;
    if (setting.kind === "version" || setting.kind === "choice") {
      control = h("select", { id, class: "policy-value", "data-setting": setting.name });
      if (setting.kind === "version") {
        if (setting.unset) control.append(h("option", { value: "" }, `(${setting.unset})`));
        for (const [value, label] of VERSIONS) control.append(h("option", { value }, label));
      } else {
        for (const choice of setting.choices) control.append(h("option", { value: choice }, choice));
      }
      const normalized = current === null || current === undefined ? "" : String(current).replace(/^1\.0$/, "1");
      control.value = normalized;
    } else {
      control = h("input", { id, class: "policy-value", "data-setting": setting.name, spellcheck: "false",
        placeholder: setting.unset || "" });
      control.value = current === null || current === undefined ? "" : String(current);
    }
    return control;
  }

  function policyRow(setting, entry) {
    const control = policyControl(setting, entry.value);
    const initial = control.value;
    const preview = h("button", { type: "button", class: "small", disabled: true, "data-action": "preview",
      "aria-label": `Preview changing ${setting.label}` }, "Preview");
    const label = h("label", { for: control.id, class: "sr-only" }, `New value for ${setting.label}`);
    /* Back to a default is not a value the API takes: an empty choice previews nothing. */
    const onEdit = () => {
      preview.disabled = control.value === initial || control.value === "";
      const box = $("#policy-plan");
      if (box.dataset.setting === setting.name && !box.hasAttribute("aria-busy")) {
        box.hidden = true;
        clear(box);
      }
    };
    control.addEventListener("input", onEdit);
    control.addEventListener("change", onEdit);
    preview.addEventListener("click", () => previewPolicy(setting, entry, control.value));
    return h("tr", { id: `setting-${setting.name}`, "data-setting": setting.name },
      h("th", { scope: "row" }, h("div", null, setting.label), h("code", { class: "small-text" }, setting.name),
        setting.help ? h("div", { class: "small-text" }, setting.help) : null),
      h("td", { class: "in-force" }, h("span", { class: "value" }, entry.known ? shownValue(setting, entry.value) : "—"),
        entry.source ? h("span", { class: "source small-text" }, entry.source) : null),
      h("td", null, label, control),
      h("td", null, preview));
  }

  function previewPolicy(setting, entry, value) {
    const box = $("#policy-plan");
    box.dataset.setting = setting.name;
    const body = { [setting.name]: value };
    previewChange({
      box,
      title: `${setting.name}: ${shownValue(setting, entry.value)} → ${shownValue(setting, value)}`,
      errorBox: "#policy-error",
      send: (dryRun) => api("PUT", `/v1/cluster${dryRun ? "?dry_run=true" : ""}`, body,
        { timeout: dryRun ? READ_TIMEOUT_MS * 3 : CHANGE_TIMEOUT_MS }),
      onApplied: refreshAfterChange,
    });
  }

  function renderPolicy(policy) {
    const body = clear($("#policy-table tbody"));
    for (const setting of SETTINGS) body.append(policyRow(setting, policy[setting.name]));
  }

  async function loadPolicy(data) {
    try {
      const policy = normalizePolicy(data || await api("GET", "/v1/cluster"));
      state.policy = policy;
      renderPolicy(policy);
      showError("#policy-error", null);
    } catch (error) {
      showError("#policy-error", error);
    }
  }

  /* --- services -------------------------------------------------------------------------- */

  let pendingRestart = null; // the service whose restart waits for confirmation

  function normalizeServices(data) {
    let items = [];
    if (Array.isArray(data)) items = data;
    else if (data && Array.isArray(data.services)) items = data.services;
    else if (data && Array.isArray(data.items)) items = data.items;
    else if (data && typeof data === "object") {
      const source = data.services && typeof data.services === "object" ? data.services : data;
      items = Object.keys(source).filter((k) => source[k] && typeof source[k] === "object")
        .map((k) => Object.assign({ name: k }, source[k]));
    }
    return items.filter((s) => s && typeof s.name === "string").map((s) => ({
      name: s.name,
      state: String(s.state || s.status || "UNKNOWN").toUpperCase(),
      /* Seconds, or Redis Enterprise's text ("3 days, 0:35:50"), shown as it is. */
      uptime: typeof s.uptime_seconds === "number" ? s.uptime_seconds
        : typeof s.uptime === "number" || typeof s.uptime === "string" ? s.uptime : null,
      /* Crashes (revivals nobody asked for) apart from planned restarts (changes, operators):
       * a service restarted for every policy change is not in a crash loop. */
      crashes: typeof s.crashes === "number" ? s.crashes : null,
      planned: typeof s.planned_restarts === "number" ? s.planned_restarts : null,
      pid: s.pid,
      description: s.description || s.reason || s.status_text || "",
    })).sort((a, b) => a.name.localeCompare(b.name));
  }

  function stateClass(name) {
    if (name === "RUNNING") return "ok";
    if (name === "STARTING" || name === "STOPPING" || name === "BACKOFF") return "warn";
    if (name === "FATAL" || name === "EXITED") return "bad";
    return "neutral";
  }

  function serviceActions(service) {
    const cell = h("td", { class: "actions-cell" });
    if (pendingRestart === service.name) {
      const warning = service.name === "cm"
        ? " This console's server restarts; the page reconnects."
        : service.name === "api" ? " The REST API restarts; requests in flight fail." : "";
      cell.append(h("div", { class: "small-text", role: "alert" }, `Restart ${service.name}?${warning}`),
        h("div", { class: "actions" },
          h("button", { type: "button", class: "danger small", "data-action": "confirm-restart",
            onclick: () => restartService(service.name) }, "Restart now"),
          h("button", { type: "button", class: "secondary small", "data-action": "cancel-restart",
            onclick: () => { pendingRestart = null; renderServices(lastServices, true); } }, "Cancel")));
    } else {
      cell.append(h("button", { type: "button", class: "secondary small", "data-action": "restart",
        "aria-label": `Restart ${service.name}`,
        onclick: () => { pendingRestart = service.name; renderServices(lastServices, true);
          const b = document.querySelector(`#service-${CSS.escape(service.name)} [data-action=confirm-restart]`);
          if (b) b.focus(); } }, "Restart…"));
    }
    return cell;
  }

  let lastServices = [];

  function renderServices(items, force) {
    const table = $("#services-table");
    const key = JSON.stringify(items) + String(pendingRestart);
    /* Leave the table alone while someone works in it, or when nothing changed. */
    if (!force && (key === state.services || table.contains(document.activeElement))) return;
    state.services = key;
    lastServices = items;
    const body = clear(table.querySelector("tbody"));
    for (const service of items) {
      body.append(h("tr", { id: `service-${service.name}`, "data-name": service.name },
        h("th", { scope: "row" }, service.name),
        h("td", null, h("span", { class: `badge ${stateClass(service.state)}` }, service.state)),
        h("td", { class: "num" }, service.state !== "RUNNING" || service.uptime === null ? "—"
          : typeof service.uptime === "string" ? service.uptime : duration(service.uptime)),
        h("td", { class: "num", title: service.planned === null ? null
            : `${service.planned} planned restart${service.planned === 1 ? "" : "s"} (changes, operators) besides` },
          service.crashes === null ? "—" : String(service.crashes),
          service.planned ? h("span", { class: "small-text" }, ` (+${service.planned} planned)`) : null),
        h("td", { class: "small-text" }, service.description || (service.pid ? `pid ${service.pid}` : "")),
        serviceActions(service)));
    }
    if (!items.length) body.append(h("tr", null, h("td", { colspan: 6 }, "No services.")));
  }

  async function loadServices(force) {
    try {
      renderServices(normalizeServices(await api("GET", "/v1/local/services")), force);
      showError("#services-error", null);
    } catch (error) {
      showError("#services-error", error);
    }
  }

  async function restartService(name) {
    pendingRestart = null;
    renderServices(lastServices, true);
    announce(`Restarting ${name}…`);
    try {
      await api("POST", "/v1/local/services", { operation_type: "restart", services: [name] },
        { timeout: CHANGE_TIMEOUT_MS });
      announce(`Restarted ${name}.`, true);
    } catch (error) {
      if (error.network && (name === "cm" || name === "api")) {
        announce(`${name} is restarting; reconnecting…`);
        await new Promise((resolve) => setTimeout(resolve, 2000));
      } else {
        showError("#services-error", error);
        announce("");
      }
    }
    await loadServices(true);
    await loadAudit();
  }

  /* --- the audit log --------------------------------------------------------------------- */

  function normalizeAudit(data) {
    let items = [];
    if (Array.isArray(data)) items = data;
    else if (data && Array.isArray(data.entries)) items = data.entries;
    else if (data && Array.isArray(data.items)) items = data.items;
    return items.map((e) => typeof e === "string" ? { message: e } : {
      time: e.time || e.timestamp || e.at || "",
      who: e.who || e.user || "",
      message: e.message || e.what || e.text || e.line || "",
    });
  }

  async function loadAudit() {
    const note = $("#audit-note");
    const table = $("#audit-table");
    try {
      const items = normalizeAudit(await api("GET", "/v1/cluster/audit_log?limit=50"));
      const key = JSON.stringify(items);
      state.auditOffered = true;
      note.hidden = true;
      table.hidden = false;
      showError("#audit-error", null);
      if (key === state.audit) return;
      state.audit = key;
      const body = clear(table.querySelector("tbody"));
      for (const entry of items) {
        const when = typeof entry.time === "number" ? new Date(entry.time * 1000) : parseTime(entry.time);
        body.append(h("tr", null,
          h("td", { class: "small-text audit-time" }, when ? h("time", { datetime: when.toISOString() }, isoMinute(when)) : entry.time || "—"),
          h("td", { class: "audit-who" }, entry.who ? breakable(entry.who, " ") : "—"),
          h("td", null, entry.message)));
      }
      if (!items.length) body.append(h("tr", null, h("td", { colspan: 3 }, "No changes recorded yet.")));
    } catch (error) {
      if (error.status === 404 || error.status === 405 || error.status === 501) {
        state.auditOffered = false; // asked again on Refresh and after changes, not every 10 s
        note.textContent = "The REST API on this node does not offer the audit log; " +
          "the agent's log has every change (lines starting with \"audit:\").";
        note.hidden = false;
        table.hidden = true;
        showError("#audit-error", null);
      } else {
        showError("#audit-error", error);
      }
    }
  }

  /* --- the cluster ---------------------------------------------------------------------- */

  /* GET /v1/nodes: every node of the cluster, its address and status (Redis Enterprise's node
   * list), and what it last applied. */
  async function loadNodes() {
    const body = $("#nodes-table tbody");
    let nodes;
    try {
      nodes = await api("GET", "/v1/nodes");
    } catch (error) {
      return; /* the facts above say what is wrong with the cluster's view */
    }
    if (!Array.isArray(nodes)) return;
    const key = JSON.stringify(nodes);
    if (key === state.nodes) return;
    state.nodes = key;
    clear(body);
    for (const n of nodes) {
      const applied = typeof n.applied_revision === "number"
        ? `${n.apply_result || "applied"} at revision ${n.applied_revision}` +
          (n.apply_reason ? `: ${n.apply_reason}` : "") : "—";
      body.append(h("tr", { id: `node-${n.name}`, "data-name": n.name },
        h("th", { scope: "row" }, String(n.name), n.this_node ? h("span", { class: "small-text" }, " (this node)") : null),
        h("td", null, String(n.addr)),
        h("td", null, h("span", { class: `badge ${n.status === "active" ? "ok" : n.status === "down" ? "bad" : "neutral"}` },
          String(n.status))),
        h("td", { class: "small-text" }, applied)));
    }
  }

  /* GET /v1/ocsp and /v1/ocsp/status: the proxy certificate's stapled OCSP status, as rows of
   * the Cluster card; a REVOKED answer is also an alert above the certificates. */
  async function ocspRows() {
    let config, status;
    try {
      [config, status] = await Promise.all([api("GET", "/v1/ocsp"), api("GET", "/v1/ocsp/status")]);
    } catch (error) {
      return [["OCSP stapling", `cannot be read: ${errorText(error)}`]];
    }
    const revoked = status.cert_status === "REVOKED";
    $("#ocsp-alert").textContent = revoked
      ? `The OCSP responder ${status.responder_url} says the proxy certificate is REVOKED ` +
        `(since ${status.revocation_time}): replace it. Clients that check are refusing it.`
      : "";
    if (!config.ocsp_functionality) {
      return [["OCSP stapling", "disabled" +
        (config.responder_url ? ` (the proxy certificate names ${config.responder_url})` : "")]];
    }
    const rows = [["OCSP stapling", `${status.cert_status} from ${config.responder_url || "no responder"}` +
      (status.next_update ? `, valid until ${status.next_update}` : "")]];
    if (status.error) rows.push(["OCSP last error", status.error]);
    return rows;
  }

  /* GET /v1/cluster/ldap: sign-in with directory accounts, in a card of its own (admins only:
   * it names the directory and its service account; never the password). */
  async function loadLdap() {
    const facts = $("#ldap-facts");
    let ldap, rows;
    try {
      ldap = await api("GET", "/v1/cluster/ldap");
    } catch (error) {
      if (error.status !== 403) {
        showError("#ldap-error", error);
        return;
      }
      ldap = null;
    }
    showError("#ldap-error", null);
    if (!ldap) {
      rows = [["Settings", "shown to admins"]];
    } else if (!ldap.control_plane) {
      rows = [["Status", "disabled"]];
    } else {
      rows = [["Status", "enabled"],
        ["Directories", ldap.uris.join(", ")],
        ["Users", ldap.user_dn_template ||
          `search ${ldap.user_dn_query.base} for ${ldap.user_dn_query.filter}` +
          (ldap.bind_dn ? ` as ${ldap.bind_dn}` : " anonymously")],
        ["Groups", ldap.dn_group_query.base
          ? `search ${ldap.dn_group_query.base} for ${ldap.dn_group_query.filter}`
          : `the user's ${ldap.dn_group_attr}`],
        ["Admins", ldap.admin_groups.join("; ") || "no group"],
        ["Viewers", ldap.viewer_groups.join("; ") || "no group"],
        ["Remembered", `${ldap.cache_ttl} s; each directory may take ${ldap.directory_timeout_s} s`]];
    }
    clear(facts);
    for (const [term, value] of rows) facts.append(h("dt", null, term), h("dd", null, breakable(String(value), ",;")));
  }

  /* GET /v1/cluster/status: the store, and on etcd this node's last view of it. */
  async function loadCluster() {
    loadNodes();
    const ocsp = ocspRows();
    const facts = $("#cluster-facts");
    try {
      const c = await api("GET", "/v1/cluster/status");
      const rows = [["Cluster", c.cluster], ["This node", c.node],
        ["Store", c.store === "etcd" ? "etcd (shared by the cluster's nodes)" : "local (this node only)"]];
      if (c.store === "etcd") {
        rows.push(["etcd", !c.reachable ? "unreachable"
          : `${c.has_leader ? "has a leader" : "NO LEADER (no quorum)"} through ${c.endpoint}, ` +
            `version ${c.etcd_version}, revision ${c.revision}`]);
        rows.push(["Synced", typeof c.seconds_since_sync === "number"
          ? `${c.seconds_since_sync.toFixed(1)} s ago` : "never"]);
        if (c.last_error) rows.push(["Last error", c.last_error]);
        rows.push(["Nodes alive", Array.isArray(c.alive) ? (c.alive.join(", ") || "none") : "not read yet"]);
        if (c.state) {
          rows.push(["State", c.state + (c.state_error ? `: ${c.state_error}` : "")]);
          rows.push(["Applied here", `revision ${c.applied_revision}` +
            (c.apply_error ? `, FAILED: ${c.apply_error}` : "")]);
          /* Each node's own report (status/<node>): what it applied, or why not. */
          for (const [name, n] of Object.entries(c.nodes || {}).sort()) {
            rows.push([`Node ${name}`, `${n.result} at revision ${n.revision}` +
              (n.reason ? `: ${n.reason}` : "")]);
          }
        }
      }
      rows.push(...await ocsp);
      /* The store came back or went away (the agent's own verdict, as X-Certvisor-Stale gives
       * it): read certificates and policy again, fresh or marked. */
      const inStep = !c.reads_stale;
      if (state.inStep !== undefined && state.inStep !== inStep) {
        loadCertificates();
        loadPolicy();
      }
      state.inStep = inStep;
      const key = JSON.stringify(rows);
      showError("#cluster-error", null);
      if (key === state.cluster) return;
      state.cluster = key;
      clear(facts);
      for (const [term, value] of rows) facts.append(h("dt", null, term), h("dd", null, String(value)));
    } catch (error) {
      showError("#cluster-error", error);
    }
  }

  /* --- loading, signing in and out ------------------------------------------------------- */

  async function loadAll(policyData) {
    document.body.dataset.loading = "true";
    await Promise.all([loadCertificates(), loadPolicy(policyData), loadServices(true), loadAudit(),
      loadCluster(), loadLdap()]);
    delete document.body.dataset.loading;
    document.body.dataset.loaded = String(Date.now());
  }

  async function refreshAfterChange() {
    await loadAll();
  }

  function startLiveRefresh() {
    stopLiveRefresh();
    session.timer = setInterval(() => {
      if (!document.hidden && session.auth) {
        loadServices(false);
        loadCluster();
        if (state.auditOffered) loadAudit();
      }
    }, LIVE_REFRESH_MS);
  }

  function stopLiveRefresh() {
    if (session.timer) clearInterval(session.timer);
    session.timer = null;
  }

  function showConsole() {
    $("#sign-in-view").hidden = true;
    $("#console-view").hidden = false;
    $("#session").hidden = false;
    $("#who").textContent = session.user;
    document.title = `certvisor console — ${location.hostname}`;
    startLiveRefresh();
  }

  function signOut(message) {
    stopLiveRefresh();
    forgetSession();
    pendingRestart = null;
    state.services = state.audit = "";
    state.auditOffered = true;
    /* Nothing read with the old credentials stays on screen. */
    for (const selector of ["#cert-table tbody", "#policy-table tbody", "#services-table tbody", "#audit-table tbody",
      "#cert-plan", "#policy-plan", "#upload-plan"])
      clear($(selector));
    for (const selector of ["#cert-plan", "#policy-plan", "#upload-plan"]) $(selector).hidden = true;
    $("#upload").reset();
    $("#password").value = "";
    $("#console-view").hidden = true;
    $("#session").hidden = true;
    $("#sign-in-view").hidden = false;
    $("#sign-in-error").textContent = message || "";
    announce(message ? "" : "Signed out.");
    $("#user").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const user = $("#user").value.trim();
    const password = $("#password").value;
    const error = $("#sign-in-error");
    error.textContent = "";
    $("#user").toggleAttribute("aria-invalid", !user);
    $("#password").toggleAttribute("aria-invalid", !password);
    if (!user || !password) {
      error.textContent = !user ? "Enter your user name." : "Enter your password.";
      (!user ? $("#user") : $("#password")).focus();
      return;
    }
    const button = $("#sign-in button[type=submit]");
    button.disabled = true;
    button.textContent = "Signing in…";
    const auth = basicAuth(user, password);
    try {
      /* Any authenticated read checks the credentials; the policy is needed anyway. */
      const policy = await api("GET", "/v1/cluster", undefined, { auth });
      session.user = user;
      session.auth = auth;
      saveSession();
      $("#password").value = "";
      showConsole();
      announce(`Signed in as ${user}.`, true);
      await loadAll(policy);
    } catch (e) {
      error.textContent = errorText(e);
      $("#password").select();
      $("#password").focus();
    } finally {
      button.disabled = false;
      button.textContent = "Sign in";
    }
  }

  async function resume() {
    const saved = restoreSession();
    if (!saved) {
      $("#user").focus();
      return;
    }
    try {
      const policy = await api("GET", "/v1/cluster", undefined, { auth: saved.auth });
      session.user = saved.user;
      session.auth = saved.auth;
      showConsole();
      await loadAll(policy);
    } catch (error) {
      forgetSession();
      $("#sign-in-error").textContent = error.status === 401
        ? "Your saved sign-in is no longer accepted. Sign in again." : errorText(error);
      $("#user").value = saved.user;
      $("#password").focus();
    }
  }

  function bind() {
    $("#sign-in").addEventListener("submit", signIn);
    $("#sign-out").addEventListener("click", () => signOut());
    $("#refresh").addEventListener("click", async () => {
      announce("Refreshing…");
      await loadAll();
      announce("Up to date.", true);
    });
    $("#upload").addEventListener("submit", submitUpload);
    $("#upload").addEventListener("reset", () => {
      for (const field of ["#upload-name", "#upload-cert", "#upload-key"]) setFieldError(field, null);
      $("#upload-cert-summary").textContent = "";
      $("#upload-error").textContent = "";
      invalidateUpload();
    });
    $("#upload-cert").addEventListener("input", summarizeUpload);
    for (const field of ["#upload-name", "#upload-cert", "#upload-key"]) {
      $(field).addEventListener("input", () => {
        if ($(field).hasAttribute("aria-invalid")) setFieldError(field, null);
        invalidateUpload();
      });
    }
    $("#upload-cert-file").addEventListener("change", (e) => readChosenFile(e.target, $("#upload-cert")));
    $("#upload-key-file").addEventListener("change", (e) => readChosenFile(e.target, $("#upload-key")));
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && session.auth) {
        loadServices(false);
        loadCluster();
        if (state.auditOffered) loadAudit();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    bind();
    resume();
  });
})();
