"use strict";
// The agent console: plain JS on the /v1 JSON API and its Server-Sent Events, no build step.
// Customer text is only ever set with textContent (never parsed as HTML) and sits in <bdi>
// or dir="auto" so that its direction does not spill over what surrounds it. Every word the
// page shows is a msgid of the gettext catalogues, marked _() or N_() for Babel's extractor.
const $ = (id) => document.getElementById(id);
const RIYADH = "Asia/Riyadh";
let lang = localStorage.getItem("omnidesk-lang") || "ar";
let messages = {};
let token = sessionStorage.getItem("omnidesk-token") || "";
let csrf = "";            // a directory login's CSRF token: in memory only (agents/login.py)
let me = null;
let current = null;       // the open ticket's view
let customerDoc = null;
let templates = {};
let events = null;
let lists = { mine: [], recent: [] };
let cursor = -1;          // j/k position in the visible ticket lists
const seenAt = new Map(); // ticket id -> when first listed (new ones are marked for a while)
const NEW_FOR_MS = 30000;

function _(msgid) { return messages[msgid] || msgid; }
function N_(msgid) { return msgid; }
function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));
}

// words of the static page (data-t / data-tp attributes), marked here for the extractor
N_("Skip to the ticket"); N_("Omnidesk agent console"); N_("Access token"); N_("Sign in");
N_("User name"); N_("Password"); N_("Or, for an agent of the configuration:");
N_("Search tickets"); N_("Search tickets (/)"); N_("Presence"); N_("online"); N_("away");
N_("offline"); N_("Shortcuts (?)"); N_("Sign out"); N_("My queues"); N_("Queue");
N_("Waiting"); N_("At risk"); N_("Breached"); N_("Take next (t)"); N_("Search results");
N_("Close search"); N_("My tickets"); N_("In my queues"); N_("Status"); N_("Priority");
N_("Channel"); N_("Tag"); N_("Sort"); N_("Pick a ticket, or take the next one (t).");
N_("Conversation"); N_("Reply (r)"); N_("Internal note (n)"); N_("Canned reply");
N_("Insert"); N_("Message"); N_("Send (Ctrl+Enter)"); N_("Actions"); N_("Pending reason");
N_("Set pending (p)"); N_("Transfer to"); N_("Transfer reason"); N_("Reason");
N_("Transfer"); N_("Change priority"); N_("Add tag"); N_("Add"); N_("Merge into");
N_("Merge"); N_("Resolve (e)"); N_("Reopen"); N_("SLA"); N_("Customer");
N_("Why this queue"); N_("Live"); N_("Keyboard shortcuts"); N_("Close (Esc)");

const LABELS = {
  new: N_("new"), open: N_("open"), pending_customer: N_("pending"), resolved: N_("resolved"),
  closed: N_("closed"), low: N_("low"), normal: N_("normal"), high: N_("high"),
  urgent: N_("urgent"), email: N_("e-mail"), whatsapp: N_("WhatsApp"), telegram: N_("Telegram"),
  x: N_("X"), web: N_("web form"), sms: N_("SMS"), phone: N_("phone"), in: N_("incoming"), out: N_("outgoing"),
  note: N_("internal note"), queued: N_("queued"), sent: N_("sent"), delivered: N_("delivered"),
  read: N_("read"), failed: N_("failed"), refused: N_("refused"), retrying: N_("retrying"),
  first_response: N_("first response"), next_response: N_("next response"),
  resolution: N_("resolution"), running: N_("running"), paused: N_("paused"),
  stopped: N_("stopped"), met: N_("met"), breached: N_("breached"), cancelled: N_("cancelled"),
  routed: N_("routed"), transferred: N_("transferred"), escalated: N_("escalated"),
  assigned: N_("assigned"), merged: N_("merged"), consumer: N_("consumer"),
  business: N_("business"), unknown: N_("unknown"),
};
const label = (key) => (key ? _(LABELS[key] || key) : "");
const STATUSES = ["new", "open", "pending_customer", "resolved", "closed"];
const PRIORITIES = ["low", "normal", "high", "urgent"];
const CHANNELS = ["email", "whatsapp", "telegram", "x", "web", "sms", "phone"];
const PRIORITY_RANK = { urgent: 0, high: 1, normal: 2, low: 3 };
const SORTS = { sla: N_("SLA time left"), newest: N_("newest first"), priority: N_("priority") };
const SHORTCUTS = [
  ["j / k", N_("next / previous ticket in the lists")], ["Enter", N_("open the selected ticket")],
  ["t", N_("take the next ticket from my queues")], ["r", N_("write a reply")],
  ["n", N_("write an internal note")], ["p", N_("set pending (pauses the SLA)")],
  ["e", N_("resolve the ticket")], ["/", N_("search")], ["Ctrl+Enter", N_("send")],
  ["?", N_("this help")], ["Esc", N_("close")],
];

// ---------------------------------------------------------------- language and formats

const locale = () => (lang === "ar" ? "ar-SA-u-ca-gregory-nu-arab" : "en-GB");
const num = (n) => new Intl.NumberFormat(lang === "ar" ? "ar-SA-u-nu-arab" : "en").format(n);

function when(iso) {
  // Riyadh time in the Gregorian calendar; the Hijri (Umm al-Qura) date on hover
  const node = document.createElement("time");
  if (!iso) return node;
  const at = new Date(iso);
  node.dateTime = at.toISOString();
  node.textContent = new Intl.DateTimeFormat(locale(), {
    timeZone: RIYADH, dateStyle: "medium", timeStyle: "short" }).format(at);
  node.title = new Intl.DateTimeFormat(
    lang === "ar" ? "ar-SA-u-ca-islamic-umalqura-nu-arab" : "en-u-ca-islamic-umalqura",
    { timeZone: RIYADH, dateStyle: "long" }).format(at);
  const isolated = document.createElement("bdi");
  isolated.append(node);
  return isolated;
}

function duration(seconds) {
  // business time as "3 h 10 min" / "٣ س ١٠ د"
  const s = Math.abs(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return fill(_("{d} d {h} h"), { d: num(d), h: num(h) });
  if (h) return fill(_("{h} h {m} min"), { h: num(h), m: num(m) });
  return fill(_("{m} min"), { m: num(m) });
}

function slaBadge(clock) {
  const b = el("span", "", "sla");
  if (!clock) { b.textContent = "—"; b.classList.add("sla-none"); return b; }
  const left = clock.remaining_seconds;
  if (clock.state === "paused") {
    b.textContent = fill(_("paused, {t} left"), { t: duration(left) });
    b.classList.add("sla-paused");
  } else if (clock.breached || left < 0) {
    b.textContent = fill(_("{t} overdue"), { t: duration(left) });
    b.classList.add("sla-breached");
  } else {
    b.textContent = duration(left);
    b.classList.add(left < 3600 ? "sla-warn" : "sla-ok");
  }
  b.title = label(clock.target);
  return b;
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}
const bdi = (text) => el("bdi", text || "");

async function loadLanguage(next) {
  lang = next;
  localStorage.setItem("omnidesk-lang", lang);
  const r = await fetch("/console/messages/" + lang + ".json");
  messages = r.ok ? await r.json() : {};
  document.documentElement.lang = lang;
  document.documentElement.dir = lang === "ar" ? "rtl" : "ltr";
  document.title = _("Omnidesk agent console");
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = _(node.dataset.t);
  for (const node of document.querySelectorAll("[data-tp]")) node.placeholder = _(node.dataset.tp);
  for (const b of document.querySelectorAll(".lang-toggle")) {
    b.textContent = lang === "ar" ? "English" : "العربية";
    b.lang = lang === "ar" ? "en" : "ar";
  }
  fillChoices();
  const keys = $("help-keys");
  keys.replaceChildren();
  for (const [key, what] of SHORTCUTS) {
    const dt = el("dt"); dt.append(el("kbd", key)); dt.dir = "ltr";
    keys.append(dt, el("dd", _(what)));
  }
  if (me) { renderLists(); if (current) renderTicket(); }
}

function options(select, values, withAll) {
  const keep = select.value;
  select.replaceChildren();
  if (withAll) select.append(new Option(_("all"), ""));
  for (const [value, text] of values) select.append(new Option(text, value));
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}
N_("all");

function fillChoices() {
  options($("f-status"), STATUSES.map((s) => [s, label(s)]), true);
  options($("f-priority"), PRIORITIES.map((p) => [p, label(p)]), true);
  options($("f-channel"), CHANNELS.map((c) => [c, label(c)]), true);
  options($("f-sort"), Object.entries(SORTS).map(([k, v]) => [k, _(v)]), false);
  options($("priority"), PRIORITIES.map((p) => [p, label(p)]), false);
  if (me) {
    options($("f-queue"), me.queues.map((q) => [q, q]), true);
    options($("transfer-queue"), me.transfer_targets.map((q) => [q, q]), false);
  }
  options($("canned"), Object.keys(templates).map((t) => [t, t]), false);
}

// ---------------------------------------------------------------- API

// the API's refusals by their stable code, worded here (its English message is the fallback)
const ERRORS = {
  bad_login: N_("Wrong user name or password."),
  login_locked: N_("Too many failed sign-ins: try again in {seconds} seconds."),
  csrf_refused: N_("The request was refused: reload the page and sign in again."),
  needs_reason: N_("A transfer needs a reason."),
  at_capacity: N_("You are at capacity ({capacity} open tickets)."),
  not_your_queue: N_("Queue {queue} is not one of yours."),
  left_live_desk: N_("{ticket} has left the live desk: it can be viewed, not changed."),
  not_found: N_("There is no ticket {ticket}."),
  already_in_queue: N_("{ticket} is already in {queue}."),
  ticket_closed: N_("{ticket} is closed: reopen it first."),
  no_queue: N_("There is no queue {queue}."),
  empty_text: N_("The text is empty."),
  text_too_long: N_("The text is longer than {limit} characters."),
  reason_too_long: N_("The reason is longer than {limit} characters."),
  attachment_unavailable: N_("This attachment is not available here."),
};
const apiError = (data, status) => (data.code && ERRORS[data.code] ?
  fill(_(ERRORS[data.code]), data.params || {}) : data.error || ("HTTP " + status));

async function api(method, path, body) {
  // a directory login: the HttpOnly cookie goes by itself, the CSRF token in a header
  const opts = { method, headers: csrf ? { "X-CSRF-Token": csrf } : { Authorization: "Bearer " + token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 401) { logout(); throw new Error(_("Signed out: sign in again.")); }
  if (r.status === 204) return null;
  const data = await r.json();
  if (!r.ok) throw new Error(apiError(data, r.status));
  return data;
}

function logout() {
  sessionStorage.removeItem("omnidesk-token");
  if (events) { events.close(); events = null; }
  if (csrf) fetch("/v1/login", { method: "DELETE", headers: { "X-CSRF-Token": csrf } }).catch(() => {});
  else fetch("/v1/session", { method: "DELETE" }).catch(() => {});
  token = ""; csrf = ""; me = null; current = null;
  seenAt.clear();
  $("app").hidden = true;
  $("login").hidden = false;
}

async function login(event) {
  event.preventDefault();
  if ($("user").value.trim()) return directoryLogin();
  token = $("token").value.trim();
  try {
    const who = await api("GET", "/v1/me");
    sessionStorage.setItem("omnidesk-token", token);
    await start(who);
  } catch (e) {
    $("login-error").textContent = e.message;
  }
}

async function directoryLogin() {
  const r = await fetch("/v1/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: $("user").value.trim(), password: $("password").value }) });
  const data = await r.json();
  $("password").value = "";
  if (!r.ok) { $("login-error").textContent = apiError(data, r.status); return; }
  csrf = data.csrf;
  try { await start(await api("GET", "/v1/me")); } catch (e) { $("login-error").textContent = e.message; }
}

async function resume() {
  // directory login on: show its fields; a live session (a reloaded page) goes on
  const state = await (await fetch("/v1/login")).json();
  $("directory-fields").hidden = !state.directory;
  $("token").required = !state.directory;
  if (state.agent && state.csrf) { csrf = state.csrf; start(await api("GET", "/v1/me")).catch(logout); }
}

async function start(who) {
  me = who;
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").textContent = (me.name || me.id);
  templates = (await api("GET", "/v1/templates")).templates || {};
  fillChoices();
  await api("PUT", "/v1/me/presence", { status: "online" });
  $("presence").value = "online";
  if (!csrf) await api("POST", "/v1/session");  // the cookie EventSource and <img> send
  connect();
  await refresh();
}

// ---------------------------------------------------------------- live updates

function connect() {
  if (events) events.close();
  events = new EventSource("/v1/events/stream");
  setLive(false);
  events.onopen = () => setLive(true);
  events.onerror = () => {
    setLive(false);
    if (events.readyState === EventSource.CLOSED) {  // refused (the cookie expired): renew
      setTimeout(() => { if (token) api("POST", "/v1/session").then(connect).catch(() => {}); },
                 2000);
    }
  };
  for (const kind of ["ticket_opened", "message_added", "message_edited", "replied", "noted",
    "delivery", "acknowledged", "status_replied", "assigned", "transferred", "escalated", "status_changed", "merged",
    "priority_changed", "tagged", "sla_warned", "sla_breached", "csat", "customer_changed", "released",
    "guide_answered"]) {
    events.addEventListener(kind, (e) => onEvent(JSON.parse(e.data)));
  }
  events.addEventListener("call_answered", (e) => onCall(JSON.parse(e.data)));
  events.addEventListener("resync", () => { refresh(); if (current) openTicket(current.ticket.id); });
  events.addEventListener("logout", logout);
}

function setLive(up) {
  $("live-state").textContent = up ? _("live") : _("reconnecting…");
  $("live-state").className = "live-state " + (up ? "up" : "down");
}

const EVENT_TEXT = {
  ticket_opened: N_("New ticket {ticket} in {queue}"),
  message_added: N_("New message on {ticket}"),
  replied: N_("{actor} replied on {ticket}"),
  noted: N_("{actor} added a note on {ticket}"),
  delivery: N_("Delivery on {ticket}: {status}"),
  assigned: N_("{ticket} taken by {actor}"),
  transferred: N_("{ticket} transferred by {actor} from {from} to {queue}"),
  escalated: N_("{ticket} escalated to {queue}"),
  status_changed: N_("{ticket} is now {status}"),
  merged: N_("{ticket} merged"),
  priority_changed: N_("{ticket} priority changed"),
  tagged: N_("{ticket} tags changed"),
  sla_warned: N_("SLA warning on {ticket}"),
  sla_breached: N_("SLA breached on {ticket}"),
  csat: N_("Survey answered on {ticket}"),
  customer_changed: N_("Customer of {ticket} changed"),
};

let refreshTimer = null;
function onEvent(ev) {
  const text = EVENT_TEXT[ev.type];
  if (text) {
    const status = ev.type === "delivery" ? delivery(ev.delivery || "") :
      label(ev.status || ev.to || "");
    const actor = (ev.type === "assigned" ? ev.agent || ev.actor : ev.actor) || "";
    const li = el("li", fill(_(text), { ticket: ev.ticket, queue: ev.queue || "",
      actor, from: ev.from || "", status }));
    li.dir = "auto";
    li.dataset.type = ev.type;
    li.dataset.ticket = ev.ticket;
    if (ev.type === "sla_breached" || ev.type === "sla_warned" ||
        (ev.type === "delivery" && /^(failed|refused)/.test(ev.delivery || ""))) {
      li.className = "alert";
    } else if (ev.type === "delivery" && /^retrying/.test(ev.delivery || "")) {
      li.className = "warn";  // a send failed for now and is tried again: not a failure yet
    }
    li.prepend(when(new Date().toISOString()), " ");
    $("live-feed").prepend(li);
    while ($("live-feed").children.length > 30) $("live-feed").lastChild.remove();
  }
  if (current && ev.ticket === current.ticket.id) {
    const mine = ev.actor === me.id;
    if (!mine && (ev.type === "transferred" || ev.type === "escalated")) {
      showBanner(fill(_("{actor} transferred this ticket to {queue}"),
        { actor: ev.actor || "", queue: ev.queue || "" }));
    } else if (ev.type === "assigned" && (ev.agent || ev.actor)) {
      // the holder is ev.agent; ev.actor is who acted (a supervisor, or the assignment itself)
      const holder = ev.agent || ev.actor;
      if (ev.how === "supervisor" && ev.actor && ev.actor !== holder) {
        showBanner(fill(_("{actor} handed this ticket to {agent}"), { actor: ev.actor, agent: holder }));
      } else if (holder !== me.id) {
        showBanner(fill(_("{actor} has taken this ticket"), { actor: holder }));
      }
    }
    openTicket(current.ticket.id, true).catch(() => {});
  }
  if (ev.type === "ticket_opened") awaited.set(ev.ticket, Date.now());
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 150);  // one reload for a burst of events
}

// The ticket list is read from PostgreSQL, which the records writer fills a moment after
// the event: a ticket announced by ticket_opened and not listed yet is read on its own
// (from Redis) and shown, until the list has it (or for a minute).
const awaited = new Map();  // ticket id -> when its ticket_opened came

function urgentClock(clocks) {
  // as the server's brief: the running clock with the least time left, else a paused one
  const live = (Array.isArray(clocks) ? clocks : []).filter((c) => c.state === "running" || c.state === "paused");
  live.sort((a, b) => (a.state === b.state ? a.remaining_seconds - b.remaining_seconds : a.state === "running" ? -1 : 1));
  return live[0] || null;
}

function matchesFilters(t) {
  const want = { queue: $("f-queue").value, status: $("f-status").value, channel: $("f-channel").value };
  const tag = $("f-tag").value.trim();
  return Object.entries(want).every(([k, v]) => !v || t[k] === v) && (!tag || (t.tags || []).includes(tag));
}

async function addAnnounced() {
  const listed = new Set(lists.recent.map((t) => t.id));
  const missing = [];
  for (const [id, at] of awaited) {
    if (listed.has(id) || Date.now() - at > 60000) awaited.delete(id);
    else missing.push(id);
  }
  for (const id of missing) {
    try {
      const v = await api("GET", "/v1/tickets/" + encodeURIComponent(id));
      const t = v.ticket;
      if (!matchesFilters(t) || lists.recent.some((x) => x.id === t.id)) continue;
      lists.recent.unshift({ id: t.id, queue: t.queue, status: t.status, priority: t.priority,
        channel: t.channel, subject: t.subject, preview: t.preview, tags: t.tags || [],
        created_at: t.created_at, sla: urgentClock(v.sla) });
    } catch (e) { awaited.delete(id); }
  }
  if (missing.length) renderLists();
}

function showBanner(text) {
  $("banner").textContent = text;
  $("banner").hidden = false;
}

// ---------------------------------------------------------------- lists

// One reload at a time, and one more after it when asked meanwhile: two overlapping ones
// could otherwise finish out of order and leave the older list on the screen.
let refreshing = null;
let refreshAgain = false;
async function refresh() {
  if (refreshing) { refreshAgain = true; return refreshing; }
  refreshing = (async () => {
    do { refreshAgain = false; await refreshOnce(); } while (refreshAgain);
  })();
  try { await refreshing; } finally { refreshing = null; }
}

async function refreshOnce() {
  if (!(token || csrf) || !me) return;
  try {
    const data = await api("GET", "/v1/queues");
    const body = $("queues").querySelector("tbody");
    body.replaceChildren();
    for (const q of data.queues) {
      const tr = el("tr");
      tr.append(el("th", q.queue), el("td", num(q.waiting)),
                el("td", num(q.at_risk), q.at_risk ? "risk" : ""),
                el("td", num(q.breached), q.breached ? "risk" : ""));
      tr.firstChild.scope = "row";
      body.append(tr);
    }
    lists.mine = data.mine;
    const params = new URLSearchParams({ limit: "50" });
    for (const [key, id] of [["queue", "f-queue"], ["status", "f-status"],
                             ["channel", "f-channel"], ["tag", "f-tag"]]) {
      if ($(id).value.trim()) params.set(key, $(id).value.trim());
    }
    lists.recent = (await api("GET", "/v1/tickets?" + params)).tickets;
    renderLists();
    await addAnnounced();
  } catch (e) { $("next-status").textContent = e.message; }
}

function sorted(tickets) {
  const prio = $("f-priority").value;
  const out = tickets.filter((t) => !prio || t.priority === prio);
  const by = $("f-sort").value || "sla";
  const left = (t) => (t.sla ? t.sla.remaining_seconds + (t.sla.state === "paused" ? 1e9 : 0) : 2e9);
  if (by === "sla") out.sort((a, b) => left(a) - left(b));
  else if (by === "priority") out.sort((a, b) => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority]);
  else out.sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  return out;
}

function renderLists() {
  fillList($("mine"), sorted(lists.mine), false);
  fillList($("recent"), sorted(lists.recent), true);
}

function ticketItem(t) {
  const li = el("li");
  li.tabIndex = -1;
  li.dataset.ticket = t.id;
  const top = el("div", "", "line");
  top.append(el("span", t.id, "tid"), " ", bdi(t.subject || t.preview || ""));
  const meta = el("div", "", "meta");
  meta.append(el("span", label(t.channel)), " · ", el("span", label(t.status)), " · ");
  if (t.priority) meta.append(el("span", label(t.priority), "prio-" + t.priority), " · ");
  meta.append(bdi(t.queue), " ");
  for (const tag of t.tags || []) meta.append(el("bdi", tag, "tag"), " ");
  if (t.sla !== undefined) meta.append(slaBadge(t.sla));
  li.append(top, meta);
  li.addEventListener("click", () => openTicket(t.id));
  if (current && current.ticket.id === t.id) li.classList.add("current");
  return li;
}

function fillList(list, tickets, markNew) {
  list.replaceChildren();
  if (!tickets.length) list.append(el("li", _("nothing here"), "meta empty"));
  const now = Date.now();
  for (const t of tickets) {
    const li = ticketItem(t);
    if (markNew) {
      if (!seenAt.has(t.id)) seenAt.set(t.id, list.dataset.loaded ? now : 0);
      if (now - seenAt.get(t.id) < NEW_FOR_MS) li.classList.add("new");
    }
    list.append(li);
  }
  list.dataset.loaded = "1";
}

function moveCursor(step) {
  const items = [...document.querySelectorAll("#hits li[data-ticket], #mine li[data-ticket], #recent li[data-ticket]")]
    .filter((li) => li.offsetParent !== null);
  if (!items.length) return;
  cursor = Math.max(0, Math.min(items.length - 1, cursor + step));
  items[cursor].focus();
}

async function search(event) {
  event.preventDefault();
  const q = $("search").value.trim();
  if (!q) return;
  $("search-results").hidden = false;
  const list = $("hits");
  list.replaceChildren();
  try {
    const r = await api("GET", "/v1/search?q=" + encodeURIComponent(q));
    if (!r.hits.length) list.append(el("li", _("no match"), "meta empty"));
    for (const h of r.hits) {
      const li = ticketItem({ id: h.ticket, subject: h.subject, channel: h.channel,
        status: h.status, queue: h.queue, tags: [] });
      const snip = el("div", h.snippet, "snippet");
      snip.dir = "auto";
      li.append(snip);
      list.append(li);
    }
  } catch (e) { list.append(el("li", e.message, "error")); }
}

// ---------------------------------------------------------------- the ticket

let opening = 0;  // the latest view asked for: an older answer arriving late is dropped
async function openTicket(id, live) {
  const asked = ++opening;
  const v = await api("GET", "/v1/tickets/" + encodeURIComponent(id));
  if (asked !== opening) return;
  const switched = !current || current.ticket.id !== v.ticket.id;
  current = v;
  if (switched) {
    $("banner").hidden = true;
    customerDoc = null;
    $("canned-preview").hidden = true;
  }
  $("empty").hidden = true;
  $("ticket").hidden = false;
  renderTicket();
  renderLists();
  if (switched || !live) loadCustomer(v);
}

function delivery(text) {
  // "failed: <reason>" -> the status word translated, the reason as it came; the count the
  // pipeline adds ("(attempt 2 of 8)" while retrying, "(after 8 attempts)") in the agent's words
  if (!text) return "";
  const [word, ...rest] = text.split(":");
  let reason = rest.join(":").trim();
  let count = "";
  const attempt = reason.match(/\s*\(attempt (\d+) of (\d+)\)$/);
  const after = reason.match(/\s*\(after (\d+) attempts\)$/);
  if (attempt) {
    reason = reason.slice(0, attempt.index);
    count = fill(_("attempt {n} of {max}"), { n: attempt[1], max: attempt[2] });
  } else if (after) {
    reason = reason.slice(0, after.index);
    count = fill(_("after {n} attempts"), { n: after[1] });
  }
  return label(word.trim()) + (reason ? ": " + reason : "") + (count ? " (" + count + ")" : "");
}

function renderTicket() {
  const v = current;
  const t = v.ticket;
  $("t-title").replaceChildren(el("span", t.id, "tid"), " ", bdi(t.subject || t.preview || ""));
  const meta = $("t-meta");
  meta.replaceChildren();
  for (const [name, value] of [[_("Channel"), label(t.channel)], [_("Queue"), t.queue],
    [_("Status"), label(t.status)], [_("Priority"), label(t.priority)],
    [_("Assignee"), t.assignee || "—"]]) {
    const chip = el("span", "", "chip");
    chip.append(el("span", name + ": ", "k"), bdi(value));
    meta.append(chip);
  }
  N_("Assignee");
  // a message already shown and unchanged keeps its node: no flicker, and its image is not
  // fetched again on every live event
  const thread = $("thread");
  const shown = new Map([...thread.querySelectorAll(".msg")].map((n) => [n.dataset.key, n]));
  const keep = new Set();
  let before = null;
  for (const m of [...v.messages].reverse()) {
    const key = [m.id, m.delivery || "", m.text.length, lang].join("|");
    const node = shown.get(key) || messageBox(m);
    node.dataset.key = key;
    keep.add(node);
    if (node.nextSibling !== before || node.parentNode !== thread) thread.insertBefore(node, before);
    before = node;
  }
  for (const n of shown.values()) if (!keep.has(n)) n.remove();
  $("priority").value = t.priority;
  const tags = $("tags");
  tags.replaceChildren();
  for (const tag of t.tags || []) {
    const b = el("button", "", "tag-chip");
    b.type = "button";
    b.append(bdi(tag), " ×");
    b.setAttribute("aria-label", fill(_("Remove tag {tag}"), { tag }));
    b.addEventListener("click", () => act(() => api("POST", ticketPath("tags"), { remove: [tag] })));
    tags.append(b);
  }
  const merge = $("merge-into");
  options(merge, (v.other_tickets || []).filter((o) => !o.restricted && o.status !== "closed")
    .map((o) => [o.id, o.id + " · " + (o.subject || label(o.channel) || "")]), false);
  $("merge").disabled = merge.options.length === 0;
  $("resolve").disabled = t.status === "resolved" || t.status === "closed";
  $("reopen").disabled = !["resolved", "closed", "pending_customer"].includes(t.status);
  renderLimits();
  renderSla(v);
  renderRouting(v.routing);
  renderCustomer();
}

function messageBox(m) {
  const box = el("div", undefined, "msg " + m.direction);
  box.dataset.direction = m.direction;
  box.dataset.id = m.id;
  const meta = el("div", "", "meta");
  meta.append(el("span", label(m.direction), "dir-label"), " · ", el("span", label(m.channel)),
    " · ", bdi(m.author), " · ", when(m.created_at));
  if (m.delivery) {
    const d = el("span", delivery(m.delivery), "delivery d-" + m.delivery.split(":")[0].trim());
    d.dir = "auto";
    meta.append(" · ", d);
  }
  const text = el("div", m.text, "text");
  text.dir = "auto";  // Arabic right-to-left, English left-to-right, per message
  box.append(meta, text);
  if (m.attachments && m.attachments.length) {
    const files = el("div", "", "files");
    for (const a of m.attachments) files.append(attachmentBox(a));
    box.append(files);
  }
  return box;
}

// why an attachment cannot be had, by the server's stable code (attachments.unavailable)
const UNAVAILABLE = {
  not_a_file: N_("a shared location or contact, not a file"),
  not_archived: N_("the original message was not archived"),
  archive_gone: N_("the original message is no longer kept (archive retention or erasure)"),
  form_listed_only: N_("the web form only listed this file; it did not send it"),
  upload_gone: N_("the uploaded file is no longer kept (archive retention or erasure)"),
  no_file_id: N_("the channel gave no file id"),
  connector_not_running: N_("the {channel} connector {account} is not running here"),
  not_downloadable: N_("kept on {channel}'s servers; downloading from there is not built yet"),
};

function attachmentBox(a) {
  const fig = el("figure", "", "file");
  const caption = el("figcaption");
  caption.append(bdi(a.filename || _("attachment")), " ",
    el("span", a.size ? "(" + num(Math.ceil(a.size / 1024)) + " KB)" : "", "meta"));
  N_("attachment");
  if (!a.available) {
    const why = UNAVAILABLE[a.reason_code];
    const params = { ...(a.reason_params || {}) };
    if (params.channel) params.channel = label(params.channel);
    fig.append(caption, el("div", why ? fill(_(why), params) :
      a.reason || _("not available"), "meta"));
    N_("not available");
    return fig;
  }
  const type = (a.content_type || "").toLowerCase();
  if (/^image\/(png|jpeg|gif|webp)$/.test(type)) {
    const img = new Image();
    img.src = a.url;
    img.alt = a.filename || _("attachment");
    img.className = "thumb";
    img.loading = "lazy";
    fig.append(img);
  } else if (type === "application/pdf") {
    const frame = document.createElement("iframe");
    frame.src = a.url;
    frame.title = a.filename || "PDF";
    frame.className = "pdf";
    fig.append(frame);
  }
  const open = el("a", _("open file"));
  open.href = a.url;
  open.target = "_blank";
  open.rel = "noopener";
  const save = el("a", _("download"));
  save.href = a.url + "?download=1";
  fig.append(caption, open, " · ", save);
  return fig;
}

function renderLimits() {
  const t = current.ticket;
  const len = $("reply-text").value.length;
  const out = [];
  if (t.channel === "telegram") {
    out.push(fill(_("Telegram: {n} of 4096 characters"), { n: num(len) }));
    $("limits").classList.toggle("risk", len > 4096);
  } else if (t.channel === "whatsapp") {
    const last = [...current.messages].reverse().find((m) => m.direction === "in");
    const ends = last ? new Date(last.created_at).getTime() + 24 * 3600 * 1000 : 0;
    const left = (ends - Date.now()) / 1000;
    out.push(left > 0 ? fill(_("WhatsApp: the 24 h window closes in {t}"), { t: duration(left) })
      : _("WhatsApp: the 24 h window is closed; only a template message can be sent"));
    $("limits").classList.toggle("risk", left <= 0);
  } else if (t.channel === "x") {
    out.push(fill(_("X: {n} of 10000 characters"), { n: num(len) }));
  }
  $("limits").textContent = out.join(" ");
}

// why a clock is paused: the status it waits in, and the agent's words from the ticket's
// latest pending event (the SLA state names the status only: erasure blanks the events)
function pauseWords(c, v) {
  if (c.state !== "paused" || !c.paused_reason) return "";
  const words = c.paused_reason === "pending_customer" && v.pending_reason ? ": " + v.pending_reason : "";
  return " (" + label(c.paused_reason) + words + ")";
}

function renderSla(v) {
  const box = $("sla");
  box.replaceChildren();
  if (!Array.isArray(v.sla) || !v.sla.length) {
    box.append(el("p", _("No SLA clocks on this ticket."), "meta"));
    return;
  }
  const table = el("table");
  for (const c of v.sla) {
    const tr = el("tr");
    tr.dataset.target = c.target;
    tr.dataset.state = c.state;
    const head = el("th", label(c.target));
    head.scope = "row";
    const state = el("td", label(c.outcome || c.state) + pauseWords(c, v));
    const due = el("td");
    if (c.due_at) due.append(when(c.due_at));
    const left = el("td");
    if (c.state !== "stopped") left.append(slaBadge(c));
    tr.append(head, state, due, left);
    table.append(tr);
  }
  box.append(table);
  const x = v.sla_explained;  // the server's explanation as data, worded here
  if (x && Array.isArray(x.clocks) && x.clocks.length) {
    const why = el("details");
    why.id = "sla-why";
    why.append(el("summary", _("Why these due times (policy, calendar, pauses)")));
    const list = el("ul");
    list.append(el("li", fill(_("Policy {policy}, calendar {calendar}"),
      { policy: x.policy, calendar: x.calendar })));
    for (const c of x.clocks) {
      const item = el("li", fill(_("{target}: target {time}, {banked} used, {state}"), {
        target: label(c.target), time: duration(c.target_seconds),
        banked: duration(c.banked_seconds), state: label(c.outcome || c.state) + pauseWords(c, v) }));
      const pauses = el("ul");
      for (const p of c.pauses || []) {
        pauses.append(el("li", fill(_("paused ({reason}): {wall} in all, {business} of working time"),
          { reason: label(p.reason), wall: duration(p.seconds), business: duration(p.business_seconds) })));
      }
      if (pauses.children.length) item.append(pauses);
      list.append(item);
    }
    why.append(list);
    box.append(why);
  }
}

function renderRouting(r) {
  const box = $("routing");
  box.replaceChildren();
  if (!r) return;
  if (r.rule && !r.default) {
    box.append(el("p", fill(_("Matched rule {rule}"), { rule: r.rule })));
    if (r.description) box.append(el("p", r.description, "meta"));
    const pre = el("pre", JSON.stringify({ when: r.when, then: r.then }, null, 1));
    pre.dir = "ltr";
    box.append(pre);
  } else {
    box.append(el("p", fill(_("No rule matched: the default route to {queue}"),
      { queue: r.default_queue })));
  }
  const list = el("ul", "", "trace");
  for (const e of r.events || []) {
    const li = el("li");
    li.append(el("span", label(e.type)), " ", bdi([e.from, e.queue].filter(Boolean).join(" → ")),
      " ", bdi(e.actor || ""), " ", bdi(e.reason || ""));
    list.append(li);
  }
  box.append(list);
  box.append(el("p", _("The router keeps the rule that matched, not each condition it tested."), "meta"));
}

async function loadCustomer(v) {
  const cid = v.ticket.customer_id;
  try {
    customerDoc = await api("GET", "/v1/customers/" + encodeURIComponent(cid));
  } catch (e) {
    customerDoc = { error: e.message };
  }
  if (current && current.ticket.customer_id === cid) renderCustomer();
}

function renderCustomer() {
  const box = $("customer");
  box.replaceChildren();
  const c = (customerDoc && customerDoc.customer) || current.customer || {};
  const name = el("p", "", "cname");
  name.append(bdi(c.name || "—"), " ", el("span", c.id || "", "meta"));
  box.append(name);
  const facts = el("dl");
  const fact = (k, value) => { if (value) { const dd = el("dd"); dd.append(bdi(value)); facts.append(el("dt", k), dd); } };
  fact(_("Segment"), label(c.segment));
  fact(_("Region"), c.region);
  fact(_("Tags"), (c.tags || []).join("، "));
  box.append(facts);
  if (!customerDoc) return;
  if (customerDoc.error) {
    box.append(el("p", fill(_("The full record is not available: {error}"), { error: customerDoc.error }), "meta"));
    return;
  }
  const ids = el("ul", "", "identities");
  for (const i of customerDoc.identities || []) {
    const li = el("li");
    li.append(el("span", label(i.kind) + ": "), bdi(i.value));
    ids.append(li);
  }
  box.append(el("h3", _("Identities")), ids);
  const csat = el("ul");
  for (const s of customerDoc.csat || []) {
    const li = el("li");
    li.append(el("span", s.score === null ? "—" : num(s.score) + "/5", "score"), " ",
      el("span", s.ticket, "tid"), " ", when(s.at), " ", bdi(s.comment));
    csat.append(li);
  }
  if (!customerDoc.csat || !customerDoc.csat.length) csat.append(el("li", _("no survey answers"), "meta"));
  box.append(el("h3", _("Satisfaction (CSAT)")), csat);
  const past = el("ul", "", "tickets past");
  for (const t of customerDoc.tickets || []) {
    const li = el("li");
    li.dataset.ticket = t.id;
    li.append(el("span", t.id, "tid"), " ", bdi(t.subject || ""), " ",
      el("span", label(t.channel) + " · " + label(t.status) + (t.in_redis ? "" : " · " + _("archived")), "meta"));
    li.addEventListener("click", () => openTicket(t.id));
    past.append(li);
  }
  box.append(el("h3", _("All tickets")), past);
}
N_("Segment"); N_("Region"); N_("Tags"); N_("Identities"); N_("Satisfaction (CSAT)");
N_("All tickets"); N_("archived"); N_("no survey answers"); N_("open file"); N_("download");
N_("phone"); N_("handle"); N_("cr_number");

// ---------------------------------------------------------------- actions

const ticketPath = (what) => "/v1/tickets/" + encodeURIComponent(current.ticket.id) + "/" + what;

async function act(fn, done) {
  $("action-status").textContent = "";
  $("action-status").classList.remove("error");
  try {
    await fn();
    if (done) $("action-status").textContent = _(done);
    if (current) await openTicket(current.ticket.id, true);
  } catch (e) {
    $("action-status").textContent = e.message;
    $("action-status").classList.add("error");
  }
  refresh();
}

function mode(which) {
  $("mode-" + which).checked = true;
  $("reply-text").classList.toggle("note", which === "note");
  $("reply").textContent = which === "note" ? _("Add note (Ctrl+Enter)") : _("Send (Ctrl+Enter)");
  $("reply-text").focus();
}
N_("Add note (Ctrl+Enter)");

async function send() {
  const text = $("reply-text").value;
  if (!text.trim() || !current) return;
  const note = $("mode-note").checked;
  await act(async () => {
    await api("POST", ticketPath(note ? "notes" : "reply"), { text });
    $("reply-text").value = "";
    $("canned-preview").hidden = true;
  }, note ? N_("Note added.") : N_("Reply sent to the outbox."));
}

async function insertCanned() {
  const name = $("canned").value;
  if (!name || !current) return;
  await act(async () => {
    const r = await api("GET", ticketPath("template-preview?template=" + encodeURIComponent(name)));
    $("canned-preview").textContent = r.text;
    $("canned-preview").hidden = false;
    const box = $("reply-text");
    box.value = box.value ? box.value + "\n" + r.text : r.text;
    mode("reply");
    renderLimits();
  });
}

function bind() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  for (const b of document.querySelectorAll(".lang-toggle")) {
    b.addEventListener("click", () => loadLanguage(lang === "ar" ? "en" : "ar"));
  }
  $("presence").addEventListener("change", () =>
    act(() => api("PUT", "/v1/me/presence", { status: $("presence").value })));
  $("next").addEventListener("click", takeNext);
  $("search-form").addEventListener("submit", search);
  $("search-close").addEventListener("click", () => { $("search-results").hidden = true; });
  for (const id of ["f-queue", "f-status", "f-channel", "f-tag"]) $(id).addEventListener("change", refresh);
  for (const id of ["f-priority", "f-sort"]) $(id).addEventListener("change", renderLists);
  $("mode-reply").addEventListener("change", () => mode("reply"));
  $("mode-note").addEventListener("change", () => mode("note"));
  $("reply").addEventListener("click", send);
  $("reply-text").addEventListener("input", renderLimits);
  $("canned-insert").addEventListener("click", insertCanned);
  $("resolve").addEventListener("click", () => act(() => api("POST", ticketPath("resolve")), N_("Resolved.")));
  $("reopen").addEventListener("click", () => act(() => api("POST", ticketPath("reopen")), N_("Reopened.")));
  $("pending").addEventListener("click", () => act(async () => {
    const reason = $("pending-reason").value.trim();
    if (!reason) throw new Error(_("Say why the ticket waits."));
    await api("POST", ticketPath("pending"), { reason });  // one request: status and reason
    $("pending-reason").value = "";
  }, N_("Pending: the SLA clock is paused.")));
  $("transfer").addEventListener("click", () => act(async () => {
    await api("POST", ticketPath("transfer"),
      { queue: $("transfer-queue").value, reason: $("transfer-reason").value });
    $("transfer-reason").value = "";
  }, N_("Transferred.")));
  $("priority-set").addEventListener("click", () =>
    act(() => api("POST", ticketPath("priority"), { priority: $("priority").value }), N_("Priority changed.")));
  $("tag-add-button").addEventListener("click", () => act(async () => {
    const tag = $("tag-add").value.trim();
    if (!tag) return;
    await api("POST", ticketPath("tags"), { add: [tag] });
    $("tag-add").value = "";
  }, N_("Tags changed.")));
  $("merge").addEventListener("click", () =>
    act(() => api("POST", ticketPath("merge"), { into: $("merge-into").value }), N_("Merged.")));
  $("help-button").addEventListener("click", () => help(true));
  $("help-close").addEventListener("click", () => help(false));
  document.addEventListener("keydown", onKey);
  $("reply-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); }
  });
}
N_("Say why the ticket waits.");

async function takeNext() {
  $("next-status").textContent = "";
  try {
    const r = await api("POST", "/v1/claims", {});
    if (!r) { $("next-status").textContent = _("Nothing is waiting in your queues."); return; }
    await openTicket(r.ticket.id);
    refresh();
  } catch (e) { $("next-status").textContent = e.message; }
}

let focusBeforeHelp = null;
function help(show) {
  if (show === !$("help").hidden) return;
  $("help").hidden = !show;
  if (show) {
    focusBeforeHelp = document.activeElement;
    $("help-close").focus();
  } else if (focusBeforeHelp) {
    focusBeforeHelp.focus();  // back where the agent was
  }
}

function onKey(e) {
  if (e.key === "Escape") { help(false); return; }
  const target = e.target;
  const typing = target.matches && target.matches("input, textarea, select");
  if (typing || e.ctrlKey || e.metaKey || e.altKey || !me) return;
  const keys = {
    "?": () => help(true), "/": () => $("search").focus(), j: () => moveCursor(1),
    k: () => moveCursor(-1), t: takeNext,
    Enter: () => { if (target.dataset && target.dataset.ticket) openTicket(target.dataset.ticket); },
    r: () => current && mode("reply"), n: () => current && mode("note"),
    p: () => current && $("pending-reason").focus(),
    e: () => current && !$("resolve").disabled && $("resolve").click(),
  };
  if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
}

bind();
loadLanguage(lang).then(() => {
  if (token) api("GET", "/v1/me").then(start).catch(logout);
  else resume().catch(() => {});
});
setInterval(() => { if (token || csrf) api("POST", "/v1/me/heartbeat").catch(() => {}); }, 30000);
// business-time countdowns move only inside working hours: the server recomputes them

// ---------------------------------------------------------------- calls (screen-pop)

// A call this agent answered (event call_answered, sent to its console alone): the caller's
// customer, open tickets and last contacts, and what the call becomes (POST .../disposition).
async function onCall(ev) {
  let pop;
  try {
    pop = await api("GET", "/v1/cti/calls/" + encodeURIComponent(ev.call));
  } catch (e) { showBanner(e.message); return; }
  renderCall(pop);
}

function callAction(key, body, box) {
  const path = "/v1/cti/calls/" + encodeURIComponent(key) + "/disposition";
  return async () => {
    try {
      const done = (await api("POST", path, body)).call;
      box.replaceChildren(el("p", done.ticket_id ?
        fill(_("Call saved on {ticket}."), { ticket: done.ticket_id }) : _("Call logged.")));
      if (done.ticket_id) openTicket(done.ticket_id).catch(() => {});
      refresh();
    } catch (e) { box.append(el("p", e.message, "error")); }
  };
}

function renderCall(pop) {
  let box = $("call-pop");
  if (!box) {
    box = el("aside", null, "call-pop");
    box.id = "call-pop";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-live", "assertive");
    document.body.append(box);
  }
  box.replaceChildren();
  const call = pop.call;
  const who = pop.customer ? (pop.customer.name || pop.customer.id) : _("unknown caller");
  const head = el("h2", _("Incoming call") + ": ");
  head.append(bdi(who), " ", bdi(call.caller));
  box.append(head);
  const actions = el("div", null, "call-actions");
  const button = (text, body) => {
    const b = el("button", _(text));
    b.type = "button";
    b.addEventListener("click", callAction(call.call, body, box));
    return b;
  };
  if (pop.open_tickets.length) {
    box.append(el("h3", _("Open tickets")));
    const ul = el("ul");
    for (const t of pop.open_tickets) {
      const li = el("li");
      li.append(bdi(t.id), " ", label(t.channel), " ", bdi(t.subject), " ",
        button(N_("Attach the call"), { action: "attach", ticket: t.id }));
      ul.append(li);
    }
    box.append(ul);
  }
  if (pop.recent.length) {
    box.append(el("h3", _("Last contacts")));
    const ul = el("ul");
    for (const t of pop.recent) {
      const li = el("li");
      li.append(when(t.updated_at), " ", label(t.channel), " ", bdi(t.id), " ", label(t.status));
      ul.append(li);
    }
    box.append(ul);
  }
  actions.append(button(N_("Open a ticket"), { action: "ticket" }),
    button(N_("Log only"), { action: "log" }));
  const close = el("button", _("Close (Esc)"));
  close.type = "button";
  close.addEventListener("click", () => box.remove());
  actions.append(close);
  box.append(actions);
}
setInterval(() => { if ((token || csrf) && me) refresh(); }, 60000);
