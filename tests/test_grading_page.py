"""The grading pages (Django test client): queue, grading page, draft, submit, edit, skip,
lease heartbeat, blind mode, progress pages and their query counts."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from annotate import grading
from annotate.models import (
    Campaign,
    CampaignItem,
    Draft,
    Grade,
    GradeHistory,
    Membership,
    ProblemFlag,
    Proof,
    Role,
    Skip,
)
from annotate.work import errors, queue
from tests.grading_support import add_graders, add_items, add_others_ratings, submit_data

pytestmark = pytest.mark.django_db

MODEL_RATING = 0.734375  # a distinctive mean automatic rating, easy to find in HTML
OTHER_COMMENT = "Zebra-comment: the induction step fails"
IMPORTED_GRADER = "contest-jury-xq"
SELF_EVALUATION = "Self-evaluation: my proof is flawless, quokka."


@pytest.fixture
def item(campaign) -> CampaignItem:
    return campaign.items.get()


@pytest.fixture
def leased(item, expert) -> CampaignItem:
    """The campaign's item, leased to `expert`."""
    claimed = queue.claim_next_item(item.campaign, expert)
    assert claimed.pk == item.pk
    return claimed


def url(name: str, item: CampaignItem) -> str:
    return reverse(name, args=[item.campaign_id, item.pk])


def commit(item, grader, score="1", comment="") -> Grade:
    if item.lease_holder_id != grader.pk:
        CampaignItem.objects.filter(pk=item.pk).update(lease_holder=None, lease_expires_at=None)
        item.refresh_from_db()
        assert queue.claim_next_item(item.campaign, grader).pk == item.pk
    grade, _ = grading.submit_grade(
        item,
        grader,
        score=score,
        comment=comment,
        issues=[],
        active_seconds=10,
        submission_key=uuid.uuid4(),
    )
    return grade


def add_other_ratings(item, other_grader) -> None:
    """Another expert's grade, an imported grade, a model score and a self-evaluation."""
    commit(item, other_grader, score="0", comment=OTHER_COMMENT)
    proof = item.proof
    proof.metadata = {"average_automatic_rating": MODEL_RATING}
    proof.self_evaluation = SELF_EVALUATION
    proof.self_score = Decimal("1")
    proof.save()
    Grade.objects.create(
        proof=proof,
        origin=Grade.Origin.IMPORTED,
        external_grader=IMPORTED_GRADER,
        import_source="deepseek_math_v2/imo2025.jsonl",
        score=Decimal("0"),
    )


# --- the queue: Start grading / Next -----------------------------------------------------


def test_next_refuses_get(client, expert, campaign):
    client.force_login(expert)
    assert client.get(reverse("grading_next", args=[campaign.pk])).status_code == 405


def test_next_sends_anonymous_to_login(client, campaign):
    response = client.post(reverse("grading_next", args=[campaign.pk]))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_next_hides_the_campaign_from_outsiders(client, outsider, campaign):
    client.force_login(outsider)
    assert client.post(reverse("grading_next", args=[campaign.pk])).status_code == 404


def test_next_is_for_graders_only(client, reviewer, campaign):
    client.force_login(reviewer)
    assert client.post(reverse("grading_next", args=[campaign.pk])).status_code == 403
    assert not CampaignItem.objects.filter(lease_holder=reviewer).exists()


def test_next_claims_an_item_and_opens_it(client, expert, item):
    client.force_login(expert)
    response = client.post(reverse("grading_next", args=[item.campaign_id]))
    assert response.status_code == 302
    assert response["Location"] == url("grading_page", item)
    item.refresh_from_db()
    assert item.lease_holder_id == expert.pk


def test_next_twice_keeps_the_same_item(client, expert, campaign):
    add_items(campaign, 3)
    client.force_login(expert)
    first = client.post(reverse("grading_next", args=[campaign.pk]))["Location"]
    second = client.post(reverse("grading_next", args=[campaign.pk]))["Location"]
    assert first == second
    assert CampaignItem.objects.filter(lease_holder=expert).count() == 1


def test_next_says_when_nothing_is_left(client, expert, item):
    commit(item, expert)
    client.force_login(expert)
    response = client.post(reverse("grading_next", args=[item.campaign_id]), follow=True)
    assert response.status_code == 200
    assert b'id="nothing-left"' in response.content


def test_queue_page_offers_start_grading(client, expert, campaign):
    client.force_login(expert)
    response = client.get(reverse("grading_queue", args=[campaign.pk]))
    assert response.status_code == 200
    assert b"Start grading" in response.content
    assert b'id="nothing-left"' not in response.content


def test_campaign_page_links_the_grading_pages(client, expert, owner, campaign):
    client.force_login(expert)
    html = client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    assert reverse("grading_next", args=[campaign.pk]) in html
    assert reverse("grading_mine", args=[campaign.pk]) in html
    assert reverse("grading_progress", args=[campaign.pk]) not in html
    client.force_login(owner)
    html = client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    assert reverse("grading_progress", args=[campaign.pk]) in html


# --- the grading page: access ------------------------------------------------------------


def test_grading_page_opens_for_the_lease_holder(client, expert, leased):
    client.force_login(expert)
    response = client.get(url("grading_page", leased))
    assert response.status_code == 200
    assert b'id="grade-form"' in response.content


def test_grading_page_refuses_post(client, expert, leased):
    client.force_login(expert)
    assert client.post(url("grading_page", leased)).status_code == 405


def test_grading_page_sends_anonymous_to_login(client, leased):
    response = client.get(url("grading_page", leased))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_grading_page_hides_the_campaign_from_outsiders(client, outsider, leased):
    client.force_login(outsider)
    assert client.get(url("grading_page", leased)).status_code == 404


def test_grading_page_refuses_a_grader_who_does_not_hold_the_item(client, expert2, leased):
    client.force_login(expert2)
    assert client.get(url("grading_page", leased)).status_code == 403


def test_grading_page_refuses_reviewers_and_owners_who_do_not_grade(
    client, reviewer, owner, leased
):
    for user in (reviewer, owner):
        client.force_login(user)
        assert client.get(url("grading_page", leased)).status_code == 403


def test_grader_whose_lapsed_lease_was_taken_can_still_finish_their_draft(
    client, expert, expert2, leased
):
    client.force_login(expert)
    client.post(url("grading_draft", leased), {"score": "1", "comment": "almost done"})
    CampaignItem.objects.filter(pk=leased.pk).update(lease_holder=expert2)
    page = client.get(url("grading_page", leased))
    assert page.status_code == 200 and b"almost done" in page.content
    lease = client.post(url("grading_lease", leased))
    assert b"has expired" in lease.content
    response = client.post(url("grading_submit", leased), submit_data(score="1"))
    assert response.status_code == 302
    assert Grade.objects.get().grader == expert


def test_grading_page_opens_in_edit_mode_after_commit(client, expert, leased):
    grade = commit(leased, expert, score="0.5", comment="Gap in step 2")
    client.force_login(expert)
    html = client.get(url("grading_page", leased)).content.decode()
    assert f'name="version" value="{grade.version}"' in html
    assert 'name="submission_key"' not in html
    assert "Gap in step 2" in html
    assert re.search(r'value="0\.5" checked', html)


def test_a_committed_grade_is_read_only_until_edit_is_opened(client, expert, leased):
    commit(leased, expert, score="0.5")
    client.force_login(expert)
    response = client.get(url("grading_page", leased))
    # Back after the commit fetches it again, rather than showing the uncommitted form.
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert "Committed grade — version 1" in html
    assert re.search(r'<fieldset class="grade-fields" id="grade-fields" disabled>', html)
    assert 'id="submit-button"' not in html  # Enter has nothing to submit
    assert 'id="edit-link"' in html and 'aria-keyshortcuts="e"' in html
    html = client.get(url("grading_page", leased) + "?edit=1").content.decode()
    assert "Editing the committed grade — version 1" in html
    assert 'id="grade-fields" disabled' not in html
    assert 'id="submit-button"' in html and "Save edit" in html


def test_other_ratings_come_before_the_proof_once_committed(client, expert, expert2, item):
    add_other_ratings(item, expert2)
    commit(item, expert)
    client.force_login(expert)
    html = client.get(url("grading_page", item)).content.decode()
    assert html.index('id="others"') < html.index('id="proof-text"')


def test_the_proof_being_graded_offers_no_next_or_back_link(client, expert, leased):
    """n before committing does not reload the same proof: there is no "next" to go to
    (the help says so), and no "Back to my current proof" link while on it."""
    client.force_login(expert)
    html = client.get(url("grading_page", leased)).content.decode()
    assert "Back to my current proof" not in html
    assert 'id="next-form"' not in html
    assert "a proof being graded is submitted or skipped first" in html


def test_grading_page_of_another_campaign_is_not_found(client, expert, leased, owner):
    other = Campaign.objects.create(name="Other", created_by=owner)
    Membership.objects.create(campaign=other, user=expert, role=Role.GRADER)
    client.force_login(expert)
    response = client.get(reverse("grading_page", args=[other.pk, leased.pk]))
    assert response.status_code == 404


# --- the grading page: content -----------------------------------------------------------


def test_grading_page_shows_problem_guidelines_reference_rubric_and_proof(client, expert, leased):
    campaign = leased.campaign
    campaign.instructions = "Grade **strictly**: unjustified claims are fatal."
    campaign.save()
    client.force_login(expert)
    html = client.get(url("grading_page", leased)).content.decode()
    assert "Prove that" in html  # statement
    assert 'class="guidelines"' in html and "Set up the contradiction" in html
    assert 'class="reference"' in html and "Suppose" in html
    assert "may itself contain mistakes" in html
    assert "<strong>strictly</strong>" in html  # instructions rendered as Markdown
    assert 'id="proof-text"' in html and "data-line=" in html
    assert 'id="proof-source"' in html  # the source, for anchoring issues
    assert "<details" in html


def test_grading_page_hides_guidelines_and_reference_when_the_campaign_says_so(
    client, expert, leased
):
    campaign = leased.campaign
    campaign.show_guidelines = False
    campaign.show_reference_solution = False
    campaign.save()
    client.force_login(expert)
    html = client.get(url("grading_page", leased)).content.decode()
    assert "Set up the contradiction" not in html
    assert "Suppose" not in html
    assert "may itself contain mistakes" not in html


def test_grading_page_embeds_the_proof_source_safely(client, expert, leased):
    proof = leased.proof
    proof.text = "Let $x<y$. </script><script>alert(1)</script> so done."
    proof.save()
    client.force_login(expert)
    html = client.get(url("grading_page", leased)).content.decode()
    assert "<script>alert(1)</script>" not in html
    source = re.search(r'<script id="proof-source" type="application/json">(.*?)</script>', html)
    assert json.loads(source.group(1)) == proof.text


def test_grading_page_documents_the_keyboard(client, expert, leased):
    client.force_login(expert)
    html = client.get(url("grading_page", leased)).content.decode()
    assert 'id="help-dialog"' in html
    for key in ['aria-keyshortcuts="0"', 'aria-keyshortcuts="5"', 'aria-keyshortcuts="1"']:
        assert key in html


def test_each_render_gets_a_fresh_submission_key(client, expert, leased):
    client.force_login(expert)
    keys = [
        re.search(
            r'name="submission_key" value="([0-9a-f-]+)"',
            client.get(url("grading_page", leased)).content.decode(),
        ).group(1)
        for _ in range(2)
    ]
    assert keys[0] != keys[1]


# --- blind mode --------------------------------------------------------------------------


def assert_no_other_ratings(html: str) -> None:
    for secret in (OTHER_COMMENT, "david_expert", str(MODEL_RATING), IMPORTED_GRADER, "quokka"):
        assert secret not in html, secret
    assert 'id="others"' not in html


def test_blind_page_shows_no_other_grades_or_model_scores_before_commit(
    client, expert, expert2, item
):
    add_other_ratings(item, expert2)
    queue.claim_next_item(item.campaign, expert)
    client.force_login(expert)
    html = client.get(url("grading_page", item)).content.decode()
    assert_no_other_ratings(html)


def test_blind_page_reveals_other_grades_and_model_scores_after_commit(
    client, expert, expert2, item, django_capture_on_commit_callbacks
):
    add_other_ratings(item, expert2)
    queue.claim_next_item(item.campaign, expert)
    client.force_login(expert)
    with django_capture_on_commit_callbacks(execute=True):  # disagreements are recorded then
        response = client.post(url("grading_submit", item), submit_data(score="1"))
    assert response.status_code == 302
    html = client.get(url("grading_page", item)).content.decode()
    assert 'id="others"' in html
    assert OTHER_COMMENT in html
    assert "david_expert" in html
    assert str(MODEL_RATING) in html
    assert IMPORTED_GRADER in html
    assert "quokka" in html
    assert "disagreement" in html


def test_an_owner_grading_in_a_blind_campaign_is_blind_too(client, owner, expert2, item):
    """Owners see every rating, except on an item they are grading themselves."""
    Membership.objects.create(campaign=item.campaign, user=owner, role=Role.GRADER)
    add_other_ratings(item, expert2)
    client.force_login(owner)
    api = f"/api/campaigns/{item.campaign_id}/items/{item.pk}/"
    assert client.get(api).json()["can_see_others"] is True  # not grading it: owner's view

    queue.claim_next_item(item.campaign, owner)
    item.refresh_from_db()
    assert_no_other_ratings(client.get(url("grading_page", item)).content.decode())
    body = client.get(api)
    assert body.json()["can_see_others"] is False
    assert "others" not in body.json()
    assert OTHER_COMMENT not in body.content.decode()
    # Still blind with only a draft left (the lease lapsed and went to someone else).
    client.post(url("grading_draft", item), {"score": "1", "comment": "x"})
    CampaignItem.objects.filter(pk=item.pk).update(lease_holder=None, lease_expires_at=None)
    assert client.get(api).json()["can_see_others"] is False

    assert client.post(url("grading_submit", item), submit_data(score="1")).status_code == 302
    assert OTHER_COMMENT in client.get(url("grading_page", item)).content.decode()
    assert client.get(api).json()["can_see_others"] is True


def test_blind_draft_and_error_responses_leak_nothing(client, expert, expert2, item):
    add_other_ratings(item, expert2)
    queue.claim_next_item(item.campaign, expert)
    client.force_login(expert)
    draft = client.post(url("grading_draft", item), {"score": "1", "comment": "x"})
    assert_no_other_ratings(draft.content.decode())
    invalid = client.post(url("grading_submit", item), submit_data(score="7"))
    assert invalid.status_code == 400
    assert_no_other_ratings(invalid.content.decode())


def test_open_campaign_shows_other_grades_before_commit(client, expert, expert2, item):
    Campaign.objects.filter(pk=item.campaign_id).update(blind=False)
    item.campaign.refresh_from_db()
    add_other_ratings(item, expert2)
    queue.claim_next_item(item.campaign, expert)
    client.force_login(expert)
    html = client.get(url("grading_page", item)).content.decode()
    assert OTHER_COMMENT in html and str(MODEL_RATING) in html


# --- submit ------------------------------------------------------------------------------


def test_submit_refuses_get(client, expert, leased):
    client.force_login(expert)
    assert client.get(url("grading_submit", leased)).status_code == 405


def test_submit_sends_anonymous_to_login(client, leased):
    response = client.post(url("grading_submit", leased), submit_data())
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert not Grade.objects.exists()


def test_submit_hides_the_campaign_from_outsiders(client, outsider, leased):
    client.force_login(outsider)
    assert client.post(url("grading_submit", leased), submit_data()).status_code == 404
    assert not Grade.objects.exists()


def test_submit_refuses_a_grader_who_does_not_hold_the_item(client, expert2, leased):
    client.force_login(expert2)
    assert client.post(url("grading_submit", leased), submit_data()).status_code == 403
    assert not Grade.objects.exists()


def test_submit_commits_the_grade_with_issues_and_time(client, expert, leased):
    text = leased.proof.text
    issues = [{"start": 0, "end": 6, "quote": text[:6], "note": "Why?", "severity": "fatal"}]
    client.force_login(expert)
    response = client.post(
        url("grading_submit", leased),
        submit_data(score="0", comment="Broken", issues=json.dumps(issues)),
    )
    assert response.status_code == 302
    # Nothing else to grade: the "all done" page, which links back to the committed proof.
    assert response["Location"] == (
        reverse("grading_queue", args=[leased.campaign_id]) + f"?empty=1&committed={leased.pk}"
    )
    grade = Grade.objects.get()
    assert (grade.grader, grade.score, grade.comment) == (expert, Decimal("0"), "Broken")
    assert grade.active_seconds == 42
    issue = grade.issues.get()
    assert (issue.start, issue.end, issue.quote, issue.severity) == (0, 6, text[:6], "fatal")
    leased.refresh_from_db()
    assert leased.lease_holder is None and leased.committed == 1


def test_duplicate_submit_is_idempotent(client, expert, leased):
    client.force_login(expert)
    data = submit_data(score="1")
    first = client.post(url("grading_submit", leased), data)
    again = client.post(url("grading_submit", leased), data)
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"]
    assert Grade.objects.count() == 1
    assert GradeHistory.objects.count() == 1
    leased.refresh_from_db()
    assert leased.committed == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"score": ""},
        {"score": "0.7"},
        {"score": "abc"},
        {"issues": "not json"},
        {"issues": '{"start": 1}'},
        {"issues": '[{"start": 0, "end": 99999, "note": "x", "severity": "minor"}]'},
        {"issues": '[{"start": 0, "end": 3, "note": "x", "severity": "severe"}]'},
        {"submission_key": "not-a-uuid"},
    ],
)
def test_submit_rejects_invalid_input_and_writes_nothing(client, expert, leased, bad):
    client.force_login(expert)
    response = client.post(url("grading_submit", leased), submit_data(comment="keep me", **bad))
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="form-error"' in html
    assert "keep me" in html  # the grader's input is kept
    assert not Grade.objects.exists()


# --- editing a committed grade -----------------------------------------------------------


def test_edit_saves_a_new_version_and_history(client, expert, leased):
    grade = commit(leased, expert, score="1")
    client.force_login(expert)
    response = client.post(
        url("grading_submit", leased),
        {"version": str(grade.version), "score": "0.5", "comment": "On reflection", "issues": "[]"},
    )
    assert response.status_code == 302
    grade.refresh_from_db()
    assert (grade.score, grade.version, grade.comment) == (Decimal("0.5"), 2, "On reflection")
    last = grade.history.order_by("version").last()
    assert (last.old_score, last.new_score, last.changed_by) == (
        Decimal("1"),
        Decimal("0.5"),
        expert,
    )


def test_submit_opens_the_next_claimed_proof_with_a_link_back(client, expert, campaign):
    first = queue.claim_next_item(campaign, expert)
    add_items(campaign, 1)
    client.force_login(expert)
    response = client.post(url("grading_submit", first), submit_data(score="0.5"))
    nxt = CampaignItem.objects.get(campaign=campaign, lease_holder=expert)
    assert nxt.pk != first.pk
    assert response["Location"] == url("grading_page", nxt) + f"?committed={first.pk}"
    html = client.get(response["Location"]).content.decode()
    assert f"Committed: proof {first.proof_id}" in html
    assert f'href="{url("grading_page", first)}">view/edit</a>' in html
    assert 'name="submission_key"' in html  # a new proof to grade, not an edit form


def test_an_edit_that_changes_nothing_writes_no_version(client, expert, leased):
    grade = commit(leased, expert, score="1", comment="Fine")
    client.force_login(expert)
    same = {"version": "1", "score": "1", "comment": "Fine", "issues": "[]"}
    response = client.post(url("grading_submit", leased), same)
    assert response.status_code == 302
    assert (
        "Nothing changed; the grade stays at version 1"
        in client.get(response["Location"]).content.decode()
    )
    # The same form sent again (Back, then Enter): still nothing written.
    assert client.post(url("grading_submit", leased), same).status_code == 302
    grade.refresh_from_db()
    assert (grade.version, grade.history.count()) == (1, 1)


def test_a_stale_edit_from_the_graders_own_other_tab_says_so(client, expert, leased):
    commit(leased, expert, score="1")
    client.force_login(expert)
    tab1 = {"version": "1", "score": "0.5", "comment": "tab one", "issues": "[]"}
    assert client.post(url("grading_submit", leased), tab1).status_code == 302
    tab2 = {"version": "1", "score": "0", "comment": "tab two", "issues": "[]"}
    response = client.post(url("grading_submit", leased), tab2)
    assert response.status_code == 409
    html = response.content.decode()
    assert "You changed this grade in another tab" in html
    assert "Someone else" not in html


def test_only_its_grader_can_edit_a_grade(expert, owner, leased):
    grade = commit(leased, expert, score="1")
    with pytest.raises(errors.NotClaimed, match="Only the expert who made this grade"):
        grading.edit_grade(grade, owner, expected_version=1, score="0", comment="", issues=[])
    grade.refresh_from_db()
    assert (grade.score, grade.version, grade.history.count()) == (Decimal("1"), 1, 1)


def test_a_stale_edit_after_someone_elses_change_blames_them(expert, owner, leased):
    grade = commit(leased, expert, score="1")
    # A version made by someone else (no page offers that today; adjudication may).
    Grade.objects.filter(pk=grade.pk).update(version=2, score=Decimal("0"))
    GradeHistory.objects.create(
        grade=grade, version=2, changed_by=owner, old_score=Decimal("1"), new_score=Decimal("0")
    )
    with pytest.raises(errors.StaleEdit) as stale:
        grading.edit_grade(grade, expert, expected_version=1, score="0.5", comment="", issues=[])
    assert not stale.value.by_editor
    assert "changed by someone else (now version 2)" in str(stale.value)


def test_stale_edit_gets_409_and_overwrites_nothing(client, expert, leased):
    grade = commit(leased, expert, score="1")
    client.force_login(expert)
    first = {"version": "1", "score": "0.5", "comment": "first edit", "issues": "[]"}
    assert client.post(url("grading_submit", leased), first).status_code == 302
    stale = {"version": "1", "score": "0", "comment": "stale edit", "issues": "[]"}
    response = client.post(url("grading_submit", leased), stale)
    assert response.status_code == 409
    html = response.content.decode()
    assert "now at version 2" in html and "Nothing was overwritten" in html
    assert "stale edit" in html  # the editor's input survives on the page
    grade.refresh_from_db()
    assert (grade.score, grade.comment, grade.version) == (Decimal("0.5"), "first edit", 2)
    assert grade.history.count() == 2


def test_a_submission_from_a_stale_tab_shows_the_committed_grade_not_its_own_values(
    client, expert, leased
):
    """Committed in one tab, then submitted from another tab still showing the old form:
    nothing is written, and the page says what is committed and what was not saved (never
    "you graded this proof" over the stale tab's values, never on the /submit/ URL)."""
    commit(leased, expert, score="1")
    client.force_login(expert)
    response = client.post(
        url("grading_submit", leased), submit_data(score="0", comment="stale tab text")
    )
    assert response.status_code == 302
    assert response["Location"] == url("grading_page", leased)
    html = client.get(response["Location"]).content.decode()
    assert "already committed, probably from another tab" in html
    assert "not saved: score 0, comment “stale tab text”" in html
    assert "Committed grade — version 1" in html
    assert re.search(r'value="1" checked', html) and not re.search(r'value="0" checked', html)
    assert "You graded this proof" not in html
    grade = Grade.objects.get()
    assert (grade.score, grade.version, grade.history.count()) == (Decimal("1"), 1, 1)


# --- drafts ------------------------------------------------------------------------------


def test_draft_refuses_get(client, expert, leased):
    client.force_login(expert)
    assert client.get(url("grading_draft", leased)).status_code == 405


def test_draft_sends_anonymous_to_login(client, leased):
    assert client.post(url("grading_draft", leased), {"comment": "x"}).status_code == 302
    assert not Draft.objects.exists()


def test_draft_refuses_outsiders_and_other_graders(client, outsider, expert2, leased):
    client.force_login(outsider)
    assert client.post(url("grading_draft", leased), {"comment": "x"}).status_code == 404
    client.force_login(expert2)
    assert client.post(url("grading_draft", leased), {"comment": "x"}).status_code == 403
    assert not Draft.objects.exists()


def test_autosaved_draft_is_restored_in_the_page(client, expert, leased):
    text = leased.proof.text
    issues = [{"start": 7, "end": 12, "quote": text[7:12], "note": "Unclear", "severity": "minor"}]
    client.force_login(expert)
    response = client.post(
        url("grading_draft", leased),
        {
            "score": "0.5",
            "comment": "Half done <b>",
            "issues": json.dumps(issues),
            "active_seconds": "77",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert b"Draft saved" in response.content
    assert b"<html" not in response.content  # only the status fragment
    html = client.get(url("grading_page", leased)).content.decode()
    assert "Half done &lt;b&gt;" in html
    assert re.search(r'value="0\.5" checked', html)
    restored = re.search(
        r'<script id="initial-issues" type="application/json">(.*?)</script>', html
    )
    assert json.loads(restored.group(1))[0]["note"] == "Unclear"
    assert 'value="77"' in html  # active time carries on


def test_invalid_draft_is_refused_with_a_message(client, expert, leased):
    client.force_login(expert)
    response = client.post(url("grading_draft", leased), {"score": "3", "comment": "x"})
    assert response.status_code == 400
    assert b"Draft not saved" in response.content
    assert not Draft.objects.exists()


def test_draft_after_commit_is_refused(client, expert, leased):
    commit(leased, expert)
    client.force_login(expert)
    assert client.post(url("grading_draft", leased), {"comment": "late"}).status_code == 409
    assert not Draft.objects.exists()


def draft_data(revision: int, comment: str, **extra) -> dict:
    return {"score": "0.5", "comment": comment, "issues": "[]", "revision": str(revision), **extra}


def test_the_server_keeps_the_newest_draft_revision(client, expert, leased):
    """A late write (the flush of a page reloaded meanwhile) never replaces a newer draft."""
    client.force_login(expert)
    newer = client.post(url("grading_draft", leased), draft_data(2000, "newer"))
    assert newer.status_code == 200
    assert (newer["Proofdesk-Draft"], newer["Proofdesk-Draft-Revision"]) == ("saved", "2000")
    older = client.post(url("grading_draft", leased), draft_data(1000, "older"))
    assert older.status_code == 409
    assert older["Proofdesk-Draft"] == "refused"
    assert older["Proofdesk-Draft-Conflict"] == "newer"
    again = client.post(url("grading_draft", leased), draft_data(2000, "newer"))  # a retry
    assert again.status_code == 200
    draft = Draft.objects.get()
    assert (draft.content["comment"], draft.revision) == ("newer", 2000)


def test_a_draft_from_a_tab_that_missed_the_other_tabs_draft_is_refused(client, expert, leased):
    client.force_login(expert)
    first = draft_data(1000, "tab A", tab="A", base_revision="0")
    assert client.post(url("grading_draft", leased), first).status_code == 200
    unseen = draft_data(2000, "tab B", tab="B", base_revision="0")
    response = client.post(url("grading_draft", leased), unseen, headers={"HX-Request": "true"})
    assert response.status_code == 409
    assert response["Proofdesk-Draft-Conflict"] == "other-tab"
    assert "You changed this draft in another tab" in response.content.decode()
    assert Draft.objects.get().content["comment"] == "tab A"
    seen = draft_data(3000, "tab B, after seeing A", tab="B", base_revision="1000")
    assert client.post(url("grading_draft", leased), seen).status_code == 200
    assert Draft.objects.get().content["comment"] == "tab B, after seeing A"


def test_the_login_page_is_not_a_draft_answer(client, leased):
    """The page's script takes only an answer with the Proofdesk-Draft header as saved."""
    response = client.post(url("grading_draft", leased), draft_data(1, "x"), follow=True)
    assert response.redirect_chain and "Proofdesk-Draft" not in response


def test_an_invalid_revision_is_refused(client, expert, leased):
    client.force_login(expert)
    response = client.post(url("grading_draft", leased), {**draft_data(1, "x"), "revision": "-3"})
    assert response.status_code == 400
    assert not Draft.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_autosave_racing_a_submission_leaves_no_stale_draft(on_postgres, campaign, expert):
    """The autosave arrives while the submission's transaction holds the item: it must wait
    and then see the grade, not write a draft next to it from a check made before."""
    item = queue.claim_next_item(campaign, expert)
    grading.save_draft(item, expert, score="1", comment="draft", issues=[], active_seconds=1)
    outcome: list[str] = []

    def autosave() -> None:
        try:
            racing = CampaignItem.objects.select_related("campaign", "proof").get(pk=item.pk)
            grading.save_draft(
                racing, expert, score="0.5", comment="late", issues=[], active_seconds=2
            )
            outcome.append("saved")
        except errors.NotClaimed:
            outcome.append("refused")
        finally:
            connections.close_all()

    with transaction.atomic():
        grading.submit_grade(
            item, expert, score="1", comment="", issues=[], active_seconds=3,
            submission_key=uuid.uuid4(),
        )  # fmt: skip
        racer = threading.Thread(target=autosave)
        racer.start()
        # Commit only once the autosave waits on a lock (before the fix: on the draft row
        # this transaction deleted, after its check passed; with it: on the item row).
        deadline = time.monotonic() + 10
        with connection.cursor() as cursor:
            while racer.is_alive() and time.monotonic() < deadline:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.01)
    racer.join()
    assert outcome == ["refused"]
    assert not Draft.objects.exists()


def test_draft_accepts_a_beacon_with_the_form_token(expert, leased):
    """sendBeacon cannot set headers: the CSRF token travels in the form body."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(expert)
    page = client.get(url("grading_page", leased)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    refused = client.post(url("grading_draft", leased), {"comment": "no token"})
    assert refused.status_code == 403
    saved = client.post(
        url("grading_draft", leased), {"comment": "by beacon", "csrfmiddlewaretoken": token}
    )
    assert saved.status_code == 200
    assert Draft.objects.get().content["comment"] == "by beacon"


# --- skip and flags ----------------------------------------------------------------------


def test_skip_refuses_get(client, expert, leased):
    client.force_login(expert)
    assert client.get(url("grading_skip", leased)).status_code == 405


def test_skip_refuses_anonymous_outsiders_and_other_graders(client, outsider, expert2, leased):
    assert client.post(url("grading_skip", leased), {"reason": "too_long"}).status_code == 302
    client.force_login(outsider)
    assert client.post(url("grading_skip", leased), {"reason": "too_long"}).status_code == 404
    client.force_login(expert2)
    assert client.post(url("grading_skip", leased), {"reason": "too_long"}).status_code == 403
    assert not Skip.objects.exists()


def test_skip_releases_the_item_and_opens_the_next(client, expert, leased):
    nxt = add_items(leased.campaign, 1)[0]
    client.force_login(expert)
    response = client.post(url("grading_skip", leased), {"reason": "expertise", "note": ""})
    assert response.status_code == 302
    assert response["Location"] == url("grading_page", nxt)
    assert Skip.objects.get().reason == "expertise"
    leased.refresh_from_db()
    assert leased.lease_holder is None


def test_skip_needs_a_valid_reason(client, expert, leased):
    client.force_login(expert)
    response = client.post(url("grading_skip", leased), {"reason": "bored"})
    assert response.status_code == 400
    assert b"Choose a reason" in response.content
    assert not Skip.objects.exists()


def test_wrong_statement_flag_is_shown_to_other_graders_and_owners(
    client, expert, expert2, owner, leased
):
    client.force_login(expert)
    client.post(url("grading_skip", leased), {"reason": "statement_wrong", "note": "n must be odd"})
    assert ProblemFlag.objects.get().note == "n must be odd"
    # Another proof of the same problem, graded by someone else: the banner is there.
    other = Proof.objects.create(problem=leased.proof.problem, text="Another attempt.")
    other_item = CampaignItem.objects.create(campaign=leased.campaign, proof=other)
    CampaignItem.objects.filter(pk=leased.pk).update(committed=2)  # out of the way
    assert queue.claim_next_item(leased.campaign, expert2).pk == other_item.pk
    client.force_login(expert2)
    html = client.get(url("grading_page", other_item)).content.decode()
    assert "flagged as wrong" in html and "n must be odd" in html
    client.force_login(owner)
    html = client.get(reverse("grading_progress", args=[leased.campaign_id])).content.decode()
    assert "n must be odd" in html


# --- lease heartbeat ---------------------------------------------------------------------


def test_lease_heartbeat_renews_the_lease(client, expert, expert2, item):
    with time_machine.travel("2026-01-05 09:00Z", tick=False):
        queue.claim_next_item(item.campaign, expert)
    with time_machine.travel("2026-01-05 09:25Z", tick=False):
        client.force_login(expert2)  # a grader of the campaign, but not the holder
        assert b"has expired" in client.post(url("grading_lease", item)).content
        item.refresh_from_db()
        assert item.lease_holder_id == expert.pk
        assert item.lease_expires_at == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
        client.force_login(expert)
        response = client.post(url("grading_lease", item))
    assert response.status_code == 200
    assert b"expired" not in response.content
    item.refresh_from_db()  # 30 minutes from the heartbeat, not from the claim
    assert item.lease_expires_at == datetime(2026, 1, 5, 9, 55, tzinfo=UTC)


def test_lease_heartbeat_shows_a_banner_when_the_lease_is_lost(client, expert, expert2, leased):
    CampaignItem.objects.filter(pk=leased.pk).update(lease_holder=expert2)
    client.force_login(expert)
    response = client.post(url("grading_lease", leased))
    assert response.status_code == 200
    assert b"has expired" in response.content


def test_lease_heartbeat_refuses_get_anonymous_and_outsiders(client, outsider, leased):
    assert client.post(url("grading_lease", leased)).status_code == 302
    client.force_login(outsider)
    assert client.get(url("grading_lease", leased)).status_code == 405
    assert client.post(url("grading_lease", leased)).status_code == 404


# --- progress pages ----------------------------------------------------------------------


def test_my_grades_lists_filters_and_links_to_edit(client, expert, campaign):
    items = add_items(campaign, 3)
    for it, score in zip(items, ["0", "1", "1"], strict=True):
        queue.claim_next_item(campaign, expert)
        it.refresh_from_db()
        held = CampaignItem.objects.get(campaign=campaign, lease_holder=expert)
        commit(held, expert, score=score)
    client.force_login(expert)
    html = client.get(reverse("grading_mine", args=[campaign.pk])).content.decode()
    assert html.count("/grade/") >= 3 and "3 grades" in html
    only_ones = client.get(reverse("grading_mine", args=[campaign.pk]), {"score": "1"})
    assert "2 grades" in only_ones.content.decode()
    fragment = client.get(
        reverse("grading_mine", args=[campaign.pk]), {"score": "0"}, headers={"HX-Request": "true"}
    )
    assert b"1 grade" in fragment.content and b"<html" not in fragment.content


def test_my_grades_is_for_graders(client, outsider, reviewer, campaign):
    client.force_login(outsider)
    assert client.get(reverse("grading_mine", args=[campaign.pk])).status_code == 404
    client.force_login(reviewer)
    assert client.get(reverse("grading_mine", args=[campaign.pk])).status_code == 403


def test_campaign_progress_counts_items_and_graders(client, owner, expert, campaign):
    add_items(campaign, 3)
    held = queue.claim_next_item(campaign, expert)
    commit(held, expert)
    queue.claim_next_item(campaign, expert)  # one in progress
    client.force_login(owner)
    response = client.get(reverse("grading_progress", args=[campaign.pk]))
    assert response.status_code == 200
    progress = response.context["progress"]
    assert (progress["items"], progress["in_progress"], progress["complete"]) == (4, 1, 0)
    assert "emmy_expert" in response.content.decode()
    assert "10 s" in response.content.decode()  # median active time


def test_campaign_progress_is_for_owners(client, expert, outsider, campaign):
    client.force_login(expert)
    assert client.get(reverse("grading_progress", args=[campaign.pk])).status_code == 403
    client.force_login(outsider)
    assert client.get(reverse("grading_progress", args=[campaign.pk])).status_code == 404


def test_owner_sees_the_history_of_a_grade(client, owner, expert, leased):
    grade = commit(leased, expert, score="1", comment="first")
    grading.edit_grade(grade, expert, expected_version=1, score="0", comment="second", issues=[])
    client.force_login(owner)
    response = client.get(reverse("grade_history", args=[leased.campaign_id, grade.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "1 → <strong>0</strong>" in html and "second" in html and "first" in html


def test_grade_history_is_for_its_grader_and_owners(client, expert, expert2, outsider, leased):
    """(The full who-may matrix is in tests/test_access.py.)"""
    grade = commit(leased, expert)
    path = reverse("grade_history", args=[leased.campaign_id, grade.pk])
    client.force_login(expert)
    assert client.get(path).status_code == 200
    for other in (expert2, outsider):  # another grader: it is not theirs to see
        client.force_login(other)
        assert client.get(path).status_code == 404


def test_a_grader_reaches_their_history_from_their_grades_and_back(client, expert, leased):
    """The way back from a grader's history is their own list, not the owners' progress
    page (which would answer 403)."""
    grade = commit(leased, expert)
    client.force_login(expert)
    mine = client.get(reverse("grading_mine", args=[leased.campaign_id])).content.decode()
    path = reverse("grade_history", args=[leased.campaign_id, grade.pk])
    assert f'href="{path}"' in mine
    history = client.get(path).content.decode()
    assert reverse("grading_mine", args=[leased.campaign_id]) in history
    assert reverse("grading_progress", args=[leased.campaign_id]) not in history


# --- query counts: independent of campaign size ------------------------------------------


def grow(campaign, n_items: int, n_graders: int, item: CampaignItem | None = None) -> None:
    """More items, more graders grading them, and (given `item`, the one measured) as many
    other graders' grades of it, with their issues, imported grades and analyses."""
    add_items(campaign, n_items)
    for grader in add_graders(campaign, n_graders, prefix=f"g{n_items}_"):
        it = queue.claim_next_item(campaign, grader)
        commit(it, grader, score="0.5")
    if item is not None:
        add_others_ratings(item, n_graders, prefix=f"o{n_items}_")


def lease_to(item, grader) -> None:
    CampaignItem.objects.filter(pk=item.pk).update(
        lease_holder=grader, lease_expires_at=timezone.now() + timedelta(hours=1)
    )
    item.refresh_from_db()


@pytest.mark.parametrize("size", [0, 40])
def test_grading_page_query_count_does_not_grow_with_the_campaign(
    client, expert, expert2, item, django_assert_max_num_queries, size
):
    Campaign.objects.filter(pk=item.campaign_id).update(overlap=50)
    item.campaign.refresh_from_db()
    add_other_ratings(item, expert2)
    grow(item.campaign, size, size // 4, item)
    lease_to(item, expert)
    client.force_login(expert)
    # 3 of them: the grader's progress line (annotate/progress.py `grader_status`; 2 once
    # the campaign totals are cached, as they are here after the first page).
    with django_assert_max_num_queries(10):
        assert client.get(url("grading_page", item)).status_code == 200
    commit(item, expert)  # after commit the page also shows the other ratings
    with django_assert_max_num_queries(14):
        response = client.get(url("grading_page", item))
    assert response.status_code == 200
    others = response.context["others"]  # what was measured includes every other rating
    assert (len(others["grades"]), len(others["imported_grades"])) == (size // 4 + 2, size // 4 + 1)
    assert response.content.decode().count("finds a gap") == size // 4


@pytest.mark.parametrize("size", [0, 40])
def test_open_campaign_grading_page_query_count_does_not_grow_with_others_ratings(
    client, expert, expert2, item, django_assert_max_num_queries, size
):
    """Not blind: the grader sees the other ratings while grading, before committing."""
    Campaign.objects.filter(pk=item.campaign_id).update(overlap=50, blind=False)
    item.campaign.refresh_from_db()
    add_other_ratings(item, expert2)
    grow(item.campaign, size, size // 4, item)
    lease_to(item, expert)
    client.force_login(expert)
    # (one more than with the campaign totals cached: annotate/progress.py `grader_status`)
    with django_assert_max_num_queries(14):
        response = client.get(url("grading_page", item))
    assert response.status_code == 200 and response.context["own_grade"] is None
    others = response.context["others"]
    assert (len(others["grades"]), len(others["imported_grades"])) == (size // 4 + 1, size // 4 + 1)
    assert response.content.decode().count("finds a gap") == size // 4


@pytest.mark.parametrize("size", [0, 40])
def test_submit_query_count_does_not_grow_with_the_campaign(
    client, expert, item, django_assert_max_num_queries, size
):
    Campaign.objects.filter(pk=item.campaign_id).update(overlap=50)
    item.campaign.refresh_from_db()
    grow(item.campaign, size, size // 4, item)
    lease_to(item, expert)
    text = item.proof.text
    issues = [{"start": 0, "end": 6, "quote": text[:6], "note": "n", "severity": "minor"}] * 5
    client.force_login(expert)
    # 15 to commit (the proof's stale mark among them: its disagreements and gold label are
    # recomputed after the commit, annotate/work/derived.py), and up to 5 more to claim the
    # next proof (submit moves on to it): the grader's current lease, then the claim's
    # savepoint, locking read and UPDATE.
    with django_assert_max_num_queries(20):
        response = client.post(url("grading_submit", item), submit_data(issues=json.dumps(issues)))
    assert response.status_code == 302


@pytest.mark.parametrize("size", [0, 40])
def test_autosave_query_count_does_not_grow_with_the_campaign(
    client, expert, item, django_assert_max_num_queries, size
):
    Campaign.objects.filter(pk=item.campaign_id).update(overlap=50)
    item.campaign.refresh_from_db()
    grow(item.campaign, size, size // 4, item)
    lease_to(item, expert)
    client.force_login(expert)
    data = {"score": "1", "comment": "halfway", "issues": "[]", "active_seconds": "5"}
    # 3 of them: the item lock that orders autosave and submission, in a statement of its
    # own before the check (annotate/grading.py `save_draft`), and its savepoint.
    with django_assert_max_num_queries(10):
        assert client.post(url("grading_draft", item), data).status_code == 200
    assert Draft.objects.get(item=item, expert=expert).content["comment"] == "halfway"


@pytest.mark.parametrize("size", [0, 40])
def test_claim_query_count_does_not_grow_with_the_campaign(
    client, expert, campaign, django_assert_max_num_queries, size
):
    grow(campaign, size, size // 4)
    client.force_login(expert)
    with django_assert_max_num_queries(8):
        response = client.post(reverse("grading_next", args=[campaign.pk]))
    claimed = CampaignItem.objects.get(campaign=campaign, lease_holder=expert)
    assert response["Location"] == url("grading_page", claimed)
    with django_assert_max_num_queries(5):  # "Next" again: the same item, lease renewed
        response = client.post(reverse("grading_next", args=[campaign.pk]))
    assert response["Location"] == url("grading_page", claimed)


@pytest.mark.parametrize("size", [0, 40])
def test_progress_pages_query_count_does_not_grow_with_the_campaign(
    client, owner, expert, campaign, django_assert_max_num_queries, size
):
    grow(campaign, size, size // 4)
    for _ in range(3):
        it = queue.claim_next_item(campaign, expert)
        if it:
            commit(it, expert)
    client.force_login(expert)
    with django_assert_max_num_queries(6):
        assert client.get(reverse("grading_mine", args=[campaign.pk])).status_code == 200
    client.force_login(owner)
    with django_assert_max_num_queries(8):  # one of them: the latest skips
        assert client.get(reverse("grading_progress", args=[campaign.pk])).status_code == 200
