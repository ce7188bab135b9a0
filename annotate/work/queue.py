"""The queue of a campaign, for every kind of work: claiming the next item, leases, skips.

In one paragraph: an item of a campaign is *claimable* by expert E when it has fewer than
`overlap` committed pieces of work, nobody holds an unexpired lease on it, E has not
worked on it (the kind says what that means: `WorkKind.done_by`) and E has not skipped it.
Claiming sets a lease of `campaign.lease_seconds` on the item row itself, so a claim is a
single conditional UPDATE of one row. Committing work (work/commit.py) bumps the item's
`committed` and releases the lease in the same transaction.

Parameters are named `grader` where the code predates review; they mean any expert.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotate.broadcast import send_progress
from annotate.inputs import MAX_SKIP_NOTE_CHARS, InputError, refuse_unstorable
from annotate.models import Campaign, CampaignItem, ProblemFlag, Skip

if TYPE_CHECKING:
    from annotate.work.kinds import WorkKind

# How many candidates a claim tries on databases without SKIP LOCKED (SQLite).
CLAIM_CANDIDATES = 8
CLAIM_ATTEMPTS = 5


def work_kind(campaign: Campaign) -> WorkKind[Any, Any]:
    """The campaign's `WorkKind`; `InputError` for a kind without a queue (yet)."""
    from annotate.work.kinds import kind_of

    try:
        return kind_of(campaign)
    except KeyError:
        raise InputError("campaign", "This campaign has no work queue for its kind.") from None


def _lease_until(campaign: Campaign, now: datetime) -> datetime:
    return now + timedelta(seconds=campaign.lease_seconds)


def claim_next_item(
    campaign: Campaign, grader: User, *, now: datetime | None = None
) -> CampaignItem | None:
    """Lease the next item of `campaign` to `grader`; None when nothing is left for them.

    A grader who already holds an unexpired lease in this campaign gets that item back
    (renewed), so "Next" pressed twice, or a reloaded page, never takes a second item.

    Why two graders never hold the same item at once:

    1. Every lease lives on the item row (`lease_holder`, `lease_expires_at`), and every
       change to it is an UPDATE of that row whose WHERE clause requires the lease to be
       free (no holder, or expired) and the item not complete. The row count it returns
       says whether *this* UPDATE took the lease; concurrent UPDATEs of one row are
       serialised by the database, and the loser re-evaluates the WHERE clause against the
       winner's committed row (PostgreSQL READ COMMITTED) or waits for the single writer
       (SQLite), so it sees the lease taken and changes nothing.
    2. On PostgreSQL the candidate is first picked with SELECT ... FOR UPDATE SKIP LOCKED
       inside the transaction, so 32 graders racing for the head of the queue each lock a
       different row instead of all queueing on the same one; the conditional UPDATE of
       step 1 still decides. The same SELECT reads the item with its campaign, proof and
       problem (locking only the item row): nobody else can change the row before we
       commit, so it is returned without being read again.
    3. On databases without SKIP LOCKED (SQLite) a few candidates from the head of the
       queue are tried in turn with the conditional UPDATE of step 1; if all were taken
       meanwhile the queue is read again, a bounded number of times.
    4. "Never the same item twice" and "at most `overlap` committed" are part of the
       candidate query (and `committed < overlap` of the UPDATE); the kind's unique
       constraint (one grade per grader per proof per campaign, one review per reviewer per
       item) backs the first up at submission.
    """
    kind = work_kind(campaign)
    now = now or timezone.now()
    current = (
        CampaignItem.objects.filter(campaign=campaign, lease_holder=grader)
        .leased(now)
        .select_related("campaign", "proof__problem", "analysis")
        .order_by("lease_expires_at", "id")
        .first()
    )
    if current is not None:
        renew_lease(current, grader, now=now)
        return current

    done = kind.done_by(campaign, grader)
    candidates = CampaignItem.objects.claimable_for(campaign, grader, now, done)
    free = Q(lease_holder__isnull=True) | Q(lease_expires_at__lte=now)
    until = _lease_until(campaign, now)

    def take(item_id: int) -> bool:
        return bool(
            CampaignItem.objects.filter(
                free, pk=item_id, committed__lt=campaign.overlap
            ).update(lease_holder=grader, lease_expires_at=until)
        )

    for _ in range(CLAIM_ATTEMPTS):
        if connection.features.has_select_for_update_skip_locked:
            with transaction.atomic():
                head = (
                    candidates.select_related("campaign", "proof__problem", "analysis")
                    .select_for_update(skip_locked=True, of=("self",))
                    .first()
                )
                if head is None:
                    return None
                if take(head.pk):
                    head.lease_holder_id, head.lease_expires_at = grader.pk, until
                    return head
            continue
        ids = list(candidates.values_list("pk", flat=True)[:CLAIM_CANDIDATES])
        if not ids:
            return None
        taken = next((pk for pk in ids if take(pk)), None)
        if taken is not None:
            related = ("campaign", "proof__problem", "analysis")
            return CampaignItem.objects.select_related(*related).get(pk=taken)
    return None


def renew_lease(item: CampaignItem, grader: User, *, now: datetime | None = None) -> bool:
    """Extend the grader's lease; False if someone else took it or it was released.

    An expired lease that nobody else has claimed meanwhile is still the grader's to renew
    (the laptop went to sleep; the work is still theirs).
    """
    now = now or timezone.now()
    until = _lease_until(item.campaign, now)
    renewed = CampaignItem.objects.filter(pk=item.pk, lease_holder=grader).update(
        lease_expires_at=until
    )
    if renewed:
        item.lease_holder_id, item.lease_expires_at = grader.pk, until
    return bool(renewed)


def release_lease(item: CampaignItem, grader: User) -> None:
    """Give the item back to the pool (only the holder can)."""
    released = CampaignItem.objects.filter(pk=item.pk, lease_holder=grader).update(
        lease_holder=None, lease_expires_at=None
    )
    if released:
        item.lease_holder_id, item.lease_expires_at = None, None


def holds_lease(item: CampaignItem, grader: User, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return (
        item.lease_holder_id == grader.pk
        and item.lease_expires_at is not None
        and item.lease_expires_at > now
    )


def skip_item(item: CampaignItem, grader: User, reason: str, note: str = "") -> Skip:
    """Skip an item for good (this expert only); "statement is wrong" also flags the problem.

    Skipping twice is harmless: the first skip is returned.
    """
    if reason not in Skip.Reason.values:
        raise InputError("reason", "Choose a reason: " + ", ".join(Skip.Reason.values) + ".")
    if not isinstance(note, str):
        raise InputError("note", "The note must be text.")
    if len(note) > MAX_SKIP_NOTE_CHARS:
        raise InputError("note", f"The note is longer than {MAX_SKIP_NOTE_CHARS} characters.")
    refuse_unstorable(note, "note", "The note")
    with transaction.atomic():
        skip, created = Skip.objects.get_or_create(
            item=item, grader=grader, defaults={"reason": reason, "note": note}
        )
        if created:
            # The owner's pages list skips; tell them live (no reason or note on the wire).
            transaction.on_commit(lambda: send_progress(item.campaign_id, {"item": item.pk}))
        if reason == Skip.Reason.STATEMENT_WRONG:
            ProblemFlag.objects.get_or_create(
                problem_id=item.proof.problem_id,
                campaign_id=item.campaign_id,
                raised_by=grader,
                defaults={"note": note},
            )
        release_lease(item, grader)
    return skip
