"use strict";
const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get("token")) { sessionStorage.setItem("odtoken", hash.get("token")); history.replaceState(null, "", location.pathname); }
function cell(text, cls) { const td = document.createElement("td"); td.dir = "auto"; if (cls) td.className = cls; td.textContent = text == null ? "-" : String(text); return td; }
function fill(id, head, rows) {
  const table = document.getElementById(id); table.replaceChildren();
  const tr = document.createElement("tr"); head.forEach(h => { const th = document.createElement("th"); th.textContent = h; tr.append(th); }); table.append(tr);
  rows.forEach(r => { const row = document.createElement("tr"); r.forEach(v => row.append(typeof v === "number" ? cell(v, "n") : cell(v))); table.append(row); });
}
function pct(x) { return x == null ? "-" : (100 * x).toFixed(1) + "%"; }
function left(s) { if (s == null) return "-"; const m = Math.round(s / 60); return (m < 0 ? "late " : "") + Math.abs(m) + " min"; }
async function refresh() {
  const token = sessionStorage.getItem("odtoken");
  if (!token) { document.getElementById("login").style.display = "block"; document.getElementById("status").textContent = "sign in"; return; }
  try {
    const res = await fetch("/v1/dashboard.json", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (res.status === 401) { sessionStorage.removeItem("odtoken"); document.getElementById("login").style.display = "block"; return; }
    const d = await res.json();
    fill("queues", ["queue", "title", "waiting", "opened today"], d.queues.map(q => [q.queue, q.title, q.waiting, q.opened_today]));
    document.getElementById("risk-src").textContent = d.at_risk.source;
    fill("risk", ["ticket", "queue", "target", "due", "left"], d.at_risk.list.map(a => [a.ticket, a.queue, a.target || "", a.due, left(a.left_s)]));
    document.getElementById("agents-src").textContent = d.agents.source;
    fill("agents", ["agent", "presence", "load"], d.agents.list.map(a => [a.agent, a.presence, a.load]));
    fill("compliance", ["branch/region", "first response", "resolution", "breaches"], Object.entries(d.compliance_today).map(([r, s]) => [r, pct(s.first_response.compliance), pct(s.resolution.compliance), s.first_response.breach_events + s.resolution.breach_events + s.next_response.breach_events]));
    fill("latest", ["ticket", "queue", "status", "channel", "subject"], d.latest.map(t => [t.id, t.queue, t.status, t.channel, t.subject]));
    const st = document.getElementById("status"); st.className = ""; st.textContent = "open tickets " + d.open_tickets + " · updated " + d.at;
  } catch (e) { const st = document.getElementById("status"); st.className = "bad"; st.textContent = "cannot reach the daemon: " + e; }
}
document.getElementById("login").addEventListener("submit", ev => { ev.preventDefault(); sessionStorage.setItem("odtoken", document.getElementById("token").value); document.getElementById("login").style.display = "none"; refresh(); });
refresh(); setInterval(refresh, 3000);
