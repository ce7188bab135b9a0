// Live campaign numbers: open the campaign's websocket (annotate/consumers.py) and, whenever
// it reports a change, fire `campaign-progress` on <body>. The page's live parts listen for
// it with hx-trigger="campaign-progress from:body" and re-fetch themselves from the server,
// so the numbers always come from a request authorised like the page itself; the socket only
// says *that* something changed (and never carries a score).
//
// Markup: an element with data-live-socket="/ws/campaigns/<id>/" starts it; an element with
// data-live-status, if any, says whether the page is live (what updates: its
// data-live-what, "as graders work" unless given).
(function () {
  "use strict";
  var MIN_GAP_MS = 1000; // at most one refresh a second, however fast the graders are
  var RETRY_MS = [1000, 2000, 5000, 10000, 30000];
  var REFUSED = 4403; // the consumer's close code for "not allowed"

  function start(el) {
    var status = document.querySelector("[data-live-status]");
    var path = el.getAttribute("data-live-socket");
    var attempts = 0;
    var timer = null;
    var last = 0;

    function say(text, state) {
      if (!status) return;
      status.textContent = text;
      status.setAttribute("data-state", state);
    }

    function refresh() {
      timer = null;
      last = Date.now();
      document.body.dispatchEvent(new CustomEvent("campaign-progress"));
    }

    // Trailing throttle: the refresh after a burst of events still sees the last of them.
    function changed() {
      if (timer !== null) return;
      timer = window.setTimeout(refresh, Math.max(0, last + MIN_GAP_MS - Date.now()));
    }

    function refused() {
      say("not live: reload the page to update", "refused");
    }

    function retry() {
      var wait = RETRY_MS[Math.min(attempts, RETRY_MS.length - 1)];
      attempts += 1;
      say("reconnecting…", "offline");
      window.setTimeout(connect, wait);
    }

    // A refused handshake reaches the browser as a bare failure (code 1006), like a network
    // outage. Ask the page itself: if it no longer opens for us (signed out, no longer a
    // member), stop; if it does, or the server is unreachable, try again later.
    function retryIfStillAllowed() {
      window.fetch(window.location.href, { redirect: "manual", credentials: "same-origin" })
        .then(function (response) {
          if (response.ok) retry();
          else refused();
        })
        .catch(retry);
    }

    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + window.location.host + path);
      var opened = false;
      socket.addEventListener("open", function () {
        opened = true;
        // Anything that happened while we were away is fetched now.
        if (attempts > 0) changed();
        attempts = 0;
        say("live: updates " + ((status && status.getAttribute("data-live-what")) || "as graders work"), "live");
      });
      socket.addEventListener("message", changed);
      socket.addEventListener("close", function (event) {
        if (event.code === REFUSED) refused();
        else if (opened) retry();
        else retryIfStillAllowed();
      });
    }

    connect();
  }

  function init() {
    var el = document.querySelector("[data-live-socket]");
    if (el && "WebSocket" in window) start(el);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
