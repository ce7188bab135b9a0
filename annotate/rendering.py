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

from annotate.latex_text import latex_text_to_markdown

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


_TAG = re.compile(r"\\tag\*?\s*\{")
_TAGGED_ENVIRONMENT = re.compile(r"\\(begin|end)\{(aligned|gathered)\}")


def numbered_rows(tex: str) -> str:
    """`aligned`/`gathered` holding several `\\tag`s, as KaTeX's `align*`/`gather*`.

    KaTeX allows one `\\tag` per formula, except in the top-level AMS environments: in
    display mode its `align*` and `gather*` take a `\\tag` on each row and number nothing
    else (node_modules/katex/src/environments/array.ts, `getAutoTag`), exactly what the
    author of `\\begin{aligned} a \\tag{3} \\\\ b \\tag{4} \\end{aligned}` meant. So such
    a formula becomes that environment, with the same rows and numbers; a formula with one
    tag is left as written.
    """
    if len(_TAG.findall(tex)) < 2:
        return tex
    if "\\begin{" not in tex and "\\\\" not in tex and "&" not in tex:
        # Several numbered equations on one line (`a=b,\\tag{9.1}\\qquad c=d.\\tag{9.2}`):
        # one row each.
        rows = [
            r.strip().removeprefix("\\qquad").removeprefix("\\quad").strip()
            for r in re.findall(r".*?\\tag\*?\s*\{[^{}]*\}|.+$", tex, re.DOTALL)
        ]
        return "\\begin{gather*}\n" + " \\\\\n".join(r for r in rows if r) + "\n\\end{gather*}"
    if not _TAGGED_ENVIRONMENT.search(tex):
        return tex
    return _TAGGED_ENVIRONMENT.sub(
        lambda m: f"\\{m[1]}{{{'align*' if m[2] == 'aligned' else 'gather*'}}}", tex
    )


def _math_span(content: str, display: bool) -> str:
    # An equation number only exists in display math: a tagged inline formula is one.
    display = display or bool(_TAG.search(content))
    kind = "display" if display else "inline"
    tex = numbered_rows(content.strip()) if display else content.strip()
    return f'<span class="math {kind}">{escapeHtml(tex)}</span>'


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
    if end < 0 and opener == "(":
        # An unclosed `\\(` (a model dropped its `\\)`): the formula runs to the end of
        # its line, rather than its TeX showing as text.
        line_end = src.find("\n", pos + 2, state.posMax)
        end = line_end if line_end >= 0 else state.posMax
        if not src[pos + 2 : end].strip():
            return False
        if not silent:
            token = state.push("math_inline", "math", 0)
            token.content = src[pos + 2 : end]
            token.markup = "\\("
        state.pos = end
        return True
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
    tex = escapeHtml(numbered_rows(content.strip()))
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
    # Model proofs indent continuation lines and displayed formulas by four spaces or
    # more; as indented code they would show raw TeX. Fenced code (```) still works.
    md.disable("code")
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
    md.add_render_rule("softbreak", _softbreak)
    _add_source_lines(md)
    return md


# A line that is a formula written without delimiters (`= 7`, `2(a−1)^2 = 7`): it starts
# with a relation, or holds one and no word of three letters or more.
_RELATION_START = re.compile(
    r"\s*(?:[=<>≤≥≠≡≈∼⇒⇔⟹⟺→]|\\(?:le|ge|leq|geq|iff|implies|Rightarrow)\b)"
)
_RELATION = re.compile(r"[=<>≤≥≠≡≈⇒⇔⟹⟺]")
_WORD = re.compile(r"[A-Za-z]{3,}")


def _formula_line(text: str) -> bool:
    return bool(_RELATION_START.match(text)) or (
        bool(_RELATION.search(text)) and not _WORD.search(text)
    )


def _line_text(tokens: list[Any], index: int, step: int) -> str:
    """The text of the source line before (step -1) or after (step 1) a line break."""
    parts: list[str] = []
    index += step
    while 0 <= index < len(tokens) and tokens[index].type not in ("softbreak", "hardbreak"):
        token = tokens[index]
        parts.append("=" if token.type.startswith("math") else token.content)
        index += step
    return "".join(parts[::step])


def _softbreak(self: Any, tokens: list[Any], index: int, options: Any, env: Any) -> str:
    # A soft line break is a space in CommonMark, which joins the lines of a derivation
    # written one step per line ("= 7 2(a−1)^2 = 7"); between such lines it stays a break.
    if _formula_line(_line_text(tokens, index, 1)) or _formula_line(_line_text(tokens, index, -1)):
        return "<br>\n"
    return "\n"


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
    return sanitize_html(_markdown().render(latex_text_to_markdown(text)))


def render_markdown(text: str | None) -> SafeString:
    """Render untrusted Markdown + LaTeX to sanitised HTML, ready for KaTeX."""
    if not text:
        return mark_safe("")
    return mark_safe(_render_sanitised(text))  # the one place untrusted text becomes safe


@lru_cache(maxsize=1024)
def _render_inline_sanitised(text: str) -> str:
    # Newlines would be soft breaks; a quote is shown on one line. A slice of the source
    # often starts or ends inside `**bold**`: the markers at its edges are fragments.
    text = _without_cut_emphasis(" ".join(text.split()))
    return sanitize_html(_markdown().renderInline(latex_text_to_markdown(text)))


def _without_cut_emphasis(text: str) -> str:
    for marker in ("**", "*"):
        if text.count(marker) % 2:
            if text.endswith(marker):
                text = text[: -len(marker)]
            elif text.startswith(marker):
                text = text[len(marker) :]
    return text


def render_inline(text: str | None) -> SafeString:
    """A passage quoted from a proof, as inline HTML: its math typesets, its `**` vanish.

    The quote is a slice of the source, so a delimiter or emphasis it cuts in two stays
    visible as the character it is, never as broken markup.
    """
    if not text:
        return mark_safe("")
    return mark_safe(_render_inline_sanitised(text))  # sanitised like render_markdown
