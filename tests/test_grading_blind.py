"""Blind mode: no other grades and no model scores before the grader's own grade is in."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from annotate import grading, others
from annotate.models import CampaignItem, Grade, Membership, Role
from annotate.work import queue, visibility
from verification.models import Analysis

pytestmark = pytest.mark.django_db

# Strings that would betray other grades or model scores if they showed up anywhere.
SECRETS = (
    "average_automatic_rating",
    "ProofBench human rater",
    "david_expert",
    "0.8125",
    "self_score",
    "My proof is complete",
    "Step 3 fails",
)


@pytest.fixture
def scored_item(campaign, proof, expert2):
    """The item, with a model rating, a self-score, an analysis, an imported grade and
    expert2's committed grade of 0."""
    proof.metadata = {"average_automatic_rating": 0.8125}
    proof.self_score = Decimal("1")
    proof.self_evaluation = "My proof is complete."
    proof.save()
    Analysis.objects.create(proof=proof, text="Looks fine. \\boxed{1}", text_hash="h" * 64)
    Grade.objects.create(
        proof=proof,
        origin=Grade.Origin.IMPORTED,
        external_grader="ProofBench human rater",
        import_source="imo-proofbench",
        score=Decimal("0"),
        raw_score=Decimal("1"),
        raw_scale_max=Decimal("7"),
    )
    item = queue.claim_next_item(campaign, expert2)
    grading.submit_grade(
        item, expert2, score="0", comment="Step 3 fails", issues=[], active_seconds=60,
        submission_key=uuid.uuid4(),
    )  # fmt: skip
    return CampaignItem.objects.select_related("campaign", "proof__problem").get(pk=item.pk)


def detail(client, item):
    return client.get(f"/api/campaigns/{item.campaign_id}/items/{item.pk}/")


def submit(client, item, score):
    body = {"score": score, "submission_key": str(uuid.uuid4()), "issues": [], "comment": ""}
    return client.post(
        f"/api/campaigns/{item.campaign_id}/items/{item.pk}/grade/",
        data=body,
        content_type="application/json",
    )


def test_before_committing_the_grader_sees_no_scores(client, expert, scored_item):
    client.force_login(expert)
    queue.claim_next_item(scored_item.campaign, expert)
    response = detail(client, scored_item)
    body = response.json()
    assert body["can_see_others"] is False
    assert "others" not in body
    text = response.content.decode()
    for secret in SECRETS:
        assert secret not in text


def test_after_committing_the_grader_sees_others_and_model_scores(
    client, expert, scored_item, django_capture_on_commit_callbacks
):
    client.force_login(expert)
    queue.claim_next_item(scored_item.campaign, expert)
    with django_capture_on_commit_callbacks(execute=True):  # disagreements are recorded then
        submit_response = submit(client, scored_item, 1)
    assert submit_response.status_code == 201
    for secret in SECRETS:  # the submit response itself reveals nothing either
        assert secret not in submit_response.content.decode()

    body = detail(client, scored_item).json()
    assert body["can_see_others"] is True
    others = body["others"]
    scores = {(g["grader"], g["score"], g["mine"]) for g in others["grades"]}
    assert scores == {("david_expert", 0.0, False), ("emmy_expert", 1.0, True)}
    assert others["imported_grades"] == [
        {
            "grader": "ProofBench human rater",
            "source": "imo-proofbench",
            "score": 0.0,
            "raw_score": 1.0,
            "raw_scale_max": 7.0,
            "comment": "",
        }
    ]
    assert others["model"] == {
        "average_automatic_rating": 0.8125,
        "analyses": 1,
        "claims": False,
        "self_score": 1.0,
        "self_evaluation": "My proof is complete.",
    }
    assert others["disagreement"] is True


def test_owners_see_everything_before_grading(client, owner, scored_item):
    client.force_login(owner)
    body = detail(client, scored_item).json()
    assert body["can_see_others"] is True
    assert body["others"]["model"]["average_automatic_rating"] == 0.8125
    assert [g["grader"] for g in body["others"]["grades"]] == ["david_expert"]


def test_adjudicators_see_everything_before_grading(client, django_user_model, scored_item):
    judge = django_user_model.objects.create_user(username="ada_adjudicator")
    Membership.objects.create(campaign=scored_item.campaign, user=judge, role=Role.ADJUDICATOR)
    client.force_login(judge)
    assert detail(client, scored_item).json()["can_see_others"] is True


def test_a_non_blind_campaign_shows_them_at_once(client, expert, scored_item):
    scored_item.campaign.blind = False
    scored_item.campaign.save(update_fields=["blind"])
    client.force_login(expert)
    body = detail(client, scored_item).json()
    assert body["can_see_others"] is True
    assert body["others"]["grades"][0]["score"] == 0.0


def test_another_graders_grade_cannot_be_fetched_by_id(client, expert, scored_item):
    theirs = Grade.objects.get(grader__username="david_expert")
    client.force_login(expert)
    assert client.get(f"/api/grades/{theirs.pk}/").status_code == 404
    assert client.get(f"/api/grades/{theirs.pk}/history/").status_code == 404


def test_reviewers_see_a_grading_item_blind(client, reviewer, scored_item):
    """Every member may read an item (the item page's rule, annotate/access.py); a reviewer
    of a grading campaign neither grades nor sees grades in a blind one."""
    client.force_login(reviewer)
    response = detail(client, scored_item)
    assert response.status_code == 200
    assert response.json()["can_see_others"] is False
    for secret in SECRETS:
        assert secret not in response.content.decode()


def test_agreement_is_not_a_disagreement(
    campaign, proof, expert, expert2, django_capture_on_commit_callbacks
):
    proof.metadata = {"average_automatic_rating": 0.9}
    proof.save()
    for grader in (expert, expert2):
        item = queue.claim_next_item(campaign, grader)
        with django_capture_on_commit_callbacks(execute=True):
            grading.submit_grade(
                item, grader, score="1", comment="", issues=[], active_seconds=1,
                submission_key=uuid.uuid4(),
            )  # fmt: skip
    assert others.others_for(item, expert)["disagreement"] is False


def test_can_see_others_follows_the_rules(campaign, expert, expert2, owner, outsider, scored_item):
    assert visibility.can_see_others(scored_item, expert) is False
    assert visibility.can_see_others(scored_item, expert2) is True  # committed
    assert visibility.can_see_others(scored_item, owner) is True
    assert visibility.can_see_others(scored_item, outsider) is False


def test_progress_events_carry_no_scores(campaign, expert, django_capture_on_commit_callbacks):
    from unittest import mock

    item = queue.claim_next_item(campaign, expert)
    with mock.patch("annotate.work.commit.send_progress") as send:
        with django_capture_on_commit_callbacks(execute=True):
            grading.submit_grade(
                item, expert, score="0.5", comment="", issues=[], active_seconds=1,
                submission_key=uuid.uuid4(),
            )  # fmt: skip
    (_, data), _ = send.call_args
    assert set(data) == {"item", "committed", "overlap"}
