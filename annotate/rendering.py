"""The one sanitising renderer for untrusted text (proofs, statements, analyses, comments).

Markdown is parsed by markdown-it-py (CommonMark, raw HTML disabled); math delimited by
`$...$`, `$$...$$`, `\\(...\\)` or `\\[...\\]` is lifted out before Markdown can mangle
it and emitted as escaped TeX inside `<span class="math inline|display">` (or a
`<div class="math display">` for a block), which KaTeX renders in the browser with
`trust` off. The HTML then goes through nh3 with an allow-list. This module is the only
place in Proofdesk that marks a string safe.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from mdit_py_plugins.dollarmath import dollarmath_plugin

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
    """A block that starts with `\\[` on its own line and runs to the line ending `\\]`."""
    first = state.bMarks[start] + state.tShift[start]
    line = state.src[first : state.eMarks[start]]
    if not line.startswith("\\["):
        return False
    body: list[str] = [line[2:]]
    last = start
    while True:
        if body[-1].rstrip().endswith("\\]"):
            body[-1] = body[-1].rstrip()[:-2]
            break
        last += 1
        if last >= end:
            return False
        body.append(state.src[state.bMarks[last] + state.tShift[last] : state.eMarks[last]])
    if silent:
        return True
    token = state.push("math_block", "math", 0)
    token.content = "\n".join(body)
    token.map = [start, last + 1]
    token.block = True
    state.line = last + 1
    return True


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
    md.add_render_rule(
        "math_block",
        lambda self, t, i, o, e: '<div class="math display"'
        + (f' data-line="{t[i].map[0]}"' if t[i].map else "")
        + f">{escapeHtml(t[i].content.strip())}</div>\n",
    )
    md.add_render_rule(
        "math_block_label",
        lambda self, t, i, o, e: f'<div class="math display">{escapeHtml(t[i].content.strip())}</div>\n',
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


def render_markdown(text: str | None) -> SafeString:
    """Render untrusted Markdown + LaTeX to sanitised HTML, ready for KaTeX."""
    if not text:
        return mark_safe("")
    html = _markdown().render(text)
    return mark_safe(sanitize_html(html))  # the one place untrusted text becomes safe
