"""The one sanitising renderer for untrusted text (proofs, statements, analyses, comments).

Markdown is parsed by markdown-it-py (CommonMark, raw HTML disabled); math delimited by
`$...$`, `$$...$$`, `\\(...\\)` or `\\[...\\]` is lifted out before Markdown can mangle
it and emitted as escaped TeX inside `<span class="math inline|display">` (or a
`<div class="math display">` for a block), which KaTeX renders in the browser with
`trust` off. The HTML then goes through nh3 with an allow-list. This module is the only
place in Proofdesk that marks a string safe.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.dollarmath.index import math_block_dollar

_ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "span", "div",
    "table", "thead", "tbody", "tr", "th", "td", "del", "sup", "sub",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "span": {"data-line"},
    "div": {"data-line"},
    "p": {"data-line"},
    "li": {"data-line"},
    "h1": {"data-line"}, "h2": {"data-line"}, "h3": {"data-line"},
    "h4": {"data-line"}, "h5": {"data-line"}, "h6": {"data-line"},
    "ol": {"start"},
    "th": {"style"}, "td": {"style"},
}  # fmt: skip
_ALLOWED_CLASSES = {"span": {"math", "inline", "display"}, "div": {"math", "display"}}


def _math_span(content: str, display: bool) -> str:
    kind = "display" if display else "inline"
    return f'<span class="math {kind}">{escapeHtml(content.strip())}</span>'


def _bracket_math_inline(state: StateInline, silent: bool) -> bool:
    """`\\( ... \\)` and `\\[ ... \\]` inside a paragraph (LaTeX's own delimiters)."""
    src, pos = state.src, state.pos
    if not src.startswith("\\", pos) or pos + 1 >= state.posMax:
        return False
    opener = src[pos + 1]
    if opener not in "([":
        return False
    closer = "\\)" if opener == "(" else "\\]"
    end = src.find(closer, pos + 2, state.posMax)
    if end < 0:
        return False
    if not silent:
        token = state.push("math_inline" if opener == "(" else "math_inline_double", "math", 0)
        token.content = src[pos + 2 : end]
        token.markup = "\\" + opener
    state.pos = end + 2
    return True


def _bracket_math_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """A block that starts with `\\[` at the start of a line and runs to the first `\\]`.

    The `\\]` must end its line; otherwise (`\\[a\\] and \\[b\\]`, `\\[a\\] so`) the
    line is a paragraph and the inline rule makes each formula its own span.
    """
    if state.sCount[start] - state.blkIndent >= 4:
        return False  # indented code
    first = state.bMarks[start] + state.tShift[start]
    line = state.src[first : state.eMarks[start]]
    if not line.startswith("\\["):
        return False
    body: list[str] = []
    text, last = line[2:], start
    while (close := text.find("\\]")) < 0:
        body.append(text)
        last += 1
        if last >= end:
            return False
        text = state.src[state.bMarks[last] + state.tShift[last] : state.eMarks[last]]
    if text[close + 2 :].strip():
        return False
    body.append(text[:close])
    if silent:
        return True
    token = state.push("math_block", "math", 0)
    token.content = "\n".join(body)
    token.map = [start, last + 1]
    token.block = True
    state.line = last + 1
    return True


_DOLLAR_BLOCK = math_block_dollar(allow_labels=True, allow_blank_lines=True)
_DOLLAR_LABEL = re.compile(r"\$\$\s*\([^)$\r\n]+?\)\s*$")


def _dollar_math_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """dollarmath's `$$` block, except for a line holding two formulas.

    dollarmath reads `$$a$$ and $$b$$` on one line as the single formula `a$$ and $$b`;
    such a line is a paragraph with two display formulas inline.
    """
    first = state.bMarks[start] + state.tShift[start]
    line = _DOLLAR_LABEL.sub("$$", state.src[first : state.eMarks[start]].rstrip())
    if line.startswith("$$") and line.endswith("$$") and "$$" in line[2:-2]:
        return False
    return _DOLLAR_BLOCK(state, start, end, silent)


def _math_block_html(content: str, line: int | None, label: str = "") -> str:
    tex = escapeHtml(content.strip())
    if label:
        # KaTeX typesets the equation number; anything fancier than a plain name would
        # be TeX the author did not write, so it stays visible as text instead.
        tex += f" \\tag{{{escapeHtml(label)}}}" if _PLAIN_LABEL.fullmatch(label) else ""
    data_line = f' data-line="{line}"' if line is not None else ""
    html = f'<div class="math display"{data_line}>{tex}</div>\n'
    if label and not _PLAIN_LABEL.fullmatch(label):
        html += f"<p>({escapeHtml(label)})</p>\n"
    return html


_PLAIN_LABEL = re.compile(r"[\w.:'+-]{1,40}")


def _add_source_lines(md: MarkdownIt) -> None:
    """Carry each block's first source line (0-based) as data-line, for margins and anchors."""

    def core_rule(state: Any) -> None:
        for token in state.tokens:
            if token.map and token.nesting == 1:
                token.attrSet("data-line", str(token.map[0]))

    md.core.ruler.push("source_lines", core_rule)


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").enable("strikethrough")
    md.use(dollarmath_plugin, allow_space=True, allow_digits=True, double_inline=True)
    md.inline.ruler.before("escape", "math_brackets", _bracket_math_inline)
    md.block.ruler.before(
        "fence",
        "math_block_brackets",
        _bracket_math_block,
        {"alt": ["paragraph", "reference", "blockquote", "list"]},
    )
    md.add_render_rule("math_inline", lambda self, t, i, o, e: _math_span(t[i].content, False))
    md.add_render_rule(
        "math_inline_double", lambda self, t, i, o, e: _math_span(t[i].content, True)
    )
    md.block.ruler.at("math_block", _dollar_math_block)
    md.add_render_rule(
        "math_block",
        lambda self, t, i, o, e: _math_block_html(t[i].content, t[i].map[0] if t[i].map else None),
    )
    md.add_render_rule(
        "math_block_label",
        lambda self, t, i, o, e: _math_block_html(
            t[i].content, t[i].map[0] if t[i].map else None, t[i].info
        ),
    )
    _add_source_lines(md)
    return md


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        allowed_classes=_ALLOWED_CLASSES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
        strip_comments=True,
    )


@lru_cache(maxsize=256)
def _render_sanitised(text: str) -> str:
    # Rendering a long proof costs milliseconds and the same texts (the proof, its
    # problem's statement, guidelines and reference solution) are shown on every page
    # load of an item; the output depends on the text alone, so it is memoised.
    return sanitize_html(_markdown().render(text))


def render_markdown(text: str | None) -> SafeString:
    """Render untrusted Markdown + LaTeX to sanitised HTML, ready for KaTeX."""
    if not text:
        return mark_safe("")
    return mark_safe(_render_sanitised(text))  # the one place untrusted text becomes safe
