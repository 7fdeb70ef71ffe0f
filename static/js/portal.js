/* APEX portal: progressive enhancement for ratings, watchlist, "why this?" and live rows.
 * Every form works without this file (post + redirect). With it, forms post in the background,
 * and a signed-in page listens on /ws/recommendations/ to refresh its rows without a reload. */
(function () {
  "use strict";
  if (window.apexPortal) return; // included by several partials; run once
  var RATE_DELAY_MS = 650; // arrow keys move through values; post once the choice settles
  var state = { socket: null, liveUpdates: 0, timers: new WeakMap() };
  window.apexPortal = state;

  function announce(text) {
    var el = document.getElementById("live-status") || document.querySelector(".flash-live");
    if (!el) {
      el = document.createElement("p");
      el.className = "flash-live sr-only";
      el.setAttribute("role", "status");
      el.setAttribute("aria-live", "polite");
      document.body.appendChild(el);
    }
    el.textContent = text;
  }

  function toast(message, undoUrl) {
    var box = document.getElementById("toast");
    if (!box) {
      box = document.createElement("div");
      box.id = "toast";
      box.className = "toast";
      box.setAttribute("role", "status");
      box.setAttribute("aria-live", "polite");
      document.body.appendChild(box);
    }
    box.textContent = message + " ";
    if (undoUrl) {
      var undo = document.createElement("button");
      undo.type = "button";
      undo.className = "link-button";
      undo.textContent = "Undo";
      undo.addEventListener("click", function () { postUndo(undoUrl); });
      box.appendChild(undo);
    }
    box.classList.add("show");
    clearTimeout(box._hide);
    box._hide = setTimeout(function () { box.classList.remove("show"); }, 6000);
  }

  function csrf(form) {
    var input = form && form.querySelector("[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function post(url, body, form) {
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrf(form) }
    }).then(function (r) {
      return r.json().catch(function () { return { ok: false, error: "HTTP " + r.status }; });
    });
  }

  function postUndo(url) {
    post(url, new FormData(), null).then(function (data) {
      toast(data.message || "Undone.");
      if (!document.getElementById("rows") && !document.getElementById("movie-extras")) { location.reload(); return; }
      if (data.movie_id) {
        document.querySelectorAll('[data-movie-id="' + data.movie_id + '"] .rate-status').forEach(function (s) { s.textContent = ""; });
      }
      expectPush();
    });
  }

  /* ---- ratings ---------------------------------------------------------------------------- */
  function syncRatingForms(movieId, value) {
    document.querySelectorAll('form[data-rate][data-movie-id="' + movieId + '"]').forEach(function (f) {
      f.querySelectorAll("input[name=value]").forEach(function (r) {
        r.checked = value !== null && parseFloat(r.value) === value;
      });
      var status = f.querySelector(".rate-status");
      if (status) status.textContent = value === null ? "" : value + "★";
    });
  }

  function submitRating(form, clear) {
    var body = new FormData(form);
    if (clear) { body.set("clear", "1"); body.delete("value"); }
    var checked = form.querySelector("input[name=value]:checked");
    if (!clear && !checked) return;
    form.classList.add("saving");
    post(form.action, body, form).then(function (data) {
      form.classList.remove("saving");
      if (!data.ok) { toast(data.error || "Could not save the rating."); return; }
      syncRatingForms(String(data.movie_id), data.value);
      toast(data.message, data.undo_url);
      document.dispatchEvent(new CustomEvent("apex:rated", { detail: data }));
      bumpOnboarding(data);
      expectPush();
    }).catch(function () {
      form.classList.remove("saving");
      form.submit(); // network trouble: fall back to the plain form post
    });
  }

  function bumpOnboarding(data) {
    var box = document.getElementById("onboarding-progress");
    if (!box || data.value === null) return;
    var counter = box.querySelector("[data-rated-count]");
    var target = parseInt(box.dataset.target, 10);
    var rated = parseInt(counter.textContent, 10) + (data.was_rated ? 0 : 1);
    counter.textContent = rated;
    box.querySelector("progress").value = Math.min(rated, target);
    var remaining = box.querySelector("[data-remaining]");
    if (remaining) remaining.textContent = Math.max(0, target - rated);
    if (rated >= target) {
      var finish = document.querySelector("[data-finish]");
      if (finish) finish.textContent = "See my recommendations";
    }
  }

  document.addEventListener("change", function (ev) {
    var input = ev.target;
    if (!input.matches || !input.matches("form[data-rate] input[name=value]")) return;
    var form = input.form;
    clearTimeout(state.timers.get(form));
    state.timers.set(form, setTimeout(function () { submitRating(form, false); }, RATE_DELAY_MS));
  });

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.matches("form[data-rate]")) {
      ev.preventDefault();
      clearTimeout(state.timers.get(form));
      var clear = ev.submitter && ev.submitter.name === "clear";
      submitRating(form, clear);
    } else if (form.matches("form[data-watchlist]")) {
      ev.preventDefault();
      toggleWatchlist(form);
    }
  });

  /* ---- watchlist ----------------------------------------------------------------------------- */
  function toggleWatchlist(form) {
    post(form.action, new FormData(form), form).then(function (data) {
      if (!data.ok) { toast(data.error || "Could not change the watchlist."); return; }
      document.querySelectorAll('form[data-watchlist][data-movie-id="' + data.movie_id + '"]').forEach(function (f) {
        var btn = f.querySelector("button");
        f.querySelector("[name=on]").value = data.on ? "0" : "1";
        btn.setAttribute("aria-pressed", data.on ? "true" : "false");
        btn.textContent = data.on ? "✓ Watchlist" : "+ Watchlist";
        var title = f.dataset.title || "this movie";
        btn.setAttribute("aria-label", (data.on ? "Remove " + title + " from" : "Add " + title + " to") + " your watchlist");
      });
      toast(data.message, data.undo_url);
      expectPush();
    });
  }

  /* ---- "why this?" on hover (tap and keyboard use the native <details>) ---------------------- */
  document.addEventListener("mouseover", function (ev) {
    var card = ev.target.closest && ev.target.closest(".card");
    if (!card || !window.matchMedia("(hover: hover)").matches) return;
    var why = card.querySelector("details.why");
    if (why && !why.open) { why.open = true; why.dataset.hoverOpened = "1"; }
  });
  document.addEventListener("mouseout", function (ev) {
    var card = ev.target.closest && ev.target.closest(".card");
    if (!card || (ev.relatedTarget && card.contains(ev.relatedTarget))) return;
    var why = card.querySelector("details.why");
    if (why && why.dataset.hoverOpened) { why.open = false; delete why.dataset.hoverOpened; }
  });

  /* ---- live refresh ----------------------------------------------------------------------------- */
  function socketOpen() { return state.socket && state.socket.readyState === WebSocket.OPEN; }

  function swap(container, url) {
    var active = document.activeElement;
    var card = active && active.closest ? active.closest("[data-movie-id]") : null;
    var keep = card ? { movie: card.dataset.movieId, row: (active.closest("[data-row]") || {}).dataset } : null;
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        container.innerHTML = html;
        if (keep) {
          var sel = '[data-movie-id="' + keep.movie + '"] input:checked, [data-movie-id="' + keep.movie + '"] a';
          var again = container.querySelector(sel);
          if (again) again.focus({ preventScroll: true });
        }
      });
  }

  /* ---- LLM explanations (when the operator configured them) ------------------------------------
   * The rows render with the engine's template sentences; afterwards the page asks for the LLM's sentences
   * of the picks it shows and swaps them into "why this?". A slow or failed answer leaves the templates. */
  var EXPLAINED_MAX = 100;

  function fillExplanations() {
    var rows = document.getElementById("rows");
    if (!rows || !rows.dataset.explanationsUrl) return Promise.resolve();
    var ids = [];
    rows.querySelectorAll(".card[data-movie-id] details.why").forEach(function (why) {
      var id = why.closest(".card").dataset.movieId;
      if (id && ids.indexOf(id) < 0 && ids.length < EXPLAINED_MAX) ids.push(id);
    });
    if (!ids.length) return Promise.resolve();
    var url = rows.dataset.explanationsUrl + "?movie_ids=" + ids.join(",");
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) {
        (data.items || []).forEach(function (item) {
          if (!item.llm) return;
          rows.querySelectorAll('.card[data-movie-id="' + item.movie_id + '"] details.why').forEach(function (why) {
            why.querySelector("p").textContent = item.sentence;
            why.dataset.explained = "llm";
          });
        });
        document.body.dataset.explanations = "filled";
      })
      .catch(function () { document.body.dataset.explanations = "template"; });
  }

  function refreshAfterChange() {
    var jobs = [];
    var rows = document.getElementById("rows");
    if (rows && rows.dataset.rowsUrl) jobs.push(swap(rows, rows.dataset.rowsUrl).then(fillExplanations));
    var extras = document.getElementById("movie-extras");
    if (extras && extras.dataset.extrasUrl) jobs.push(swap(extras, extras.dataset.extrasUrl));
    return Promise.all(jobs);
  }

  /* After a change, the server pushes fresh recommendations over the socket; if no push arrives
   * (socket closed, or the pipeline is slow), refresh by hand so the page never goes stale. */
  function expectPush() {
    clearTimeout(state.pushTimer);
    if (!socketOpen()) { refreshAfterChange(); return; }
    state.pushTimer = setTimeout(refreshAfterChange, 4000);
  }

  function onPush(message) {
    if (message.type !== "recommendations") return;
    clearTimeout(state.pushTimer);
    refreshAfterChange().then(function () {
      state.liveUpdates += 1;
      document.body.dataset.liveUpdates = String(state.liveUpdates);
      announce("Your recommendations were updated.");
    });
  }

  function connect(attempt) {
    if (!document.querySelector("[data-live]") || !("WebSocket" in window)) return;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/recommendations/");
    state.socket = socket;
    socket.addEventListener("open", function () { document.body.dataset.live = "open"; attempt = 0; });
    socket.addEventListener("message", function (ev) {
      try { onPush(JSON.parse(ev.data)); } catch (e) { /* not JSON: ignore */ }
    });
    socket.addEventListener("close", function (ev) {
      document.body.dataset.live = "closed";
      if (ev.code === 4401) return; // signed out: nothing to listen for
      setTimeout(function () { connect(attempt + 1); }, Math.min(30000, 1000 * Math.pow(2, attempt)));
    });
  }

  function start() {
    document.documentElement.classList.add("js");
    connect(0);
    fillExplanations();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
