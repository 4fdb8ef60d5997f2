// "Track my request": asks POST /v1/status (the contact goes in the body, never the URL)
// and shows the answer. Arabic first; the toggle switches the page to English and back.
"use strict";
(function () {
  var TEXT = {
    ar: {
      title: "متابعة الطلب",
      intro: "أدخل رقم الطلب والبريد الإلكتروني أو رقم الجوال الذي أرسلت منه الطلب.",
      "ticket-label": "رقم الطلب",
      "contact-label": "البريد الإلكتروني أو رقم الجوال",
      submit: "عرض الحالة",
      "status-label": "الحالة",
      "queue-label": "الجهة المختصة",
      "updated-label": "آخر تحديث",
      "first-label": "موعد الرد الأول",
      "resolution-label": "موعد الحل المتوقع",
      toggle: "English",
      request: "الطلب",
      busy: "جارٍ البحث…",
      failed: "تعذر الاتصال، يرجى المحاولة لاحقًا."
    },
    en: {
      title: "Track my request",
      intro: "Enter the request number and the e-mail or phone number you sent it from.",
      "ticket-label": "Request number",
      "contact-label": "E-mail or phone number",
      submit: "Show status",
      "status-label": "Status",
      "queue-label": "Handled by",
      "updated-label": "Last update",
      "first-label": "First response due by",
      "resolution-label": "Resolution due by",
      toggle: "العربية",
      request: "Request",
      busy: "Looking it up…",
      failed: "Could not connect; please try again later."
    }
  };
  var lang = "ar";
  var last = null;
  var $ = function (id) { return document.getElementById(id); };

  function when(iso) {
    if (!iso) { return ""; }
    var locale = lang === "ar" ? "ar-SA-u-nu-latn-ca-gregory" : "en-GB";
    return new Date(iso).toLocaleString(locale, {
      timeZone: "Asia/Riyadh", year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit"
    }) + (lang === "ar" ? " (بتوقيت الرياض)" : " (Riyadh time)");
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
