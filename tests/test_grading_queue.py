"""The grading queue: claims, leases, skips, submissions and edits (domain functions)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from channels.layers import InMemoryChannelLayer
from django.conf import settings as django_settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from annotate import grading, issues, progress
from annotate.inputs import InputError
from annotate.models import (
    Campaign,
    CampaignItem,
    Draft,
    Grade,
    GradeHistory,
    Membership,
    ProblemFlag,
    Role,
    Skip,
)
from annotate.work import drafts, queue
from annotate.work.errors import NotClaimed, StaleEdit
from tests.grading_support import add_graders, add_items
from tests.work_race import race_experts

pytestmark = pytest.mark.django_db


def submit(item, grader, score="1", **extra):
    values = {
        "score": score,
        "comment": "",
        "issues": [],
        "active_seconds": 30,
        "submission_key": uuid.uuid4(),
    }
    grade, _ = grading.submit_grade(item, grader, **{**values, **extra})
    return grade


@pytest.fixture
def big_campaign(owner, expert, expert2):
    campaign = Campaign.objects.create(name="Queue", overlap=2, seed=7, lease_seconds=600)
    Membership.objects.create(campaign=campaign, user=expert, role=Role.GRADER)
    Membership.objects.create(campaign=campaign, user=expert2, role=Role.GRADER)
    add_items(campaign, 5)
    return campaign


# --- claiming -----------------------------------------------------------------------------


def test_it_leases_the_claimed_item_to_the_grader(big_campaign, expert):
    item = queue.claim_next_item(big_campaign, expert)
    assert item.lease_holder_id == expert.pk
    assert item.lease_expires_at > timezone.now() + timedelta(seconds=590)


def test_it_returns_the_graders_current_lease_instead_of_a_second_item(big_campaign, expert):
    first = queue.claim_next_item(big_campaign, expert)
    again = queue.claim_next_item(big_campaign, expert)
    assert again.pk == first.pk
    assert CampaignItem.objects.filter(lease_holder=expert).count() == 1


def test_two_graders_get_different_items(big_campaign, expert, expert2):
    a = queue.claim_next_item(big_campaign, expert)
    b = queue.claim_next_item(big_campaign, expert2)
    assert a.pk != b.pk


def test_random_order_follows_the_seeded_order_key(big_campaign, expert):
    expected = list(
        CampaignItem.objects.filter(campaign=big_campaign)
        .order_by("order_key", "id")
        .values_list("pk", flat=True)
    )
    got = []
    for _ in expected:
        item = queue.claim_next_item(big_campaign, expert)
        got.append(item.pk)
        submit(item, expert)
    assert got == expected
    assert queue.claim_next_item(big_campaign, expert) is None


def test_priority_order_offers_highest_priority_first(big_campaign, expert):
    big_campaign.order = Campaign.Order.PRIORITY
    big_campaign.save(update_fields=["order"])
    items = list(CampaignItem.objects.filter(campaign=big_campaign).order_by("id"))
    items[3].priority = 5.0
    items[3].save(update_fields=["priority"])
    assert queue.claim_next_item(big_campaign, expert).pk == items[3].pk


def test_items_created_one_by_one_get_a_seeded_order_key(campaign):
    item = CampaignItem.objects.get(campaign=campaign)
    assert item.order_key != 0


def test_an_item_stops_being_offered_once_it_has_overlap_grades(campaign, expert, expert2, owner):
    Membership.objects.create(campaign=campaign, user=owner, role=Role.GRADER)
    submit(queue.claim_next_item(campaign, expert), expert)
    submit(queue.claim_next_item(campaign, expert2), expert2)
    assert CampaignItem.objects.get(campaign=campaign).committed == 2
    assert queue.claim_next_item(campaign, owner) is None


def test_a_grader_never_gets_a_proof_they_graded(campaign, expert):
    item = queue.claim_next_item(campaign, expert)
    submit(item, expert)
    assert queue.claim_next_item(campaign, expert) is None


def test_an_expired_lease_returns_the_item_to_the_pool(campaign, expert, expert2):
    with time_machine.travel("2026-01-05 09:00Z", tick=False):
        item = queue.claim_next_item(campaign, expert)
        assert queue.claim_next_item(campaign, expert2) is None
    with time_machine.travel("2026-01-05 09:31Z", tick=False):  # lease is 30 minutes
        again = queue.claim_next_item(campaign, expert2)
        assert again.pk == item.pk
        assert again.lease_holder_id == expert2.pk
        assert queue.renew_lease(item, expert) is False


def test_renewing_keeps_the_lease_alive(campaign, expert, expert2):
    with time_machine.travel("2026-01-05 09:00Z", tick=False):
        item = queue.claim_next_item(campaign, expert)
    with time_machine.travel("2026-01-05 09:25Z", tick=False):
        assert queue.renew_lease(item, expert2) is False  # only the holder renews
        assert CampaignItem.objects.get(pk=item.pk).lease_expires_at == datetime(
            2026, 1, 5, 9, 30, tzinfo=UTC
        )
        assert queue.renew_lease(item, expert) is True
    held = CampaignItem.objects.get(pk=item.pk)  # 30 minutes from the renewal
    assert (held.lease_holder_id, held.lease_expires_at) == (
        expert.pk,
        datetime(2026, 1, 5, 9, 55, tzinfo=UTC),
    )
    with time_machine.travel("2026-01-05 09:45Z", tick=False):
        assert queue.claim_next_item(campaign, expert2) is None


def test_a_released_item_is_offered_again(campaign, expert, expert2):
    item = queue.claim_next_item(campaign, expert)
    queue.release_lease(item, expert)
    assert queue.claim_next_item(campaign, expert2).pk == item.pk


def test_only_the_holder_can_release(campaign, expert, expert2):
    item = queue.claim_next_item(campaign, expert)
    queue.release_lease(item, expert2)
    item.refresh_from_db()
    assert item.lease_holder_id == expert.pk


def test_a_skip_excludes_the_item_for_that_grader_only(campaign, expert, expert2):
    item = queue.claim_next_item(campaign, expert)
    queue.skip_item(item, expert, Skip.Reason.TOO_LONG)
    item.refresh_from_db()
    assert item.lease_holder_id is None
    assert queue.claim_next_item(campaign, expert) is None
    assert queue.claim_next_item(campaign, expert2).pk == item.pk
    assert not ProblemFlag.objects.exists()


def test_statement_wrong_skip_raises_a_flag(campaign, expert, problem):
    item = queue.claim_next_item(campaign, expert)
    queue.skip_item(item, expert, Skip.Reason.STATEMENT_WRONG, "n should be odd")
    flag = ProblemFlag.objects.get()
    assert (flag.problem, flag.campaign, flag.raised_by, flag.note) == (
        problem,
        campaign,
        expert,
        "n should be odd",
    )


def test_skip_rejects_an_unknown_reason(campaign, expert):
    item = queue.claim_next_item(campaign, expert)
    with pytest.raises(InputError) as error:
        queue.skip_item(item, expert, "bored")
    assert error.value.field == "reason"
    assert not Skip.objects.exists()


# --- submitting ---------------------------------------------------------------------------


def test_submit_records_grade_issues_history_and_releases(campaign, expert, proof):
    item = queue.claim_next_item(campaign, expert)
    grading.save_draft(item, expert, score="0.5", comment="draft", issues=[], active_seconds=12)
    grade = submit(
        item,
        expert,
        score="0.5",
        comment="Gap in step 2",
        issues=[{"start": 0, "end": 6, "note": "why?", "severity": "fatal"}],
        active_seconds=40,
    )
    assert grade.score == Decimal("0.5")
    assert grade.active_seconds == 40
    issue = grade.issues.get()
    assert (issue.quote, issue.prefix, issue.severity) == ("Assume", "", "fatal")
    assert issue.suffix == proof.text[6:38]
    history = GradeHistory.objects.get(grade=grade)
    assert (history.version, history.old_score, history.new_score) == (1, None, Decimal("0.5"))
    assert history.new_issues[0]["quote"] == "Assume"
    item.refresh_from_db()
    assert (item.committed, item.lease_holder_id) == (1, None)
    assert not Draft.objects.exists()


def test_submitting_twice_with_the_same_key_creates_one_grade(campaign, expert):
    item = queue.claim_next_item(campaign, expert)
    key = uuid.uuid4()
    first = submit(item, expert, submission_key=key)
    second = submit(item, expert, submission_key=key)
    assert first.pk == second.pk
    assert Grade.objects.count() == 1
    assert CampaignItem.objects.get().committed == 1


def test_submit_says_whether_it_created_the_grade(campaign, expert):
    item = queue.claim_next_item(campaign, expert)
    values = {"score": "1", "comment": "", "issues": [], "active_seconds": 30}
    key = uuid.uuid4()
    first, created = grading.submit_grade(item, expert, **values, submission_key=key)
    again, created_again = grading.submit_grade(item, expert, **values, submission_key=key)
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk


def test_a_second_grade_with_a_new_key_is_refused(campaign, expert):
    item = queue.claim_next_item(campaign, expert)
    submit(item, expert)
    with pytest.raises(InputError) as refused:
        submit(item, expert)
    assert refused.value.field == "score"
    assert Grade.objects.count() == 1


def test_a_key_of_another_graders_grade_is_refused(campaign, expert, expert2):
    key = uuid.uuid4()
    submit(queue.claim_next_item(campaign, expert2), expert2, submission_key=key)
    item = queue.claim_next_item(campaign, expert)
    with pytest.raises(InputError) as refused:
        submit(item, expert, submission_key=key)
    assert refused.value.field == "submission_key"
    assert Grade.objects.count() == 1
    item.refresh_from_db()
    assert (item.committed, item.lease_holder_id) == (1, expert.pk)


def test_a_key_of_the_graders_grade_of_another_proof_is_refused(big_campaign, expert):
    key = uuid.uuid4()
    submit(queue.claim_next_item(big_campaign, expert), expert, submission_key=key)
    item = queue.claim_next_item(big_campaign, expert)
    with pytest.raises(InputError) as refused:
        submit(item, expert, submission_key=key)
    assert refused.value.field == "submission_key"
    assert Grade.objects.count() == 1
    item.refresh_from_db()
    assert (item.committed, item.lease_holder_id) == (0, expert.pk)


def test_submit_without_lease_or_draft_is_refused(campaign, expert, expert2):
    item = queue.claim_next_item(campaign, expert)
    with pytest.raises(NotClaimed):
        submit(item, expert2)
    assert not Grade.objects.exists()


def test_work_survives_a_lapsed_lease_taken_by_someone_else(campaign, expert, expert2):
    with time_machine.travel("2026-01-05 09:00Z", tick=False):
        item = queue.claim_next_item(campaign, expert)
        grading.save_draft(item, expert, score="1", comment="", issues=[], active_seconds=900)
    with time_machine.travel("2026-01-05 10:00Z", tick=False):
        assert queue.claim_next_item(campaign, expert2).pk == item.pk
        grade = submit(item, expert, active_seconds=0)
    assert grade.active_seconds == 900
    item.refresh_from_db()
    assert item.lease_holder_id == expert2.pk  # expert2 keeps the lease they hold


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"score": "0.7"}, "score"),
        ({"score": None}, "score"),
        ({"score": True}, "score"),
        ({"submission_key": "not-a-uuid"}, "submission_key"),
        ({"active_seconds": -1}, "active_seconds"),
        ({"comment": 5}, "comment"),
        ({"issues": {"start": 1}}, "issues"),
        ({"issues": [{"start": 5, "end": 2}]}, "issues[0].start"),
        ({"issues": [{"start": 0, "end": 10_000}]}, "issues[0].start"),
        ({"issues": [{"start": 0}]}, "issues[0].start"),
        ({"issues": [{"quote": "not in the proof"}]}, "issues[0].quote"),
        ({"issues": [{"severity": "cosmic"}]}, "issues[0].severity"),
        ({"issues": [{"note": "x" * 5001}]}, "issues[0].note"),
        ({"issues": [{"colour": "red"}]}, "issues[0]"),
    ],
)
def test_invalid_submission_writes_nothing(campaign, expert, changes, field):
    item = queue.claim_next_item(campaign, expert)
    with pytest.raises(InputError) as error:
        submit(item, expert, **changes)
    assert error.value.field == field
    assert str(error.value)
    assert not Grade.objects.exists()
    assert CampaignItem.objects.get().committed == 0


def test_a_quote_re_anchors_shifted_offsets(proof):
    start = proof.text.index("gcd")
    [issue] = issues.parse_issues([{"start": 0, "end": 3, "quote": "gcd"}], proof.text)
    assert (issue.start, issue.end) == (start, start + 3)
    [issue] = issues.parse_issues([{"quote": "gcd"}], proof.text)
    assert issue.start == start
    [issue] = issues.parse_issues([{"note": "overall unclear"}], proof.text)
    assert (issue.start, issue.end, issue.quote) == (None, None, "")


def test_submit_sends_progress_without_scores(campaign, expert, django_capture_on_commit_callbacks):
    from unittest import mock

    item = queue.claim_next_item(campaign, expert)
    with mock.patch("annotate.work.commit.send_progress") as send:
        with django_capture_on_commit_callbacks(execute=True):
            submit(item, expert, score="0")
    send.assert_called_once_with(
        campaign.pk, {"item": item.pk, "committed": 1, "overlap": 2}
    )


def test_progress_event_reaches_the_campaign_group(
    campaign, expert, django_capture_on_commit_callbacks
):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from annotate.consumers import campaign_group

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(campaign_group(campaign.pk), channel)
    item = queue.claim_next_item(campaign, expert)
    with django_capture_on_commit_callbacks(execute=True):
        submit(item, expert)
    message = async_to_sync(layer.receive)(channel)
    assert message == {
        "type": "campaign.progress",
        "data": {"item": item.pk, "committed": 1, "overlap": 2},
    }


class BrokenChannelLayer(InMemoryChannelLayer):
    """A configured channel layer whose sends fail, as when Redis is down."""

    sends = 0

    async def group_send(self, group, message):
        BrokenChannelLayer.sends += 1
        raise OSError("channel layer down")


# transaction=True: the progress event is sent on commit, inside the request, as in
# production (within a test's transaction on_commit callbacks would never run there).
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("via", ["page", "api"])
def test_a_broken_channel_layer_does_not_break_submission(
    client, campaign, expert, settings, caplog, via
):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": f"{__name__}.{BrokenChannelLayer.__qualname__}"}
    }
    BrokenChannelLayer.sends = 0
    item = queue.claim_next_item(campaign, expert)
    client.force_login(expert)
    values = {"score": "0.5", "comment": "fine", "issues": [], "active_seconds": 30}
    key = str(uuid.uuid4())
    if via == "page":
        form = {**values, "issues": "[]", "submission_key": key}
        response = client.post(reverse("grading_submit", args=[campaign.pk, item.pk]), form)
        assert response.status_code == 302
    else:
        response = client.post(
            f"/api/campaigns/{campaign.pk}/items/{item.pk}/grade/",
            {**values, "submission_key": key},
            content_type="application/json",
        )
        assert response.status_code == 201
    assert BrokenChannelLayer.sends == 1  # the event was attempted, and failed
    grade = Grade.objects.get(submission_key=key)
    assert (grade.grader, grade.score) == (expert, Decimal("0.5"))
    assert CampaignItem.objects.get(pk=item.pk).committed == 1
    assert "could not send progress" in caplog.text


# --- drafts ---------------------------------------------------------------------------------


def test_a_draft_is_saved_and_restored(campaign, expert, proof):
    item = queue.claim_next_item(campaign, expert)
    grading.save_draft(
        item,
        expert,
        score=None,
        comment="first",
        issues=[{"quote": "gcd", "note": "fine"}],
        active_seconds=5,
    )
    grading.save_draft(item, expert, score="0.5", comment="second", issues=[], active_seconds=9)
    draft = drafts.get_draft(item, expert)
    assert (grading.draft_values(draft), draft.active_seconds) == (
        (Decimal("0.5"), "second", []),
        9,
    )
    assert Draft.objects.count() == 1


def test_only_the_lease_holder_can_start_a_draft(campaign, expert, expert2):
    item = queue.claim_next_item(campaign, expert)
    with pytest.raises(NotClaimed):
        grading.save_draft(item, expert2, score="1", comment="", issues=[], active_seconds=0)
    assert not Draft.objects.exists()


def test_an_invalid_draft_is_not_saved(campaign, expert):
    item = queue.claim_next_item(campaign, expert)
    with pytest.raises(InputError):
        grading.save_draft(item, expert, score="2", comment="", issues=[], active_seconds=0)
    assert drafts.get_draft(item, expert) is None


# --- editing --------------------------------------------------------------------------------


def test_an_edit_bumps_the_version_and_keeps_history(campaign, expert):
    item = queue.claim_next_item(campaign, expert)
    grade = submit(item, expert, score="1", issues=[{"quote": "gcd", "note": "ok"}])
    grading.edit_grade(grade, expert, expected_version=1, score="0", comment="fatal gap", issues=[])
    grade.refresh_from_db()
    assert (grade.version, grade.score, grade.comment) == (2, Decimal("0"), "fatal gap")
    assert not grade.issues.exists()
    latest = grade.history.get(version=2)
    assert (latest.old_score, latest.new_score, latest.changed_by) == (
        Decimal("1"),
        Decimal("0"),
        expert,
    )
    assert latest.old_issues[0]["quote"] == "gcd"
    assert latest.new_issues == []


def test_a_stale_edit_overwrites_nothing(campaign, expert):
    item = queue.claim_next_item(campaign, expert)
    grade = submit(item, expert, score="1")
    grading.edit_grade(grade, expert, expected_version=1, score="0.5", comment="", issues=[])
    with pytest.raises(StaleEdit) as error:
        grading.edit_grade(grade, expert, expected_version=1, score="0", comment="", issues=[])
    assert error.value.current_version == 2
    grade.refresh_from_db()
    assert (grade.version, grade.score) == (2, Decimal("0.5"))
    assert grade.history.count() == 2


# --- progress -------------------------------------------------------------------------------


def test_campaign_progress_counts_items_and_median_time(big_campaign, expert, expert2):
    with time_machine.travel("2026-01-05 09:00Z", tick=False):
        for seconds in (10, 20, 60):
            submit(queue.claim_next_item(big_campaign, expert), expert, active_seconds=seconds)
        submit(queue.claim_next_item(big_campaign, expert2), expert2, active_seconds=100)
        queue.claim_next_item(big_campaign, expert2)
        stats = progress.campaign_progress(big_campaign)
    # expert graded items 1–3 of the queue; expert2 completed item 1 and holds item 2. So:
    # item 1 complete, item 2 in progress, item 3 partly graded, items 4 and 5 untouched.
    by_state = Counter(
        "complete" if i.committed >= 2 else "in_progress" if i.lease_holder_id
        else "partial" if i.committed else "untouched"
        for i in CampaignItem.objects.filter(campaign=big_campaign)
    )  # fmt: skip
    assert by_state == {"complete": 1, "in_progress": 1, "partial": 1, "untouched": 2}
    assert stats["items"] == 5
    assert stats["complete"] == 1
    assert stats["in_progress"] == 1
    assert stats["partial"] == 1
    assert stats["untouched"] == 2
    assert stats["grades"] == 4
    assert stats["median_active_seconds"] == 40
    by_name = {g["username"]: g for g in stats["graders"]}
    assert by_name["emmy_expert"]["grades"] == 3
    assert by_name["emmy_expert"]["median_active_seconds"] == 20
    assert list(
        progress.grader_progress(big_campaign, expert).values_list("active_seconds", flat=True)
    ) == [60, 20, 10]


# --- concurrency (PostgreSQL) ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_32_concurrent_graders_never_share_an_item(pool_for_32_threads):
    """32 threads, each its own connection, claim → submit over 500 items with overlap 2.

    Progress events go to the configured channel layer (Redis in CI), as in production.
    """
    campaign = Campaign.objects.create(name="Load", overlap=2, seed=3, lease_seconds=600)
    add_items(campaign, 500)
    race = race_experts(campaign, add_graders(campaign, 32), submit, timeout=300)
    # A hang fails here; speed is the grading bench's business (bench/grading_load.py).
    assert not race.still_running, "graders still running after 300 s"
    assert not race.errors, race.errors[:3]
    assert not race.violations, race.violations[:5]
    assert not race.twice_to_one_expert()
    assert race.claims() == 1000
    assert Counter(
        CampaignItem.objects.filter(campaign=campaign).values_list("committed", flat=True)
    ) == {2: 500}
    per_proof = Counter(Grade.objects.filter(campaign=campaign).values_list("proof_id", flat=True))
    assert set(per_proof.values()) == {2} and len(per_proof) == 500
    assert not CampaignItem.objects.filter(campaign=campaign, lease_holder__isnull=False).exists()


# --- concurrency (SQLite, the default of `make run`) ----------------------------------------

# Run in a process of its own with DATABASE_URL unset, so that the database is exactly the
# one settings build for `make run`: a file under PROOFDESK_VAR_DIR with its SQLite options
# (an in-memory test database cannot be shared by threads with their own connections).
SQLITE_RACE = """
import json
import django

django.setup()
from django.core.management import call_command
from django.db import connection

from annotate.models import Campaign
from tests.grading_support import add_graders, add_items
from tests.test_grading_queue import submit
from tests.work_race import race_experts

call_command("migrate", verbosity=0)
assert connection.vendor == "sqlite", connection.vendor
assert not connection.features.has_select_for_update_skip_locked  # the path under test
campaign = Campaign.objects.create(name="SQLite load", overlap=2, seed=5, lease_seconds=600)
add_items(campaign, {items})
race = race_experts(campaign, add_graders(campaign, {graders}), submit, timeout=120)
print(json.dumps({{
    "database": str(connection.settings_dict["NAME"]),
    "still_running": race.still_running,
    "errors": [repr(e) for e in race.errors],
    "violations": race.violations + race.twice_to_one_expert(),
    "claims": race.claims(),
    "graders_with_claims": sum(1 for items in race.claimed.values() if items),
}}))
"""


@pytest.mark.django_db(databases=[])  # the child process has its own database
def test_concurrent_graders_on_the_sqlite_default_never_share_an_item(tmp_path):
    """6 threads, each its own connection to one SQLite file, claim → submit over 40 items
    with overlap 2, through the claim path of databases without SKIP LOCKED."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {"PROOFDESK_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "proofdesk.settings"}
    child = subprocess.run(
        [sys.executable, "-c", SQLITE_RACE.format(items=40, graders=6)],
        cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-3000:]
    race = json.loads(child.stdout.splitlines()[-1])
    assert race["database"] == str(tmp_path / "proofdesk.sqlite3")
    assert race["still_running"] == 0, "graders still running after 120 s"
    assert race["errors"] == []
    assert race["violations"] == []
    assert race["claims"] == 80 and race["graders_with_claims"] > 1
    # Read back the file the graders wrote, independently of the ORM.
    with closing(sqlite3.connect(tmp_path / "proofdesk.sqlite3")) as db:
        items = db.execute(
            "SELECT committed, lease_holder_id FROM annotate_campaignitem"
        ).fetchall()
        pairs = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT proof_id || '-' || grader_id) FROM annotate_grade"
        ).fetchone()
    assert Counter(items) == {(2, None): 40}
    assert pairs == (80, 80)  # every grade a different (proof, grader)


def _race(*calls) -> list:
    """Run the calls at the same moment in threads with their own connections."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except BaseException as exc:  # noqa: BLE001 - compared by the caller
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


@pytest.mark.django_db(transaction=True)
def test_a_retried_post_racing_the_first_creates_one_grade(on_postgres, campaign, expert):
    item = queue.claim_next_item(campaign, expert)
    key = uuid.uuid4()
    results = _race(*[lambda: submit(item, expert, submission_key=key)] * 4)
    assert all(isinstance(r, Grade) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert Grade.objects.count() == 1
    assert CampaignItem.objects.get().committed == 1


@pytest.mark.django_db(transaction=True)
def test_two_edits_from_the_same_version_one_wins(on_postgres, campaign, expert):
    grade = submit(queue.claim_next_item(campaign, expert), expert, score="1")

    def edit(score):
        return lambda: grading.edit_grade(
            Grade.objects.get(pk=grade.pk), expert, expected_version=1, score=score,
            comment=score, issues=[],
        )  # fmt: skip

    results = _race(edit("0"), edit("0.5"))
    assert sorted(type(r).__name__ for r in results) == ["Grade", "StaleEdit"]
    grade.refresh_from_db()
    assert grade.version == 2
    assert grade.history.count() == 2
    assert grade.score == Decimal(grade.comment)  # the winner's score and comment, together
