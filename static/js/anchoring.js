// Anchoring a passage of a proof between its Markdown + LaTeX source and its rendered DOM,
// shared by the pages that point into a proof (grading: issues; review: claims).
// window.ProofdeskAnchoring: sourceStream, anchorRange, anchorText, highlight,
// unhighlight, quoteNodes, insideDollars, lineNumbers.
(function () {
  "use strict";

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

  // Source span {start, end} -> wrap the rendered passage in <mark> elements (a whole math
  // element when the span touches it); `decorate(mark)` gives each its class and title.
  // Returns the marks, first first (none when the span cannot be found).
  function highlight(root, src, span, decorate) {
    if (span.start === null || span.start === undefined) return [];
    var i = lowerBound(src.pos, span.start), j = lowerBound(src.pos, span.end);
    if (i >= j) return [];
    var dom = domStream(root);
    var line = lowerBound(src.lineStarts, span.start + 1) - 1, best = -1;
    for (var l in dom.lines) if (+l <= line && +l > best) best = +l;
    var expected = best < 0 ? i : dom.lines[best] + (i - lowerBound(src.pos, src.lineStarts[best]));
    var found = match(dom.chars, src.chars.slice(i, j), expected);
    if (!found) return [];
    var groups = [];
    dom.where.slice(found[0], found[1]).forEach(function (w) {
      var g = groups[groups.length - 1];
      if (g && g.node === w.node) g.to = w.end;
      else groups.push({ node: w.node, from: w.offset, to: w.end });
    });
    // The spaces between two pieces of the passage are part of it: a mark runs over the
    // blank end of its text node when another piece follows, and over the blank start of
    // its node when one precedes it, so the passage reads as one stretch, not word by word.
    groups.forEach(function (g, k) {
      if (g.from < 0) return;
      if (k < groups.length - 1 && !g.node.data.slice(g.to).trim()) g.to = g.node.data.length;
      if (k > 0 && !g.node.data.slice(0, g.from).trim()) g.from = 0;
    });
    var marks = [];
    groups.reverse().forEach(function (g) {
      var mark = document.createElement("mark");
      decorate(mark);
      marks.unshift(mark);
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
    return marks;
  }

  // Undo `highlight` for the marks matching `selector`.
  function unhighlight(root, selector) {
    root.querySelectorAll(selector).forEach(function (mark) {
      mark.replaceWith.apply(mark, Array.from(mark.childNodes));
    });
    root.normalize();
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

  // Source line numbers in the proof's left margin (grading.css draws them).
  function lineNumbers(proof) {
    proof.querySelectorAll("[data-line]").forEach(function (el) {
      var parent = el.parentElement.closest("[data-line]");
      if (parent && proof.contains(parent) && parent.getAttribute("data-line") === el.getAttribute("data-line")) return;
      el.setAttribute("data-lineno", +el.getAttribute("data-line") + 1);
    });
  }

  window.ProofdeskAnchoring = {
    sourceStream: sourceStream,
    anchorRange: anchorRange,
    anchorText: anchorText,
    highlight: highlight,
    unhighlight: unhighlight,
    quoteNodes: quoteNodes,
    insideDollars: insideDollars,
    lineNumbers: lineNumbers,
  };
})();
