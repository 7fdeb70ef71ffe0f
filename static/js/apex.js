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
  // Posters that fail to load show their generated placeholder (data-fallback). Error events do not bubble,
  // so listen in the capture phase; posters that failed before this deferred script ran are swapped now.
  function useFallback(img) {
    if (img.dataset.fallback && img.src !== img.dataset.fallback) img.src = img.dataset.fallback;
  }
  document.addEventListener("error", function (event) {
    if (event.target instanceof HTMLImageElement) useFallback(event.target);
  }, true);
  document.querySelectorAll("img[data-fallback]").forEach(function (img) {
    if (img.complete && img.naturalWidth === 0) useFallback(img);
  });
  // Auto-submit filter forms when a select changes (the submit button stays for keyboard and no-JS users).
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  });
})();
