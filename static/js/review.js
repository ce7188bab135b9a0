// The review page: a verdict on each claim of the analysis with the keyboard (r f u, j k),
// each claim's passage highlighted in the proof, the rubric's suggestion shown live, the
// quality score and the reason for overriding the suggestion; merging and splitting claims.
// On the shared work page (static/js/work.js) and anchoring (static/js/anchoring.js); the
// page's forms work without this script.
(function () {
  "use strict";

  var W = window.ProofdeskWork, A = window.ProofdeskAnchoring, $ = W.$, status = W.status;
  var VERDICT_KEYS = { r: "real", f: "not_real", u: "unsure" };

  function setup() {
    var form = $("review-form"), proof = $("proof-text");
    var page = {
      root: $("review"),
      form: form,
      proof: proof,
      claims: W.json("claim-anchors") || [],
      suggestions: W.json("suggestions") || {},
      current: -1,
      readOnlyKeys: ["r", "f", "u", "t", "0", "5", "1", "o", "c", "Enter", "m", "x"],
      readOnlyMessage: "This review is committed. Press e to edit it, n for the next analysis.",
      nextMessage: "Submit (Enter) or skip (s) this analysis first; submitting opens the next one.",
      submit: function () { submitReview(page); },
      keys: function (key) { return onKey(key, page); },
      actions: {
        "show-claim": function (el) { setCurrent(page, +el.getAttribute("data-index"), true); },
        merge: function () { openMerge(page); },
        split: function () { openSplit(page); },
      },
      snapshot: function () { return snapshot(page); },
      restore: function (local) { restore(page, local); },
    };
    if (proof && A) {
      A.lineNumbers(proof);
      page.src = A.sourceStream(W.json("proof-source") || "");
      highlightClaims(page);
      proof.addEventListener("click", function (e) {
        var mark = e.target.closest("mark.claim");
        if (mark) setCurrent(page, +mark.getAttribute("data-claim"), false);
      });
    }
    if (form) {
      form.addEventListener("input", function () { updateSuggestion(page); });
      form.addEventListener("change", function () { updateSuggestion(page); });
      form.addEventListener("focusin", function (e) {
        var li = e.target.closest(".claim-item");
        if (li && +li.dataset.index !== page.current) setCurrent(page, +li.dataset.index, true);
      });
      var splitForm = $("split-dialog") && $("split-dialog").querySelector("form");
      if (splitForm) splitForm.addEventListener("submit", function (e) { onSplit(e, page); });
    }
    W.start(page);
    if (form) {
      updateSuggestion(page);
      if (page.claims.length) setCurrent(page, firstUnjudged(page), false);
    }
  }

  function onKey(key, page) {
    if (!page.form) return false;
    if (key in VERDICT_KEYS) { setVerdict(page, VERDICT_KEYS[key]); return true; }
    switch (key) {
      case "j": setCurrent(page, page.current + 1, true); break;
      case "k": setCurrent(page, page.current - 1, true); break;
      case "t": W.focusEnd(noteOf(page, page.current)); break;
      case "0": W.check(scoreRadio(page, "0")); break;
      case "5": W.check(scoreRadio(page, "0.5")); break;
      case "1": W.check(scoreRadio(page, "1")); break;
      case "o": $("override").hidden = false; W.focusEnd($("override-reason")); break;
      case "c": W.focusEnd($("comment")); break;
      case "m": openMerge(page); break;
      case "x": openSplit(page); break;
      default: return false;
    }
    return true;
  }

  // ---- Claims and their passages ---------------------------------------------------------

  function item(k) { return document.querySelector('.claim-item[data-index="' + k + '"]'); }

  function noteOf(page, k) {
    var li = item(k);
    return li && li.querySelector("textarea");
  }

  function verdictOf(page, k) {
    var li = item(k), checked = li && li.querySelector("input[type=radio]:checked");
    return checked ? checked.value : "";
  }

  function firstUnjudged(page) {
    for (var k = 0; k < page.claims.length; k++) if (!verdictOf(page, k)) return k;
    return 0;
  }

  function highlightClaims(page) {
    A.unhighlight(page.proof, "mark.claim");
    page.claims.forEach(function (claim, k) {
      A.highlight(page.proof, page.src, claim, function (mark) {
        mark.className = "claim" + (claim.approximate ? " approximate" : "");
        mark.title = "Claim " + (k + 1) + (claim.approximate ? " (located approximately)" : "");
        mark.setAttribute("data-claim", k);
      });
    });
  }

  // Make claim k the current one: its card and its passage in the proof are marked, and,
  // with `scroll`, both brought into view.
  function setCurrent(page, k, scroll) {
    if (!page.claims.length) return;
    k = Math.max(0, Math.min(page.claims.length - 1, k));
    page.current = k;
    document.querySelectorAll(".claim-item.current").forEach(function (li) { li.classList.remove("current"); });
    var li = item(k);
    if (li) li.classList.add("current");
    var marks = [];
    if (page.proof) {
      page.proof.querySelectorAll("mark.claim.current").forEach(function (m) { m.classList.remove("current"); });
      marks = page.proof.querySelectorAll('mark.claim[data-claim="' + k + '"]');
      marks.forEach(function (m) { m.classList.add("current"); });
    }
    if (!scroll) return;
    if (li) li.scrollIntoView({ block: "nearest" });
    if (marks.length) marks[0].scrollIntoView({ block: "center" });
    else status("Claim " + (k + 1) + " is not located in the proof: it is about the proof as a whole, or its passage could not be found.", false);
  }

  function setVerdict(page, value) {
    if (page.readOnly || page.current < 0) return;
    var li = item(page.current);
    W.check(li && li.querySelector('input[type=radio][value="' + value + '"]'));
    if (page.current < page.claims.length - 1) setCurrent(page, page.current + 1, true);
  }

  // ---- The score and the rubric's suggestion ---------------------------------------------

  function scoreRadio(page, value) {
    return page.form.querySelector('input[name=score][value="' + value + '"]');
  }

  function chosenScore(page) {
    var checked = page.form.querySelector("input[name=score]:checked");
    return checked ? checked.value : "";
  }

  // The server's table (annotate/review.py `suggest_score` for each number of real claims):
  // a suggestion only when every claim is judged real or not real.
  function suggestion(page) {
    var real = 0;
    for (var k = 0; k < page.claims.length; k++) {
      var v = verdictOf(page, k);
      if (v !== "real" && v !== "not_real") return "";
      if (v === "real") real += 1;
    }
    return page.suggestions[String(real)] || "";
  }

  function updateSuggestion(page) {
    var suggested = suggestion(page), score = chosenScore(page);
    $("suggested-score").textContent = suggested || "—";
    $("suggestion-why").textContent = suggested
      ? (score && score !== suggested ? "(you give " + score + ": say why)" : "")
      : "(once every claim is judged real or not real)";
    var override = $("override");
    override.hidden = !(suggested && score && score !== suggested) && !$("override-reason").value.trim();
  }

  function submitReview(page) {
    if (!page.form || page.submitting || page.readOnly) return;
    var missing = [];
    for (var k = 0; k < page.claims.length; k++) if (!verdictOf(page, k)) missing.push(k);
    if (missing.length) {
      status("Give a verdict on every claim first (missing: " + missing.map(function (k) { return k + 1; }).join(", ") + ").", true);
      setCurrent(page, missing[0], true);
      return;
    }
    var suggested = suggestion(page), score = chosenScore(page);
    if (!score) {
      status("Choose the quality score: 0, 5 (for 0.5) or 1" + (suggested ? " (the rubric suggests " + suggested + ")." : "."), true);
      return;
    }
    if (suggested && score !== suggested && !$("override-reason").value.trim()) {
      status("The rubric suggests " + suggested + "; say why you give " + score + " (o).", true);
      $("override").hidden = false;
      W.focusEnd($("override-reason"));
      return;
    }
    page.submitting = true; // no autosave or beacon after this
    page.form.submit();
  }

  // ---- The local copy of the draft -------------------------------------------------------

  function snapshot(page) {
    var verdicts = {};
    page.claims.forEach(function (claim, k) {
      verdicts[claim.id] = { verdict: verdictOf(page, k), note: noteOf(page, k).value };
    });
    return {
      verdicts: verdicts,
      score: chosenScore(page),
      override_reason: $("override-reason").value,
      comment: $("comment").value,
    };
  }

  function restore(page, local) {
    var verdicts = local.verdicts || {};
    page.claims.forEach(function (claim, k) {
      var saved = verdicts[claim.id] || { verdict: "", note: "" }, li = item(k);
      li.querySelectorAll("input[type=radio]").forEach(function (r) { r.checked = r.value === saved.verdict; });
      noteOf(page, k).value = saved.note || "";
    });
    page.form.querySelectorAll("input[name=score]").forEach(function (r) { r.checked = r.value === local.score; });
    $("override-reason").value = local.override_reason || "";
    $("comment").value = local.comment || "";
    updateSuggestion(page);
  }

  // ---- Merging and splitting claims ------------------------------------------------------

  function openMerge(page) {
    var dialog = $("merge-dialog");
    if (!dialog || page.readOnly) return;
    var k = Math.max(0, page.current);
    if (k >= page.claims.length - 1) k = page.claims.length - 2;
    dialog.querySelectorAll("input[name=claim]").forEach(function (box, n) { box.checked = n === k || n === k + 1; });
    dialog.showModal();
    dialog.querySelector("button[type=submit]").focus();
  }

  function openSplit(page) {
    var dialog = $("split-dialog");
    if (!dialog || page.readOnly || page.current < 0) return;
    var claim = page.claims[page.current], text = $("split-text");
    dialog.querySelector("form").action = item(page.current).dataset.splitUrl;
    $("split-number").textContent = page.current + 1;
    text.value = claim.text;
    dialog.showModal();
    // A first guess: the sentence break nearest the middle.
    var middle = Math.floor(text.value.length / 2), best = -1, re = /[.;:]\s+/g, m;
    while ((m = re.exec(text.value))) {
      var at = m.index + m[0].length;
      if (best < 0 || Math.abs(at - middle) < Math.abs(best - middle)) best = at;
    }
    text.focus();
    text.setSelectionRange(best < 0 ? middle : best, best < 0 ? middle : best);
  }

  function onSplit(e, page) {
    var text = $("split-text"), caret = text.selectionStart;
    var before = text.value.slice(0, caret), after = text.value.slice(caret);
    if (!before.trim() || !after.trim()) {
      e.preventDefault();
      status("Put the cursor between the two parts of the claim.", true);
      return;
    }
    // The server counts code points. The draft is flushed by the beacon as the page is left
    // (its verdicts are by claim, and the claims not split keep theirs).
    $("split-at").value = Array.from(before).length;
  }

  W.onReady(setup);
})();
