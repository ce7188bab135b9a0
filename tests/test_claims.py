"""Splitting analyses into claims and anchoring them."""

from __future__ import annotations

import pytest

from verification.claims import ClaimDraft, anchor_claims, split_structured, split_text
from verification.models import Analysis, Claim


def test_structured_issues_become_claims_in_order():
    drafts = split_structured(
        [
            {
                "description": "Unjustified limit.",
                "text": "“so G tends to 0”",
                "category": "Other",
                "location": "Step 2",
                "start_index": 10,
                "end_index": 30,
            },
            {"description": "", "text": "", "category": "Other"},  # nothing to claim: dropped
            {"description": "Whole-proof issue.", "text": "", "start_index": None},
        ]
    )
    assert drafts == [
        ClaimDraft("Unjustified limit.", "“so G tends to 0”", "Other", "Step 2", 10, 30),
        ClaimDraft("Whole-proof issue."),
    ]


def test_a_half_given_or_bad_index_span_is_ignored():
    drafts = split_structured(
        [
            {"description": "d", "start_index": 3},
            {"description": "e", "start_index": -1, "end_index": 4},
        ]
    )
    assert [(d.start_hint, d.end_hint) for d in drafts] == [(None, None), (None, None)]


def test_numbered_items_are_claims_and_the_score_line_is_not():
    answer = (
        "Here is my evaluation.\n\n"
        '1. The proof states "every term is positive" without proof.\n'
        "   This matters for step 3.\n"
        "2) The case n = 1 is missing.\n\n"
        "Final score: \\boxed{0}"
    )
    drafts = split_text(answer)
    assert [d.text for d in drafts] == [
        'The proof states "every term is positive" without proof. This matters for step 3.',
        "The case n = 1 is missing.",
    ]
    assert drafts[0].quote == "every term is positive"


def test_bullets_are_claims():
    drafts = split_text("Issues:\n- first problem here\n* second problem here\n• third one")
    assert [d.text for d in drafts] == ["first problem here", "second problem here", "third one"]


def test_without_items_paragraphs_are_claims():
    answer = "The induction step is wrong.\n\nThe base case is fine.\n\nScore: \\boxed{0}"
    assert [d.text for d in split_text(answer)] == [
        "The induction step is wrong.",
        "The base case is fine.",
    ]


@pytest.mark.django_db
def test_anchored_claims_are_stored_with_their_method(proof):
    analysis = Analysis.objects.create(
        proof=proof, text="x", model="m", **Analysis.parsed_fields("x")
    )
    quote = proof.text[5:40]
    drafts = [
        ClaimDraft("exact", quote=quote),
        ClaimDraft(
            "approximate", quote="a paraphrase nobody wrote anywhere", start_hint=0, end_hint=4
        ),
        ClaimDraft("general"),
    ]
    Claim.objects.bulk_create(anchor_claims(analysis, drafts, proof.text))
    claims = list(analysis.claims.all())
    assert [(c.order, c.anchor_method) for c in claims] == [
        (1, "exact"),
        (2, "index_span"),
        (3, "unanchored"),
    ]
    assert (claims[0].start, claims[0].end, claims[0].exact) == (5, 40, quote)
    assert claims[1].source_start == 0 and claims[1].exact == proof.text[0:4]
    assert claims[2].start is None


@pytest.mark.django_db
def test_the_database_refuses_an_inconsistent_anchor(proof):
    from django.db import IntegrityError, transaction

    analysis = Analysis.objects.create(proof=proof, text="x", **Analysis.parsed_fields("x"))
    for bad in (
        {"anchor_method": "exact", "start": None, "end": None},
        {"anchor_method": "unanchored", "start": 1, "end": 2},
        {"anchor_method": "exact", "start": 5, "end": 5},
        {"anchor_method": "fuzzy", "start": 1, "end": 2, "anchor_score": None},
        {"anchor_method": "exact", "start": 1, "end": 2, "anchor_score": 90.0},
        {"anchor_method": "guessed", "start": 1, "end": 2},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            Claim.objects.create(analysis=analysis, order=1, text="t", **bad)
    with pytest.raises(IntegrityError), transaction.atomic():
        Claim.objects.create(analysis=analysis, order=1, anchor_method="unanchored")


def test_a_blockquote_in_an_item_is_its_quote():
    answer = (
        "1. **Gap** — Step 2\n\n   > Hence $a = b$ for all\n   > integers.\n\n   Not justified.\n\n"
        'Score: \\boxed{0}'
    )
    [draft] = split_text(answer)
    assert draft.quote == "Hence $a = b$ for all integers."
    assert draft.text.endswith("Not justified.")


@pytest.mark.parametrize("via", ["decision", "issue"])
def test_claims_a_committed_grade_decided_on_are_not_merged_or_split(
    proof, campaign, expert, reviewer, via
):
    """A grade that accepted or dismissed a suggested claim keeps naming that claim (its
    meta-verification datum): merging or splitting the claims is refused, not a crash."""
    from django.utils import timezone

    from annotate.models import ClaimDecision, Grade, GradeIssue
    from tests.suggestions_support import add_analysis
    from verification.claims import ClaimEditRefused, merge_claims, split_claim

    analysis, (one, two) = add_analysis(proof, proof.text[:12])
    grade = Grade.objects.create(
        proof=proof, campaign=campaign, grader=expert, origin=Grade.Origin.APP, score=0
    )
    if via == "decision":
        ClaimDecision.objects.create(
            grade=grade, claim=one, decision="dismissed", decided_at=timezone.now()
        )
    else:
        GradeIssue.objects.create(
            grade=grade, start=0, end=12, quote=proof.text[:12], note="n", claim=one,
            analysis=analysis,
        )  # fmt: skip
    before = list(analysis.claims.values_list("pk", "text"))
    with pytest.raises(ClaimEditRefused, match="accepted or dismissed a claim"):
        merge_claims(analysis, [one.pk, two.pk], by=reviewer)
    with pytest.raises(ClaimEditRefused, match="accepted or dismissed a claim"):
        split_claim(two, at=5, by=reviewer)
    assert list(analysis.claims.values_list("pk", "text")) == before
