// "Track my request": asks POST /v1/status (the contact goes in the body, never the URL)
// and shows the answer. Arabic first; the toggle switches the page to English and back.
// Its texts come from the server (omnidesk/status_api.py renders them from the catalogues).
"use strict";
(function () {
  // Both languages' texts, from the gettext catalogues: the server puts them on <main>.
  var TEXT = JSON.parse(document.getElementById("page").dataset.text);
  var lang = "ar";
  var last = null;
  var $ = function (id) { return document.getElementById(id); };

  function when(iso) {
    if (!iso) { return ""; }
    var locale = lang === "ar" ? "ar-SA-u-nu-latn-ca-gregory" : "en-GB";
    var text = new Date(iso).toLocaleString(locale, {
      timeZone: "Asia/Riyadh", year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit"
    });
    return TEXT[lang].when.replace("{time}", text);
  }

  function show(data) {
    last = data;
    $("result").hidden = false;
    $("result-ticket").textContent = TEXT[lang].request + " " + data.ticket;
    $("status").textContent = data.status_text[lang];
    $("queue").textContent = data.queue[lang];
    $("updated").textContent = when(data.updated_at);
    [["first", data.first_response_due], ["resolution", data.resolution_due]].forEach(function (p) {
      $(p[0]).textContent = when(p[1]);
      $(p[0]).hidden = !p[1];
      $(p[0] + "-label").hidden = !p[1];
    });
  }

  function apply() {
    var t = TEXT[lang];
    document.documentElement.lang = lang;
    document.documentElement.dir = lang === "ar" ? "rtl" : "ltr";
    document.title = t.title;
    Object.keys(t).forEach(function (id) { if ($(id)) { $(id).textContent = t[id]; } });
    $("lang-toggle").textContent = t.toggle;
    $("lang-toggle").lang = lang === "ar" ? "en" : "ar";
    if (last) { show(last); }
    if ($("message").dataset.code && $("message").dataset[lang]) {
      $("message").textContent = $("message").dataset[lang];
    }
  }

  function say(ar, en, code) {
    var m = $("message");
    m.dataset.ar = ar; m.dataset.en = en; m.dataset.code = code || "x";
    m.textContent = lang === "ar" ? ar : en;
  }

  $("lang-toggle").addEventListener("click", function () {
    lang = lang === "ar" ? "en" : "ar";
    apply();
  });

  $("lookup").addEventListener("submit", function (event) {
    event.preventDefault();
    last = null;
    $("result").hidden = true;
    say(TEXT.ar.busy, TEXT.en.busy);
    fetch("/v1/status", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept-Language": lang },
      body: JSON.stringify({ ticket: $("ticket").value, contact: $("contact").value, lang: lang })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (a) {
      if (a.ok) { say("", ""); show(a.body); return; }
      var msg = a.body.message || {};
      say(msg.ar || a.body.error, msg.en || a.body.error, a.body.code);
    }).catch(function () { say(TEXT.ar.failed, TEXT.en.failed); });
  });

  var given = new URLSearchParams(window.location.search).get("ticket");
  if (given) { $("ticket").value = given; }
  if (new URLSearchParams(window.location.search).get("lang") === "en") { lang = "en"; apply(); }
}());
