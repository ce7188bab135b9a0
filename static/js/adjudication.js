// The adjudication page: the gold score by keyboard (0 5 1), the reason (r, required), a
// comment (c), Enter to submit and move on to the next proof (from the reason too). On the shared work page
// (static/js/work.js: keyboard dispatch, autosave, active time); the page's form works
// without this script.
(function () {
  "use strict";

  var W = window.ProofdeskWork, $ = W.$, status = W.status;
  var SCORE_KEYS = { "0": "0", "5": "0.5", "1": "1" };

  function setup() {
    var form = $("adjudication-form");
    var page = {
      root: $("adjudication"),
      form: form,
      readOnlyKeys: ["0", "5", "1", "r", "c", "Enter"],
      readOnlyMessage: "This adjudication is committed. Press e to edit it, n for the next proof.",
      nextMessage: "Submit (Enter) or skip (s) this proof first; submitting opens the next one.",
      submit: function () { submitAdjudication(page); },
      keys: function (key) { return onKey(key, page); },
      snapshot: function () {
        return { score: chosenScore(page), reason: $("reason").value, comment: $("comment").value };
      },
      restore: function (local) {
        form.querySelectorAll("input[name=score]").forEach(function (r) { r.checked = r.value === local.score; });
        $("reason").value = local.reason || "";
        $("comment").value = local.comment || "";
      },
    };
    // The reason is a sentence or two: Enter submits from it too (Shift+Enter: a new line).
    if ($("reason")) {
      // A refusal about the missing reason goes once a reason is being written.
      $("reason").addEventListener("input", function () {
        var line = $("draft-status");
        if (line && line.classList.contains("error") && $("reason").value.trim()) status("", false);
      });
      $("reason").addEventListener("keydown", function (e) {
        if (e.key !== "Enter" || e.shiftKey || e.ctrlKey || e.altKey || e.metaKey) return;
        e.preventDefault();
        page.submit();
      });
    }
    W.start(page);
  }

  function onKey(key, page) {
    if (!page.form) return false;
    if (key in SCORE_KEYS) {
      if (!page.readOnly) W.check(page.form.querySelector('input[name=score][value="' + SCORE_KEYS[key] + '"]'));
      return true;
    }
    if (key === "r") { W.focusEnd($("reason")); return true; }
    if (key === "c") { W.focusEnd($("comment")); return true; }
    return false;
  }

  function chosenScore(page) {
    var checked = page.form && page.form.querySelector("input[name=score]:checked");
    return checked ? checked.value : "";
  }

  function submitAdjudication(page) {
    if (!page.form || page.submitting || page.readOnly) return;
    if (!chosenScore(page)) {
      status("Choose the gold score first: 0, 5 (for 0.5) or 1.", true);
      return;
    }
    if (!$("reason").value.trim()) {
      status("Say why the proof gets this score (r): the reason is required.", true);
      W.focusEnd($("reason"));
      return;
    }
    page.submitting = true; // no autosave or beacon after this
    page.form.submit();
  }

  W.onReady(setup);
})();
