// Render every math span produced by the server-side renderer with KaTeX.
// trust is off: \href, \url, \includegraphics and friends are refused.
(function () {
  "use strict";
  function renderMath(root) {
    if (!window.katex) return;
    root.querySelectorAll(".math:not([data-rendered])").forEach(function (el) {
      var tex = el.textContent;
      try {
        window.katex.render(tex, el, {
          displayMode: el.classList.contains("display"),
          throwOnError: false,
          trust: false,
          strict: "ignore",
          maxExpand: 1000,
        });
      } catch (e) {
        el.textContent = tex;
      }
      el.setAttribute("data-rendered", "1");
    });
  }
  window.proofdeskRenderMath = renderMath;
  document.addEventListener("DOMContentLoaded", function () { renderMath(document); });
  document.addEventListener("htmx:afterSwap", function (ev) { renderMath(ev.detail.target); });
})();
