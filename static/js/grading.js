// The grading page: keyboard shortcuts, issues anchored to the proof source, autosave
// safety net, active time. The page's forms work without this script; it adds to them.
(function () {
  "use strict";

  // ---- Anchoring: rendered selection <-> proof source offsets ---------------------------
  //
  // The source and its rendered DOM are each read as a "stream" of significant characters:
  // whitespace and Markdown/TeX punctuation ($ * _ ` # > \ | ~) are dropped, and a rendered
  // math element contributes its TeX (KaTeX keeps it in an <annotation>). The same passage
  // then reads the same on both sides, and every character remembers where it came from: a
  // source offset (in code points, as Python counts) or a DOM text position. A passage is
  // found at the occurrence nearest to where its block's data-line says it should be.

  var SKIP = /[\s$*_`#>\\|~]/;

  // visit(ch, unitOffset, codepointIndex) for each significant character of `text`. The
  // LaTeX delimiters \( \) \[ \] are markup too (but \\[2mm] is a line break and a length).
  function scan(text, visit) {
    var unit = 0, cp = 0, backslash = false;
    for (var ch of text) {
      var delimiter = backslash && "()[]".includes(ch);
      backslash = ch === "\\" && !backslash;
      if (!delimiter && !SKIP.test(ch)) visit(ch, unit, cp);
      unit += ch.length;
      cp += 1;
    }
  }

  function sourceStream(text) {
    var chars = [], pos = [], lineStarts = [0], codepoints = Array.from(text);
    scan(text, function (ch, unit, cp) {
      chars.push(ch);
      for (var u = 0; u < ch.length; u++) pos.push(cp);
    });
    codepoints.forEach(function (ch, cp) { if (ch === "\n") lineStarts.push(cp + 1); });
    return { chars: chars.join(""), pos: pos, lineStarts: lineStarts, codepoints: codepoints };
  }

  function texOf(mathEl) {
    var annotation = mathEl.querySelector('annotation[encoding="application/x-tex"]');
    return annotation ? annotation.textContent : mathEl.textContent;
  }

  function domStream(root) {
    var chars = [], where = [], lines = {};
    function push(ch, node, offset) {
      chars.push(ch);
      for (var u = 0; u < ch.length; u++) where.push({ node: node, offset: offset, end: offset + ch.length });
    }
    function walk(node) {
      if (node.nodeType === Node.TEXT_NODE) {
        scan(node.data, function (ch, unit) { push(ch, node, unit); });
        return;
      }
      if (node.nodeType !== Node.ELEMENT_NODE) return;
      var line = node.getAttribute("data-line");
      if (line !== null && !(line in lines)) lines[line] = where.length;
      if (node.classList.contains("math")) {
        scan(texOf(node), function (ch) { push(ch, node, -1); });
        return;
      }
      node.childNodes.forEach(walk);
    }
    walk(root);
    return { chars: chars.join(""), where: where, lines: lines };
  }

  function lowerBound(sorted, value) {
    var lo = 0, hi = sorted.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (sorted[mid] < value) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  function nearest(hay, needle, expected) {
    var best = -1;
    for (var at = hay.indexOf(needle); at !== -1; at = hay.indexOf(needle, at + 1)) {
      if (best < 0 || Math.abs(at - expected) < Math.abs(best - expected)) best = at;
      else if (at > expected) break;
    }
    return best;
  }

  // [from, to) of `needle` in `hay` nearest `expected`; for a long passage whose middle the
  // two sides read differently (list numbers, link targets), its two ends are anchored.
  function match(hay, needle, expected) {
    if (!needle) return null;
    var at = nearest(hay, needle, expected);
    if (at >= 0) return [at, at + needle.length];
    var n = Math.min(16, Math.floor(needle.length / 2));
    if (n < 4) return null;
    var head = nearest(hay, needle.slice(0, n), expected);
    if (head < 0) return null;
    var tail = hay.indexOf(needle.slice(-n), head + n);
    if (tail < 0 || tail + n - head > 2 * needle.length + 64) return null;
    return [head, tail + n];
  }

  function blockLine(node) {
    var el = node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement;
    el = el && el.closest("[data-line]");
    return el ? el.getAttribute("data-line") : null;
  }

  // Selection -> {start, end, quote} in the source, or null when it cannot be located.
  function anchorRange(root, src, range) {
    var dom = domStream(root), first = -1, last = -1, prev = null, nodeIn = false;
    for (var k = 0; k < dom.where.length; k++) {
      var w = dom.where[k], inside;
      if (w.node !== prev) { prev = w.node; nodeIn = range.intersectsNode(w.node); }
      inside = nodeIn;
      if (inside && w.offset >= 0) {
        if (w.node === range.startContainer && w.offset < range.startOffset) inside = false;
        if (w.node === range.endContainer && w.offset >= range.endOffset) inside = false;
      }
      if (inside) { if (first < 0) first = k; last = k; } else if (first >= 0) break;
    }
    if (first < 0) return null;
    var line = blockLine(dom.where[first].node), expected = first;
    if (line !== null && line in dom.lines) {
      expected = lowerBound(src.pos, src.lineStarts[+line] || 0) + (first - dom.lines[line]);
    }
    var found = match(src.chars, dom.chars.slice(first, last + 1), expected);
    return found ? sourceSpan(src, found) : null;
  }

  // Words typed from the proof (as rendered, or as TeX) -> {start, end, quote} in the
  // source, the first occurrence; null when they are not in the proof.
  function anchorText(src, text) {
    var chars = [];
    scan(text, function (ch) { chars.push(ch); });
    var found = chars.length ? match(src.chars, chars.join(""), 0) : null;
    return found ? sourceSpan(src, found) : null;
  }

  // [from, to) of the source stream -> the source span, taking in the delimiters around its
  // ends: $x$, **x**, \(x\), \sqrt.
  function sourceSpan(src, found) {
    var cps = src.codepoints, start = src.pos[found[0]], end = src.pos[found[1] - 1] + 1;
    while (start > 0 && "$*_`\\".includes(cps[start - 1])) start--;
    if (start > 1 && cps[start - 2] === "\\" && "([".includes(cps[start - 1])) start -= 2;
    while (end < cps.length && "$*_`".includes(cps[end])) end++;
    if (cps[end] === "\\" && ")]".includes(cps[end + 1])) end += 2;
    return { start: start, end: end, quote: cps.slice(start, end).join("") };
  }

  // Source span -> wrap the rendered passage in <mark class="issue"> (a whole math element
  // when the span touches it).
  function highlight(root, src, issue, index) {
    if (issue.start === null || issue.start === undefined) return false;
    var i = lowerBound(src.pos, issue.start), j = lowerBound(src.pos, issue.end);
    if (i >= j) return false;
    var dom = domStream(root);
    var line = lowerBound(src.lineStarts, issue.start + 1) - 1, best = -1;
    for (var l in dom.lines) if (+l <= line && +l > best) best = +l;
    var expected = best < 0 ? i : dom.lines[best] + (i - lowerBound(src.pos, src.lineStarts[best]));
    var found = match(dom.chars, src.chars.slice(i, j), expected);
    if (!found) return false;
    var groups = [];
    dom.where.slice(found[0], found[1]).forEach(function (w) {
      var g = groups[groups.length - 1];
      if (g && g.node === w.node) g.to = w.end;
      else groups.push({ node: w.node, from: w.offset, to: w.end });
    });
    groups.reverse().forEach(function (g) {
      var mark = document.createElement("mark");
      mark.className = "issue " + issue.severity;
      mark.title = issue.severity + ": " + issue.note;
      mark.setAttribute("data-issue", index);
      if (g.from < 0) {
        g.node.parentNode.insertBefore(mark, g.node);
        mark.appendChild(g.node);
      } else {
        var r = document.createRange();
        r.setStart(g.node, g.from);
        r.setEnd(g.node, g.to);
        r.surroundContents(mark);
      }
    });
    return true;
  }

  function unhighlight(root) {
    root.querySelectorAll("mark.issue").forEach(function (mark) {
      mark.replaceWith.apply(mark, Array.from(mark.childNodes));
    });
    root.normalize();
  }

  // ---- The page ------------------------------------------------------------------------

  var IDLE_MS = 120 * 1000; // no input for this long: reading has stopped, time stops
  var RETRY_MS = 5000;

  function $(id) { return document.getElementById(id); }

  function json(id) {
    var el = $(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function lineNumbers(proof) {
    proof.querySelectorAll("[data-line]").forEach(function (el) {
      var parent = el.parentElement.closest("[data-line]");
      if (parent && proof.contains(parent) && parent.getAttribute("data-line") === el.getAttribute("data-line")) return;
      el.setAttribute("data-lineno", +el.getAttribute("data-line") + 1);
    });
  }

  function setup() {
    var form = $("grade-form"), proof = $("proof-text"), root = $("grading");
    var page = {
      form: form,
      proof: proof,
      src: proof ? sourceStream(json("proof-source") || "") : null,
      issues: json("initial-issues") || [],
      editing: !!root && root.dataset.editing === "true",
      // A committed grade shown read-only: score keys, Enter and i do nothing until "Edit".
      readOnly: !!root && root.dataset.readOnly === "true",
      submitting: false,
      edits: 0,
      savedEdits: 0,
      lastProofRange: null,
      pendingAnchor: null,
    };
    if (proof) lineNumbers(proof);
    if (form) {
      renderIssues(page);
      if (!page.readOnly) trackActiveTime(page);
      autosave(page);
      issueDialog(page);
    }
    // Back to a page kept in the back/forward cache shows the form as it was before it was
    // submitted (an uncommitted grade that is committed by now): draw it afresh instead.
    window.addEventListener("pageshow", function (e) { if (e.persisted && form) location.reload(); });
    document.addEventListener("keydown", function (e) { onKey(e, page); });
    // A closed dialog may keep focus until the next rendering update: let it go at once, so
    // the next shortcut is not typed into a hidden field. The close event comes in a task of
    // its own: if the dialog was opened again meanwhile (Esc, then i at once), its focus stays.
    document.querySelectorAll("dialog").forEach(function (dialog) {
      dialog.addEventListener("close", function () {
        if (!dialog.open && dialog.contains(document.activeElement)) document.activeElement.blur();
      });
    });
    document.addEventListener("click", function (e) {
      var action = e.target.closest("[data-action]");
      if (!action) return;
      var name = action.getAttribute("data-action");
      if (name === "close") action.closest("dialog").close();
      else if (name === "help") openDialog("help-dialog");
      else if (name === "skip") openDialog("skip-dialog");
      else if (name === "add-issue") openIssueDialog(page);
      else if (name === "remove-issue") removeIssue(page, +action.getAttribute("data-index"));
      else if (name === "show-issue") showIssue(page, +action.getAttribute("data-index"));
    });
  }

  function openDialog(id) {
    var dialog = $(id);
    if (dialog && !dialog.open) dialog.showModal();
  }

  function onKey(e, page) {
    if (e.defaultPrevented || e.altKey || e.metaKey) return;
    var t = e.target.closest("dialog:not([open])") ? document.body : e.target;
    var dialog = document.querySelector("dialog[open]");
    if (dialog) {
      // Enter on a radio or Ctrl+Enter anywhere submits the dialog; Esc is native.
      var dform = dialog.querySelector("form");
      if (e.key === "Enter" && dform && (e.ctrlKey || t.matches("input[type=radio]"))) {
        e.preventDefault();
        dform.requestSubmit();
      }
      return;
    }
    if (e.key === "Enter" && e.ctrlKey) { e.preventDefault(); submitGrade(page); return; }
    if (t.matches("textarea, select, input:not([type=radio]):not([type=checkbox]), [contenteditable]")) {
      if (e.key === "Escape") t.blur();
      return;
    }
    if (e.ctrlKey) return;
    if (e.key === "Enter" && t.matches("button, a, summary")) return; // activate what has focus
    if (page.readOnly && ["0", "5", "1", "Enter", "i", "c"].includes(e.key)) {
      // A committed grade changes only through its edit form, opened on purpose.
      status(page, "This grade is committed. Press e to edit it, n for the next proof.", false);
      e.preventDefault();
      return;
    }
    switch (e.key) {
      case "0": setScore(page, "0"); break;
      case "5": setScore(page, "0.5"); break;
      case "1": setScore(page, "1"); break;
      case "Enter": submitGrade(page); break;
      case "n":
        if ($("next-form")) $("next-form").submit();
        else if (page.form) status(page, "Submit (Enter) or skip (s) this proof first; submitting opens the next one.", false);
        break;
      case "e": if ($("edit-link")) $("edit-link").click(); break;
      case "s": openDialog("skip-dialog"); break;
      case "i": if (page.form) openIssueDialog(page); break;
      case "c": focusComment(); break;
      case "?": openDialog("help-dialog"); break;
      default: return;
    }
    e.preventDefault();
  }

  // The caret goes to the end: what the grader types next adds to what is there.
  function focusComment() {
    var comment = $("comment");
    if (!comment || comment.disabled) return;
    comment.focus();
    comment.setSelectionRange(comment.value.length, comment.value.length);
  }

  function setScore(page, value) {
    if (!page.form || page.readOnly) return;
    var radio = page.form.querySelector('input[name=score][value="' + value + '"]');
    if (!radio || radio.checked) return;
    radio.checked = true;
    radio.dispatchEvent(new Event("input", { bubbles: true }));
    radio.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function submitGrade(page) {
    if (!page.form || page.submitting || page.readOnly) return;
    if (!page.form.querySelector("input[name=score]:checked")) {
      status(page, "Choose a score first: 0, 5 (for 0.5) or 1.", true);
      return;
    }
    page.submitting = true; // no autosave or beacon after this
    page.form.submit();
  }

  function status(page, text, isError) {
    var el = $("draft-status");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }

  // ---- Issues --------------------------------------------------------------------------

  function issuesChanged(page) {
    renderIssues(page);
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
      if (issue.quote) quote.append("“", ...quoteNodes(issue.quote, 80, insideDollars(page.src, issue.start)), "”");
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
      list.appendChild(li);
    });
    if (window.proofdeskRenderMath) window.proofdeskRenderMath(list);
    $("no-issues").hidden = page.issues.length > 0;
    $("issues-field").value = JSON.stringify(page.issues);
    if (page.proof) {
      unhighlight(page.proof);
      page.issues.forEach(function (issue, k) { highlight(page.proof, page.src, issue, k); });
    }
  }

  // A quote is a slice of the proof's Markdown + LaTeX source: show it as the proof shows
  // it, with its formulas typeset (math.js typesets the `.math` spans) and Markdown's
  // emphasis markers dropped, never as source. Built with DOM nodes, never as HTML. A
  // quote cut inside a formula typesets what it holds of it.
  var QUOTE_MATH = [["$$", "$$"], ["\\[", "\\]"], ["\\(", "\\)"], ["$", "$"]];

  // Whether source offset `start` (in code points) lies inside a $…$ formula: an odd
  // number of unescaped dollars before it.
  function insideDollars(src, start) {
    if (!src || start === null || start === undefined) return false;
    var cps = src.codepoints, odd = false;
    for (var k = 0; k < start && k < cps.length; k++) {
      if (cps[k] === "$" && cps[k - 1] !== "\\") odd = !odd;
    }
    return odd;
  }

  function quoteSegments(src, startsInDollars) {
    var out = [], text = "", i = 0;
    var cut = startsInDollars ? /^([^$]*)\$/.exec(src)  // starts inside $…$: "1$, so"
      : /^([^$]*?)\\[)\]]/.exec(src);  // starts inside \(…\): "k=0\)."
    if (cut && cut[1].indexOf("\\(") < 0 && cut[1].indexOf("\\[") < 0) {
      out.push({ math: cut[1] });
      i = cut[0].length;
    }
    while (i < src.length) {
      if (src[i] === "\\" && src[i + 1] === "$") { text += "$"; i += 2; continue; }
      var open = null;
      for (var d = 0; d < QUOTE_MATH.length && !open; d++) {
        if (src.substr(i, QUOTE_MATH[d][0].length) === QUOTE_MATH[d][0]) open = QUOTE_MATH[d];
      }
      if (!open) { text += src[i++]; continue; }
      if (text) { out.push({ text: text }); text = ""; }
      var from = i + open[0].length, end = src.indexOf(open[1], from);
      out.push({ math: src.slice(from, end < 0 ? src.length : end) });
      i = end < 0 ? src.length : end + open[1].length;
    }
    if (text) out.push({ text: text });
    return out;
  }

  function quoteNodes(src, maxChars, startsInDollars) {
    var nodes = [], used = 0;
    var segments = quoteSegments(src, startsInDollars);
    for (var k = 0; k < segments.length; k++) {
      var seg = segments[k];
      if (seg.math !== undefined) {
        var tex = seg.math.trim();
        if (!tex) continue;
        var span = document.createElement("span");
        span.className = "math inline";
        span.textContent = tex;
        nodes.push(span);
        used += tex.length;
      } else {
        var plain = seg.text.replace(/\*\*|__|\*|`/g, "").replace(/\s+/g, " ");
        if (k === 0) plain = plain.replace(/^\s+/, "");
        if (k === segments.length - 1) plain = plain.replace(/\s+$/, "");
        if (used + plain.length > maxChars) {
          nodes.push(plain.slice(0, Math.max(0, maxChars - used - 1)) + "…");
          return nodes;
        }
        nodes.push(plain);
        used += plain.length;
      }
      if (used > maxChars && k < segments.length - 1) { nodes.push("…"); return nodes; }
    }
    return nodes;
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
        anchor = anchorText(page.src, passage.value);
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
      anchor = anchorRange(page.proof, page.src, range);
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
      quote.append(...quoteNodes(anchor.quote, 400, insideDollars(page.src, anchor.start)));
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

  // ---- Active time and autosave --------------------------------------------------------

  function trackActiveTime(page) {
    var field = $("active-seconds"), seconds = +field.value || 0, lastInput = Date.now();
    ["keydown", "pointerdown", "pointermove", "wheel", "scroll", "selectionchange"].forEach(function (name) {
      document.addEventListener(name, function () { lastInput = Date.now(); }, { passive: true, capture: true });
    });
    setInterval(function () {
      if (document.visibilityState === "visible" && Date.now() - lastInput < IDLE_MS) {
        seconds += 1;
        field.value = seconds;
      }
    }, 1000);
  }

  // htmx posts the form to the draft URL a few seconds after each change (hx-trigger on the
  // form). This adds what htmx does not:
  // - every change gets a revision that only grows (ms since the epoch * 1000, or one more
  //   than the last), and is kept at once in localStorage: a draft typed a moment before a
  //   reload, a closed tab or a lost connection is restored by the next page of this item
  //   and sent again; the server keeps the newest revision and refuses an older one;
  // - a flush with a beacon (carrying the form's CSRF token) when the page is hidden or left;
  // - a retry until the server has the latest edit;
  // - an answer is taken as saved only when it is the draft endpoint's (its header says so):
  //   a login page that an expired session redirected to means "signed out", never "saved";
  // - another tab of the same grader on the same proof is told, and the server refuses a
  //   write that would overwrite the other tab's newer draft unseen.
  function autosave(page) {
    if (page.editing) return guardEdit(page);
    var form = page.form, root = $("grading"), retry = null, inFlight = 0;
    var key = root.dataset.draftKey, signedOut = false;
    // This tab's id survives its reloads (sessionStorage), so a reloaded page may take up
    // its own draft; each tab keeps its local copy under its own key, so that one tab's
    // refused draft is never restored, and sent, by another.
    page.tab = tabId(false);
    function localKey() { return key + ":" + page.tab; }
    page.base = +root.dataset.draftRevision || 0; // the server's draft this page has seen
    page.revision = page.base;
    field(form, "tab").value = page.tab;
    field(form, "base_revision").value = page.base;
    field(form, "revision").value = page.revision;

    var local = readLocal(localKey());
    if (local && local.revision > page.base) {
      // Newer than the server's copy: typed here before a reload, or while signed out.
      restore(page, local);
      page.revision = local.revision;
      field(form, "revision").value = page.revision;
      page.edits += 1;
      status(page, "Restored your latest draft from this browser; saving it…", false);
      // Sent as it is, under its own revision: if the previous page's flush arrives too,
      // the server sees the same revision twice and keeps one.
      setTimeout(function () { form.dispatchEvent(new Event("proofdesk:resend", { bubbles: true })); }, 0);
    } else if (local) {
      forgetLocal(localKey());
    }

    ["input", "change", "proofdesk:dirty"].forEach(function (name) {
      form.addEventListener(name, function () {
        page.edits += 1;
        page.revision = Math.max(page.revision + 1, Date.now() * 1000);
        field(form, "revision").value = page.revision;
        keepLocal(localKey(), page);
      });
    });
    form.addEventListener("submit", function () { forgetLocal(localKey()); });
    form.addEventListener("htmx:beforeRequest", function () { inFlight = page.edits; });
    form.addEventListener("htmx:beforeSwap", function (e) {
      var xhr = e.detail.xhr;
      if (!xhr.getResponseHeader("Proofdesk-Draft")) {
        // Not the draft endpoint's answer (a login page after a redirect, a proxy's page).
        e.detail.shouldSwap = false;
        e.detail.isError = false;
        if (isSignedOut(xhr)) showSignedOut();
        return;
      }
      // A 400 or 409 carries a message worth showing (and retrying would not help).
      if (xhr.status === 400 || xhr.status === 409) {
        e.detail.shouldSwap = true;
        e.detail.isError = false;
      }
    });
    function retryLater() {
      if (!signedOut) status(page, "Offline: your draft is not saved yet (it is kept in this browser). Retrying…", true);
      clearTimeout(retry);
      retry = setTimeout(function () {
        if (page.edits > page.savedEdits && !page.submitting) {
          form.dispatchEvent(new Event("proofdesk:resend", { bubbles: true }));
        }
      }, RETRY_MS);
    }
    function showSignedOut() {
      signedOut = true;
      $("signed-out").hidden = false;
      status(page, "Signed out — your draft is kept in this browser.", true);
    }
    form.addEventListener("htmx:sendError", retryLater);
    document.addEventListener("htmx:beforeSwap", function (e) {
      // The lease heartbeat after the session expired: the login page is not a banner.
      if (e.target.id === "lease" && isSignedOut(e.detail.xhr)) {
        e.detail.shouldSwap = false;
        showSignedOut();
      }
    });
    form.addEventListener("htmx:afterRequest", function (e) {
      var xhr = e.detail.xhr, code = xhr ? xhr.status : 0;
      var ours = xhr && xhr.getResponseHeader("Proofdesk-Draft");
      var revision = xhr && +xhr.getResponseHeader("Proofdesk-Draft-Revision");
      if (ours === "saved") {
        page.savedEdits = Math.max(page.savedEdits, inFlight);
        page.base = Math.max(page.base, revision || 0);
        field(form, "base_revision").value = page.base;
        var kept = readLocal(localKey());
        if (kept && kept.revision <= page.base) forgetLocal(localKey());
      } else if (ours === "refused" && xhr.getResponseHeader("Proofdesk-Draft-Conflict") === "other-tab") {
        $("other-tab").hidden = false;
      } else if (!ours && (code === 401 || code === 403 || isSignedOut(xhr))) {
        showSignedOut();
      } else if (!ours || code === 0 || code >= 500) {
        retryLater();
      }
    });
    function beacon() {
      if (page.submitting || signedOut || page.edits <= page.savedEdits) return;
      if (navigator.sendBeacon(form.getAttribute("hx-post"), new FormData(form))) {
        page.savedEdits = page.edits;
      }
    }
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") beacon();
    });
    window.addEventListener("pagehide", beacon);
    otherTabs(page, key);
  }

  function isSignedOut(xhr) {
    if (xhr.status === 401 || xhr.status === 403) return true;
    var login = $("signed-out") && $("signed-out").querySelector("a");
    if (!login || !xhr.responseURL) return false;
    return new URL(xhr.responseURL).pathname === new URL(login.href).pathname;
  }

  function field(form, name) {
    var input = form.querySelector('input[name="' + name + '"]');
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }
    return input;
  }

  // A random id for this tab, kept in sessionStorage; `fresh` makes a new one (a duplicated
  // tab starts with a copy of the original's sessionStorage).
  function tabId(fresh) {
    var id = null;
    try { id = fresh ? null : sessionStorage.getItem("proofdesk-tab"); } catch (e) { /* none */ }
    if (!id) {
      id = Math.random().toString(36).slice(2) + Date.now().toString(36);
      try { sessionStorage.setItem("proofdesk-tab", id); } catch (e) { /* per page then */ }
    }
    return id;
  }

  function readLocal(key) {
    try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { return null; }
  }

  function keepLocal(key, page) {
    var checked = page.form.querySelector("input[name=score]:checked");
    try {
      localStorage.setItem(key, JSON.stringify({
        revision: page.revision,
        score: checked ? checked.value : "",
        comment: $("comment").value,
        issues: page.issues,
        active_seconds: +$("active-seconds").value || 0,
      }));
    } catch (e) { /* storage full or disabled: the server copy is all there is */ }
  }

  function forgetLocal(key) {
    try { localStorage.removeItem(key); } catch (e) { /* nothing kept */ }
  }

  function restore(page, local) {
    page.form.querySelectorAll("input[name=score]").forEach(function (radio) {
      radio.checked = radio.value === local.score;
    });
    $("comment").value = local.comment || "";
    page.issues = Array.isArray(local.issues) ? local.issues : [];
    var seconds = $("active-seconds");
    seconds.value = Math.max(+seconds.value || 0, +local.active_seconds || 0);
    renderIssues(page);
  }

  // Tabs of this browser showing the same proof tell each other (the server refuses the
  // write that would overwrite the other's draft; this says why before it happens).
  function otherTabs(page, key) {
    if (!window.BroadcastChannel) return;
    var channel = new BroadcastChannel("proofdesk-grading"), others = {};
    var instance = Math.random().toString(36).slice(2);
    function shown() { $("other-tab").hidden = Object.keys(others).length === 0; }
    function send(type) {
      channel.postMessage({ type: type, key: key, tab: page.tab, instance: instance });
    }
    channel.onmessage = function (e) {
      var m = e.data || {};
      if (m.key !== key || m.instance === instance) return;
      if (m.tab === page.tab && m.type === "here") {
        // A duplicated tab (same sessionStorage): the newcomer takes an id of its own.
        page.tab = tabId(true);
        field(page.form, "tab").value = page.tab;
      }
      if (m.type === "closed") delete others[m.instance];
      else others[m.instance] = true;
      if (m.type === "open") send("here");
      shown();
    };
    send("open");
    window.addEventListener("pagehide", function () { send("closed"); });
  }

  // An edit of a committed grade is saved only by "Save" (it must name the version it
  // started from): leaving the page with a changed, unsaved edit asks first.
  function guardEdit(page) {
    // Committed: the copies the drafts of this proof left in this browser are done with.
    var prefix = $("grading").dataset.draftKey + ":";
    try {
      Object.keys(localStorage).forEach(function (k) { if (k.startsWith(prefix)) localStorage.removeItem(k); });
    } catch (e) { /* storage disabled: nothing kept */ }
    ["input", "change", "proofdesk:dirty"].forEach(function (name) {
      page.form.addEventListener(name, function () { page.edits += 1; });
    });
    page.form.addEventListener("submit", function () { page.submitting = true; });
    window.addEventListener("beforeunload", function (e) {
      if (page.submitting || page.edits === 0) return;
      e.preventDefault();
      e.returnValue = "";
    });
  }

  // Keyboard shortcuts on the queue page (n) work before the grading page exists.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
