"""REST API for grading: access, methods, validation, idempotency, conflicts, query counts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from annotate import grading
from annotate.models import (
    CampaignItem,
    Draft,
    Grade,
    GradeHistory,
    Membership,
    ProblemFlag,
    Role,
    Skip,
)
from annotate.work import queue
from tests.grading_support import add_graders, add_items, add_others_ratings

pytestmark = pytest.mark.django_db


def call(client, method: str, url: str, body=None):
    if method == "GET":
        return client.get(url)
    data = json.dumps(body) if body is not None else None
    return getattr(client, method.lower())(url, data=data, content_type="application/json")


def item_url(item, suffix: str = "") -> str:
    return f"/api/campaigns/{item.campaign_id}/items/{item.pk}/{suffix}"


def submission(score="1", **extra):
    return {
        "score": score,
        "comment": "Looks right.",
        "issues": [],
        "active_seconds": 42,
        "submission_key": str(uuid.uuid4()),
        **extra,
    }


@pytest.fixture
def item(campaign):
    return CampaignItem.objects.get(campaign=campaign)


@pytest.fixture
def claimed(campaign, expert):
    """The campaign's item, leased to `expert`."""
    return queue.claim_next_item(campaign, expert)


@pytest.fixture
def their_grade(campaign, expert2):
    """A grade by expert2 of the campaign's item."""
    item = queue.claim_next_item(campaign, expert2)
    grade, _ = grading.submit_grade(
        item,
        expert2,
        score="0",
        comment="",
        issues=[],
        active_seconds=3,
        submission_key=uuid.uuid4(),
    )
    return grade


# --- every endpoint: method, anonymous, outsider -------------------------------------------

ENDPOINTS = [
    # (method, url template, a method the endpoint does not allow)
    ("POST", "/api/campaigns/{c}/claim/", "GET"),
    ("GET", "/api/campaigns/{c}/items/{i}/", "POST"),
    ("PUT", "/api/campaigns/{c}/items/{i}/draft/", "POST"),
    ("POST", "/api/campaigns/{c}/items/{i}/grade/", "GET"),
    ("POST", "/api/campaigns/{c}/items/{i}/skip/", "GET"),
    ("POST", "/api/campaigns/{c}/items/{i}/lease/", "GET"),
    ("DELETE", "/api/campaigns/{c}/items/{i}/lease/", "PUT"),
    ("GET", "/api/campaigns/{c}/progress/", "POST"),
    ("GET", "/api/grades/{g}/", "POST"),
    ("PATCH", "/api/grades/{g}/", "DELETE"),
    ("GET", "/api/grades/{g}/history/", "POST"),
]


def fill(template: str, item, grade) -> str:
    return template.format(c=item.campaign_id, i=item.pk, g=grade.pk)


@pytest.mark.parametrize("method, template, wrong", ENDPOINTS)
def test_anonymous_is_refused_and_nothing_written(
    client, item, their_grade, method, template, wrong
):
    before = (Grade.objects.count(), Draft.objects.count(), Skip.objects.count())
    response = call(client, method, fill(template, item, their_grade), {})
    assert response.status_code in (401, 403)
    assert (Grade.objects.count(), Draft.objects.count(), Skip.objects.count()) == before


@pytest.mark.parametrize("method, template, wrong", ENDPOINTS)
def test_outsider_gets_404(client, outsider, item, their_grade, method, template, wrong):
    client.force_login(outsider)
    response = call(client, method, fill(template, item, their_grade), submission())
    assert response.status_code == 404


@pytest.mark.parametrize("method, template, wrong", ENDPOINTS)
def test_wrong_method_gets_405(client, owner, item, their_grade, method, template, wrong):
    client.force_login(owner)
    assert call(client, wrong, fill(template, item, their_grade)).status_code == 405


@pytest.mark.parametrize(
    "method, suffix",
    [("PUT", "draft/"), ("POST", "grade/"), ("POST", "skip/"), ("POST", "lease/")],
)
def test_members_without_the_grader_role_cannot_grade(client, reviewer, item, method, suffix):
    client.force_login(reviewer)
    assert call(client, method, item_url(item, suffix), submission()).status_code == 403
    assert call(client, "POST", f"/api/campaigns/{item.campaign_id}/claim/").status_code == 403


def test_unknown_item_of_a_campaign_is_404(client, expert, campaign):
    client.force_login(expert)
    assert call(client, "GET", f"/api/campaigns/{campaign.pk}/items/999999/").status_code == 404


# --- claim and lease --------------------------------------------------------------------------


def test_claim_leases_an_item_and_then_says_nothing_left(client, expert, campaign, item):
    client.force_login(expert)
    response = call(client, "POST", f"/api/campaigns/{campaign.pk}/claim/")
    assert response.status_code == 200
    body = response.json()
    assert body["item"]["id"] == item.pk
    assert body["item"]["url"] == item_url(item)
    call(client, "POST", item_url(item, "grade/"), submission())
    response = call(client, "POST", f"/api/campaigns/{campaign.pk}/claim/")
    assert response.json()["item"] is None


def test_lease_renew_and_release(client, expert, expert2, item):
    with time_machine.travel("2026-01-05 09:00Z", tick=False) as clock:
        claimed = queue.claim_next_item(item.campaign, expert)
        clock.shift(timedelta(minutes=25))
        client.force_login(expert2)  # a grader of the campaign, but not the holder
        response = call(client, "POST", item_url(claimed, "lease/"))
        assert response.status_code == 409 and response.json()["held"] is False
        claimed.refresh_from_db()
        assert claimed.lease_holder_id == expert.pk
        assert claimed.lease_expires_at == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
        client.force_login(expert)
        response = call(client, "POST", item_url(claimed, "lease/"))
        assert response.status_code == 200 and response.json()["held"] is True
        # 30 minutes from the renewal, not from the claim.
        assert response.json()["expires_at"] == "2026-01-05T09:55:00+00:00"
        claimed.refresh_from_db()
        assert claimed.lease_expires_at == datetime(2026, 1, 5, 9, 55, tzinfo=UTC)
        assert call(client, "DELETE", item_url(claimed, "lease/")).status_code == 204
        claimed.refresh_from_db()
        assert claimed.lease_holder_id is None
        client.force_login(expert2)
        claim = call(client, "POST", f"/api/campaigns/{claimed.campaign_id}/claim/")
        assert claim.json()["item"]["id"] == claimed.pk
        client.force_login(expert)
        response = call(client, "POST", item_url(claimed, "lease/"))
        assert response.status_code == 409
        assert response.json()["held"] is False


# --- drafts -----------------------------------------------------------------------------------


def test_autosaved_draft_is_restored_in_the_item(client, expert, claimed, proof):
    client.force_login(expert)
    issue = {"start": 0, "end": 6, "quote": "Assume", "note": "unclear", "severity": "minor"}
    body = {"score": 0.5, "comment": "half way", "issues": [issue], "active_seconds": 17}
    response = call(client, "PUT", item_url(claimed, "draft/"), body)
    assert response.status_code == 200
    restored = call(client, "GET", item_url(claimed)).json()["draft"]
    assert restored["score"] == 0.5
    assert restored["comment"] == "half way"
    assert restored["active_seconds"] == 17
    assert restored["issues"][0]["quote"] == "Assume"
    assert restored["issues"][0]["suffix"] == proof.text[6:38]


def test_invalid_draft_is_400_and_keeps_the_last_good_one(client, expert, claimed):
    client.force_login(expert)
    call(client, "PUT", item_url(claimed, "draft/"), {"score": 1, "comment": "good"})
    response = call(client, "PUT", item_url(claimed, "draft/"), {"score": 2, "comment": "bad"})
    assert response.status_code == 400
    assert "score" in response.json()
    assert Draft.objects.get().content["comment"] == "good"


def test_an_older_draft_revision_is_409_and_keeps_the_newer(client, expert, claimed):
    client.force_login(expert)
    newer = call(client, "PUT", item_url(claimed, "draft/"), {"comment": "new", "revision": 20})
    assert newer.status_code == 200 and newer.json()["revision"] == 20
    older = call(client, "PUT", item_url(claimed, "draft/"), {"comment": "old", "revision": 10})
    assert older.status_code == 409
    assert (older.json()["revision"], older.json()["other_tab"]) == (20, False)
    assert Draft.objects.get().content["comment"] == "new"
    # Without a revision (a plain API client) the write is the newest.
    plain = call(client, "PUT", item_url(claimed, "draft/"), {"comment": "plain"})
    assert plain.status_code == 200 and plain.json()["revision"] == 21


def test_draft_for_an_item_leased_to_someone_else_is_409(client, expert2, claimed):
    client.force_login(expert2)
    response = call(client, "PUT", item_url(claimed, "draft/"), {"score": 1})
    assert response.status_code == 409
    assert not Draft.objects.exists()


# --- submit -----------------------------------------------------------------------------------


def test_submit_creates_the_grade(client, expert, claimed):
    client.force_login(expert)
    issue = {"start": 0, "end": 6, "note": "fatal", "severity": "fatal"}
    response = call(client, "POST", item_url(claimed, "grade/"), submission("0", issues=[issue]))
    assert response.status_code == 201
    body = response.json()
    assert body["score"] == 0.0 and body["version"] == 1
    assert body["issues"][0]["quote"] == "Assume"
    grade = Grade.objects.get()
    assert (grade.grader, grade.score, grade.active_seconds) == (expert, Decimal("0"), 42)
    item = call(client, "GET", item_url(claimed)).json()
    assert item["grade"]["id"] == grade.pk and item["draft"] is None


def test_duplicate_post_is_idempotent(client, expert, claimed):
    client.force_login(expert)
    body = submission("0.5")
    first = call(client, "POST", item_url(claimed, "grade/"), body)
    second = call(client, "POST", item_url(claimed, "grade/"), body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Grade.objects.count() == 1
    assert CampaignItem.objects.get().committed == 1
    assert GradeHistory.objects.count() == 1


def test_submit_by_a_grader_without_the_lease_is_409(client, expert2, claimed):
    client.force_login(expert2)
    response = call(client, "POST", item_url(claimed, "grade/"), submission())
    assert response.status_code == 409
    assert not Grade.objects.exists()


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"score": 0.7}, "score"),
        ({"score": None}, "score"),
        ({"submission_key": "nope"}, "submission_key"),
        ({"issues": [{"start": 3}]}, "issues[0].start"),
        ({"issues": [{"quote": "not there"}]}, "issues[0].quote"),
        ({"active_seconds": "ten"}, "active_seconds"),
    ],
)
def test_invalid_submit_is_400_and_writes_nothing(client, expert, claimed, changes, field):
    client.force_login(expert)
    response = call(client, "POST", item_url(claimed, "grade/"), submission(**changes))
    assert response.status_code == 400
    assert field in response.json()
    assert not Grade.objects.exists()
    claimed.refresh_from_db()
    assert (claimed.committed, claimed.lease_holder_id) == (0, expert.pk)


def test_non_object_body_is_400(client, expert, claimed):
    client.force_login(expert)
    response = call(client, "POST", item_url(claimed, "grade/"), [1, 2])
    assert response.status_code == 400
    assert not Grade.objects.exists()


# --- skip -------------------------------------------------------------------------------------


def test_skip_with_statement_wrong_flags_the_problem(client, expert, expert2, claimed):
    client.force_login(expert)
    body = {"reason": "statement_wrong", "note": "The bound should be 2n."}
    response = call(client, "POST", item_url(claimed, "skip/"), body)
    assert response.status_code == 201
    assert ProblemFlag.objects.get().note == "The bound should be 2n."
    # The flag shows to the next grader of that problem.
    client.force_login(expert2)
    assert call(client, "POST", f"/api/campaigns/{claimed.campaign_id}/claim/").json()["item"]
    flags = call(client, "GET", item_url(claimed)).json()["problem"]["flags"]
    assert flags[0]["note"] == "The bound should be 2n."


def test_invalid_skip_is_400(client, expert, claimed):
    client.force_login(expert)
    response = call(client, "POST", item_url(claimed, "skip/"), {"reason": "lunch"})
    assert response.status_code == 400 and "reason" in response.json()
    assert not Skip.objects.exists()


# --- edit and history -------------------------------------------------------------------------


@pytest.fixture
def my_grade(client, expert, claimed):
    client.force_login(expert)
    return call(client, "POST", item_url(claimed, "grade/"), submission("1")).json()


def test_edit_with_the_current_version(client, expert, my_grade):
    response = call(
        client, "PATCH", f"/api/grades/{my_grade['id']}/", {"version": 1, "score": "0.5"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["version"], body["score"], body["comment"]) == (2, 0.5, "Looks right.")


def test_an_edit_that_changes_nothing_keeps_the_version(client, expert, my_grade):
    url = f"/api/grades/{my_grade['id']}/"
    same = {"version": 1, "score": my_grade["score"], "comment": my_grade["comment"]}
    response = call(client, "PATCH", url, same)
    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert (Grade.objects.get().version, GradeHistory.objects.count()) == (1, 1)


def test_stale_edit_is_409_and_overwrites_nothing(client, expert, my_grade):
    url = f"/api/grades/{my_grade['id']}/"
    assert call(client, "PATCH", url, {"version": 1, "score": 0}).status_code == 200
    response = call(client, "PATCH", url, {"version": 1, "score": 0.5, "comment": "late"})
    assert response.status_code == 409
    assert response.json()["current_version"] == 2
    assert "changed by you in another tab" in response.json()["detail"]
    grade = Grade.objects.get()
    assert (grade.version, grade.score, grade.comment) == (2, Decimal("0"), "Looks right.")


def test_invalid_edit_is_400_and_writes_nothing(client, expert, my_grade):
    url = f"/api/grades/{my_grade['id']}/"
    assert "version" in call(client, "PATCH", url, {"score": 0}).json()
    response = call(client, "PATCH", url, {"version": 1, "score": 3})
    assert response.status_code == 400 and "score" in response.json()
    grade = Grade.objects.get()
    assert (grade.version, grade.score) == (1, Decimal("1"))
    assert GradeHistory.objects.count() == 1


def test_only_the_grader_edits(client, owner, my_grade):
    client.force_login(owner)
    response = call(client, "PATCH", f"/api/grades/{my_grade['id']}/", {"version": 1, "score": 0})
    assert response.status_code == 403
    assert Grade.objects.get().version == 1


def test_owner_reads_the_history(client, owner, expert, my_grade):
    with time_machine.travel("2026-02-01 10:00Z", tick=False):
        call(
            client,
            "PATCH",
            f"/api/grades/{my_grade['id']}/",
            {"version": 1, "score": 0, "issues": [{"quote": "gcd", "note": "wrong"}]},
        )
    # The grader reads their own grade's history too (annotate/access.py).
    assert call(client, "GET", f"/api/grades/{my_grade['id']}/history/").status_code == 200
    client.force_login(owner)
    response = call(client, "GET", f"/api/grades/{my_grade['id']}/history/")
    assert response.status_code == 200
    first, second = response.json()["history"]
    assert (first["version"], first["old_score"], first["new_score"]) == (1, None, 1.0)
    assert second["changed_by"] == "emmy_expert"
    assert second["changed_at"].startswith("2026-02-01T10:00")
    assert (second["old_score"], second["new_score"]) == (1.0, 0.0)
    assert second["old_issues"] == [] and second["new_issues"][0]["quote"] == "gcd"


# --- progress ---------------------------------------------------------------------------------


def test_progress_for_owners_only(client, owner, expert, their_grade):
    client.force_login(expert)
    assert (
        call(client, "GET", f"/api/campaigns/{their_grade.campaign_id}/progress/").status_code
        == 403
    )
    client.force_login(owner)
    body = call(client, "GET", f"/api/campaigns/{their_grade.campaign_id}/progress/").json()
    assert (body["items"], body["grades"], body["complete"]) == (1, 1, 0)
    assert body["graders"][0]["username"] == "david_expert"


# --- constant query counts --------------------------------------------------------------------


@pytest.mark.parametrize("extra_items", [0, 200])
def test_item_detail_queries_do_not_grow_with_the_campaign(
    client, campaign, expert, expert2, claimed, extra_items, django_assert_max_num_queries
):
    add_items(campaign, extra_items)
    for grader in add_graders(campaign, extra_items // 50, prefix="load"):
        item = queue.claim_next_item(campaign, grader)
        grading.submit_grade(
            item, grader, score="1", comment="", issues=[{"quote": "Proof", "note": "n"}],
            active_seconds=1, submission_key=uuid.uuid4(),
        )  # fmt: skip
    # Others' grades (with issues), imported grades and analyses of the very item read.
    add_others_ratings(claimed, extra_items // 20, prefix="other")
    client.force_login(expert)
    call(client, "POST", item_url(claimed, "grade/"), submission())
    with django_assert_max_num_queries(11):
        response = call(client, "GET", item_url(claimed))
    assert response.status_code == 200
    others = response.json()["others"]
    assert len(others["grades"]) == extra_items // 20 + 1  # theirs and the expert's own
    assert all(len(g["issues"]) == 2 for g in others["grades"] if not g["mine"])
    assert len(others["imported_grades"]) == others["model"]["analyses"] == extra_items // 20


@pytest.mark.parametrize("extra_items", [0, 200])
def test_grade_post_queries_do_not_grow_with_the_campaign(
    client, campaign, expert, claimed, extra_items, django_assert_max_num_queries
):
    add_items(campaign, extra_items)
    add_others_ratings(claimed, extra_items // 50, prefix="other")
    client.force_login(expert)
    issues = [{"quote": "gcd", "note": "n"}, {"start": 0, "end": 6, "note": "m"}]
    call(client, "PUT", item_url(claimed, "draft/"), {"score": 1})
    # 16 with the proof's stale mark (its recomputation follows the commit,
    # annotate/work/derived.py).
    with django_assert_max_num_queries(16):
        response = call(client, "POST", item_url(claimed, "grade/"), submission(issues=issues))
    assert response.status_code == 201


def test_membership_is_needed_for_grading_even_with_a_lease(client, expert, claimed, campaign):
    Membership.objects.filter(user=expert, campaign=campaign, role=Role.GRADER).delete()
    client.force_login(expert)
    assert call(client, "POST", item_url(claimed, "grade/"), submission()).status_code == 404
