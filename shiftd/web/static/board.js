// shiftd coordinator's page: live countdowns and live updates over server-sent events.
// Loaded from the daemon (the CSP allows no inline script). Pages work without it, only
// not live. Every update re-fetches the page's main region as rendered (and escaped) by
// the server: nothing received is ever inserted as markup built here.
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

  function connect() {
    source = new EventSource(live + (live.indexOf("?") >= 0 ? "&" : "?") + "after=" + seq);
    source.onopen = function () { say("● live"); };
    function changed(e) { if (e.lastEventId) seq = e.lastEventId; schedule(); }
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
