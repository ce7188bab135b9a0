// The grading page: the score keys and issues anchored to the proof source, on top of the
// shared work page (static/js/work.js: keyboard dispatch, autosave, active time) and the
// shared anchoring (static/js/anchoring.js). The page's forms work without this script.
(function () {
  "use strict";

  var W = window.ProofdeskWork, A = window.ProofdeskAnchoring, $ = W.$, status = W.status;
  // Model suggestions (static/js/suggestions.js): absent, or inert without any on the page.
  var S = window.ProofdeskSuggestions;

  function setup() {
    var form = $("grade-form"), proof = $("proof-text");
    var page = {
      root: $("grading"),
      form: form,
      proof: proof,
      src: proof ? A.sourceStream(W.json("proof-source") || "") : null,
      issues: W.json("initial-issues") || [],
      lastProofRange: null,
      pendingAnchor: null,
      // A committed grade shown read-only: score keys, Enter and i do nothing until "Edit".
      readOnlyKeys: ["0", "5", "1", "Enter", "i", "c", "a", "A", "d", "u"],
      readOnlyMessage: "This grade is committed. Press e to edit it, n for the next proof.",
      nextMessage: "Submit (Enter) or skip (s) this proof first; submitting opens the next one.",
      submit: function () { submitGrade(page); },
      keys: function (key) { return onKey(key, page); },
      actions: {
        "add-issue": function () { openIssueDialog(page); },
        "remove-issue": function (el) { removeIssue(page, +el.getAttribute("data-index")); },
        "show-issue": function (el) { showIssue(page, +el.getAttribute("data-index")); },
      },
      snapshot: function () {
        var checked = form.querySelector("input[name=score]:checked");
        return {
          score: checked ? checked.value : "", comment: $("comment").value, issues: page.issues,
          suggestions: S ? S.snapshot() : undefined,
        };
      },
      restore: function (local) { restore(page, local); },
    };
    if (proof) A.lineNumbers(proof);
    if (form) {
      renderIssues(page);
      issueDialog(page);
      if (S) S.start(page, function () { issuesChanged(page); });
    }
    W.start(page);
  }

  function onKey(key, page) {
    switch (key) {
      case "0": setScore(page, "0"); break;
      case "5": setScore(page, "0.5"); break;
      case "1": setScore(page, "1"); break;
      case "i": if (page.form) openIssueDialog(page); break;
      case "c": W.focusEnd($("comment")); break;
      default: return !!(S && S.key(key));
    }
    return true;
  }

  function setScore(page, value) {
    if (!page.form || page.readOnly) return;
    W.check(page.form.querySelector('input[name=score][value="' + value + '"]'));
  }

  function submitGrade(page) {
    if (!page.form || page.submitting || page.readOnly) return;
    if (!page.form.querySelector("input[name=score]:checked")) {
      status("Choose a score first: 0, 5 (for 0.5) or 1.", true);
      return;
    }
    page.submitting = true; // no autosave or beacon after this
    page.form.submit();
  }

  // ---- Issues --------------------------------------------------------------------------

  function issuesChanged(page) {
    renderIssues(page);
    if (S) S.issuesChanged();  // a removed issue from a claim: the claim is undecided again
    page.form.dispatchEvent(new Event("proofdesk:dirty", { bubbles: true }));
  }

  function renderIssues(page) {
    var list = $("issue-list");
    list.textContent = "";
    page.issues.forEach(function (issue, k) {
      var li = document.createElement("li");
      li.className = "issue-item " + issue.severity;
      var sev = document.createElement("span");
      sev.className = "severity " + issue.severity;
      sev.textContent = issue.severity;
      var quote = document.createElement(issue.start === null || issue.start === undefined ? "span" : "button");
      quote.className = "quote";
      if (quote.tagName === "BUTTON") {
        quote.type = "button";
        quote.setAttribute("data-action", "show-issue");
        quote.setAttribute("data-index", k);
        quote.title = "Show in the proof";
      }
      if (issue.quote) quote.append("“", ...A.quoteNodes(issue.quote, 80, A.insideDollars(page.src, issue.start)), "”");
      else quote.textContent = "(the proof as a whole)";
      var note = document.createElement("p");
      note.className = "note";
      note.textContent = issue.note;
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove";
      remove.setAttribute("data-action", "remove-issue");
      remove.setAttribute("data-index", k);
      remove.setAttribute("aria-label", "Remove issue " + (k + 1));
      remove.textContent = "×";
      li.append(sev, " ", quote, remove, note);
      if (issue.claim) {
        var origin = document.createElement("span");
        origin.className = "origin";
        origin.textContent = "from the model's claim";
        sev.after(" ", origin);
      }
      list.appendChild(li);
    });
    if (window.proofdeskRenderMath) window.proofdeskRenderMath(list);
    $("no-issues").hidden = page.issues.length > 0;
    $("issues-field").value = JSON.stringify(page.issues);
    if (page.proof) {
      A.unhighlight(page.proof, "mark.issue");
      page.issues.forEach(function (issue, k) {
        A.highlight(page.proof, page.src, issue, function (mark) {
          mark.className = "issue " + issue.severity;
          mark.title = issue.severity + ": " + issue.note;
          mark.setAttribute("data-issue", k);
        });
      });
    }
  }

  function truncate(text, n) {
    text = text.replace(/\s+/g, " ").trim();
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  function removeIssue(page, k) {
    page.issues.splice(k, 1);
    issuesChanged(page);
  }

  function showIssue(page, k) {
    var mark = page.proof.querySelector('mark.issue[data-issue="' + k + '"]');
    if (mark) mark.scrollIntoView({ block: "center" });
  }

  function proofSelection(page) {
    var sel = window.getSelection();
    if (sel.rangeCount && !sel.isCollapsed) {
      var range = sel.getRangeAt(0);
      if (page.proof.contains(range.commonAncestorContainer)) return range;
    }
    return page.lastProofRange;
  }

  function issueDialog(page) {
    // Remember the last passage selected in the proof: clicking "Add issue" may clear it.
    document.addEventListener("selectionchange", function () {
      var sel = window.getSelection();
      if (sel.rangeCount && !sel.isCollapsed && page.proof.contains(sel.getRangeAt(0).commonAncestorContainer)) {
        page.lastProofRange = sel.getRangeAt(0).cloneRange();
      }
    });
    var dialog = $("issue-dialog"), dform = dialog.querySelector("form");
    dform.addEventListener("submit", function (e) {
      e.preventDefault();
      var anchor = page.pendingAnchor, passage = $("issue-passage");
      if (!anchor && passage.value.trim()) {
        // No selection, but words typed from the proof (the keyboard way to anchor).
        anchor = A.anchorText(page.src, passage.value);
        if (!anchor) {
          $("issue-passage-missing").hidden = false;
          passage.focus();
          return;
        }
      }
      var note = $("issue-note").value.trim();
      if (anchor && anchor.unanchored) note = "“" + truncate(anchor.text, 200) + "” " + note;
      page.issues.push({
        start: anchor && !anchor.unanchored ? anchor.start : null,
        end: anchor && !anchor.unanchored ? anchor.end : null,
        quote: anchor && !anchor.unanchored ? anchor.quote : "",
        note: note,
        severity: dform.querySelector("input[name=severity]:checked").value,
      });
      page.lastProofRange = null;
      window.getSelection().removeAllRanges();
      dialog.close();
      issuesChanged(page);
    });
  }

  function openIssueDialog(page) {
    var range = proofSelection(page), anchor = null;
    if (range) {
      anchor = A.anchorRange(page.proof, page.src, range);
      if (!anchor) anchor = { unanchored: true, text: range.toString() };
    }
    page.pendingAnchor = anchor;
    var quote = $("issue-quote");
    // The source slice the issue will be anchored to, shown typeset below.
    quote.setAttribute("data-source", anchor && !anchor.unanchored ? anchor.quote : "");
    if (!anchor) quote.textContent = "No passage selected: this issue is about the proof as a whole.";
    else if (anchor.unanchored) quote.textContent = anchor.text;  // already the rendered text
    else {
      quote.textContent = "";
      quote.append(...A.quoteNodes(anchor.quote, 400, A.insideDollars(page.src, anchor.start)));
      if (window.proofdeskRenderMath) window.proofdeskRenderMath(quote);
    }
    $("issue-anchor-warning").hidden = !(anchor && anchor.unanchored);
    $("issue-passage-field").hidden = !!anchor;
    $("issue-passage-missing").hidden = true;
    $("issue-passage").value = "";
    $("issue-note").value = "";
    $("issue-dialog").querySelector("input[name=severity][value=minor]").checked = true;
    $("issue-dialog").showModal();
    (anchor ? $("issue-note") : $("issue-passage")).focus();
  }

  function restore(page, local) {
    page.form.querySelectorAll("input[name=score]").forEach(function (radio) {
      radio.checked = radio.value === local.score;
    });
    $("comment").value = local.comment || "";
    page.issues = Array.isArray(local.issues) ? local.issues : [];
    renderIssues(page);
    if (S) S.restore(local);
  }

  // Keyboard shortcuts on the queue page (n) work before the grading page exists.
  W.onReady(setup);
})();
