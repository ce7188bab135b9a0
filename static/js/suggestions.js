// Model suggestions on the grading page (templates/annotate/_suggestions.html): a verifier's
// claims beside the proof, which the grader accepts into the grade as issues (anchored where
// the claim is, naming the claim) or dismisses, by keyboard. The decisions go with the
// grade's form (the hidden "suggestions" field), so they are autosaved with the draft and
// committed with the grade (annotate/suggestions.py). grading.js calls in through
// ProofdeskSuggestions; without suggestions on the page every call does nothing.
(function () {
  "use strict";

  var W = window.ProofdeskWork, A = window.ProofdeskAnchoring;
  var LABELS = { accepted: "accepted", dismissed: "dismissed" };
  var state = null;  // {page, claims: [...], byId: {}, decisions: {}, current, changed}

  function start(page, changed) {
    var data = W.json("suggestion-anchors"), field = W.$("suggestions-field");
    if (!data || !field || !page.form) return;
    state = { page: page, claims: data.claims, byId: {}, decisions: {}, current: -1, changed: changed };
    data.claims.forEach(function (c) { state.byId[c.id] = c; });
    (data.decisions || []).forEach(function (d) {
      if (state.byId[d.claim]) state.decisions[d.claim] = d.decision;
    });
    reconcile();
    page.actions["accept-suggestion"] = function (el) { pick(el); accept(false); };
    page.actions["accept-suggestion-fatal"] = function (el) { pick(el); accept(true); };
    page.actions["dismiss-suggestion"] = function (el) { pick(el); dismiss(); };
    page.actions["undo-suggestion"] = function (el) { pick(el); undo(); };
    render();
    // The first undecided claim is the current one.
    move(0, true);
  }

  // The issues are the truth for "accepted": a restored or re-rendered form whose issue
  // list names a claim has that claim accepted, and an accepted claim without its issue
  // is undecided again.
  function reconcile() {
    var fromIssues = {};
    state.page.issues.forEach(function (issue) {
      if (issue.claim) fromIssues[issue.claim] = true;
    });
    Object.keys(state.decisions).forEach(function (id) {
      if (state.decisions[id] === "accepted" && !fromIssues[id]) delete state.decisions[id];
    });
    Object.keys(fromIssues).forEach(function (id) {
      if (state.byId[id]) state.decisions[id] = "accepted";
    });
  }

  function pick(el) {
    var id = +el.getAttribute("data-claim");
    for (var k = 0; k < state.claims.length; k++) if (state.claims[k].id === id) setCurrent(k);
  }

  function editable() { return state && !state.page.readOnly; }

  // j/k: the next/previous claim; a: accept (A: as fatal); d: dismiss; u: undecided again.
  function key(k) {
    if (!state) return false;
    switch (k) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "a": accept(false); break;
      case "A": accept(true); break;
      case "d": dismiss(); break;
      case "u": undo(); break;
      default: return false;
    }
    return true;
  }

  function move(step, firstUndecided) {
    if (!state.claims.length) return;
    if (firstUndecided) {
      for (var k = 0; k < state.claims.length; k++) {
        if (!state.decisions[state.claims[k].id]) return setCurrent(k, true);
      }
      return setCurrent(0, true);
    }
    var next = state.current < 0 ? 0 : state.current + step;
    setCurrent(Math.max(0, Math.min(state.claims.length - 1, next)));
  }

  function setCurrent(k, quiet) {
    state.current = k;
    var claim = state.claims[k];
    document.querySelectorAll("#suggestions .suggestion.current").forEach(function (li) {
      li.classList.remove("current");
    });
    var li = W.$("suggestion-" + claim.id);
    if (li) li.classList.add("current");
    showInProof(claim, quiet);
    if (li && !quiet) li.scrollIntoView({ block: "nearest" });
  }

  function showInProof(claim, quiet) {
    var page = state.page;
    if (!page.proof) return;
    A.unhighlight(page.proof, "mark.suggestion-mark");
    if (claim.start === null || claim.start === undefined) return;
    var marks = A.highlight(page.proof, page.src, claim, function (mark) {
      mark.className = "suggestion-mark current";
      mark.title = "Claim " + claim.number;
    });
    if (marks && marks.length && !quiet) marks[0].scrollIntoView({ block: "center" });
  }

  function current() {
    return state.current < 0 ? null : state.claims[state.current];
  }

  function refuseReadOnly() {
    if (editable()) return false;
    W.status(state.page.readOnlyMessage, false);
    return true;
  }

  function accept(fatal) {
    var claim = current();
    if (!claim || refuseReadOnly()) return;
    var issues = state.page.issues, existing = null;
    issues.forEach(function (issue) { if (issue.claim === claim.id) existing = issue; });
    if (existing) {
      existing.severity = fatal ? "fatal" : "minor";
    } else {
      var anchored = claim.start !== null && claim.start !== undefined;
      issues.push({
        start: anchored ? claim.start : null,
        end: anchored ? claim.end : null,
        quote: anchored ? claim.exact : "",
        note: claim.note,
        severity: fatal ? "fatal" : "minor",
        claim: claim.id,
      });
    }
    decide(claim, "accepted");
  }

  function dismiss() {
    var claim = current();
    if (!claim || refuseReadOnly()) return;
    dropIssue(claim.id);
    decide(claim, "dismissed");
  }

  function undo() {
    var claim = current();
    if (!claim || refuseReadOnly()) return;
    dropIssue(claim.id);
    delete state.decisions[claim.id];
    after(claim, "Claim " + claim.number + ": undecided again.", false);
  }

  function dropIssue(id) {
    var issues = state.page.issues;
    for (var k = issues.length - 1; k >= 0; k--) if (issues[k].claim === id) issues.splice(k, 1);
  }

  function decide(claim, decision) {
    state.decisions[claim.id] = decision;
    after(claim, "Claim " + claim.number + " " + LABELS[decision] + ".", true);
  }

  function after(claim, message, advance) {
    render();
    state.changed();  // issues re-rendered, the form is dirty: autosave
    W.status(message, false);
    if (advance && state.current < state.claims.length - 1) move(1);
    else setCurrent(state.current, true);
  }

  function render() {
    var decided = 0;
    state.claims.forEach(function (claim) {
      var li = W.$("suggestion-" + claim.id), decision = state.decisions[claim.id] || "";
      if (decision) decided += 1;
      if (!li) return;
      li.classList.toggle("accepted", decision === "accepted");
      li.classList.toggle("dismissed", decision === "dismissed");
      var label = li.querySelector("[data-decision-label]");
      if (label) label.textContent = decision ? "· " + LABELS[decision] : "";
    });
    var progress = W.$("suggestions-progress");
    if (progress) progress.textContent = decided + " of " + state.claims.length + " decided";
    W.$("suggestions-field").value = JSON.stringify(decisions());
  }

  function decisions() {
    return Object.keys(state.decisions).sort(function (a, b) { return a - b; }).map(function (id) {
      return { claim: +id, decision: state.decisions[id] };
    });
  }

  // grading.js: an issue was removed (an accepted claim is undecided again), the form was
  // restored from the local copy, and what the local copy keeps.
  function issuesChanged() {
    if (!state) return;
    reconcile();
    render();
  }

  function snapshot() { return state ? decisions() : undefined; }

  function restore(local) {
    if (!state) return;
    state.decisions = {};
    (Array.isArray(local.suggestions) ? local.suggestions : []).forEach(function (d) {
      if (d && state.byId[d.claim]) state.decisions[d.claim] = d.decision;
    });
    reconcile();
    render();
  }

  window.ProofdeskSuggestions = {
    start: start, key: key, issuesChanged: issuesChanged, snapshot: snapshot, restore: restore,
  };
})();
