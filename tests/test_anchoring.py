"""The one anchoring engine: exact, normalised/fuzzy, index span, unanchored."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from annotate.anchoring import CONTEXT_CHARS, AnchorMethod, Document, anchor_exact, anchor_quote
from annotate.importers import import_path
from annotate.issues import parse_issues
from annotate.models import GradeIssue
from tests.import_support import native_line, write_jsonl

CORPUS = Path(__file__).resolve().parent.parent / "data" / "open_proof_corpus"

PROOF = (
    "Let $x$ be a real number. Then $x^2 \\ge 0$.\n"
    "Hence the sum is positive, and the **claim** follows.\n\n"
    "Note that $x^2 \\ge 0$ holds again here, for every real $x$."
)


def test_an_exact_quote_is_found_at_the_occurrence_nearest_the_hint():
    second = PROOF.rindex("$x^2 \\ge 0$")
    anchor = anchor_quote(PROOF, "$x^2 \\ge 0$", start_hint=second - 3, end_hint=second + 5)
    assert anchor.method == AnchorMethod.EXACT
    assert anchor.start == second
    assert anchor.exact == "$x^2 \\ge 0$"
    assert anchor.suffix == PROOF[anchor.end : anchor.end + CONTEXT_CHARS]
    assert anchor.score is None


def test_rewritten_math_delimiters_joined_lines_and_curly_quotes_still_anchor():
    quote = "“Then \\(x^2\\ge 0\\). Hence the sum is positive, and the claim follows.”"
    anchor = anchor_quote(PROOF, quote)
    assert anchor.method == AnchorMethod.FUZZY
    assert anchor.score == 100.0
    assert (
        anchor.exact == "Then $x^2 \\ge 0$.\nHence the sum is positive, and the **claim** follows."
    )


def test_unicode_symbols_match_their_latex_commands():
    text = "Since $\\Gamma$ and $\\Omega$ meet at $B$ and $C$, $BC \\le 2$ is their chord."
    anchor = anchor_quote(text, "Since Γ and Ω meet at B and C, BC ≤ 2")
    assert anchor.method == AnchorMethod.FUZZY
    assert anchor.exact.startswith("Since $\\Gamma$") and anchor.exact.endswith("\\le 2")


def test_an_elided_quote_spans_from_its_first_piece_to_its_last():
    quote = "Let \\(x\\) be a real number … the claim follows."
    anchor = anchor_quote(PROOF, quote)
    assert anchor.method == AnchorMethod.FUZZY
    assert anchor.start == 0
    assert anchor.exact.endswith("the **claim** follows.")


def test_a_slightly_misquoted_passage_anchors_fuzzily_with_its_score():
    quote = "Hence the sums are positive and so the claim follows"
    anchor = anchor_quote(PROOF, quote, start_hint=40, end_hint=90)
    assert anchor.method == AnchorMethod.FUZZY
    assert 60 <= anchor.score < 100
    assert "the sum is positive" in anchor.exact


def test_a_paraphrase_falls_back_to_the_index_span_marked_approximate():
    quote = "The author never justifies why squaring preserves the inequality at all."
    anchor = anchor_quote(PROOF, quote, start_hint=26, end_hint=44)
    assert anchor.method == AnchorMethod.INDEX_SPAN
    assert (anchor.start, anchor.end) == (26, 44)
    assert not anchor.found


def test_nothing_to_go_on_is_unanchored():
    assert anchor_quote(PROOF, "").method == AnchorMethod.UNANCHORED
    assert anchor_quote(PROOF, "an unrelated sentence about topology").method == "unanchored"
    assert anchor_quote(PROOF, "zzz", start_hint=500, end_hint=600).method == "unanchored"


def test_hints_beyond_the_text_are_clipped():
    anchor = anchor_quote(PROOF, "", start_hint=len(PROOF) - 5, end_hint=len(PROOF) + 50)
    assert anchor.method == AnchorMethod.INDEX_SPAN
    assert anchor.end == len(PROOF)


def _corpus_claims():
    for path in sorted(CORPUS.glob("*/*.json")):
        data = json.loads(path.read_text())
        for attempt in data["attempts"]:
            yield attempt["solution"], attempt["llm_judgment"]["result"]["issues"]


def test_the_open_proof_corpus_meets_the_anchoring_goal():
    """>= 95 % of quoted claims found by a matcher; >= 95 % of those overlap the judge's span."""
    started = time.monotonic()
    quoted = found = with_span = overlapping = 0
    for text, issues in _corpus_claims():
        document = Document(text)
        for issue in issues:
            if not issue.get("text"):
                continue
            quoted += 1
            start, end = issue.get("start_index"), issue.get("end_index")
            anchor = document.anchor(issue["text"], start_hint=start, end_hint=end)
            if anchor.found:
                found += 1
                if start is not None and end is not None:
                    with_span += 1
                    overlapping += anchor.overlaps(start, end)
    assert quoted == 1872
    assert found / quoted >= 0.95, f"{found}/{quoted} anchored"
    assert overlapping / with_span >= 0.95, f"{overlapping}/{with_span} overlap"
    assert time.monotonic() - started < 60


# -- quotes written by people: one rule for the grading page, the API and the importers ----

REPEATED = "Suppose $p$ is odd. Then $p^2$ is odd, so $q^2$ is odd. Hence $q$ is odd too."


def test_a_persons_quote_is_taken_as_written():
    text = 'The grader wrote "stop" and then stopped.'
    anchor = anchor_exact(text, '"stop"')
    assert anchor is not None
    assert (anchor.start, anchor.exact) == (text.index('"stop"'), '"stop"')
    # A verifier's quote loses its wrapping quotation marks first.
    assert anchor_quote(text, '"stop"').exact == "stop"


def test_a_persons_quote_not_in_the_text_is_refused_not_guessed():
    assert anchor_exact(PROOF, "Then x^2 >= 0") is None
    assert anchor_quote(PROOF, "Then x^2 >= 0").method == AnchorMethod.FUZZY


@pytest.mark.django_db
@pytest.mark.parametrize(
    "issue, expected_start",
    [
        # Offsets that drifted (a re-rendered proof): the occurrence nearest `start` wins.
        ({"start": 45, "end": 51}, 48),
        ({"start": 65, "end": 71}, 66),
        ({}, 12),  # a quote alone: its first occurrence
        ({"start": 31, "end": 37}, 31),  # offsets that select the quote
    ],
    ids=["drifted-middle", "drifted-end", "quote-alone", "exact-offsets"],
)
def test_a_graders_quote_and_an_imported_quote_anchor_to_the_same_span(
    tmp_path, issue, expected_start
):
    assert [i for i in range(len(REPEATED)) if REPEATED.startswith("is odd", i)] == [12, 31, 48, 66]
    raw: dict[str, Any] = {**issue, "quote": "is odd", "note": "n"}
    (graded,) = parse_issues([raw], REPEATED)

    line = native_line(text=REPEATED, grades=[{"grader": "g", "score": 0, "issues": [raw]}])
    result = import_path(write_jsonl(tmp_path, [line]), "native")
    assert result.ok, result.error_lines()
    imported = GradeIssue.objects.get()

    fields = ("start", "end", "quote", "prefix", "suffix")
    assert [getattr(imported, f) for f in fields] == [getattr(graded, f) for f in fields]
    assert (imported.start, imported.end) == (expected_start, expected_start + len("is odd"))
    assert imported.prefix == REPEATED[max(0, expected_start - CONTEXT_CHARS) : expected_start]
