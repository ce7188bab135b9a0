// Render every math span produced by the server-side renderer with KaTeX.
// trust is off: \href, \url, \includegraphics and friends are refused.
//
// A long proof holds hundreds of formulas, and typesetting them all before the first paint
// (then laying out the result) takes the better part of a second. So the formulas on screen
// and one screen either side are typeset at once, before the page is first painted; the
// others as they come near the viewport, and in any case in small slices while the browser
// is idle, so that soon every formula is typeset without ever blocking the page for long.
// When the first part is done, <html> gets data-math="visible"; when every formula is,
// data-math="all" (tests and benchmarks wait for these).
(function () {
  "use strict";
  var OPTIONS = { throwOnError: false, trust: false, strict: "ignore", maxExpand: 1000 };
  var SLICE_MS = 8;
  var waiting = new Set();
  var observer = null;
  var idleQueued = false;

  function typeset(el) {
    if (!waiting.delete(el) && el.hasAttribute("data-rendered")) return;
    if (observer) observer.unobserve(el);
    if (!el.isConnected) return; // swapped out by htmx meanwhile
    var tex = el.textContent;
    try {
      window.katex.render(tex, el, Object.assign({ displayMode: el.classList.contains("display") }, OPTIONS));
    } catch (e) {
      el.textContent = tex;
    }
    el.setAttribute("data-rendered", "1");
  }

  function finished() {
    if (waiting.size === 0) document.documentElement.setAttribute("data-math", "all");
  }

  function nearViewport(el, margin) {
    var r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return false; // not displayed (closed <details>)
    return r.bottom >= -margin && r.top <= window.innerHeight + margin;
  }

  function onIntersect(entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) typeset(entry.target);
    });
    finished();
  }

  function whenIdle(fn) {
    if (window.requestIdleCallback) window.requestIdleCallback(fn, { timeout: 500 });
    else setTimeout(function () { fn(null); }, 16);
  }

  function drain(deadline) {
    idleQueued = false;
    var until = performance.now() + SLICE_MS;
    for (var el of waiting) {
      var left = deadline && !deadline.didTimeout ? deadline.timeRemaining() : until - performance.now();
      if (left <= 0) break;
      typeset(el);
    }
    finished();
    if (waiting.size && !idleQueued) {
      idleQueued = true;
      whenIdle(drain);
    }
  }

  function renderMath(root) {
    if (!window.katex) return;
    var found = Array.prototype.slice.call(root.querySelectorAll(".math:not([data-rendered])"));
    // Positions first (one layout of the untypeset page), then all the writes.
    var margin = window.innerHeight;
    var now = found.filter(function (el) { return nearViewport(el, margin); });
    found.forEach(function (el) { waiting.add(el); });
    now.forEach(typeset);
    if (waiting.size && "IntersectionObserver" in window) {
      observer = observer || new IntersectionObserver(onIntersect, { rootMargin: "100% 0px" });
      waiting.forEach(function (el) { observer.observe(el); });
    }
    document.documentElement.setAttribute("data-math", "visible");
    finished();
    if (waiting.size && !idleQueued) {
      idleQueued = true;
      whenIdle(drain);
    }
  }

  // Printing must not meet raw TeX: typeset what is left at once.
  function renderAll() {
    Array.from(waiting).forEach(typeset);
    finished();
  }

  window.proofdeskRenderMath = renderMath;
  window.proofdeskRenderAllMath = renderAll;
  window.addEventListener("beforeprint", renderAll);
  document.addEventListener("DOMContentLoaded", function () { renderMath(document); });
  document.addEventListener("htmx:afterSwap", function (ev) { renderMath(ev.detail.target); });
})();
