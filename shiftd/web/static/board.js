// shiftd coordinator's page: live countdowns and live updates over server-sent events.
// Loaded from the daemon (the CSP allows no inline script). Pages work without it, only
// not live. The board receives the changed rows as rendered (and escaped) by the server and
// moves them into their state's section; other pages re-fetch their main region. Nothing
// received is ever inserted as markup built here.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var liveState = document.getElementById("live-state");

  function duration(seconds) {
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + (s < 10 ? "0" : "") + s + "s";
    return s + "s";
  }

  function tick() {
    var now = Date.now();
    var nodes = document.querySelectorAll("time.countdown");
    for (var i = 0; i < nodes.length; i++) {
      var at = Date.parse(nodes[i].getAttribute("datetime"));
      if (isNaN(at)) continue;
      var left = Math.round((at - now) / 1000);
      nodes[i].textContent = left > 0 ? "in " + duration(left) : "due now";
    }
  }

  function wireFilters() {
    var selects = document.querySelectorAll("select[data-autosubmit]");
    for (var i = 0; i < selects.length; i++) {
      selects[i].addEventListener("change", function (e) { e.target.form.submit(); });
    }
  }

  tick();
  setInterval(tick, 1000);
  wireFilters();

  var live = main && main.getAttribute("data-live");
  if (!live || !window.EventSource || !window.fetch) return;
  var seq = main.getAttribute("data-seq") || "0";
  var pending = null;
  var inflight = false;
  var again = false;
  var source = null;

  function say(text) { if (liveState) liveState.textContent = text; }

  function refresh() {
    pending = null;
    if (inflight) { again = true; return; }  // one fetch at a time; then once more
    inflight = true;
    fetch(location.href, { headers: { "X-Board-Fragment": "1" }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) {
          location.href = "/board/login?next=" + encodeURIComponent(location.pathname + location.search);
          return null;
        }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null || html === undefined) return;
        var focused = document.activeElement && document.activeElement.id;
        main.innerHTML = html;
        if (focused) {
          var again = document.getElementById(focused);
          if (again) again.focus();
        }
        tick();
        wireFilters();
        main.setAttribute("data-updated", String(Date.now()));
      })
      .catch(function () { say("offline"); })
      .then(function () {
        inflight = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() { if (!pending) pending = setTimeout(refresh, 50); }

  // The board: put each changed row in its state's section (in start order), or drop it
  // when it has left the board or does not pass the page's filters; then recount.
  function applyRows(rows) {
    var filters = new URLSearchParams(location.search);
    var org = filters.get("org"), role = filters.get("role");
    rows.forEach(function (r) {
      var old = main.querySelector('tr[data-shift="' + CSS.escape(r.id) + '"]');
      if (old) old.remove();
      if (!r.state || !r.html) return;
      var body = main.querySelector("#state-" + r.state + " tbody");
      if (!body) return;
      var holder = document.createElement("tbody");
      holder.innerHTML = r.html;
      var tr = holder.querySelector("tr");
      if (!tr || (org && tr.dataset.org !== org) || (role && tr.dataset.role !== role)) return;
      var next = null;
      var present = body.querySelectorAll("tr");
      for (var i = 0; i < present.length; i++) {
        var p = present[i].dataset;
        if (p.start > tr.dataset.start || (p.start === tr.dataset.start && p.shift > r.id)) {
          next = present[i];
          break;
        }
      }
      body.insertBefore(tr, next);
    });
    var sections = main.querySelectorAll("section.group");
    for (var i = 0; i < sections.length; i++) {
      var state = sections[i].id.replace("state-", "");
      var n = sections[i].querySelectorAll("tbody tr").length;
      sections[i].querySelector("table").hidden = n === 0;
      sections[i].querySelector("p.muted").hidden = n > 0;
      var counts = main.querySelectorAll('[data-count="' + state + '"]');
      for (var j = 0; j < counts.length; j++) counts[j].textContent = String(n);
    }
    tick();
    main.setAttribute("data-updated", String(Date.now()));
  }

  function connect() {
    source = new EventSource(live + (live.indexOf("?") >= 0 ? "&" : "?") + "after=" + seq);
    source.onopen = function () { say("● live"); };
    function changed(e) {
      if (e.lastEventId) seq = e.lastEventId;
      var data = null;
      try { data = JSON.parse(e.data); } catch (err) { data = null; }
      if (e.type === "change" && data && data.rows && !inflight) applyRows(data.rows);
      else schedule();
    }
    source.addEventListener("change", changed);
    source.addEventListener("reload", changed);
    source.onerror = function () {
      if (source.readyState === 2) {  // closed for good (signed out, or the server is gone)
        say("reconnecting…");
        source.close();
        setTimeout(function () { refresh(); connect(); }, 3000);
      } else {
        say("reconnecting…");
      }
    };
  }
  connect();
})();
