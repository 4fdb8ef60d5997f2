// Guides for the web form: include this script on the form's page, with the id of the
// field the customer types the question in:
//   <script src="https://DESK/static/guide-suggest.js" data-field="message" defer></script>
// As the customer types (after a pause), it asks DESK/guides/suggest for up to three
// guides and lists them under the field as links; nothing is sent with the form. The page's
// origin must be one of service.web_form.allowed_origins (CORS), unless served by DESK.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var base = new URL(script.src, document.baseURI).origin;
  var field = document.getElementById(script.getAttribute("data-field") || "message");
  if (!field) return;
  var arabic = (document.documentElement.lang || "ar").slice(0, 2) !== "en";
  var heading = arabic ? "أدلة قد تجيب عن سؤالك" : "Guides that may answer your question";
  var box = document.createElement("aside");
  box.id = "guide-suggestions";
  box.setAttribute("aria-live", "polite");
  box.hidden = true;
  field.insertAdjacentElement("afterend", box);
  var timer = null;
  var asked = "";

  function show(guides) {
    box.textContent = "";
    if (!guides.length) { box.hidden = true; return; }
    var title = document.createElement("p");
    title.textContent = heading;
    box.appendChild(title);
    var list = document.createElement("ul");
    guides.forEach(function (g) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = g.url;
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = g.title;
      link.lang = g.lang;
      item.appendChild(link);
      if (g.summary) {
        var summary = document.createElement("span");
        summary.textContent = " — " + g.summary;
        item.appendChild(summary);
      }
      list.appendChild(item);
    });
    box.appendChild(list);
    box.hidden = false;
  }

  function ask() {
    var text = field.value.trim();
    if (text.length < 6) { show([]); return; }
    if (text === asked) return;
    asked = text;
    fetch(base + "/guides/suggest?q=" + encodeURIComponent(text.slice(0, 500)))
      .then(function (r) { return r.ok ? r.json() : { guides: [] }; })
      .then(function (body) { if (asked === text) show(body.guides || []); })
      .catch(function () { show([]); });
  }

  field.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, 350);
  });
})();
