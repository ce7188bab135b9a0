"""The one sanitising renderer: Markdown and math in, safe HTML with math spans out."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.template import Context, Template
from django.utils.safestring import SafeString

from annotate.rendering import render_markdown

# The shipped copy of the DeepSeekMath-V2 release (data/NOTICE.md).
DEEPSEEK = Path(__file__).resolve().parents[1] / "data" / "deepseek_math_v2"


class _Parsed(HTMLParser):
    """Collects the math spans (kind, TeX) and the text found outside them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.math: list[tuple[str, str]] = []
        self.outside: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._stack: list[str | None] = []  # math kind of each open element, or None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        classes = (dict(attrs).get("class") or "").split()
        kind = next((k for k in ("inline", "display") if k in classes), None)
        self._stack.append(kind if "math" in classes else None)
        if "math" in classes:
            self.math.append((kind or "", ""))

    def handle_endtag(self, tag: str) -> None:
        self._stack.pop()

    def handle_data(self, data: str) -> None:
        if any(kind is not None for kind in self._stack):
            kind, tex = self.math[-1]
            self.math[-1] = (kind, tex + data)
        else:
            self.outside.append(data)

    @property
    def text_outside_math(self) -> str:
        return "".join(self.outside)


def parse(text: str) -> _Parsed:
    return _Parsed(str(render_markdown(text)))


# --- Markdown and math ------------------------------------------------------------------


def test_it_returns_safe_string_and_empty_for_no_text():
    assert isinstance(render_markdown("x"), SafeString)
    assert render_markdown("") == ""
    assert render_markdown(None) == ""


def test_it_renders_markdown_emphasis_lists_and_links():
    html = str(render_markdown("**Lemma.** *Easy*\n\n- one\n- two\n\n[ref](https://example.org)"))
    assert "<strong>Lemma.</strong>" in html
    assert "<em>Easy</em>" in html
    assert html.count("<li") == 2
    assert 'href="https://example.org"' in html
    assert "nofollow" in html


@pytest.mark.parametrize(
    "source, kind, tex",
    [
        ("Let $x^2 + y^2$ be", "inline", "x^2 + y^2"),
        (
            "Then $$\\int_0^1 x^2\\,dx = \\frac13$$ holds",
            "display",
            "\\int_0^1 x^2\\,dx = \\frac13",
        ),
        ("Let \\(n \\ge 3\\) be", "inline", "n \\ge 3"),
        ("so \\[a_1 + a_2\\] and", "display", "a_1 + a_2"),
        ("$$\n\\sum_{k=1}^n k\n$$", "display", "\\sum_{k=1}^n k"),
        ("\\[\nP_n=\\{(a,b)\\}\n\\]", "display", "P_n=\\{(a,b)\\}"),
    ],
)
def test_it_lifts_each_math_delimiter_into_a_math_span(source, kind, tex):
    parsed = parse(source)
    assert parsed.math == [(kind, tex)]
    assert not re.search(r"\$|\\\(|\\\)|\\\[|\\\]", parsed.text_outside_math)


def test_it_keeps_a_multiline_bracket_block_whole():
    source = (
        "Hence\n\n\\[\n\\begin{aligned}\na &< b \\\\\nc &= d_1 * d_2\n\\end{aligned}\n\\]\n\nDone."
    )
    parsed = parse(source)
    assert parsed.math == [
        ("display", "\\begin{aligned}\na &< b \\\\\nc &= d_1 * d_2\n\\end{aligned}")
    ]
    assert "Hence" in parsed.text_outside_math and "Done." in parsed.text_outside_math


def test_it_leaves_less_than_ampersand_star_and_underscore_intact_in_math():
    parsed = parse("If $a<b$ and $x_1 * y_2 & z_3$ and \\(p_i * q_j\\), then *emph* stays.")
    assert parsed.math == [
        ("inline", "a<b"),
        ("inline", "x_1 * y_2 & z_3"),
        ("inline", "p_i * q_j"),
    ]
    html = str(render_markdown("If $a<b$ and $x_1 * y_2 & z_3$"))
    assert "a&lt;b" in html and "&amp; z_3" in html and "<em>" not in html


def test_it_makes_two_formulas_on_one_line_two_spans():
    assert parse("\\[ a \\] and \\[ b \\]").math == [("display", "a"), ("display", "b")]
    assert parse("$$ a $$ and $$ b $$").math == [("display", "a"), ("display", "b")]


def test_it_ends_a_bracket_block_at_the_first_closing_delimiter():
    parsed = parse("\\[\nx + 1\n\\] is positive, so \\(y\\) is too.")
    assert parsed.math == [("display", "x + 1"), ("inline", "y")]
    assert "is positive" in parsed.text_outside_math


def test_it_keeps_an_equation_number():
    assert parse("$$E = mc^2$$ (1)").math == [("display", "E = mc^2 \\tag{1}")]


def test_it_keeps_math_in_lists_and_quotes():
    parsed = parse("1. First \\(a\\)\n2. Then\n   \\[\n   b\n   \\]\n\n> quoted $c$")
    assert parsed.math == [("inline", "a"), ("display", "b"), ("inline", "c")]


def test_it_leaves_code_alone():
    parsed = parse("`\\(x\\)` and\n\n```\n$$y$$\n```")
    assert parsed.math == []
    assert "\\(x\\)" in parsed.text_outside_math and "$$y$$" in parsed.text_outside_math


def test_it_carries_source_lines_for_anchoring():
    html = str(render_markdown("first\n\nsecond\n\n$$\nx\n$$"))
    assert '<p data-line="0">first</p>' in html
    assert '<p data-line="2">second</p>' in html
    assert '<div class="math display" data-line="4">x</div>' in html


def test_template_filter_uses_the_renderer():
    rendered = Template("{% load proofdesk %}{{ text|markdown }}").render(
        Context({"text": "Let $x<1$ <b>bold</b>"})
    )
    assert '<span class="math inline">x&lt;1</span>' in rendered
    assert "&lt;b&gt;bold&lt;/b&gt;" in rendered


# --- hostile input ----------------------------------------------------------------------

ATTACKS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java\nscript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![pic](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![pic](javascript:alert(1))",
    "[x](vbscript:msgbox)",
    '<div onclick="alert(1)">x</div>',
    '<p onmouseover="alert(1)">x</p>',
    '<span class="math evil" onclick="alert(1)">x</span>',
    '$x" onmouseover="alert(1)$',
    "$x' onfocus='alert(1)' autofocus='$",
    "$</span><script>alert(1)</script>$",
    "$$</div><img src=x onerror=alert(1)>$$",
    "\\(</span><img src=x onerror=alert(1)>\\)",
    "\\[\n</div><script>alert(1)</script>\n\\]",
    "<iframe src=https://evil.example></iframe>",
    "<style>body{display:none}</style>",
    "<svg onload=alert(1)><circle/></svg>",
    "<math><mi xlink:href=javascript:alert(1)>x</mi></math>",
    "<object data=x></object><embed src=x>",
    "<form action=https://evil.example><input name=q></form>",
    '<a href="https://ok.example" onclick="alert(1)">x</a>',
    '[x](https://ok.example"onmouseover="alert(1))',
    "| a |\n|---|\n| <script>alert(1)</script> |",
    "<!-- <script>alert(1)</script> -->",
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
]
ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "span", "div",
    "table", "thead", "tbody", "tr", "th", "td", "del", "sup", "sub",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"class", "href", "title", "rel", "data-line", "start", "style"}


@pytest.mark.parametrize("attack", ATTACKS)
def test_it_neutralises_hostile_markup(attack):
    parsed = parse(attack)
    for tag, attrs in parsed.tags:
        assert tag in ALLOWED_TAGS, tag
        assert set(attrs) <= ALLOWED_ATTRIBUTES, attrs
        assert not any(name.startswith("on") for name in attrs)
        if "href" in attrs:
            assert re.match(r"^(https?:|mailto:)", attrs["href"] or ""), attrs["href"]
        if "class" in attrs:
            assert set((attrs["class"] or "").split()) <= {"math", "inline", "display"}
        if "style" in attrs:
            assert re.fullmatch(r"text-align:\s*\w+;?", attrs["style"] or "")


@pytest.mark.parametrize(
    "attack",
    [
        "$</span><script>alert(1)</script>$",
        "$$</div><img src=x onerror=alert(1)>$$",
        "\\(</span><img src=x onerror=alert(1)>\\)",
        '$x" onmouseover="alert(1)$',
    ],
)
def test_it_keeps_markup_inside_math_as_tex_text(attack):
    parsed = parse(attack)
    assert len(parsed.math) == 1
    _, tex = parsed.math[0]
    assert "<" in tex or '"' in tex  # still there, as text for KaTeX, not as markup
    assert [tag for tag, _ in parsed.tags] in (["p", "span"], ["div"])


def test_it_never_emits_a_script_element_or_event_handler_for_any_attack():
    html = str(render_markdown("\n\n".join(ATTACKS))).lower()
    assert "<script" not in html
    assert "<img" not in html
    assert "<iframe" not in html
    assert "<svg" not in html
    assert "<style" not in html
    assert not re.search(r"<[^>]*\son\w+\s*=", html)
    assert "javascript:" not in re.sub(r">[^<]*<", "><", html)  # only as escaped text


# --- real data ----------------------------------------------------------------------------


def test_it_renders_a_real_deepseek_proof_without_stray_delimiters():
    path = DEEPSEEK / "IMO2025.jsonl"
    row = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    proof = row["model_prediction"]["proof"]
    assert "\\(" in proof and "\\[" in proof  # the case this test is about

    parsed = parse(proof)

    assert len(parsed.math) > 20
    assert {kind for kind, _ in parsed.math} == {"inline", "display"}
    assert not re.search(r"\\\(|\\\)|\\\[|\\\]|\$", parsed.text_outside_math)
    assert "sunny" in parsed.text_outside_math


# --- text-mode LaTeX and real documents' mangling (issue 7) -------------------------------


RAW_TEX = re.compile(r"\\[A-Za-z]+|\\begin\{|\$\$")


@pytest.mark.parametrize(
    "source, html_part",
    [
        ("A line is called \\emph{sunny} if", "<em>sunny</em>"),
        ("\\textbf{Case 1: $n$ is odd} Then", "<strong>Case 1: "),
        ("the sequence is {\\em not} decreasing", "<em>not</em>"),
        ("\\textit{Claim.} Easy", "<em>Claim.</em>"),
        ("\\noindent Pick a prime.", "Pick a prime."),
        ("so the proof is complete. \\qed", "complete. ∎"),
        ("\\paragraph{1. Analysis} text", "<strong>1. Analysis</strong>"),
    ],
)
def test_it_turns_text_mode_latex_into_formatting(source, html_part):
    html = str(render_markdown(source))
    assert html_part in html
    assert not RAW_TEX.search(_Parsed(html).text_outside_math)


def test_it_turns_itemize_and_enumerate_into_lists():
    source = (
        "satisfying both of the following:\n\\begin{itemize}\n    \\item for all $a$ and $b$;"
        " and\n    \\item exactly $k$ are sunny.\n\\end{itemize}\nThen\n\\begin{enumerate}\n"
        "\\item[(a)] first\n\\item second\n\\end{enumerate}"
    )
    parsed = parse(source)
    assert [tag for tag, _ in parsed.tags].count("li") == 4
    assert ("li", {"data-line": "2"}) in parsed.tags  # the item keeps its source line
    assert "(a)" in parsed.text_outside_math
    assert not RAW_TEX.search(parsed.text_outside_math)


def test_it_gives_theorem_like_environments_a_heading_and_proof_a_qed():
    parsed = parse(
        "\\begin{lemma}[Key]\nIt holds.\n\\end{lemma}\n\\begin{proof}\nTrivial.\n\\end{proof}"
    )
    html = str(render_markdown("\\begin{lemma}[Key]\nIt holds.\n\\end{lemma}"))
    assert "<strong>Lemma (Key).</strong>" in html
    assert "Proof." in parsed.text_outside_math and "∎" in parsed.text_outside_math
    assert not RAW_TEX.search(parsed.text_outside_math)


@pytest.mark.parametrize(
    "source, tex_part",
    [
        ("Let \\mathbb{N} denote the positive integers.", "\\mathbb{N}"),
        ("The answer is \\boxed{45}.", "\\boxed{45}"),
        ("a 2025 \\times 2025 grid", "\\times"),
        ("and \\sum_{k=1}^{n} x_k", "\\sum_{k=1}^{n}"),
    ],
)
def test_it_typesets_math_commands_written_outside_math(source, tex_part):
    parsed = parse(source)
    assert any(tex_part in tex for _, tex in parsed.math)
    assert not RAW_TEX.search(parsed.text_outside_math)


def test_it_typesets_math_environments_written_outside_delimiters():
    source = (
        "we have\n\\begin{align*}\na &= b \\tag{1.2}\n\\end{align*}\nand\n"
        "\\begin{equation*}\nx = y\n\\end{equation*}"
    )
    parsed = parse(source)
    assert [kind for kind, _ in parsed.math] == ["display", "display"]
    assert parsed.math[0][1].startswith("\\begin{align*}")
    assert not RAW_TEX.search(parsed.text_outside_math)


def test_it_turns_a_tabular_into_an_array_of_text_cells():
    parsed = parse("\\begin{tabular}{|c|c|}\n\\hline a & $b$ \\\\\n\\hline\n\\end{tabular}")
    assert len(parsed.math) == 1
    assert "\\begin{array}{|c|c|}" in parsed.math[0][1]
    assert "\\text{a} & \\text{$b$}" in parsed.math[0][1]
    assert not RAW_TEX.search(parsed.text_outside_math)


def test_it_numbers_each_row_of_an_aligned_block_with_several_tags():
    # KaTeX refuses `aligned` with two \tag ("Multiple \tag"); align* takes one per row.
    parsed = parse("$$\\begin{aligned} a&=b \\tag{3} \\\\ c&=d \\tag{4} \\end{aligned}$$")
    assert parsed.math == [
        ("display", "\\begin{align*} a&=b \\tag{3} \\\\ c&=d \\tag{4} \\end{align*}")
    ]


def test_it_leaves_an_aligned_block_with_one_tag_as_written():
    tex = "\\begin{aligned} a&=b \\\\ c&=d \\end{aligned} \\tag{3}"
    assert parse(f"$${tex}$$").math == [("display", tex)]


def test_it_puts_several_tagged_equations_of_one_line_on_rows_of_their_own():
    parsed = parse("\\[\nP(a)=s,\\tag{9.1}\\qquad P(b)=a.\\tag{9.2}\n\\]")
    assert parsed.math == [
        ("display", "\\begin{gather*}\nP(a)=s,\\tag{9.1} \\\\\nP(b)=a.\\tag{9.2}\n\\end{gather*}")
    ]


def test_it_shows_a_tag_after_an_inline_formula_as_its_number():
    parsed = parse("so \\(P(t)=1\\). \\tag{B}")
    assert "(B)" in parsed.text_outside_math
    assert not RAW_TEX.search(parsed.text_outside_math)


def test_it_does_not_turn_lines_indented_four_spaces_into_code():
    html = str(render_markdown("Hence\n\n    $x^2 = 1$ and \\(y\\) hold.\n\n```\nfenced\n```"))
    assert "<pre><code>fenced" in html
    assert html.count("<code>") == 1
    assert '<span class="math inline">x^2 = 1</span>' in html


def test_it_keeps_the_lines_of_a_derivation_apart():
    html = str(render_markdown("We get\n= 7\n2(a−1)^2 = 7\nwhich is impossible here."))
    assert "= 7<br>" in html and "2(a−1)^2 = 7<br>" in html
    prose = str(render_markdown("This line\ncontinues the sentence."))
    assert "<br>" not in prose


def test_it_reads_an_escaped_display_formula_as_one():
    source = "by\n\\$\\$\\begin{aligned}\n\n\\& x = 1\n\n\\end{aligned}$$\nwhich"
    parsed = parse(source)
    assert len(parsed.math) == 1 and parsed.math[0][0] == "display"
    assert "\\begin{aligned}" in parsed.math[0][1] and "\\&" not in parsed.math[0][1]
    assert not RAW_TEX.search(parsed.text_outside_math)


def test_it_restores_row_breaks_lost_in_a_cases_environment():
    parsed = parse("that $f(x)=\\begin{cases}\n 0 & 2|x\n\n 1 & 2\\nmid x\n \\end{cases}$\n\nCase")
    assert len(parsed.math) == 1
    assert "2|x \\\\\n%\n 1" in parsed.math[0][1]
    parsed = parse("\\[\na = \\begin{cases} 1, & x \\\n2, & y\n\\end{cases}\n\\]")
    assert "x \\\\\n2" in parsed.math[0][1]


def test_it_typesets_an_unclosed_inline_formula_to_the_end_of_its_line():
    parsed = parse("i.e. \\(\\{x/a_i\\}\\ge d_i+1/M.\n\nThus")
    assert parsed.math == [("inline", "\\{x/a_i\\}\\ge d_i+1/M.")]


def test_it_keeps_percent_signs_and_escaped_dollars_as_text():
    parsed = parse("In 50% of the cases \\emph{it} costs \\$5.")
    assert "50% of the cases" in parsed.text_outside_math
    assert "$5" in parsed.text_outside_math and parsed.math == []


def test_it_renders_every_curated_document_without_raw_tex_outside_math():
    from bench.render_corpus import collect_documents

    raw = [
        (doc.id, label, m.group())
        for doc in collect_documents()
        if doc.group == "curated"
        for label, text in doc.texts
        for m in RAW_TEX.finditer(parse(text).text_outside_math)
    ]
    assert raw == []


# --- quotes (issue 7, item 5) -------------------------------------------------------------


def test_a_quote_renders_inline_with_its_math_and_without_cut_emphasis():
    from annotate.rendering import render_inline

    html = str(render_inline("\\(k=0\\).**"))
    assert html == '<span class="math inline">k=0</span>.'
    assert str(render_inline("**Lemma 2.** holds\nfor $n$")) == (
        '<strong>Lemma 2.</strong> holds for <span class="math inline">n</span>'
    )
    assert str(render_inline("<b>x</b>")) == "&lt;b&gt;x&lt;/b&gt;"


def test_the_history_template_shows_issue_quotes_rendered():
    template = Template("{% load proofdesk %}“{{ quote|truncatechars:160|inline_markdown }}”")
    html = template.render(Context({"quote": "\\(k=0\\).**"}))
    assert html == '“<span class="math inline">k=0</span>.”'


def test_a_broken_formula_inside_a_list_does_not_leave_the_rest_raw():
    parsed = parse(
        "\\begin{itemize}\n\\item a $\\frac{1}$ b.\n\\end{itemize}\n\\noindent Done. \\qed"
    )
    assert [tag for tag, _ in parsed.tags].count("li") == 1
    assert parsed.math == [("inline", "\\frac{1}")]  # left to KaTeX, which will say so
    assert "Done. ∎" in parsed.text_outside_math
    assert not RAW_TEX.search(parsed.text_outside_math)


@pytest.mark.parametrize(
    ("value", "places", "shown"),
    [
        (0.5, 4, "0.5"),
        (1.0, 4, "1"),
        (0, 4, "0"),
        (0.8125, 4, "0.8125"),
        (2 / 3, 4, "0.6667"),
        (2 / 3, 2, "0.67"),
        (-0.00001, 2, "0"),
        ("0.50", 4, "0.5"),
        (None, 4, ""),
        ("n/a", 4, "n/a"),
    ],
)
def test_the_number_filter_writes_numbers_without_padding(value, places, shown):
    from annotate.templatetags.proofdesk import number_filter

    assert number_filter(value, places) == shown
