"""Reading a verifier's score: one table of real-looking outputs, one function."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from verification.models import Analysis
from verification.parsing import ParseStatus, parse_analysis

OK, NO_SCORE, CONFLICTING, TRUNCATED = (
    ParseStatus.OK,
    ParseStatus.NO_SCORE,
    ParseStatus.CONFLICTING,
    ParseStatus.TRUNCATED,
)

EVALUATION = (
    "Here is my evaluation of the solution:\n\nThe key step, Lemma 2, is justified.\n\n"
    "Based on my evaluation, the final overall score should be: "
)

# (name, raw output, finish reason, status, score)
TABLE = [
    ("plain final score", EVALUATION + r"\boxed{1}", None, OK, "1"),
    ("half", EVALUATION + r"\boxed{0.5}", "stop", OK, "0.5"),
    ("zero", EVALUATION + r"\boxed{0}", None, OK, "0"),
    ("space after boxed", EVALUATION + r"\boxed {0.5}", None, OK, "0.5"),
    ("spaces inside", EVALUATION + r"\boxed{ 1 }", None, OK, "1"),
    ("frac without braces", EVALUATION + r"\boxed{\frac12}", None, OK, "0.5"),
    ("tfrac nested braces", EVALUATION + r"\boxed{\tfrac{1}{2}}", None, OK, "0.5"),
    ("dfrac", EVALUATION + r"\boxed{\dfrac{1}{2}}", None, OK, "0.5"),
    ("slash", EVALUATION + r"\boxed{1/2}", None, OK, "0.5"),
    ("decimal noise", EVALUATION + r"\boxed{1.0}", None, OK, "1"),
    ("leading point", EVALUATION + r"\boxed{.5}", None, OK, "0.5"),
    ("in math mode", EVALUATION + r"$\boxed{0}$", None, OK, "0"),
    ("text wrapper", EVALUATION + r"\boxed{\text{0.5}}", None, OK, "0.5"),
    (
        "reasoning then answer",
        "<think>Let me check step 3... maybe \\boxed{0}?</think>\n" + EVALUATION + r"\boxed{1}",
        None,
        OK,
        "1",
    ),
    (
        "last think wins",
        "<think>a</think> draft \\boxed{0} </think>" + EVALUATION + r"\boxed{1}",
        None,
        OK,
        "1",
    ),
    (
        "quoted final answer of the proof is not a score",
        "The proof concludes $\\boxed{2024}$, which is right.\n" + EVALUATION + r"\boxed{1}",
        None,
        OK,
        "1",
    ),
    ("same score twice", r"Score: \boxed{1}. " + EVALUATION + r"\boxed{1}", None, OK, "1"),
    (
        "changed its mind",
        r"Score: \boxed{1}. Wait, Lemma 2 fails. " + EVALUATION + r"\boxed{0}",
        None,
        CONFLICTING,
        None,
    ),
    ("half then one", r"\boxed{\frac{1}{2}} or rather \boxed{1}", None, CONFLICTING, None),
    (
        "box in the reasoning only",
        "<think>so \\boxed{1}</think>\nThe proof is fine.",
        None,
        NO_SCORE,
        None,
    ),
    ("no box", "The proof is correct; I would give it full marks.", None, NO_SCORE, None),
    ("empty output", "", None, NO_SCORE, None),
    ("off the scale", EVALUATION + r"\boxed{0.7}", None, NO_SCORE, None),
    ("a quoted answer last", EVALUATION + r"the answer \boxed{n=2}", None, NO_SCORE, None),
    ("empty box", EVALUATION + r"\boxed{}", None, NO_SCORE, None),
    ("cut at the token limit", EVALUATION + r"\boxed{1}", "length", TRUNCATED, None),
    ("box never closed", EVALUATION + r"\boxed{\frac{1}{2", None, TRUNCATED, None),
    ("think never closed", "<think>Step 1 is fine. Step 2", None, TRUNCATED, None),
    ("ends at boxed", EVALUATION + r"\boxed", None, NO_SCORE, None),
]


@pytest.mark.parametrize(
    ("text", "finish_reason", "status", "score"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_it_reads_score_and_status(text, finish_reason, status, score):
    parsed = parse_analysis(text, finish_reason)
    assert parsed.status == status, parsed.detail
    assert parsed.score == (Decimal(score) if score is not None else None)
    assert (parsed.detail == "") == (status == OK)


def test_it_separates_the_reasoning_from_the_answer():
    parsed = parse_analysis("<think>\nI check each step.\n</think>\nAll good. \\boxed{1}")
    assert parsed.reasoning == "I check each step."
    assert parsed.answer.strip() == "All good. \\boxed{1}"
    assert parsed.boxes == ("1",)


def test_a_box_in_the_reasoning_only_is_said_so():
    parsed = parse_analysis("<think>\\boxed{0}</think>no verdict")
    assert parsed.detail == "a box in the reasoning only"


def test_it_never_raises_on_noise():
    rng = random.Random(8)
    alphabet = [
        "\\boxed",
        "{",
        "}",
        "\\frac",
        "1",
        "2",
        "0",
        ".",
        "/",
        " ",
        "<think>",
        "</think>",
        "$",
        "\\",
        "x",
    ]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        parsed = parse_analysis(text, rng.choice([None, "stop", "length"]))
        assert (parsed.score is not None) == (parsed.status == OK)


@pytest.mark.django_db
def test_an_unparseable_analysis_is_stored_with_its_status(proof):
    fields = Analysis.parsed_fields("I ran out of time \\boxed{0.", finish_reason="length")
    analysis = Analysis.objects.create(proof=proof, text="I ran out of time \\boxed{0.", **fields)
    analysis.refresh_from_db()
    assert analysis.parse_status == TRUNCATED
    assert analysis.score is None
    assert analysis.finish_reason == "length"
    assert analysis.parse_detail == "stopped at the token limit"


@pytest.mark.django_db
def test_the_database_refuses_a_score_off_the_scale_or_without_a_parse(proof):
    from django.db import IntegrityError, transaction

    for bad in (
        {"score": Decimal("0.7"), "parse_status": OK},
        {"score": None, "parse_status": OK},
        {"score": Decimal("1"), "parse_status": NO_SCORE},
        {"score": None, "parse_status": "garbled"},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            Analysis.objects.create(proof=proof, text="x", **bad)
