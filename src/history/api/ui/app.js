// hookgate console: plain JavaScript, no dependencies. Everything shown is
// put in the page with textContent, never as HTML: bodies and headers are
// whatever a sender posted.
"use strict";

const KEY = "hookgate.token";
const $ = (selector) => document.querySelector(selector);
const state = { cursor: null, selected: null, live: null, scopes: [] };

function token() { return sessionStorage.getItem(KEY); }

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const t = token();
  if (t) headers.Authorization = "Bearer " + t;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { const e = await response.json(); message = e.error.code + ": " + e.error.message; } catch (_) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

function status(text, isError) {
  const s = $("#status");
  s.textContent = text;
  s.className = isError ? "error" : "";
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

// The filters as query parameters; json conditions split on new lines and spaces.
function filterParams(forStream) {
  const form = $("#filters");
  const params = new URLSearchParams();
  for (const name of ["source", "type", "verified"]) {
    const v = form.elements[name].value.trim();
    if (v) params.set(name, v);
  }
  for (const name of ["since", "until"]) {
    const v = form.elements[name].value;
    if (v) params.set(name, new Date(v + "Z").toISOString());
  }
  if (!forStream) {
    for (const j of form.elements.json.value.split(/\s+/).filter(Boolean)) params.append("json", j);
    const q = form.elements.q.value.trim();
    if (q) params.set("q", q);
  }
  return params;
}

function row(event, isNew) {
  const tr = el("tr", null, isNew ? "new" : "");
  tr.dataset.id = event.id;
  tr.append(
    el("td", event.received_at.replace("T", " ").replace(/\.\d+Z$/, "")),
    el("td", event.source),
    el("td", event.event_type || ""),
    el("td", event.verification.verified ? "yes" : "no", event.verification.verified ? "ok" : "bad"),
    el("td", event.body_size + " B"),
    el("td", event.id, "id"));
  tr.addEventListener("click", () => openEvent(event.id));
  return tr;
}

async function search(more) {
  const params = filterParams(false);
  params.set("limit", "50");
  if (more && state.cursor) params.set("cursor", state.cursor);
  try {
    const page = await (await api("/v1/events?" + params)).json();
    const body = $("#events tbody");
    if (!more) body.replaceChildren();
    for (const e of page.events) body.append(row(e, false));
    state.cursor = page.next_cursor;
    $("#more").hidden = !page.next_cursor;
    status(body.children.length + " events" + (page.next_cursor ? " (more below)" : ""));
  } catch (error) { status(error.message, true); }
}

async function counts() {
  try {
    const c = await (await api("/v1/sources/counts")).json();
    const list = $("#counts");
    list.replaceChildren();
    const select = $("#filters").elements.source;
    const chosen = select.value;
    select.replaceChildren(el("option", "all"));
    select.firstChild.value = "";
    for (const [source, n] of Object.entries(c.counts)) {
      const li = el("li");
      li.append(el("span", source), el("strong", n));
      list.append(li);
      select.append(el("option", source));
    }
    select.value = chosen;
  } catch (error) { status(error.message, true); }
}

// A hex dump: offset, 16 bytes, their printable characters.
function hexdump(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const chunk = bytes.slice(i, i + 16);
    const hex = Array.from(chunk, (b) => b.toString(16).padStart(2, "0")).join(" ");
    const text = Array.from(chunk, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(i.toString(16).padStart(8, "0") + "  " + hex.padEnd(48) + "  " + text);
  }
  return lines.join("\n");
}

function showBody(event) {
  let kind = "text", text = event.body;
  if (event.body_encoding === "base64") {
    kind = "binary (hex)";
    text = hexdump(Uint8Array.from(atob(event.body), (c) => c.charCodeAt(0)));
  } else {
    try { text = JSON.stringify(JSON.parse(event.body), null, 2); kind = "JSON"; } catch (_) { /* plain text */ }
  }
  $("#body-kind").textContent = "(" + kind + ", " + event.body_size + " bytes)";
  $("#body").textContent = text;
}

async function openEvent(id) {
  try {
    const event = await (await api("/v1/events/" + encodeURIComponent(id))).json();
    state.selected = event;
    for (const tr of document.querySelectorAll("#events tbody tr")) tr.classList.toggle("selected", tr.dataset.id === id);
    $("#detail-title").textContent = event.id;
    const v = event.verification;
    const meta = [
      ["Source", event.source], ["Type", event.event_type || "-"], ["Received", event.received_at],
      ["Request", event.method + " " + event.path + (event.query ? "?" + event.query : "")],
      ["Client", event.client_addr], ["Content type", event.content_type || "-"],
      ["Dedup key", event.dedup_key || "-"],
      ["Verification", v.scheme + ": " + (v.verified ? "verified" : "not verified") + (v.verified ? " (secret #" + v.secret_index + ")" : "")],
      ["Kafka", event.kafka.topic + " / partition " + event.kafka.partition + " / offset " + event.kafka.offset],
      ["Indexed", event.indexed_at]];
    const dl = $("#meta");
    dl.replaceChildren();
    for (const [k, value] of meta) dl.append(el("dt", k), el("dd", value));
    const headers = $("#headers tbody");
    headers.replaceChildren();
    for (const h of event.headers) {
      const tr = el("tr");
      tr.append(el("td", h.name), el("td", h.value !== undefined ? h.value : "base64: " + h.value_base64));
      headers.append(tr);
    }
    showBody(event);
    $("#replay").hidden = !state.scopes.includes("replay");
    $("#replay-result").textContent = "";
    $("#detail").hidden = false;
  } catch (error) { status(error.message, true); }
}

async function replay() {
  const id = state.selected && state.selected.id;
  if (!id) return;
  $("#replay-result").textContent = "Replaying…";
  try {
    const ack = await (await api("/v1/events/" + encodeURIComponent(id) + "/replay", { method: "POST" })).json();
    $("#replay-result").textContent = "Replayed to " + ack.topic + " / partition " + ack.partition + " / offset " + ack.offset;
  } catch (error) { $("#replay-result").textContent = "Replay failed: " + error.message; }
}

// The live tail: server-sent events read through fetch (EventSource cannot send the token header).
async function startLive() {
  const controller = new AbortController();
  state.live = controller;
  $("#live").textContent = "Live tail: on";
  try {
    const response = await api("/v1/events/stream?" + filterParams(true), { signal: controller.signal });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    status("Live tail connected");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        liveMessage(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
    status("Live tail ended");
  } catch (error) {
    if (error.name !== "AbortError") status("Live tail: " + error.message, true);
  }
  stopLive();
}

function liveMessage(block) {
  let type = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) type = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (type === "webhook") {
    $("#events tbody").prepend(row(JSON.parse(data), true));
    counts();
  } else if (type === "lagged") {
    status("Live tail skipped " + JSON.parse(data).skipped + " events (too slow); search to see them");
  }
}

function stopLive() {
  if (state.live) state.live.abort();
  state.live = null;
  $("#live").textContent = "Live tail: off";
}

async function start() {
  try {
    const who = await (await api("/v1/whoami")).json();
    state.scopes = who.scopes;
    $("#who").textContent = "scopes: " + who.scopes.join(", ") + (who.sources ? " · sources: " + who.sources.join(", ") : "");
    $("#login").hidden = true;
    $("#console").hidden = false;
    $("#logout").hidden = false;
    await counts();
    await search(false);
  } catch (error) {
    if (error.status === 401) sessionStorage.removeItem(KEY);
    $("#login").hidden = false;
    $("#console").hidden = true;
    status(error.message, true);
    $("#login .hint").textContent = error.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("#token").value.trim();
    if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY);
    $("#token").value = "";
    start();
  });
  $("#logout").addEventListener("click", () => { stopLive(); sessionStorage.removeItem(KEY); location.reload(); });
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); search(false); });
  $("#more").addEventListener("click", () => search(true));
  $("#live").addEventListener("click", () => (state.live ? stopLive() : startLive()));
  $("#close").addEventListener("click", () => { $("#detail").hidden = true; });
  $("#replay").addEventListener("click", replay);
  if (token() !== null) start(); else $("#login").hidden = false;
});
