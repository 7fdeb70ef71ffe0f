// APEX site script: progressive enhancement only; every page works without it.
(function () {
  "use strict";
  var toggle = document.querySelector("[data-nav-toggle]");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") === "true";
      toggle.setAttribute("aria-expanded", String(!open));
      document.getElementById("site-nav").classList.toggle("open", !open);
    });
  }
  // Auto-submit filter forms when a select changes (the submit button stays for keyboard and no-JS users).
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  });
})();
