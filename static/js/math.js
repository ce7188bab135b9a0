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
//
// A formula KaTeX cannot typeset is never shown as red error text: its source stays
// readable (class math-failed, KaTeX's message as its title), and the page's warning
// (#math-problems, in base.html) says at the top how many failed, with a link to each.
// maxSize and maxExpand bound what one formula can do to the page: `\rule{100000em}{100000em}`
// would otherwise be millions of pixels tall, and a macro loop would hang the tab.
(function () {
  "use strict";
  var OPTIONS = {
    throwOnError: true, trust: false, strict: "ignore", maxSize: 50, maxExpand: 1000,
  };
  // LaTeX commands the documents use that KaTeX lacks, as KaTeX equivalents.
  var MACROS = {
    "\\qed": "\\blacksquare", "\\lcm": "\\operatorname{lcm}", "\\mbox": "\\text{#1}",
    "\\textbackslash": "\\backslash",
    "\\ensuremath": "\\text{$#1$}", // math in text or in math alike
    "\\varangle": "\\measuredangle", "\\Varangle": "\\measuredangle",
    "\\overparen": "\\overgroup", "\\qedhere": "", "\\label": "", "\\boldmath": "",
    "\\Q": "\\mathbb{Q}", "\\N": "\\mathbb{N}",
    "\\em": "\\it", "\\*": "*", // a Markdown-escaped asterisk
  };
  var failed = 0;
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
      // A fresh macro table each time: \gdef in one formula must not leak into the next.
      var options = { displayMode: el.classList.contains("display"), macros: Object.assign({}, MACROS) };
      window.katex.render(tex, el, Object.assign(options, OPTIONS));
    } catch (e) {
      showFailure(el, tex, e);
    }
    el.setAttribute("data-rendered", "1");
  }

  function showFailure(el, tex, error) {
    failed += 1;
    el.textContent = tex;
    el.classList.add("math-failed");
    el.id = el.id || "math-failed-" + failed;
    el.setAttribute("data-tex", tex);
    el.title = "Could not be typeset: " + (error && error.message ? error.message : error);
    updateWarning();
  }

  function updateWarning() {
    var box = document.getElementById("math-problems");
    if (!box) return;
    var all = document.querySelectorAll(".math-failed");
    box.textContent = "";
    if (!all.length) { box.hidden = true; return; }
    var text = all.length === 1 ? "1 formula could not be typeset" : all.length + " formulas could not be typeset";
    box.appendChild(document.createTextNode(text + "; its source is shown as written \u2014 jump to "));
    Array.prototype.forEach.call(all, function (el, i) {
      var link = document.createElement("a");
      link.href = "#" + el.id;
      link.textContent = all.length === 1 ? "it" : String(i + 1);
      if (i) box.appendChild(document.createTextNode(", "));
      box.appendChild(link);
    });
    box.hidden = false;
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
  document.addEventListener("htmx:afterSwap", function (ev) {
    updateWarning(); // a swap may have removed failed formulas
    renderMath(ev.detail.target);
  });
})();
