"use strict";
// The supervisor's dashboard: one fetch()-read Server-Sent Events stream of snapshots
// (/v1/dashboard/stream), reconnected on its own. Every word comes from the server's
// catalogues; customer text is only ever set as textContent. Login: a token typed in, or
// else the directory login's session (its HttpOnly cookie; its CSRF token from GET /v1/login).
(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) sessionStorage.setItem("odtoken", hash.get("token"));
  if (hash.get("lang")) localStorage.setItem("odlang", hash.get("lang"));
  if (hash.size) history.replaceState(null, "", location.pathname);

  let lang = localStorage.getItem("odlang") === "en" ? "en" : "ar";
  let texts = null;          // labels, errors, levels, presence of the current language
  let snap = null;           // the last snapshot
  let abort = null;          // the running stream's AbortController
  let retry = null;          // the reconnect timer
  let backoff = 1000;
  const trend = [];          // waiting totals of the last snapshots, for the sparkline
  let csrf = null;           // the directory login session's CSRF token, when the page runs on it
  let directory = false;     // directory login is on: the login form links to the console's

  const token = () => sessionStorage.getItem("odtoken") || "";
  const L = (key) => (texts && texts.labels[key]) || "";
  // the request's credentials: the typed token, else the session (its cookie goes by itself)
  const auth = () => token() ? { Authorization: "Bearer " + token() } : csrf ? { "X-CSRF-Token": csrf } : {};

  // Whether a live directory login session stands behind this page (GET /v1/login).
  async function session() {
    csrf = null;
    try {
      const res = await fetch("/v1/login", { credentials: "same-origin", cache: "no-store" });
      const body = res.ok ? await res.json() : {};
      directory = Boolean(body.directory);
      if (body.agent && body.csrf) csrf = body.csrf;
    } catch (e) { /* no agents part, or the server is away: the token form */ }
    return csrf !== null;
  }

  function applyTexts(body) {
    texts = { labels: body.labels, errors: body.errors, levels: body.levels, presence: body.presence,
      refusals: body.refusals || {} };
    document.documentElement.lang = body.lang;
    document.documentElement.dir = body.dir;
    document.title = L("title");
    document.querySelectorAll("[data-l]").forEach((el) => { el.textContent = L(el.dataset.l); });
    document.querySelectorAll(".langs button").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.lang === body.lang));
    });
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text != null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function bar(share, cls) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 100 8");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("aria-hidden", "true");
    svg.classList.add("meter");
    const track = document.createElementNS(SVG, "rect");
    track.setAttribute("class", "track");
    track.setAttribute("width", "100"); track.setAttribute("height", "8");
    const fill = document.createElementNS(SVG, "rect");
    fill.setAttribute("class", "fill " + (cls || ""));
    fill.setAttribute("height", "8");
    fill.setAttribute("width", String(Math.max(0, Math.min(100, share * 100))));
    svg.append(track, fill);
    return svg;
  }

  function showLogin(message) {
    $("board").hidden = true;
    $("signout").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("directory-login").hidden = !directory;
    $("live").textContent = "";
    if (message) $("token").focus();
  }

  // ------------------------------------------------------------ rendering

  function renderQueues(d) {
    const list = $("queues");
    const max = Math.max(1, ...d.queues.map((q) => q.waiting));
    const rows = new Map([...list.children].map((li) => [li.dataset.queue, li]));
    const keep = new Set();
    d.queues.forEach((q) => {
      keep.add(q.queue);
      let li = rows.get(q.queue);
      if (!li) {
        li = el("li"); li.dataset.queue = q.queue;
        li.append(el("span", "", "name"), bar(0, "depth"), el("span", "", "n"), el("span", "", "flags"));
        list.append(li);
      }
      li.querySelector(".name").textContent = q.title;
      li.querySelector(".name").dir = "auto";
      li.querySelector(".name").title = q.title;
      li.querySelector("rect.fill").setAttribute("width", String(100 * q.waiting / max));
      li.querySelector(".n").textContent = q.waiting_text;
      const flags = li.querySelector(".flags"); flags.replaceChildren();
      if (q.breached) flags.append(el("span", `✖ ${q.breached_text} ${texts.levels.breached}`, "tag breached"));
      if (q.at_risk) flags.append(el("span", `⚠ ${q.at_risk_text} ${texts.levels.risk}`, "tag risk"));
      li.setAttribute("aria-label", `${q.title}: ${q.waiting_text} ${L("waiting")}`);
    });
    [...list.children].forEach((li) => { if (!keep.has(li.dataset.queue)) li.remove(); });
    trend.push(d.waiting_total);
    if (trend.length > 60) trend.shift();
    const top = Math.max(1, ...trend);
    const points = trend.length > 1 ? trend : [trend[0], trend[0]];  // one reading: a level line
    const step = 300 / (points.length - 1);
    $("trend-line").setAttribute("points", points.map((v, i) => `${(i * step).toFixed(1)},${(58 - 56 * v / top).toFixed(1)}`).join(" "));
    $("trend-cap").textContent = `${L("trend")}: ${d.waiting_total_text}`;
  }

  // symbols the common fonts carry (DejaVu, Arial, Tahoma): an emoji would be a box where
  // no emoji font is installed
  const ICON = { breached: "✖", risk: "⚠", ok: "✓" };

  // a queue's title from the config (the targets name every queue), else its id
  function queueTitle(d, id) {
    const q = d.targets.queues.find((x) => x.id === id);
    return q ? q.title : id;
  }

  function renderRisk(d) {
    const body = $("risk").tBodies[0]; body.replaceChildren();
    $("no-risk").hidden = d.tickets.length > 0;
    $("operator-note").hidden = d.viewer.can_reassign;
    $("risk").hidden = d.tickets.length === 0;
    d.tickets.forEach((t) => {
      const tr = el("tr", null, "level-" + t.level);
      tr.dataset.ticket = t.ticket;
      const state = el("td", null, "state");
      const icon = el("span", ICON[t.level], "icon"); icon.setAttribute("aria-hidden", "true");
      state.append(icon, el("span", texts.levels[t.level]));
      const subject = el("td", null, "subject");
      const line = el("span", t.subject, "line"); line.dir = "auto";
      const who = el("span", t.customer, "who"); who.dir = "auto";
      subject.append(line, who);
      const left = el("td", null, "left"); left.title = t.due_text;
      left.append(el("span", t.left_text), el("span", t.clock, "who"));
      const ticket = el("td");
      const queue = el("span", queueTitle(d, t.queue), "who"); queue.dir = "auto";
      ticket.append(el("span", t.ticket, "mono"), queue);
      const action = el("td");
      if (d.viewer.can_reassign) {
        const b = el("button", L("action"), "reassign");
        b.type = "button";
        b.setAttribute("aria-label", `${L("action")} ${t.ticket}`);
        b.dataset.focusKey = "risk:" + t.ticket;
        b.addEventListener("click", () => openReassign(t));
        action.append(b);
      }
      tr.append(state, ticket, subject, left, el("td", t.assignee_name || "—"), action);
      body.append(tr);
    });
  }

  function renderAgents(d) {
    const body = $("agents").tBodies[0]; body.replaceChildren();
    $("agents-note").hidden = !d.agents.note;
    $("agents-note").textContent = d.agents.note || "";
    d.agents.list.forEach((a) => {
      const tr = el("tr", null, "presence-" + a.presence + (a.presence === "offline" && a.load ? " holding" : ""));
      tr.dataset.agent = a.agent;
      const name = el("td", a.name); name.dir = "auto";
      const presence = el("td", null, "presence");
      const dot = el("span", a.presence === "online" ? "●" : a.presence === "away" ? "◐" : "○", "dot");
      dot.setAttribute("aria-hidden", "true");
      presence.append(dot, el("span", a.presence_text));
      const load = el("td", null, "load");
      load.append(el("span", a.load_text), bar(a.capacity ? a.load / a.capacity : 0, a.load >= a.capacity ? "full" : ""));
      const cell = el("td");
      const held = el("div", null, "mono held");
      cell.append(held);
      a.held.forEach((h) => {
        if (!d.viewer.can_reassign) { held.append(el("span", h.ticket)); return; }
        const b = el("button", h.ticket, "ticket");
        b.type = "button";
        b.setAttribute("aria-label", `${L("action")} ${h.ticket}`);
        b.dataset.focusKey = "held:" + h.ticket;
        b.addEventListener("click", () => openReassign({ ...h, assignee: a.agent }));
        held.append(b);
      });
      // counted in the load, held in queues this viewer does not see: not listed, only counted
      if (a.held_elsewhere_text) held.append(el("span", a.held_elsewhere_text, "elsewhere"));
      tr.append(name, presence, load, cell);
      body.append(tr);
    });
  }

  function renderCompliance(id, rows) {
    const body = $(id).tBodies[0]; body.replaceChildren();
    rows.forEach((r) => {
      const tr = el("tr");
      const name = el("th", r.name); name.scope = "row"; name.dir = "auto";
      tr.append(name);
      ["first_response", "resolution"].forEach((k) => {
        const td = el("td", null, r[k] == null ? "nodata" : "share");
        td.append(el("span", r[k + "_text"]));
        if (r[k] != null) td.append(bar(r[k], r[k] < 0.8 ? "low" : ""));
        tr.append(td);
      });
      body.append(tr);
    });
  }

  function render(d) {
    // a keyboard user's focus survives the redraw: the same button gets it back
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.focusKey : null;
    draw(d);
    if (focused) {
      const again = document.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  function draw(d) {
    snap = d;
    if (!texts || document.documentElement.lang !== d.lang) applyTexts(d);
    $("login").hidden = true;
    $("board").hidden = false;
    $("signout").hidden = false;
    renderQueues(d);
    renderRisk(d);
    renderAgents(d);
    renderCompliance("branches", d.compliance.branches);
    renderCompliance("regions", d.compliance.regions);
    document.querySelectorAll(".today-note").forEach((p) => {
      p.textContent = d.today.note;  // PostgreSQL away: today's figures are not known
      p.hidden = d.today.available;
    });
    $("opened-today").textContent = d.today.opened_text;
    $("resolved-today").textContent = d.today.resolved_text;
    $("calls-today").hidden = !d.today.phone;  // no cti section: no phone figures
    $("calls-n").textContent = d.today.calls_text;
    $("calls-answer-rate").textContent = d.today.answer_rate_text;
    $("calls-awaiting").textContent = d.today.awaiting_callback_text;
    $("csat-avg").textContent = d.csat.average_text;
    $("csat-avg2").textContent = d.csat.average_text;
    $("csat-n").textContent = d.csat.responses_text;
    $("csat-bar").setAttribute("width", String(d.csat.average ? 100 * d.csat.average / 5 : 0));
    $("live").textContent = `● ${L("live")} · ${L("updated")} ${d.at_text}`;
    $("live").className = "live on";
    backoff = 1000;
  }

  // ------------------------------------------------------------ the stream

  async function refused(res) {
    let body = {};
    try { body = await res.json(); } catch (e) { body = {}; }
    if (body.labels) applyTexts(body);
    return body;
  }

  function reconnect() {
    clearTimeout(retry);
    $("live").textContent = L("reconnecting");
    $("live").className = "live off";
    retry = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 15000);
  }

  async function connect() {
    clearTimeout(retry);
    if (abort) abort.abort();
    const mine = abort = new AbortController();
    const signedIn = token() !== "" || await session();
    if (mine !== abort) return;  // a newer connect() took over meanwhile
    if (!signedIn) {
      const res = await fetch(`/v1/dashboard.json?lang=${lang}`, { cache: "no-store" }).catch(() => null);
      if (res) await refused(res);
      showLogin("");
      return;
    }
    let res;
    try {
      res = await fetch(`/v1/dashboard/stream?lang=${lang}`, {
        headers: auth(), credentials: "same-origin", cache: "no-store", signal: mine.signal,
      });
    } catch (e) {
      if (mine === abort) reconnect();
      return;
    }
    if (res.status === 401 || res.status === 403) {
      const body = await refused(res);
      sessionStorage.removeItem("odtoken");
      csrf = null;
      showLogin(body.message || "");
      return;
    }
    if (!res.ok || !res.body) { if (mine === abort) reconnect(); return; }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
          let kind = "message"; const data = [];
          block.split("\n").forEach((line) => {
            if (line.startsWith("event:")) kind = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
          });
          if (kind === "snapshot") render(JSON.parse(data.join("\n")));
          else if (kind === "unavailable") $("live").textContent = (texts && texts.errors.unavailable) || "";
          else if (kind === "refused") {
            sessionStorage.removeItem("odtoken");
            csrf = null;
            showLogin(JSON.parse(data.join("\n")).message);
            return;
          }
        }
      }
    } catch (e) { /* aborted or the connection dropped: reconnect below */ }
    if (mine === abort) reconnect();
  }

  // ------------------------------------------------------------ reassigning

  let current = null;

  function openReassign(t) {
    current = t;
    $("reassign-ticket").textContent = `${t.ticket} · ${t.subject}`;
    const agents = $("to-agent"); agents.replaceChildren(el("option", "—"));
    agents.firstChild.value = "";
    snap.agents.list.filter((a) => a.queues.includes(t.queue) && a.agent !== t.assignee).forEach((a) => {
      const o = el("option", `${a.name} (${a.presence_text}, ${a.load_text})`); o.value = a.agent; agents.append(o);
    });
    const queues = $("to-queue"); queues.replaceChildren(el("option", "—"));
    queues.firstChild.value = "";
    snap.targets.queues.filter((q) => q.id !== t.queue).forEach((q) => {
      const o = el("option", q.title); o.value = q.id; queues.append(o);
    });
    $("reason").value = "";
    $("reassign-msg").textContent = "";
    $("reassign").showModal();
  }

  // the API's refusal worded from the page's catalogue texts by its code (English: fallback)
  function refusal(data) {
    const words = data.code && texts && texts.refusals[data.code];
    if (!words) return data.error || "";
    const params = data.params || {};
    return words.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
  }

  async function sendReassign(ev) {
    ev.preventDefault();
    const agent = $("to-agent").value, queue = $("to-queue").value, reason = $("reason").value.trim();
    const msg = $("reassign-msg");
    if (!agent && !queue) { msg.textContent = L("no_target"); return; }
    if (!agent && !reason) { msg.textContent = L("need_reason"); $("reason").focus(); return; }
    const path = agent ? "assign" : "transfer";
    const body = agent ? { agent } : { queue, reason };
    let res;
    try {
      res = await fetch(`/v1/tickets/${encodeURIComponent(current.ticket)}/${path}`, {
        method: "POST", cache: "no-store", credentials: "same-origin",
        headers: { ...auth(), "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (e) { msg.textContent = `${L("failed")} ${e}`; return; }
    if (!res.ok) {
      let detail = "";
      try { detail = refusal(await res.json()); } catch (e) { detail = String(res.status); }
      msg.textContent = `${L("failed")} ${detail}`;
      return;
    }
    $("reassign").close();
    $("live").textContent = `${L("moved")} ${current.ticket}`;
  }

  // ------------------------------------------------------------ wiring

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("odtoken", $("token").value.trim());
    $("token").value = "";
    $("login-error").textContent = "";
    connect();
  });
  $("signout").addEventListener("click", async () => {
    const ending = !token() && csrf;  // on the directory session: signing out ends it
    sessionStorage.removeItem("odtoken");
    if (abort) abort.abort();
    abort = null;
    if (ending) {
      await fetch("/v1/login", { method: "DELETE", credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf } }).catch(() => null);
      csrf = null;
    }
    showLogin("");
    connect();
  });
  document.querySelectorAll(".langs button").forEach((b) => b.addEventListener("click", () => {
    lang = b.dataset.lang;
    localStorage.setItem("odlang", lang);
    texts = null;
    connect();
  }));
  $("reassign-form").addEventListener("submit", sendReassign);
  $("reassign-cancel").addEventListener("click", () => $("reassign").close());
  connect();
})();
