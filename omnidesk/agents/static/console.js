"use strict";
// Everything that came from customers is set with textContent: never parsed as HTML; the
// API has taken out bidi overrides, and subjects and names sit in <bdi> so that their
// direction does not spill over what surrounds them.
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("omnidesk-token") || "";
let current = null;
// when each listed ticket was first listed (0: on the first load), to mark new ones for a
// while: two refreshes close together must not clear the mark before anyone sees it
let firstListed = null;
const NEW_FOR_MS = 30000;

async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 401) { logout(); throw new Error("signed out"); }
  if (r.status === 204) return null;
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
  return data;
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function logout() {
  sessionStorage.removeItem("omnidesk-token");
  token = "";
  firstListed = null;  // the next agent's first list is not "new"
  $("app").hidden = true;
  $("login").hidden = false;
}

async function login(event) {
  event.preventDefault();
  token = $("token").value.trim();
  try {
    const me = await api("GET", "/v1/me");
    sessionStorage.setItem("omnidesk-token", token);
    start(me);
  } catch (e) {
    $("login-error").textContent = e.message;
  }
}

async function start(me) {
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").textContent = (me.name || me.id) + " (" + me.role + ")";
  const select = $("transfer-queue");
  select.replaceChildren();
  for (const q of me.transfer_targets || []) select.append(new Option(q, q));
  await api("PUT", "/v1/me/presence", { status: "online" });
  $("presence").value = "online";
  refresh();
}

async function refresh() {
  if (!token) return;
  try {
    const data = await api("GET", "/v1/queues");
    const body = $("queues").querySelector("tbody");
    body.replaceChildren();
    for (const q of data.queues) {
      const tr = el("tr");
      tr.append(el("td", q.queue), el("td", String(q.waiting)),
                el("td", String(q.at_risk), q.at_risk ? "risk" : ""),
                el("td", String(q.breached), q.breached ? "risk" : ""));
      body.append(tr);
    }
    fillList($("mine"), data.mine, false);
    const recent = await api("GET", "/v1/tickets?limit=20");
    fillList($("recent"), recent.tickets, true);
  } catch (e) { /* shown on the next action */ }
}

function fillList(list, tickets, markNew) {
  list.replaceChildren();
  const now = Date.now();
  const firstLoad = firstListed === null;
  if (markNew && firstLoad) firstListed = new Map();
  for (const t of tickets) {
    const li = el("li", t.id + " · " + t.status + " · ");
    li.append(el("bdi", t.subject || t.preview || ""));  // its own direction, isolated
    li.dir = "auto";
    li.dataset.ticket = t.id;
    if (markNew) {
      if (!firstListed.has(t.id)) firstListed.set(t.id, firstLoad ? 0 : now);
      if (now - firstListed.get(t.id) < NEW_FOR_MS) li.className = "new";
    }
    li.addEventListener("click", () => openTicket(t.id));
    list.append(li);
  }
}

async function openTicket(id) {
  const v = await api("GET", "/v1/tickets/" + encodeURIComponent(id));
  current = v.ticket.id;
  $("empty").hidden = true;
  $("ticket").hidden = false;
  $("t-title").replaceChildren(v.ticket.id + " — ",
    el("bdi", v.ticket.subject || v.ticket.preview || ""));
  $("t-meta").textContent = [v.ticket.channel, v.ticket.queue, v.ticket.status,
    v.ticket.priority, "assignee: " + (v.ticket.assignee || "-")].join(" · ");
  const c = v.customer || {};
  // other tickets in queues this agent cannot open come as an id only ("restricted")
  const others = v.other_tickets.map((o) => o.id + (o.restricted ? " (restricted)" :
    " (" + o.channel + ", " + o.status + ")"));
  $("t-customer").replaceChildren(el("bdi", c.name || ""), " " + (c.id || "") +
    (others.length ? " · other tickets: " + others.join(", ") : ""));
  const thread = $("thread");
  thread.replaceChildren();
  for (const m of v.messages) {
    const box = el("div", undefined, "msg " + m.direction);
    box.dataset.direction = m.direction;
    const meta = el("div", m.direction + " · " + m.author + " · " + m.created_at +
      (m.delivery ? " · " + m.delivery : ""), "meta");
    const text = el("div", m.text, "text");
    text.dir = "auto";  // Arabic right-to-left, English left-to-right, per message
    box.append(meta, text);
    thread.append(box);
  }
}

async function act(fn) {
  $("action-status").textContent = "";
  try { await fn(); } catch (e) { $("action-status").textContent = e.message; }
  refresh();
}

$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
$("presence").addEventListener("change", () =>
  act(() => api("PUT", "/v1/me/presence", { status: $("presence").value })));
$("next").addEventListener("click", () => act(async () => {
  const r = await api("POST", "/v1/claims", {});
  if (!r) { $("next-status").textContent = "لا يوجد - nothing waiting"; return; }
  $("next-status").textContent = r.ticket.id;
  await openTicket(r.ticket.id);
}));
$("reply").addEventListener("click", () => act(async () => {
  await api("POST", "/v1/tickets/" + encodeURIComponent(current) + "/reply",
            { text: $("reply-text").value });
  $("reply-text").value = "";
  await openTicket(current);
  $("action-status").textContent = "sent to the outbox";
}));
$("resolve").addEventListener("click", () => act(async () => {
  await api("POST", "/v1/tickets/" + encodeURIComponent(current) + "/resolve");
  await openTicket(current);
  $("action-status").textContent = "resolved";
}));
$("transfer").addEventListener("click", () => act(async () => {
  await api("POST", "/v1/tickets/" + encodeURIComponent(current) + "/transfer",
            { queue: $("transfer-queue").value, reason: $("transfer-reason").value });
  $("ticket").hidden = true;
  $("empty").hidden = false;
  $("action-status").textContent = "transferred";
}));

setInterval(refresh, 3000);   // new tickets appear without a reload
setInterval(() => { if (token) api("POST", "/v1/me/heartbeat").catch(() => {}); }, 30000);
if (token) api("GET", "/v1/me").then(start).catch(logout);
