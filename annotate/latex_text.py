"""Text-mode LaTeX in proofs and statements, rewritten as the Markdown + math the renderer reads.

Problem statements and model proofs are Markdown with LaTeX math, but many also hold LaTeX
written for a TeX engine: `\\emph{sunny}`, `\\textbf{Case 1}`, `\\begin{itemize} \\item`,
`\\noindent`, `\\qed`, theorem-like environments, `\\mathbb{N}` or `\\begin{align*}` outside
math delimiters. Each such construct outside math is parsed with pylatexenc's LatexWalker
(macro arguments, optional arguments, nested environments) and replaced by its Markdown
equivalent, or wrapped in math delimiters when it is math; everything else, math included,
is kept character for character. Only the constructs are parsed, never the whole text: a
LatexWalker costs about 25 µs per character, far too much for a 50 kB proof.

The rewrite keeps a construct on the lines it occupied where it can (lists put each item
on its own line), so the renderer's `data-line` attributes still point at the source.
"""

from __future__ import annotations

import re

from pylatexenc.latexwalker import (
    LatexCharsNode,
    LatexCommentNode,
    LatexEnvironmentNode,
    LatexGroupNode,
    LatexMacroNode,
    LatexMathNode,
    LatexNode,
    LatexSpecialsNode,
    LatexWalker,
)

# Math as the renderer delimits it (annotate/rendering.py), skipped whole; then the
# constructs this module rewrites.
_SCAN = re.compile(
    r"(?P<math>\$\$.*?\$\$|\\\[.*?\\\]|\\\((?:(?!\n\s*\n).)*?\\\)|\\\([^\n]*|(?<![\\$])\$[^$]*?\\begin\{[^$]*?\$"
    r"|(?<![\\$])\$(?:\\.|[^$\\\n]|\n(?!\s*\n))+?\$)"
    r"|(?P<dollars>\\\$\\\$)|(?P<newline>\\\\[ \t]*)"
    r"|(?P<construct>\\(?:begin\{[A-Za-z]+\*?\}|[A-Za-z]+)|\{\s*\\(?:em|it|sl|bf|itshape|bfseries)\b)",
    re.DOTALL,
)
_STRAY_END = re.compile(r"\\(?:end|begin)\{document\}|\\end\{[A-Za-z]+\*?\}")
# The cheap test that spares most texts the scan.
_ANY_CONSTRUCT = re.compile(r"\\(?:[A-Za-z]|\$\$)")

# LaTeX comments do not exist in Markdown ("50% of the cases"): `%` is hidden from the
# walker behind a character of the same length and restored in the output.
_PERCENT, _PERCENT_MARK = "%", "\ue000"

MATH_ENVIRONMENTS = {
    "equation", "equation*", "align", "align*", "alignat", "alignat*", "gather", "gather*",
    "multline", "multline*", "flalign", "flalign*", "eqnarray", "eqnarray*", "split",
    "aligned", "gathered", "alignedat", "cases", "array", "matrix", "pmatrix", "bmatrix",
    "Bmatrix", "vmatrix", "Vmatrix", "smallmatrix", "displaymath", "math",
}  # fmt: skip
_LISTS = {"itemize": False, "enumerate": True, "description": False}
_PLAIN_ENVIRONMENTS = {"center", "flushleft", "flushright", "quote", "quotation", "document"}
_THEOREMS = {
    "theorem": "Theorem", "lemma": "Lemma", "proposition": "Proposition",
    "corollary": "Corollary", "claim": "Claim", "definition": "Definition",
    "remark": "Remark", "example": "Example", "conjecture": "Conjecture",
    "observation": "Observation", "fact": "Fact", "note": "Note", "notation": "Notation",
    "solution": "Solution", "answer": "Answer", "case": "Case", "step": "Step",
}  # fmt: skip
_EMPHASIS = {"emph": "*", "textit": "*", "textsl": "*", "textbf": "**", "underline": "*"}
_SWITCHES = {"em": "*", "it": "*", "itshape": "*", "sl": "*", "bf": "**", "bfseries": "**"}
_PLAIN_ARGUMENT = {"text", "textrm", "textup", "textnormal", "textsf", "mbox", "hbox", "url"}
_DROPPED = {
    "noindent", "indent", "medskip", "smallskip", "bigskip", "par", "centering", "hfill",
    "vfill", "newpage", "clearpage", "maketitle", "label", "vspace", "hspace", "phantom",
    "nopagebreak", "pagebreak", "linebreak", "allowbreak", "null", "relax", "protect",
    # A preamble pasted into a proof prints nothing either.
    "documentclass", "usepackage", "title", "author", "date", "newcommand", "renewcommand",
}  # fmt: skip
# Delimiter sizes: outside math, the delimiter after them goes into the formula too.
_SIZED = {"big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr"}
_SPACES = {"quad", "qquad", "enspace", "thinspace", "space"}
_HEADINGS = {"section", "subsection", "subsubsection", "paragraph", "subparagraph"}
_SYMBOLS = {
    "qed": "∎", "qedsymbol": "∎", "blacksquare": "∎", "square": "□", "Box": "□",
    "ldots": "…", "dots": "…", "textellipsis": "…", "S": "§", "P": "¶", "dag": "†",
    "textendash": "–", "textemdash": "—", "textquoteleft": "‘", "textquoteright": "’",
    "LaTeX": "LaTeX", "TeX": "TeX", "newline": "\\\n", "item": "- ", "copyright": "©",
}  # fmt: skip


def latex_text_to_markdown(text: str) -> str:
    """Rewrite the text-mode LaTeX constructs of `text` outside math; the rest is unchanged."""
    if not _ANY_CONSTRUCT.search(text):
        return text
    source = text.replace(_PERCENT, _PERCENT_MARK)
    walker = LatexWalker(source, tolerant_parsing=True)
    out: list[str] = []
    pos = 0
    while (match := _SCAN.search(source, pos)) is not None:
        out.append(source[pos : match.start()])
        if match["math"]:
            out.append(environment_rows(match["math"]))
            pos = match.end()
        elif match["newline"]:
            # `\\\\` in text ends a line: a Markdown hard break where the line ends anyway.
            at_end = source[match.end() : match.end() + 1] in ("\n", "")
            at_start = match.start() == 0 or source[match.start() - 1] == "\n"
            out.append("\\" if at_end else "" if at_start else "\\\n")
            pos = match.end()
        elif match["dollars"]:
            # `\$\$` is never text anyone meant; converters emit it for `$$` (an escaped
            # display formula, `\$\$\begin{aligned} … \end{aligned}$$`).
            close = re.compile(r"\\?\$\\?\$").search(source, match.end())
            end = close.start() if close else len(source)
            tex = source[match.end() : end].replace("\\&", "&")
            out.append("$$" + environment_rows(tex) + "$$")
            pos = close.end() if close else end
        else:
            stray = _STRAY_END.match(source, match.start())
            if stray:  # `\\end{document}` of a pasted LaTeX file, or an `\\end` without begin
                out.append(_unpaired(stray[0]))
                pos = stray.end()
                continue
            node = _node_at(walker, match.start())
            if isinstance(node, LatexEnvironmentNode) and not source[
                node.pos : node.pos + node.len
            ].endswith(f"\\end{{{node.environmentname}}}"):
                # pylatexenc lost the environment's end (tolerant parsing of a broken
                # formula inside it ran on to the end of the text): take it piece by piece.
                node = None
            if node is None:
                out.append(_unpaired(match["construct"]))
                pos = match.end()
                continue
            nodes, end = _with_arguments(walker, source, node)
            if isinstance(node, LatexMacroNode) and not _arguments(node) and _is_math_macro(node):
                # A math command in text, with the arguments, scripts or delimiter after it.
                tex = source[node.pos : end]
                out.append(_as_math(tex.rstrip()) + tex[len(tex.rstrip()) :])
            else:
                out.append(_Converter(source).nodes(nodes))
            pos = end
    out.append(source[pos:])
    return "".join(out).replace(_PERCENT_MARK, _PERCENT)


def environment_rows(tex: str) -> str:
    """Blank lines inside a math environment, as the row breaks they stand for.

    Converted sources lose `\\\\` and leave a blank line per row (`\\begin{cases} 0 & 2|x`,
    blank, `1 & 2\\nmid x \\end{cases}`); a blank line also ends a Markdown paragraph and
    so cuts the formula in two. Each such line becomes a `%` line (a TeX comment: the
    formula keeps its line count) after a `\\\\` that ends the row.
    """
    if "\\begin{" not in tex:
        return tex
    # Two more losses of the same converters, inside environments: a row ending in a
    # single backslash (`\mbox{if $m > a$;} \` then a line break), and `\\left`, which
    # TeX itself reads as `\\` and the word "left".
    tex = re.sub(r"(?<!\\)((?:\\\\)*)\\[ \t]*\n", lambda m: m[1] + "\\\\\n", tex)
    tex = re.sub(r"(?<!\\)\\\\(?=(?:left|right|frac|text|mbox)\b)", r"\\\\ \\", tex)
    if not re.search(r"\n[ \t]*\n", tex):
        return tex
    lines = tex.split("\n")
    depth = 0
    last = -1  # the last line with content
    for index, line in enumerate(lines):
        if not line.strip():
            if depth > 0 and last >= 0:
                following = next((x for x in lines[index + 1 :] if x.strip()), "")
                previous = lines[last].rstrip()
                if not (previous.endswith("\\\\") or previous.endswith("%")
                        or re.search(r"\\begin\{[^}]*\}(\{[^}]*\})?$", previous)
                        or following.lstrip().startswith("\\end{")):  # fmt: skip
                    lines[last] = previous + " \\\\"
            lines[index] = "%"
            last = index
            continue
        depth += len(re.findall(r"\\begin\{", line)) - len(re.findall(r"\\end\{", line))
        last = index
    return "\n".join(lines)


def _unpaired(construct: str) -> str:
    """A `\\begin{…}` or `\\end{…}` whose pair could not be parsed, as what it prints."""
    name = re.fullmatch(r"\\(?:begin|end)\{([A-Za-z]+)\*?\}", construct)
    if name is None:
        return construct
    if name[1] == "document" or name[1] in _LISTS or name[1] in _PLAIN_ENVIRONMENTS:
        return ""
    if name[1] == "proof":
        return "*Proof.* " if construct.startswith("\\begin") else " ∎"
    if name[1] in _THEOREMS:
        return f"**{_THEOREMS[name[1]]}.** " if construct.startswith("\\begin") else ""
    return construct


def _node_at(walker: LatexWalker, pos: int) -> LatexNode | None:
    try:
        nodes, _, _ = walker.get_latex_nodes(pos=pos, read_max_nodes=1)
    except Exception:  # pylatexenc's parse errors, on sources that are not LaTeX at all
        return None
    if nodes and isinstance(nodes[0], LatexMacroNode | LatexEnvironmentNode | LatexGroupNode):
        return nodes[0]
    return None


def _with_arguments(
    walker: LatexWalker, source: str, node: LatexNode
) -> tuple[list[LatexNode], int]:
    """The node, and for a macro pylatexenc gave no arguments the `{…}` groups and `_`/`^`
    scripts right after it (`\\boxed{45}`, `\\sum_{k=1}^{n}`, `\\paragraph{Title}`)."""
    nodes = [node]
    end = node.pos + node.len
    if not isinstance(node, LatexMacroNode) or _arguments(node):
        return nodes, end
    end = node.pos + 1 + len(node.macroname)  # without the spaces pylatexenc adds to it
    if node.macroname in _SIZED:
        delimiter = re.compile(r"\s*(\\[{}|]|\\[A-Za-z]+|[()\[\]|./<>])").match(source, end)
        return nodes, delimiter.end() if delimiter else end
    while end < len(source) and source[end] in "{_^":
        start = end + 1 if source[end] in "_^" else end
        if start < len(source) and source[start] == "{":
            try:
                more, _, _ = walker.get_latex_nodes(pos=start, read_max_nodes=1)
            except Exception:
                break
            if not more or more[0].pos != start:
                break
            group_end = more[0].pos + more[0].len
        elif start < len(source) and start > end and source[start].isalnum():
            group_end = start + 1
        else:
            break
        if start == end:
            nodes.append(more[0])
        else:
            nodes.append(LatexCharsNode(chars=source[end:group_end], pos=end, len=group_end - end))
        end = group_end
    return nodes, end


def _arguments(node: LatexMacroNode | LatexEnvironmentNode) -> list[LatexNode | None]:
    return list(node.nodeargd.argnlist) if node.nodeargd is not None else []


class _Converter:
    def __init__(self, source: str) -> None:
        self.source = source

    def verbatim(self, node: LatexNode) -> str:
        return self.source[node.pos : node.pos + node.len]

    def nodes(self, nodes: list[LatexNode]) -> str:
        out: list[str] = []
        index = 0
        while index < len(nodes):
            node = nodes[index]
            if isinstance(node, LatexMacroNode) and not _arguments(node):
                # Arguments pylatexenc did not know the macro takes: the groups after it.
                run = [node]
                while index + 1 < len(nodes) and _continues(nodes[index + 1], run[-1]):
                    index += 1
                    run.append(nodes[index])
                out.append(self.macro(node, run[1:]))
            else:
                out.append(self.node(node))
            index += 1
        return "".join(out)

    def node(self, node: LatexNode) -> str:
        if isinstance(node, LatexMacroNode):
            return self.macro(node)
        if isinstance(node, LatexEnvironmentNode):
            return self.environment(node)
        if isinstance(node, LatexGroupNode):
            return self.group(node)
        if isinstance(node, LatexCharsNode | LatexCommentNode | LatexSpecialsNode | LatexMathNode):
            return self.verbatim(node)
        return self.verbatim(node)

    def argument(self, node: LatexNode | None) -> str:
        if node is None:
            return ""
        if isinstance(node, LatexGroupNode):
            return self.nodes(list(node.nodelist))
        return self.node(node)

    def group(self, node: LatexGroupNode) -> str:
        children = list(node.nodelist)
        first = next((c for c in children if not _blank(c)), None)
        if isinstance(first, LatexMacroNode) and first.macroname in _SWITCHES:
            rest = children[children.index(first) + 1 :]
            return _emphasis(self.nodes(rest), _SWITCHES[first.macroname])
        if node.delimiters != ("{", "}"):
            return self.verbatim(node)
        # Braces group in LaTeX and print nothing; in Markdown text they are literal
        # (`the set {1, 2}`), so they stay.
        return "{" + self.nodes(children) + "}"

    def macro(self, node: LatexMacroNode, following: list[LatexNode] | None = None) -> str:
        name = node.macroname
        following = following or []
        arguments = _arguments(node) or [n for n in following if isinstance(n, LatexGroupNode)]
        if name.isalpha() and _is_math_macro(node):
            # A math command in text (`\\mathbb{N}`, `\\boxed{45}`, `2025 \\times 2025`):
            # typeset it, with the argument groups and scripts written after it.
            if following:
                end = following[-1].pos + following[-1].len
            else:
                end = node.pos + (node.len if _arguments(node) else 1 + len(name))
            tex = self.source[node.pos : end]
            spaces = tex[len(tex.rstrip()) :] + self.source[end : node.pos + node.len]
            return _as_math(tex.rstrip()) + (spaces if not following else "")
        last = arguments[-1] if arguments else None
        if name in _EMPHASIS:
            return _emphasis(self.argument(last), _EMPHASIS[name])
        if name == "texttt":
            return "`" + self.argument(last).replace("`", "") + "`"
        if name in _PLAIN_ARGUMENT:
            return self.argument(last)
        if name in _HEADINGS:
            return _emphasis(self.argument(last), "**")
        if name in ("footnote", "footnotetext"):
            return " (" + self.argument(last) + ")"
        if name in ("begin", "end") and self.argument(last).strip() == "document":
            return ""  # a stray end of a pasted LaTeX file
        if name == "tag":  # an equation number written after its formula
            return "(" + self.argument(last) + ")"
        if name in ("ref", "cite", "pageref"):
            return self.argument(last)
        if name == "eqref":
            return "(" + self.argument(last) + ")"
        if name == "href" and len(arguments) >= 2:
            return self.argument(arguments[1])
        if name in _DROPPED or name in _SWITCHES:
            return " " if self.verbatim(node)[-1:].isspace() and not following else ""
        if name in _SPACES or name in (",", ";", ":", " ", "!"):
            return " "
        if name == "\\":
            return "\\\n"  # a Markdown hard line break
        if name in _SYMBOLS:
            return _SYMBOLS[name]
        return self.verbatim(node) + "".join(self.node(n) for n in following)

    def environment(self, node: LatexEnvironmentNode) -> str:
        name = node.environmentname
        if name in MATH_ENVIRONMENTS:
            return _as_display_math(self.verbatim(node))
        if name == "tabular" or name == "tabular*":
            return _as_display_math(self.tabular(node))
        body = list(node.nodelist)
        if name in _LISTS:
            return self.list(body, numbered=_LISTS[name])
        if name in _PLAIN_ENVIRONMENTS:
            return "\n" + self.nodes(body).strip() + "\n"
        if name == "proof":
            title = self.optional_title(node) or "Proof"
            return f"\n*{title}.* " + self.nodes(body).strip() + " ∎\n"
        title = _THEOREMS.get(name.rstrip("*"), name.rstrip("*").capitalize())
        extra = self.optional_title(node)
        heading = f"{title} ({extra})" if extra else title
        return f"\n**{heading}.** " + self.nodes(body).strip() + "\n"

    def optional_title(self, node: LatexEnvironmentNode) -> str:
        for argument in _arguments(node):
            if isinstance(argument, LatexGroupNode) and argument.delimiters == ("[", "]"):
                return self.nodes(list(argument.nodelist)).strip()
        return ""

    def list(self, body: list[LatexNode], numbered: bool) -> str:
        items: list[list[LatexNode]] = []
        labels: list[str] = []
        for node in body:
            if isinstance(node, LatexMacroNode) and node.macroname == "item":
                items.append([])
                label = next((a for a in _arguments(node) if a is not None), None)
                labels.append(self.argument(label).strip() if label is not None else "")
            elif items:
                items[-1].append(node)
        lines: list[str] = []
        for number, (content, label) in enumerate(zip(items, labels, strict=True), 1):
            marker = f"{number}. " if numbered and not label else "- "
            text = self.nodes(content).strip()
            if label:
                text = f"**{label}** {text}"
            indent = " " * len(marker)
            rows = [row.strip() for row in text.split("\n")]
            lines.append(
                marker + "\n".join([rows[0]] + [indent + r if r else "" for r in rows[1:]])
            )
        return "\n" + "\n".join(lines) + "\n"

    def tabular(self, node: LatexEnvironmentNode) -> str:
        """A tabular as a KaTeX array whose cells are text (`$…$` inside stays math)."""
        arguments = _arguments(node)
        spec = next(
            (self.verbatim(a)[1:-1] for a in reversed(arguments) if isinstance(a, LatexGroupNode)),
            "l",
        )
        spec = re.sub(r"p\{[^}]*\}", "l", spec)
        body = "".join(self.verbatim(n) for n in node.nodelist)
        rows: list[str] = []
        rule = ""
        for row in re.split(r"\\\\", body):
            if "\\hline" in row:
                rule = "\\hline "
            cells = [c.replace("\\hline", "").strip() for c in row.split("&")]
            if any(cells):
                rows.append(rule + " & ".join(f"\\text{{{c}}}" for c in cells))
                rule = ""
        closing = " \\\\ \\hline" if rule else ""
        return "\\begin{array}{" + spec + "}\n" + " \\\\\n".join(rows) + closing + "\n\\end{array}"


def _blank(node: LatexNode) -> bool:
    return isinstance(node, LatexCharsNode) and not node.chars.strip()


def _continues(node: LatexNode, previous: LatexNode) -> bool:
    """A `{…}` argument or a `_`/`^` script written right after a math command."""
    if node.pos != previous.pos + previous.len:
        return False
    if isinstance(node, LatexGroupNode):
        return node.delimiters == ("{", "}")
    chars = node.chars if isinstance(node, LatexCharsNode) else ""
    return chars[:1] in ("_", "^") and (len(chars) <= 2 or chars[1] == "{")


def _is_math_macro(node: LatexMacroNode) -> bool:
    name = node.macroname
    return name.isalpha() and not (
        name in _EMPHASIS or name in _SWITCHES or name in _PLAIN_ARGUMENT or name in _DROPPED
        or name in _SPACES or name in _HEADINGS or name in _SYMBOLS
        or name in ("tag", "texttt", "footnote", "footnotetext", "ref", "cite", "pageref", "eqref",
                    "href", "begin", "end")
    )  # fmt: skip


def _emphasis(text: str, marker: str) -> str:
    # CommonMark emphasis must not open or close next to a space: `\emph{ x }` is ` *x* `.
    stripped = text.strip()
    if not stripped:
        return text
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return f"{lead}{marker}{stripped}{marker}{trail}"


def _as_math(tex: str) -> str:
    return f"\\({tex}\\)" if "\\)" not in tex else tex


def _as_display_math(tex: str) -> str:
    if "$$" in tex:
        return tex
    # A line of its own, so that the block rule takes it whatever text was around it.
    return f"\n$$\n{environment_rows(tex.strip())}\n$$\n"
