// writ console: the only script. It counts down approval deadlines, ticks a
// dev person's usual roles on the sign-in page, and reloads the inbox when
// its list changes (unless the approver is typing a reason).
"use strict";
(function () {
  function fmtLeft(ms) {
    if (ms <= 0) return "expired";
    var s = Math.floor(ms / 1000);
    if (s < 60) return s + "s left";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s left";
    return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m left";
  }
  function tick() {
    var els = document.querySelectorAll("[data-expires]");
    for (var i = 0; i < els.length; i++) {
      var t = Date.parse(els[i].getAttribute("data-expires"));
      if (!isNaN(t)) els[i].textContent = fmtLeft(t - Date.now());
    }
  }
  function devRoles() {
    var people = document.querySelectorAll("input[name=person][data-roles]");
    function apply(p) {
      var want = p.getAttribute("data-roles").split(" ");
      var boxes = document.querySelectorAll("input[name=role]");
      for (var i = 0; i < boxes.length; i++) boxes[i].checked = want.indexOf(boxes[i].value) >= 0;
    }
    for (var i = 0; i < people.length; i++) {
      people[i].addEventListener("change", function (e) { apply(e.target); });
      if (people[i].checked) apply(people[i]);
    }
  }
  function busy() {
    var a = document.activeElement;
    if (a && a.tagName === "INPUT" && a.type === "text") return true;
    var inputs = document.querySelectorAll("#inbox input[name=reason]");
    for (var i = 0; i < inputs.length; i++) if (inputs[i].value !== "") return true;
    return false;
  }
  function watchInbox() {
    var box = document.getElementById("inbox");
    if (!box) return;
    var state = box.getAttribute("data-state");
    setInterval(function () {
      fetch("/ui/inbox/state", { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (s && s.state !== state && !busy()) window.location.reload();
        })
        .catch(function () {});
    }, 3000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    devRoles();
    watchInbox();
  });
})();
