"""Progress: the grader's line on the grading page, the campaign bar, the owner's pages.

The owner's item page (every grade with its issues, every skip, history links) and the
progress page's skips are here too; the live updates of those pages are in test_live.py.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotate import grading, progress
from annotate.models import Campaign, CampaignItem, Grade, Membership, Role
from annotate.work import queue
from tests.grading_support import add_graders, add_items

pytestmark = pytest.mark.django_db


def lease(item: CampaignItem, grader) -> CampaignItem:
    CampaignItem.objects.filter(pk=item.pk).update(
        lease_holder=grader, lease_expires_at=timezone.now() + timedelta(hours=1)
    )
    item.refresh_from_db()
    return item


def grade(item: CampaignItem, grader, *, score="1", seconds=60, issues=(), comment="") -> Grade:
    made, _ = grading.submit_grade(
        lease(item, grader),
        grader,
        score=score,
        comment=comment,
        issues=list(issues),
        active_seconds=seconds,
        submission_key=uuid.uuid4(),
    )
    return made


@pytest.fixture
def items(campaign) -> list[CampaignItem]:
    """The campaign's first item and three more (4 items × overlap 2 = 8 grades needed)."""
    return [campaign.items.get(), *add_items(campaign, 3)]


# --- the domain ------------------------------------------------------------------------


def test_campaign_counts_count_grades_of_items_times_overlap(campaign, items, expert, expert2):
    grade(items[0], expert)
    counts = progress.campaign_counts(campaign)
    assert (counts.grades_done, counts.grades_needed, counts.percent) == (1, 8, 12)
    assert (counts.complete, counts.items) == (0, 4)
    grade(items[0], expert2)
    counts = progress.campaign_counts(campaign)
    assert (counts.grades_done, counts.complete) == (2, 1)


def test_a_grade_beyond_overlap_does_not_push_the_bar_past_the_item(campaign, items):
    # A lapsed lease finished from a draft can leave an item with overlap + 1 grades.
    CampaignItem.objects.filter(pk=items[0].pk).update(committed=3)
    assert progress.campaign_counts(campaign).grades_done == 2


def test_grader_status_counts_own_grades_and_what_is_left_for_them(
    campaign, items, expert, expert2
):
    grade(items[0], expert, seconds=60)
    grade(items[1], expert, seconds=120)
    grade(items[2], expert, seconds=600)
    grade(items[1], expert2)  # complete now: nobody can grade it any more
    queue.skip_item(lease(items[3], expert2), expert2, "too_long")
    mine = progress.grader_status(campaign, expert)
    assert mine.graded == 3
    assert (mine.campaign.grades_done, mine.campaign.grades_needed) == (4, 8)
    assert mine.left_for_you == 1  # items[3]; the others expert graded
    assert mine.median_seconds == 120
    assert mine.seconds_left == 120
    assert mine.time_left_text == "~2 min"
    theirs = progress.grader_status(campaign, expert2)
    # items[0] and items[2] (items[1] graded, items[3] skipped by expert2).
    assert (theirs.graded, theirs.left_for_you) == (1, 2)


def test_grader_status_has_no_estimate_before_the_first_grade(campaign, items, expert):
    mine = progress.grader_status(campaign, expert)
    assert (mine.graded, mine.left_for_you, mine.seconds_left) == (0, 4, None)


def test_grader_status_is_two_queries_whatever_the_campaign_size_one_when_cached(
    campaign, items, expert, django_assert_num_queries
):
    for it in add_items(campaign, 30):
        grade(it, expert)
    for grader, it in zip(add_graders(campaign, 2), items[:2], strict=True):
        grade(it, grader)  # other graders' grades grow too
    with django_assert_num_queries(2):  # the campaign totals, the grader's own rows
        mine = progress.grader_status(campaign, expert)
    assert mine.graded == 30
    with django_assert_num_queries(1):  # the totals are kept a few seconds
        assert progress.grader_status(campaign, expert) == mine


def test_a_commit_makes_the_cached_campaign_totals_exact_at_once(
    campaign, items, expert, expert2, django_capture_on_commit_callbacks
):
    before = progress.grader_status(campaign, expert2)  # caches the campaign totals
    with django_capture_on_commit_callbacks(execute=True):
        grade(items[0], expert)
    after = progress.grader_status(campaign, expert2)
    assert after.campaign.grades_done == before.campaign.grades_done + 1


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(20, "<1 min"), (90, "~2 min"), (35 * 60, "~35 min"), (3600, "~1 h"), (7800, "~2 h 10 min")],
)
def test_rough_duration_is_an_estimate_not_a_stopwatch(seconds, text):
    assert progress.rough_duration(seconds) == text


# --- the grading page ----------------------------------------------------------------------


def test_grading_page_tells_the_grader_their_progress(client, campaign, items, expert, expert2):
    grade(items[0], expert, seconds=300)
    grade(items[0], expert2)
    grade(items[1], expert2)
    lease(items[2], expert)
    client.force_login(expert)
    html = client.get(reverse("grading_page", args=[campaign.pk, items[2].pk])).content.decode()
    # 3 of 8 grades; expert may still grade items 1, 2 and 3, at 5 min each.
    assert "you: <strong>1</strong> graded" in html
    assert "this campaign: 3 of 8 grades (37 %)" in html
    assert "~15 min left at your pace" in html
    assert "3 proofs you could still grade × your median time per grade (~5 min)" in html


def test_grading_page_before_the_first_grade_says_what_is_left(client, campaign, items, expert):
    lease(items[0], expert)
    client.force_login(expert)
    html = client.get(reverse("grading_page", args=[campaign.pk, items[0].pk])).content.decode()
    assert "you: <strong>0</strong> graded" in html
    assert "4 proofs you could still grade" in html and "at your pace" not in html


# --- the campaign page ----------------------------------------------------------------------


def test_campaign_page_progress_fragment_for_htmx(client, campaign, items, expert):
    grade(items[0], expert)
    client.force_login(expert)
    response = client.get(
        reverse("campaign_detail", args=[campaign.pk]),
        headers={"HX-Request": "true", "HX-Target": "campaign-progress"},
    )
    body = response.content.decode().strip()
    assert response.status_code == 200
    assert body.startswith('<section class="progress" id="campaign-progress"')
    assert "1 of 8 grades (12 %)" in body and "<table" not in body


def test_campaign_page_fragments_are_for_members_only(client, campaign, outsider):
    path = reverse("campaign_detail", args=[campaign.pk])
    headers = {"HX-Request": "true", "HX-Target": "campaign-progress"}
    assert client.get(path, headers=headers).status_code == 302
    client.force_login(outsider)
    assert client.get(path, headers=headers).status_code == 404


def test_campaign_page_opens_the_live_socket_without_inline_script(client, campaign, expert):
    client.force_login(expert)
    html = client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    assert f'data-live-socket="/ws/campaigns/{campaign.pk}/"' in html
    assert "js/live.js" in html
    assert 'hx-trigger="campaign-progress from:body"' in html
    assert "<script>" not in html


def test_campaign_page_shows_skip_counts_to_owners_only(client, campaign, items, owner, expert):
    queue.skip_item(lease(items[0], expert), expert, "expertise")
    path = reverse("campaign_detail", args=[campaign.pk])
    client.force_login(owner)
    assert "<th>Skips</th>" in client.get(path).content.decode()
    client.force_login(expert)
    assert "<th>Skips</th>" not in client.get(path).content.decode()


# --- the owner's item page ------------------------------------------------------------------


def test_owner_item_page_shows_every_grade_with_issues_skips_and_history_links(
    client, campaign, items, owner, expert, expert2, outsider
):
    item = items[0]
    text = item.proof.text
    made = grade(
        item,
        expert,
        score="0.5",
        comment="Mostly right.",
        issues=[{"quote": text[:6], "note": "Zebra-note: unjustified", "severity": "fatal"}],
    )
    queue.skip_item(lease(item, expert2), expert2, "expertise", "Quokka-note: not my field")
    client.force_login(owner)
    response = client.get(reverse("item_detail", args=[campaign.pk, item.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "emmy_expert" in html and "Mostly right." in html
    assert "Zebra-note: unjustified" in html and "fatal" in html
    assert reverse("grade_history", args=[campaign.pk, made.pk]) in html
    assert "david_expert" in html and "Outside my expertise" in html
    assert "Quokka-note: not my field" in html


def test_item_page_keeps_grades_and_skips_from_other_members(
    client, campaign, items, expert, expert2
):
    item = items[0]
    grade(item, expert2, comment="Zebra-comment")
    queue.skip_item(lease(items[1], expert2), expert2, "other", "Quokka-note")
    client.force_login(expert)  # blind campaign, expert has not graded item 0
    html = client.get(reverse("item_detail", args=[campaign.pk, item.pk])).content.decode()
    assert "Zebra-comment" not in html and "david_expert" not in html
    assert "This campaign is blind" in html
    html = client.get(reverse("item_detail", args=[campaign.pk, items[1].pk])).content.decode()
    assert "Quokka-note" not in html and 'id="skips"' not in html


def test_an_owner_grading_the_proof_sees_no_other_grade_on_its_page(
    client, campaign, items, owner, expert
):
    Membership.objects.create(campaign=campaign, user=owner, role=Role.GRADER)
    grade(items[0], expert, comment="Zebra-comment")
    lease(items[0], owner)
    client.force_login(owner)
    html = client.get(reverse("item_detail", args=[campaign.pk, items[0].pk])).content.decode()
    assert "Zebra-comment" not in html


def test_item_page_is_for_members_only(client, campaign, items, outsider):
    path = reverse("item_detail", args=[campaign.pk, items[0].pk])
    assert client.get(path).status_code == 302
    client.force_login(outsider)
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("size", [1, 12])
def test_owner_item_page_queries_do_not_grow_with_grades_and_skips(
    client, campaign, owner, django_assert_max_num_queries, size
):
    Campaign.objects.filter(pk=campaign.pk).update(overlap=50)
    campaign.refresh_from_db()
    item = campaign.items.get()
    for grader in add_graders(campaign, size, prefix=f"g{size}_"):
        grade(item, grader, issues=[{"quote": item.proof.text[:6], "note": "n"}])
    for grader in add_graders(campaign, size, prefix=f"s{size}_"):
        queue.skip_item(lease(item, grader), grader, "other", "why")
    path = reverse("item_detail", args=[campaign.pk, item.pk])
    client.force_login(owner)
    # 14: the proof's gold label (annotate/gold.py) is one of them.
    with django_assert_max_num_queries(14):
        assert client.get(path).status_code == 200


# --- the owner's progress page --------------------------------------------------------------


def test_progress_page_lists_skips_with_reason_and_note(client, campaign, items, owner, expert):
    queue.skip_item(lease(items[0], expert), expert, "too_long", "Quokka-note: 40 pages")
    client.force_login(owner)
    html = client.get(reverse("grading_progress", args=[campaign.pk])).content.decode()
    assert 'id="skips"' in html
    assert "emmy_expert" in html and "Too long" in html and "Quokka-note: 40 pages" in html
    assert reverse("item_detail", args=[campaign.pk, items[0].pk]) in html


def test_progress_page_bar_counts_grades(client, campaign, items, owner, expert):
    grade(items[0], expert)
    client.force_login(owner)
    response = client.get(reverse("grading_progress", args=[campaign.pk]))
    assert "1 of 8 grades (12 %) · 0 of 4 items complete" in response.content.decode()
    assert response.context["progress"]["grades_done"] == 1


def test_progress_page_answers_htmx_with_its_live_part(client, campaign, items, owner, expert):
    client.force_login(owner)
    path = reverse("grading_progress", args=[campaign.pk])
    response = client.get(path, headers={"HX-Request": "true", "HX-Target": "live-progress"})
    body = response.content.decode().strip()
    assert body.startswith('<div id="live-progress"') and body.endswith("</div>")
    assert "<html" not in body and "data-live-socket" not in body


def test_progress_page_and_its_live_part_are_for_owners(client, campaign, expert, outsider):
    path = reverse("grading_progress", args=[campaign.pk])
    headers = {"HX-Request": "true", "HX-Target": "live-progress"}
    assert client.get(path, headers=headers).status_code == 302
    client.force_login(outsider)
    assert client.get(path, headers=headers).status_code == 404
    client.force_login(expert)
    assert client.get(path, headers=headers).status_code == 403


def test_a_started_campaign_never_reads_zero_percent():
    assert progress.percent_text(0, 168) == "0 %"
    assert progress.percent_text(1, 168) == "<1 %"
    assert progress.percent_text(167, 168) == "99 %"
    assert progress.percent_text(0, 0) == "0 %"


def test_progress_page_links_each_latest_grade_to_its_item_page(
    client, campaign, items, owner, expert
):
    grade(items[2], expert)
    client.force_login(owner)
    html = client.get(reverse("grading_progress", args=[campaign.pk])).content.decode()
    recent = html[html.index('id="recent-grades"') :]
    assert reverse("item_detail", args=[campaign.pk, items[2].pk]) in recent
