"use strict";
// The console's guides panel (loaded after console.js, whose $, _, N_, el, api and current
// it uses): the three guides most relevant to the open ticket, a search over every guide,
// and buttons that put a guide's link or excerpt into the reply at the cursor. Guide text
// is only ever set with textContent.
N_("Guides"); N_("Suggested guides"); N_("Search the guides");
const GUIDE_WORDS = {
  link: N_("Insert link"), excerpt: N_("Insert excerpt"), none: N_("No guide matches your search."),
};
let guideTicket = null;   // the ticket whose suggestions are shown
let guideTimer = null;

function insertIntoReply(text) {
  const box = $("reply-text");
  const start = box.selectionStart ?? box.value.length;
  const end = box.selectionEnd ?? box.value.length;
  const before = box.value.slice(0, start);
  const gap = before && !before.endsWith("\n") ? "\n" : "";
  box.value = before + gap + text + box.value.slice(end);
  const at = (before + gap + text).length;
  box.focus();
  box.setSelectionRange(at, at);
  box.dispatchEvent(new Event("input", { bubbles: true }));  // the length counter
}

function guideItem(g) {
  const li = el("li");
  li.dataset.slug = g.slug;
  const link = el("a", g.title);
  link.href = g.url; link.target = "_blank"; link.rel = "noopener";
  link.lang = g.lang; link.dir = g.lang === "ar" ? "rtl" : "ltr";
  li.append(link);
  if (g.summary) { const p = el("p", g.summary, "meta"); p.dir = "auto"; li.append(p); }
  const asLink = el("button", _(GUIDE_WORDS.link));
  asLink.type = "button"; asLink.className = "guide-link";
  asLink.addEventListener("click", () => insertIntoReply(g.title + ": " + g.url));
  const asExcerpt = el("button", _(GUIDE_WORDS.excerpt));
  asExcerpt.type = "button"; asExcerpt.className = "guide-excerpt";
  asExcerpt.addEventListener("click", () => insertIntoReply(g.excerpt + "\n" + g.url));
  li.append(asLink, " ", asExcerpt);
  return li;
}

function showGuides(list, guides, emptyText) {
  list.replaceChildren(...guides.map(guideItem));
  if (!guides.length && emptyText) list.append(el("li", _(emptyText), "meta"));
}

async function suggestGuides() {
  if (typeof current === "undefined" || !current || !current.ticket) return;
  const id = current.ticket.id;
  if (id === guideTicket) return;
  guideTicket = id;
  try {
    const r = await api("GET", "/v1/tickets/" + encodeURIComponent(id) + "/guide-suggestions");
    if (guideTicket === id) showGuides($("guide-suggestions"), r.guides, "");
  } catch (e) {
    $("guide-suggestions").replaceChildren(el("li", e.message, "meta"));
  }
}

async function searchGuides() {
  const q = $("guide-search").value.trim();
  if (!q) { $("guide-results").replaceChildren(); return; }
  try {
    const r = await api("GET", "/v1/guides?limit=5&q=" + encodeURIComponent(q));
    if ($("guide-search").value.trim() === q) showGuides($("guide-results"), r.guides, GUIDE_WORDS.none);
  } catch (e) {
    $("guide-results").replaceChildren(el("li", e.message, "meta"));
  }
}

$("guide-search").addEventListener("input", () => {
  clearTimeout(guideTimer);
  guideTimer = setTimeout(searchGuides, 250);
});
// the ticket pane's title changes whenever a ticket is opened (or refreshed)
new MutationObserver(suggestGuides).observe($("t-title"), { childList: true, characterData: true, subtree: true });
