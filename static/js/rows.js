/* APEX rows that scroll sideways ("More like this", the home page's rows): a fade at each edge that has more to
 * see and arrow buttons that scroll by a screenful. Progressive enhancement: without this file the rows still
 * scroll (touch, trackpad, Shift+wheel, the scrollbar). Rows replaced by the live refresh are enhanced again. */
(function () {
  "use strict";
  if (window.apexRows) return;
  var EDGE_PX = 2; // rounding slack at either end

  function update(scroller) {
    var row = scroller.querySelector(".row-scroll");
    if (!row) return;
    var max = row.scrollWidth - row.clientWidth;
    scroller.classList.toggle("overflows", max > EDGE_PX);
    scroller.classList.toggle("more-left", row.scrollLeft > EDGE_PX);
    scroller.classList.toggle("more-right", max - row.scrollLeft > EDGE_PX);
  }

  function arrow(scroller, row, direction, label) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "row-arrow row-arrow-" + (direction < 0 ? "prev" : "next");
    button.setAttribute("aria-label", label);
    button.textContent = direction < 0 ? "‹" : "›";
    button.addEventListener("click", function () {
      var reduce = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      row.scrollBy({ left: direction * Math.max(row.clientWidth * 0.8, 150), behavior: reduce ? "auto" : "smooth" });
    });
    scroller.appendChild(button);
  }

  var resizes = "ResizeObserver" in window ? new ResizeObserver(function (entries) {
    entries.forEach(function (entry) { update(entry.target.closest(".row-scroller") || entry.target); });
  }) : null;

  function enhance(row) {
    if (row.parentElement && row.parentElement.classList.contains("row-scroller")) return;
    var scroller = document.createElement("div");
    scroller.className = "row-scroller";
    row.parentNode.insertBefore(scroller, row);
    scroller.appendChild(row);
    var section = row.closest("section");
    var heading = section && section.querySelector("h2");
    var name = heading ? heading.textContent.trim() : "this row";
    arrow(scroller, row, -1, "Scroll " + name + " back");
    arrow(scroller, row, 1, "Scroll " + name + " forward");
    row.addEventListener("scroll", function () { update(scroller); }, { passive: true });
    if (resizes) resizes.observe(row);
    update(scroller);
  }

  function enhanceAll(root) {
    if (root.matches && root.matches(".row-scroll")) enhance(root);
    if (root.querySelectorAll) root.querySelectorAll(".row-scroll").forEach(enhance);
  }

  function start() {
    enhanceAll(document);
    new MutationObserver(function (mutations) {
      mutations.forEach(function (mutation) {
        mutation.addedNodes.forEach(enhanceAll);
        var scroller = mutation.target.closest && mutation.target.closest(".row-scroller");
        if (scroller) update(scroller); // cards added to or taken from a row
      });
    }).observe(document.body, { childList: true, subtree: true });
    window.addEventListener("load", function () { document.querySelectorAll(".row-scroller").forEach(update); });
  }
  window.apexRows = { update: update };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
