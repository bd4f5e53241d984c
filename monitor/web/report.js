// The reporting page's live light: as a unit types, the project's fields are sent (not saved) to
// /r/<token>/light and the light its numbers would get is shown beside it. Without JavaScript the
// page still works: saving shows the lights too.
(function () {
  "use strict";
  var form = document.getElementById("report");
  if (!form) { return; }
  var timers = {};
  function ask(box) {
    var code = box.getAttribute("data-project");
    var body = new URLSearchParams();
    body.append("csrf", form.elements.namedItem("csrf").value);
    body.append("project", code);
    box.querySelectorAll("input, select, textarea").forEach(function (el) {
      if (!el.name || el.disabled) { return; }
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) { return; }
      body.append(el.name, el.value);
    });
    fetch(form.getAttribute("data-light"), {method: "POST", body: body, credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (seen) {
        var out = box.querySelector(".prospect");
        if (!out || seen.error) { return; }
        var badge = out.querySelector(".light");
        badge.textContent = seen.word;
        badge.style.color = seen.fg;
        badge.style.background = seen.bg;
        out.setAttribute("data-light", seen.light || "");
        out.querySelector(".words").textContent = seen.words;
        var list = out.querySelector(".reasons");
        list.textContent = "";
        seen.reasons.forEach(function (r) {
          var li = document.createElement("li");
          li.textContent = r;
          list.appendChild(li);
        });
      })
      .catch(function () { /* the page keeps working without the live light */ });
  }
  form.addEventListener("input", function (e) {
    var box = e.target.closest("[data-project]");
    if (!box) { return; }
    var code = box.getAttribute("data-project");
    clearTimeout(timers[code]);
    timers[code] = setTimeout(function () { ask(box); }, 300);
  });
})();
