/* Shared code of every page: the API client, sign-in state, the offline answer queue and the banner.
 *
 * Everything the pages show is built with DOM methods and textContent, never innerHTML, so nothing a
 * person typed can become markup. The bearer token lives in sessionStorage: closing the tab signs out.
 */
"use strict";

const LD = (() => {
  const TOKEN_KEY = "ld.token";
  const USER_KEY = "ld.user";

  // ---------- small DOM helpers ----------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  const $ = (sel) => document.querySelector(sel);
  const param = (name) => new URLSearchParams(location.search).get(name);

  // ---------- sign-in state ----------
  const token = () => sessionStorage.getItem(TOKEN_KEY);
  const user = () => JSON.parse(sessionStorage.getItem(USER_KEY) || "null");
  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
    location.assign("/app/signin");
  }
  function homeFor(role) {
    return role === "court" ? "/app/court" : role === "commissioner" ? "/app/insights" : "/app/";
  }

  function requireSignIn(role) {
    const u = user();
    if (!token() || !u) {
      location.assign("/app/signin?next=" + encodeURIComponent(location.pathname + location.search));
      return null;
    }
    if (role && u.role !== role) {
      location.assign(homeFor(u.role));
      return null;
    }
    return u;
  }

  // ---------- API client ----------
  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || "HTTP " + status);
      this.status = status;
      this.problem = problem || {};
    }
  }
  // A request that never reached the service. Where the browser reports no network it is "Offline"; where it reports
  // one, the service is what is out of reach (an instance restarting, a proxy down, a Wi-Fi portal), and "Offline"
  // would send the nurse to check a tablet that is fine. `again` says when to try again.
  class OfflineError extends Error {
    constructor() {
      const online = navigator.onLine;
      super(online ? "The service cannot be reached" : "Offline");
      this.again = online ? "Try again in a moment." : "Try again when the network is back.";
    }
  }

  async function api(method, path, { body, headers, raw } = {}) {
    const h = Object.assign({ Accept: "application/json" }, headers || {});
    if (token()) h.Authorization = "Bearer " + token();
    let payload;
    if (body instanceof URLSearchParams) payload = body;
    else if (body !== undefined) {
      h["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, { method, headers: h, body: payload, cache: "no-store" });
    } catch (e) {
      throw new OfflineError();
    }
    if (response.status === 401 && path !== "/api/v1/auth/token") {
      showBanner("signin", "Signed out: sign in again to carry on. Unsent answers stay on this device.");
    }
    if (!response.ok) {
      let problem = null;
      try { problem = await response.json(); } catch (e) { /* not JSON */ }
      throw new ApiError(response.status, problem);
    }
    if (raw) return response;
    if (response.status === 204) return null;
    return response.json();
  }

  // ---------- banner ----------
  function showBanner(kind, text) {
    const b = $("#sync-banner");
    if (!b) return;
    b.hidden = false;
    b.className = "sync-banner sync-banner--" + kind;
    b.replaceChildren(
      el("span", { class: "sync-banner__icon", "aria-hidden": "true", text: { saved: "✓", offline: "⚡", signin: "!", error: "!", saving: "…" }[kind] || "" }),
      el("span", { text })
    );
    if (kind === "signin") {
      b.append(" ", el("a", { href: "/app/signin?next=" + encodeURIComponent(location.pathname + location.search), text: "Sign in" }));
    }
  }

  // ---------- error summary (GOV.UK pattern: names each field and links to it) ----------
  // A form's submit buttons are disabled in the page, and enabled here as its handler is attached: a tap
  // before the page's script has run would submit the form natively, and nothing typed into the app (a
  // password, a custody record) may go anywhere but through the API.
  function handleSubmit(form, handler) {
    form.addEventListener("submit", handler);
    for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = false;
  }
  function showErrors(errors) {
    const summary = $("#error-summary");
    document.querySelectorAll(".form-group--error").forEach((g) => g.classList.remove("form-group--error"));
    document.querySelectorAll(".error-message").forEach((m) => { m.hidden = true; m.textContent = ""; });
    document.querySelectorAll("[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
    if (!summary) return;
    const list = summary.querySelector("ul");
    list.replaceChildren();
    if (!errors.length) { summary.hidden = true; return; }
    for (const { field, message } of errors) {
      const input = field ? document.getElementById(field) : null;
      list.append(el("li", {}, input ? el("a", { href: "#" + field, text: message }) : message));
      const group = field && document.querySelector(`[data-field="${CSS.escape(field)}"]`);
      if (group) {
        group.classList.add("form-group--error");
        const m = document.getElementById(field + "-error");
        if (m) { m.hidden = false; m.replaceChildren(el("span", { class: "visually-hidden", text: "Error: " }), message); }
        if (input) {
          input.setAttribute("aria-invalid", "true");
          input.setAttribute("aria-describedby", [input.getAttribute("aria-describedby"), field + "-error"].filter(Boolean).join(" "));
        }
      }
    }
    summary.hidden = false;
    summary.focus();
  }
  // Error links move focus to the field, as the GOV.UK error summary does.
  document.addEventListener("click", (ev) => {
    const a = ev.target.closest && ev.target.closest(".error-summary a[href^='#']");
    if (!a) return;
    const target = document.getElementById(a.getAttribute("href").slice(1));
    if (target) { ev.preventDefault(); target.focus(); target.scrollIntoView({ block: "center" }); }
  });

  // ---------- IndexedDB: outbox of answers and last-known screens ----------
  let dbPromise = null;
  function db() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const req = indexedDB.open("ld-screening", 1);
        req.onupgradeneeded = () => {
          const d = req.result;
          d.createObjectStore("outbox", { keyPath: "key" });
          d.createObjectStore("screens", { keyPath: "id" });
          d.createObjectStore("instruments", { keyPath: "key" });
        };
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    }
    return dbPromise;
  }
  async function tx(store, mode, fn) {
    const d = await db();
    return new Promise((resolve, reject) => {
      const t = d.transaction(store, mode);
      const s = t.objectStore(store);
      let result;
      Promise.resolve(fn(s)).then((r) => { result = r; });
      t.oncomplete = () => resolve(result);
      t.onerror = () => reject(t.error);
    });
  }
  const reqP = (r) => new Promise((res, rej) => { r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const idbGet = (store, key) => tx(store, "readonly", (s) => reqP(s.get(key)));
  const idbAll = (store) => tx(store, "readonly", (s) => reqP(s.getAll()));
  const idbPut = (store, value) => tx(store, "readwrite", (s) => { s.put(value); });
  const idbDelete = (store, key) => tx(store, "readwrite", (s) => { s.delete(key); });

  // ---------- the answer queue ----------
  // Every answer goes into the outbox first and is sent from there, online or not: one code path.
  // Entries are keyed by screen and item, so changing an answer twice offline sends only the latest value.
  // `base` is the server revision the nurse was looking at; the server answers 409 if another device
  // changed the item since, and she chooses which value to keep.
  let seq = Date.now();
  // The newest revision of each answer that this device has seen the server save ("screenId|itemId"), noted as
  // soon as a save's response arrives. The page learns it from the "saved" event, which comes only after the
  // outbox has been updated (waits on IndexedDB): an answer changed in between went out against the page's older
  // revision, and the server, rightly by what it was told, answered that another device had changed it (a false
  // conflict, seen in a browser test under load).
  const savedRevisions = new Map();
  // An answer's key, in the outbox and in savedRevisions.
  const answerKey = (screenId, itemId) => screenId + "|" + itemId;
  const listeners = new Set();
  const onSync = (fn) => listeners.add(fn);
  const emit = (ev) => listeners.forEach((fn) => fn(ev));

  async function queueAnswer(screenId, itemId, value, base) {
    const key = answerKey(screenId, itemId);
    const existing = await idbGet("outbox", key);
    await idbPut("outbox", {
      key, screenId, itemId, value,
      // Sent only under the account that gave it: a colleague signing in on this tablet never sends it as hers.
      owner: (user() || {}).username,
      base: existing ? existing.base : Math.max(base || 0, savedRevisions.get(key) || 0),
      seq: ++seq,
      conflict: null,
    });
    emit({ type: "queued", screenId, itemId });
    return flush();
  }

  let flushing = null;
  let flushAgain = false;
  // See the end of flushOnce: a send that failed at the transport is tried again once after this long.
  const RETRY_SOON_MS = 1000;  // the service's Retry-After on a 503
  let retriedSoon = false;
  function flush() {
    if (flushing) { flushAgain = true; return flushing; }
    flushing = (async () => {
      try {
        do {
          flushAgain = false;
          await flushOnce();
        } while (flushAgain);
      } finally {
        flushing = null;
      }
    })();
    return flushing;
  }

  async function pending(screenId) {
    const me = (user() || {}).username;
    const all = await idbAll("outbox");
    return all.filter((e) => e.owner === me && (!screenId || e.screenId === screenId));
  }

  async function flushOnce() {
    const entries = (await pending()).filter((e) => !e.conflict);
    const conflicts = (await pending()).filter((e) => e.conflict);
    if (!entries.length) {
      if (conflicts.length) showBanner("error", "Some answers need your choice before they can be saved.");
      else if (document.visibilityState !== "hidden" && $("#sync-banner") && !$("#sync-banner").hidden) showBanner("saved", "Saved");
      return;
    }
    if (!token()) { showBanner("signin", "Signed out: sign in again to send answers kept on this device."); return; }
    const byScreen = new Map();
    for (const e of entries) {
      if (!byScreen.has(e.screenId)) byScreen.set(e.screenId, []);
      byScreen.get(e.screenId).push(e);
    }
    let unreached = null;  // the OfflineError a send met: it never reached the service
    let unavailable = false;  // the service answered 503
    for (const [screenId, list] of byScreen) {
      const answers = {};
      const expected = {};
      for (const e of list) { answers[e.itemId] = e.value; expected[e.itemId] = e.base; }
      try {
        const screen = await api("PATCH", `/api/v1/screens/${encodeURIComponent(screenId)}/answers`, {
          body: { answers, expected_revisions: expected },
        });
        for (const [itemId, revision] of Object.entries(screen.revisions)) {
          const key = answerKey(screenId, itemId);
          if (!(savedRevisions.get(key) >= revision)) savedRevisions.set(key, revision);
        }
        await rememberScreen(screen);
        for (const e of list) {
          const now = await idbGet("outbox", e.key);
          if (!now) continue;
          if (now.seq === e.seq) await idbDelete("outbox", e.key);
          // Changed again while this request was in flight: send it next, against the revision just written.
          else await idbPut("outbox", Object.assign(now, { base: screen.revisions[e.itemId] || 0 }));
        }
        emit({ type: "saved", screenId, screen });
      } catch (err) {
        if (err instanceof OfflineError) { unreached = err; break; }
        // The service answered that its database did not (a failover, a restart): nothing in the answers was
        // wrong, so they wait and are sent again, as when offline, and she is told why.
        if (err instanceof ApiError && err.status === 503) { unavailable = true; break; }
        if (err instanceof ApiError && err.status === 409 && (err.problem.errors || []).length) {
          await markConflicts(screenId, list, err.problem.errors);
          continue;
        }
        if (err instanceof ApiError && err.status === 401) return;
        if (err instanceof ApiError && err.status === 409) {
          // The screen was finalised or declined elsewhere: these answers cannot be saved any more.
          for (const e of list) await idbDelete("outbox", e.key);
          showBanner("error", "Not saved: " + err.message);
          emit({ type: "rejected", screenId, message: err.message });
          continue;
        }
        showBanner("error", "Not saved: " + err.message + " Answers stay on this device and will be retried.");
        return;
      }
    }
    const held = unreached !== null || unavailable;
    if (held && navigator.onLine && !retriedSoon) {
      // The request failed at the transport while the browser says it is online: most often an instance of the
      // service stopping (a rolling restart sends the next request to another) or a connection the Wi-Fi dropped;
      // or the service answered 503. Sent again once after a moment before she is told; the banner stays as it was
      // meanwhile.
      retriedSoon = true;
      setTimeout(flush, RETRY_SOON_MS);
      return;
    }
    retriedSoon = held;
    const left = await pending();
    const waiting = `${left.length} ${left.length === 1 ? "answer" : "answers"} waiting`;
    if (unavailable) showBanner("offline", `Waiting for the service: will sync (${waiting})`);
    // Worded by the error: "The service cannot be reached" where the browser says it is online (OfflineError).
    else if (unreached) showBanner("offline", `${unreached.message}: will sync (${waiting})`);
    else if (left.some((e) => e.conflict)) showBanner("error", "Some answers need your choice before they can be saved.");
    else if (!left.length) showBanner("saved", "Saved");
  }

  async function markConflicts(screenId, list, errors) {
    const ids = new Set(errors.map((e) => e.field.replace(/^answers\./, "")));
    let server = null;
    try { server = await api("GET", `/api/v1/screens/${encodeURIComponent(screenId)}`); } catch (e) { /* shown without it */ }
    for (const e of list) {
      if (!ids.has(e.itemId)) continue;
      const now = await idbGet("outbox", e.key);
      if (!now) continue;
      now.conflict = {
        serverValue: server && e.itemId in server.answers ? server.answers[e.itemId] : null,
        serverRevision: server ? (server.revisions[e.itemId] || 0) : null,
      };
      await idbPut("outbox", now);
    }
    if (server) await rememberScreen(server);
    emit({ type: "conflict", screenId });
  }

  // The nurse's choice: keep her value (sent against the server's current revision) or take the saved one.
  async function resolveConflict(screenId, itemId, keepMine) {
    const key = answerKey(screenId, itemId);
    const e = await idbGet("outbox", key);
    if (!e) return;
    if (keepMine) {
      await idbPut("outbox", Object.assign(e, { base: e.conflict.serverRevision || 0, conflict: null, seq: ++seq }));
    } else {
      await idbDelete("outbox", key);
    }
    emit({ type: "resolved", screenId, itemId });
    await flush();
  }

  async function rememberScreen(screen) {
    await idbPut("screens", screen);
  }
  const cachedScreen = (id) => idbGet("screens", id);

  // A screen from the server, or the last copy on this device when offline.
  async function loadScreen(id) {
    try {
      const s = await api("GET", `/api/v1/screens/${encodeURIComponent(id)}`);
      await rememberScreen(s);
      return { screen: s, offline: false };
    } catch (err) {
      if (err instanceof OfflineError) {
        const s = await cachedScreen(id);
        if (s) return { screen: s, offline: true };
      }
      throw err;
    }
  }
  async function loadInstruments() {
    try {
      const list = await api("GET", "/api/v1/instruments");
      await idbPut("instruments", { key: "all", list });
      return list;
    } catch (err) {
      if (err instanceof OfflineError) {
        const c = await idbGet("instruments", "all");
        if (c) return c.list;
      }
      throw err;
    }
  }

  window.addEventListener("online", () => flush());
  window.addEventListener("offline", () => showBanner("offline", "Offline: will sync"));
  // A fallback for networks that come back without an `online` event.
  setInterval(() => { pending().then((p) => { if (p.some((e) => !e.conflict)) flush(); }); }, 5000);

  function fmtTime(iso) {
    return new Date(iso).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
  }
  function fmtDateTime(iso) {
    return new Date(iso).toLocaleString("en-GB", { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" });
  }
  function caption(screen) {
    const c = $("#screen-caption");
    if (c) c.textContent = `Custody record ${screen.custody_record} · age ${screen.age} · ${screen.custody_suite}`;
  }

  // ---------- court report: preview in the page, PDF download ----------
  // The report is fetched with the bearer token, so it cannot be a frame's src; the service's CSP also
  // forbids blob frames and inline styles. Its body is parsed inertly and imported without scripts,
  // styles, frames or event attributes, and shown with the app's own report styles.
  // Server-rendered documents (court report, commissioners' dashboard) are fetched with the token and
  // shown without their scripts, styles or event handlers: the app's CSP and styles stay in charge.
  function reportPreview(html, label = "Court information report preview", cls = "report-preview") {
    const doc = new DOMParser().parseFromString(html, "text/html");
    doc.querySelectorAll("script, style, link, meta, iframe, frame, object, embed, form, base").forEach((n) => n.remove());
    doc.querySelectorAll("*").forEach((n) => {
      for (const a of [...n.attributes]) {
        const v = a.value.trim().toLowerCase();
        if (a.name.startsWith("on") || a.name === "style" || v.startsWith("javascript:")) n.removeAttribute(a.name);
      }
    });
    const preview = el("article", { class: cls, "aria-label": label });
    preview.append(...[...doc.body.childNodes].map((n) => document.importNode(n, true)));
    return preview;
  }

  async function showReport(screenId, container, downloadButton, name) {
    const base = `/api/v1/screens/${encodeURIComponent(screenId)}/court-report`;
    try {
      const html = await (await api("GET", base, { raw: true, headers: { Accept: "text/html" } })).text();
      container.replaceChildren(reportPreview(html));
      downloadButton.hidden = false;
      downloadButton.onclick = async () => {
        try {
          const blob = await (await api("GET", base + "?format=pdf", { raw: true, headers: { Accept: "application/pdf" } })).blob();
          const a = el("a", { href: URL.createObjectURL(blob), download: `court-report-${String(name || screenId).replace(/[^A-Za-z0-9]+/g, "-")}.pdf` });
          document.body.append(a);
          a.click();
          a.remove();
        } catch (err) {
          container.prepend(el("p", { class: "notice notice--warning", role: "alert", text: "The PDF could not be downloaded: " + err.message }));
        }
      };
      return true;
    } catch (err) {
      let text;
      if (err instanceof OfflineError) text = `${err.message}: the report cannot be loaded now.`;
      else if (err.status === 404) text = "Court information reports will appear here once the reports feature is installed on this service.";
      else if (err.status === 403) text = "No report: " + err.message;
      else if (err.status === 409) text = "The report is available once the screen is finalised.";
      else text = "The report could not be loaded: " + err.message;
      container.replaceChildren(el("p", { class: "notice", text }));
      return false;
    }
  }

  // ---------- page chrome ----------
  document.addEventListener("DOMContentLoaded", () => {
    const u = user();
    if (u && token()) {
      $("#who").textContent = `${u.full_name} (${u.role})`;
      const so = $("#sign-out");
      so.hidden = false;
      so.addEventListener("click", signOut);
    }
    pending().then((p) => {
      if (p.some((e) => e.conflict)) showBanner("error", "Some answers need your choice before they can be saved.");
      else if (p.length) {
        // Answers kept from before are sent at once: "Offline" only if the browser says so, not while they go.
        if (navigator.onLine) showBanner("saving", "Saving…");
        else showBanner("offline", "Offline: will sync");
        flush();
      }
    }).catch(() => {});
  });

  if ("serviceWorker" in navigator && location.protocol !== "file:") {
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
  }

  return {
    el, $, param, api, ApiError, OfflineError, token, user, signOut, requireSignIn, showBanner, showErrors, handleSubmit,
    queueAnswer, flush, pending, resolveConflict, onSync, loadScreen, loadInstruments, rememberScreen,
    fmtTime, fmtDateTime, caption, showReport, reportPreview, homeFor, TOKEN_KEY, USER_KEY,
  };
})();
