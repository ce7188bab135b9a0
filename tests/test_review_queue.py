"""The queue of a review campaign (annotate/work/queue.py on review items): claims, overlap,
skips, lease expiry, submitting reviews, and 32 reviewers at once on PostgreSQL."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from annotate.campaigns import create_review_campaign
from annotate.models import (
    CampaignItem,
    Membership,
    Review,
    ReviewHistory,
    Role,
    Skip,
    order_key_for,
)
from annotate.review import submit_review
from annotate.work import queue
from annotate.work.errors import AlreadyCommitted, NotClaimed
from tests.review_queue_support import (
    add_analyses,
    add_proofs,
    add_reviewers,
    all_real,
)
from tests.work_race import race_experts

pytestmark = pytest.mark.django_db


def make_review_campaign(owner, reviewers, *, analyses_per_proof=1, proofs=3, overlap=1, **kw):
    """A review campaign of `proofs` proofs × `analyses_per_proof` analyses (two claims each)."""
    made = add_proofs(proofs)
    for n in range(analyses_per_proof):
        add_analyses(made, model=f"verifier-{n}", claims=2)
    problem = made[0].problem.external_id
    campaign, _ = create_review_campaign(
        owner, f"Review {uuid.uuid4().hex[:6]}", {"problem": problem}, overlap=overlap, **kw
    )
    for reviewer in reviewers:
        Membership.objects.create(campaign=campaign, user=reviewer, role=Role.REVIEWER)
    return campaign


def review(item, reviewer, **extra):
    values = {
        "verdicts": all_real(item),
        "score": "0.5",
        "active_seconds": 20,
        "submission_key": uuid.uuid4(),
    }
    record, _ = submit_review(item, reviewer, **{**values, **extra})
    return record


def claim_and_review_all(campaign, reviewer) -> list[int]:
    """Every analysis the queue hands `reviewer`, reviewed in turn, until it has none."""
    analyses = []
    while (item := queue.claim_next_item(campaign, reviewer)) is not None:
        analyses.append(item.analysis_id)
        review(item, reviewer)
    return analyses


@pytest.fixture
def second_reviewer(django_user_model):
    return django_user_model.objects.create_user(username="rhea_reviewer")


@pytest.fixture
def third_reviewer(django_user_model):
    return django_user_model.objects.create_user(username="remy_reviewer")


# --- claiming -----------------------------------------------------------------------------


def test_it_leases_an_analysis_of_the_campaign_to_the_reviewer(owner, reviewer):
    campaign = make_review_campaign(owner, [reviewer])
    item = queue.claim_next_item(campaign, reviewer)
    assert item.campaign_id == campaign.pk and item.analysis is not None
    assert item.proof_id == item.analysis.proof_id
    assert queue.holds_lease(item, reviewer)
    # Asking again returns the same lease rather than a second item.
    assert queue.claim_next_item(campaign, reviewer).pk == item.pk


def test_a_reviewer_never_gets_the_same_analysis_twice(owner, reviewer):
    """Two analyses of each proof: the reviewer gets every analysis once, so both analyses
    of a proof (the item is the analysis, not the proof)."""
    campaign = make_review_campaign(owner, [reviewer], analyses_per_proof=2, overlap=2)
    seen = claim_and_review_all(campaign, reviewer)
    assert sorted(seen) == sorted(campaign.items.values_list("analysis_id", flat=True))
    assert len(seen) == 6 == len(set(seen))


def test_the_queue_follows_the_seeded_order_of_analyses(owner, reviewer):
    campaign = make_review_campaign(owner, [reviewer], proofs=5, seed=42)
    expected = list(
        campaign.items.order_by("order_key", "id").values_list("analysis_id", flat=True)
    )
    assert claim_and_review_all(campaign, reviewer) == expected


def test_an_analysis_stops_being_offered_once_it_has_overlap_reviews(
    owner, reviewer, second_reviewer, third_reviewer
):
    campaign = make_review_campaign(
        owner, [reviewer, second_reviewer, third_reviewer], proofs=1, overlap=2
    )
    item = campaign.items.get()
    review(queue.claim_next_item(campaign, reviewer), reviewer)
    review(queue.claim_next_item(campaign, second_reviewer), second_reviewer)
    item.refresh_from_db()
    assert item.committed == 2
    assert queue.claim_next_item(campaign, third_reviewer) is None


def test_two_reviewers_are_never_handed_the_same_item_at_once(owner, reviewer, second_reviewer):
    campaign = make_review_campaign(owner, [reviewer, second_reviewer], proofs=1, overlap=2)
    assert queue.claim_next_item(campaign, reviewer) is not None
    # Overlap 2 leaves room for a second review, but not while the first holds the lease.
    assert queue.claim_next_item(campaign, second_reviewer) is None


def test_a_skip_excludes_the_analysis_for_that_reviewer_only(owner, reviewer, second_reviewer):
    campaign = make_review_campaign(owner, [reviewer, second_reviewer], proofs=1)
    item = queue.claim_next_item(campaign, reviewer)
    queue.skip_item(item, reviewer, Skip.Reason.OUTSIDE_EXPERTISE, "not my field")
    assert queue.claim_next_item(campaign, reviewer) is None
    assert queue.claim_next_item(campaign, second_reviewer).pk == item.pk


def test_an_expired_lease_returns_the_analysis_to_the_pool(owner, reviewer, second_reviewer):
    campaign = make_review_campaign(owner, [reviewer, second_reviewer], proofs=1)
    now = timezone.now()
    item = queue.claim_next_item(campaign, reviewer, now=now)
    assert queue.claim_next_item(campaign, second_reviewer, now=now) is None
    later = now + timedelta(seconds=campaign.lease_seconds + 1)
    taken = queue.claim_next_item(campaign, second_reviewer, now=later)
    assert taken.pk == item.pk and taken.lease_holder_id == second_reviewer.pk
    # The first reviewer's lease is gone: renewing fails, submitting without a draft too.
    assert not queue.renew_lease(item, reviewer)
    with pytest.raises(NotClaimed):
        review(item, reviewer)


# --- submitting ---------------------------------------------------------------------------


def test_submitting_a_review_counts_it_and_releases_the_lease(owner, reviewer):
    campaign = make_review_campaign(owner, [reviewer], proofs=1, overlap=2)
    item = queue.claim_next_item(campaign, reviewer)
    record = review(item, reviewer, comment="Both claims hold.")
    stored = CampaignItem.objects.get(pk=item.pk)
    assert (stored.committed, stored.lease_holder_id, stored.lease_expires_at) == (1, None, None)
    assert (record.analysis_id, record.item_id, record.reviewer_id) == (
        item.analysis_id,
        item.pk,
        reviewer.pk,
    )
    # All claims real while the analysis gives full marks: the rubric suggests 0.5.
    assert (record.score, record.suggested_score) == (Decimal("0.5"), Decimal("0.5"))
    assert sorted(record.verdicts.values_list("verdict", flat=True)) == ["real", "real"]
    assert ReviewHistory.objects.filter(review=record, version=1).exists()


def test_a_retried_submit_counts_once(owner, reviewer):
    campaign = make_review_campaign(owner, [reviewer], proofs=1, overlap=2)
    item = queue.claim_next_item(campaign, reviewer)
    key = uuid.uuid4()
    first = review(item, reviewer, submission_key=key)
    again, created = submit_review(
        item, reviewer, verdicts=all_real(item), score="0.5", submission_key=key
    )
    assert again.pk == first.pk and created is False
    assert CampaignItem.objects.get(pk=item.pk).committed == 1
    assert Review.objects.count() == 1


def test_a_second_review_of_one_analysis_by_one_reviewer_is_refused(owner, reviewer):
    campaign = make_review_campaign(owner, [reviewer], proofs=1, overlap=2)
    item = queue.claim_next_item(campaign, reviewer)
    review(item, reviewer)
    CampaignItem.objects.filter(pk=item.pk).update(
        lease_holder=reviewer, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    with pytest.raises(AlreadyCommitted):
        review(CampaignItem.objects.get(pk=item.pk), reviewer)
    assert CampaignItem.objects.get(pk=item.pk).committed == 1


# --- concurrency (PostgreSQL) ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_32_concurrent_reviewers_never_share_an_item(pool_for_32_threads, owner):
    """32 threads, each its own connection, claim → submit a review over 300 analyses (of
    150 proofs, two analyses each) with overlap 2."""
    proofs = add_proofs(150)
    add_analyses(proofs, model="verifier-a", claims=2)
    add_analyses(proofs, model="verifier-b", claims=2)
    campaign, count = create_review_campaign(
        owner, "Review load", {"problem": proofs[0].problem.external_id}, overlap=2, seed=3
    )
    assert count == 300
    reviewers = add_reviewers(campaign, 32)
    race = race_experts(campaign, reviewers, review, timeout=300)
    assert not race.still_running, "reviewers still running after 300 s"
    assert not race.errors, race.errors[:3]
    assert not race.violations, race.violations[:5]
    assert not race.twice_to_one_expert()
    assert Counter(campaign.items.values_list("committed", flat=True)) == {2: 300}
    per_analysis = Counter(Review.objects.filter(campaign=campaign).values_list("analysis_id"))
    assert set(per_analysis.values()) == {2} and len(per_analysis) == 300
    pairs = Review.objects.filter(campaign=campaign).values_list("item_id", "reviewer_id")
    assert len(set(pairs)) == len(pairs) == 600
    assert race.claims() == 600
    assert not campaign.items.filter(lease_holder__isnull=False).exists()


def test_a_review_item_saved_one_by_one_is_ordered_by_its_analysis(owner, reviewer):
    """Like the bulk path: two analyses of one proof get two places in the seeded order."""
    campaign = make_review_campaign(owner, [reviewer], proofs=1)
    proof = campaign.items.get().proof
    first, second = add_analyses([proof, proof], model="verifier-z")
    items = [CampaignItem(campaign=campaign, proof=proof, analysis=a) for a in (first, second)]
    for item in items:
        item.save()
    assert [i.order_key for i in items] == [
        order_key_for(campaign.seed, first.pk),
        order_key_for(campaign.seed, second.pk),
    ]
