"""Expert grading: the queue of items, leases, drafts, grades, edits, skips and blind mode.

Views, the REST API and consumers are thin layers over these functions: they check access
(`annotate.access`), parse the request, call one function here and render the result.
Every function validates its input and raises `GradingError` (naming the field) before it
writes anything.

The queue, in one paragraph: an item of a campaign is *claimable* by grader G when it has
fewer than `overlap` committed grades, nobody holds an unexpired lease on it, G has not
graded its proof in this campaign and G has not skipped it. Claiming sets a lease of
`campaign.lease_seconds` on the item row itself, so a claim is a single conditional UPDATE
of one row. A submitted grade bumps the item's `committed_grades` and releases the lease
in the same transaction.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Q, QuerySet, Subquery
from django.utils import timezone

from annotate.consumers import campaign_group
from annotate.models import (
    SCORES,
    Campaign,
    CampaignItem,
    Grade,
    GradeDraft,
    GradeHistory,
    GradeIssue,
    Membership,
    ProblemFlag,
    Role,
    Skip,
)

# The progress statistics moved to annotate/progress.py; the names stay importable here.
from annotate.progress import campaign_progress, grader_progress  # noqa: F401
from annotate.text import unstorable_reason

log = logging.getLogger(__name__)

MAX_ISSUES = 200
MAX_NOTE_CHARS = 5_000
MAX_COMMENT_CHARS = 20_000
MAX_SKIP_NOTE_CHARS = 2_000
MAX_ACTIVE_SECONDS = 7 * 24 * 3600
CONTEXT_CHARS = 32  # prefix/suffix kept around a quote (text-quote selector)
ISSUE_KEYS = {"start", "end", "quote", "note", "severity", "prefix", "suffix"}
# How many candidates a claim tries on databases without SKIP LOCKED (SQLite).
CLAIM_CANDIDATES = 8
CLAIM_ATTEMPTS = 5
# Roles that see everything in a blind campaign.
SEE_ALL_ROLES = {Role.OWNER, Role.ADJUDICATOR}


class GradingError(ValueError):
    """Invalid input. `field` names the offending field (e.g. "score", "issues[2].quote")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class StaleEdit(Exception):
    """The grade changed since the editor loaded it; nothing was written.

    `by_editor` says whether the editor made that change themselves (another tab of
    theirs), so the message blames "you, in another tab" rather than "someone else".
    """

    def __init__(self, current_version: int, *, by_editor: bool = False) -> None:
        who = "by you in another tab" if by_editor else "by someone else"
        super().__init__(
            f"This grade was changed {who} (now version {current_version}). "
            "Reload it and apply your change again."
        )
        self.current_version = current_version
        self.by_editor = by_editor


class StaleDraft(Exception):
    """The server holds a draft this write must not replace; nothing was written.

    `other_tab`: the newer draft came from another tab of the same grader (drafts belong
    to one grader, so it is never someone else's). `revision`: the draft the server keeps.
    """

    def __init__(self, revision: int, *, other_tab: bool) -> None:
        if other_tab:
            message = (
                "You changed this draft in another tab; reload to see that version "
                "(nothing was overwritten)."
            )
        else:
            message = "The server already has a newer draft of this proof; nothing was overwritten."
        super().__init__(message)
        self.revision = revision
        self.other_tab = other_tab


class AlreadyGraded(GradingError):
    """A new grade of an item the grader already graded (e.g. from a stale tab)."""

    def __init__(self, grade: Grade) -> None:
        super().__init__("score", "You have already graded this proof; edit that grade.")
        self.grade = grade


class NotClaimed(Exception):
    """A submission for an item the grader neither holds nor has a draft of."""


@dataclass(frozen=True)
class IssueInput:
    """An issue anchored to the proof source (W3C text-position + text-quote selectors).

    `start`/`end` are None for an issue about the proof as a whole. `prefix`/`suffix` are
    computed from the proof text by `parse_issues`; they are never taken from the client.
    """

    start: int | None
    end: int | None
    quote: str
    note: str
    severity: str
    prefix: str = ""
    suffix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- input parsing ---------------------------------------------------------------------


def parse_score(value: Any, *, required: bool = True) -> Decimal | None:
    """0, 0.5 or 1 as number or string; None only when not required."""
    if value is None or value == "":
        if required:
            raise GradingError("score", "Choose a score: 0, 0.5 or 1.")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise GradingError("score", "The score must be 0, 0.5 or 1.")
    try:
        score = Decimal(str(value).strip())
    except InvalidOperation:
        raise GradingError("score", "The score must be 0, 0.5 or 1.") from None
    if not score.is_finite() or score not in SCORES:
        raise GradingError("score", "The score must be 0, 0.5 or 1.")
    return next(s for s in SCORES if s == score)


def parse_comment(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise GradingError("comment", "The comment must be text.")
    if len(value) > MAX_COMMENT_CHARS:
        raise GradingError("comment", f"The comment is longer than {MAX_COMMENT_CHARS} characters.")
    _refuse_unstorable(value, "comment", "The comment")
    return value


def parse_active_seconds(value: Any) -> int:
    """Whole seconds of active time (an int, an integral float, or digits as text)."""
    if value is None or value == "":
        return 0
    seconds: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, float) and value.is_integer():
        seconds = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value.strip())
    if seconds is None:
        raise GradingError("active_seconds", "Active time must be a whole number of seconds.")
    if not 0 <= seconds <= MAX_ACTIVE_SECONDS:
        raise GradingError("active_seconds", "Active time is out of range.")
    return seconds


MAX_REVISION = 2**62


def parse_revision(value: Any, field: str = "revision") -> int | None:
    """A draft revision: a whole number made by the page (None when not sent)."""
    if value is None or value == "":
        return None
    revision: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        revision = value
    elif isinstance(value, str) and value.strip().isdigit():
        revision = int(value.strip())
    if revision is None or not 0 <= revision <= MAX_REVISION:
        raise GradingError(field, "The draft revision must be a whole number.")
    return revision


def parse_tab(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 64:
        raise GradingError("tab", "The tab id must be text of at most 64 characters.")
    _refuse_unstorable(value, "tab", "The tab id")
    return value


def _refuse_unstorable(value: str, field: str, label: str) -> None:
    """Text no database column can hold (the rule: annotate/text.py) is a GradingError."""
    reason = unstorable_reason(value)
    if reason:
        raise GradingError(field, f"{label} {reason}; remove it and try again.")


def parse_submission_key(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise GradingError(
            "submission_key", "A submission key (a UUID made by the form) is required."
        ) from None


def _offset(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise GradingError(field, "Offsets must be whole numbers.")
    return value


def _nearest(text: str, quote: str, near: int) -> int | None:
    """Start of the occurrence of `quote` in `text` closest to `near`, or None."""
    best: int | None = None
    at = text.find(quote)
    while at != -1:
        if best is None or abs(at - near) < abs(best - near):
            best = at
        at = text.find(quote, at + 1)
    return best


def parse_issues(raw: Any, proof_text: str) -> list[IssueInput]:
    """Validate issues against the proof source and anchor them.

    Each issue is `{"start", "end", "quote", "note", "severity"}`. Anchoring follows the W3C
    Web Annotation selectors: when both offsets and a quote are given and the offsets do not
    select the quote, the quote wins and is re-found at its occurrence nearest to `start`
    (rendering may shift offsets; the quoted words do not move). A quote alone is located
    the same way; offsets alone take their quote from the text. Neither: a general issue.
    `prefix` and `suffix` are recomputed here from the text.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise GradingError("issues", "Issues must be a list.")
    if len(raw) > MAX_ISSUES:
        raise GradingError("issues", f"At most {MAX_ISSUES} issues per grade.")
    parsed = []
    for i, item in enumerate(raw):
        where = f"issues[{i}]"
        if not isinstance(item, dict):
            raise GradingError(where, "Each issue must be an object.")
        unknown = set(item) - ISSUE_KEYS
        if unknown:
            raise GradingError(where, f"Unknown keys: {', '.join(sorted(map(str, unknown)))}.")
        start = _offset(item.get("start"), f"{where}.start")
        end = _offset(item.get("end"), f"{where}.end")
        quote = item.get("quote") or ""
        note = item.get("note") or ""
        severity = item.get("severity") or GradeIssue.Severity.MINOR
        if not isinstance(quote, str):
            raise GradingError(f"{where}.quote", "The quote must be text.")
        if not isinstance(note, str):
            raise GradingError(f"{where}.note", "The note must be text.")
        if len(note) > MAX_NOTE_CHARS:
            raise GradingError(
                f"{where}.note", f"The note is longer than {MAX_NOTE_CHARS} characters."
            )
        _refuse_unstorable(note, f"{where}.note", "The issue's note")
        _refuse_unstorable(quote, f"{where}.quote", "The issue's quote")
        if severity not in GradeIssue.Severity.values:
            raise GradingError(f"{where}.severity", "Severity must be 'fatal' or 'minor'.")
        if (start is None) != (end is None):
            raise GradingError(f"{where}.start", "Give both start and end, or neither.")
        if start is not None and end is not None:
            if not 0 <= start < end <= len(proof_text):
                raise GradingError(
                    f"{where}.start", f"The span {start}–{end} is outside the proof text."
                )
            if quote and proof_text[start:end] != quote:
                found = _nearest(proof_text, quote, start)
                if found is None:
                    raise GradingError(f"{where}.quote", "The quoted passage is not in the proof.")
                start, end = found, found + len(quote)
            quote = proof_text[start:end]
        elif quote:
            found = _nearest(proof_text, quote, 0)
            if found is None:
                raise GradingError(f"{where}.quote", "The quoted passage is not in the proof.")
            start, end = found, found + len(quote)
        prefix = proof_text[max(0, start - CONTEXT_CHARS) : start] if start is not None else ""
        suffix = proof_text[end : end + CONTEXT_CHARS] if end is not None else ""
        parsed.append(IssueInput(start, end, quote, note, severity, prefix, suffix))
    return parsed


def _issue_rows(grade: Grade, issues: list[IssueInput]) -> list[GradeIssue]:
    return [GradeIssue(grade=grade, **issue.as_dict()) for issue in issues]


def issue_snapshot(issues: list[IssueInput] | list[GradeIssue]) -> list[dict[str, Any]]:
    return [
        {
            "start": i.start,
            "end": i.end,
            "quote": i.quote,
            "prefix": i.prefix,
            "suffix": i.suffix,
            "note": i.note,
            "severity": i.severity,
        }
        for i in issues
    ]


# --- the queue ---------------------------------------------------------------------------


def _lease_until(campaign: Campaign, now: datetime) -> datetime:
    return now + timedelta(seconds=campaign.lease_seconds)


def claim_next_item(
    campaign: Campaign, grader, *, now: datetime | None = None
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
    4. "Never the same proof twice" and "at most `overlap` grades" are part of the
       candidate query (and `committed_grades < overlap` of the UPDATE); the database's
       unique constraint on (campaign, proof, grader) backs the first up at submission.
    """
    if campaign.kind != Campaign.Kind.GRADE_PROOFS:
        raise GradingError("campaign", "This campaign does not grade proofs.")
    now = now or timezone.now()
    current = (
        CampaignItem.objects.filter(campaign=campaign, lease_holder=grader)
        .leased(now)
        .select_related("campaign", "proof__problem")
        .order_by("lease_expires_at", "id")
        .first()
    )
    if current is not None:
        renew_lease(current, grader, now=now)
        return current

    candidates = CampaignItem.objects.claimable_for(campaign, grader, now)
    free = Q(lease_holder__isnull=True) | Q(lease_expires_at__lte=now)
    until = _lease_until(campaign, now)

    def take(item_id: int) -> bool:
        return bool(
            CampaignItem.objects.filter(
                free, pk=item_id, committed_grades__lt=campaign.overlap
            ).update(lease_holder=grader, lease_expires_at=until)
        )

    for _ in range(CLAIM_ATTEMPTS):
        if connection.features.has_select_for_update_skip_locked:
            with transaction.atomic():
                head = (
                    candidates.select_related("campaign", "proof__problem")
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
            return CampaignItem.objects.select_related("campaign", "proof__problem").get(pk=taken)
    return None


def renew_lease(item: CampaignItem, grader, *, now: datetime | None = None) -> bool:
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


def release_lease(item: CampaignItem, grader) -> None:
    """Give the item back to the pool (only the holder can)."""
    released = CampaignItem.objects.filter(pk=item.pk, lease_holder=grader).update(
        lease_holder=None, lease_expires_at=None
    )
    if released:
        item.lease_holder_id, item.lease_expires_at = None, None


def holds_lease(item: CampaignItem, grader, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return (
        item.lease_holder_id == grader.pk
        and item.lease_expires_at is not None
        and item.lease_expires_at > now
    )


def skip_item(item: CampaignItem, grader, reason: str, note: str = "") -> Skip:
    """Skip an item for good (this grader only); "statement is wrong" also flags the problem.

    Skipping twice is harmless: the first skip is returned.
    """
    if reason not in Skip.Reason.values:
        raise GradingError("reason", "Choose a reason: " + ", ".join(Skip.Reason.values) + ".")
    if not isinstance(note, str):
        raise GradingError("note", "The note must be text.")
    if len(note) > MAX_SKIP_NOTE_CHARS:
        raise GradingError("note", f"The note is longer than {MAX_SKIP_NOTE_CHARS} characters.")
    _refuse_unstorable(note, "note", "The note")
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


# --- drafts, grades, edits ---------------------------------------------------------------


def save_draft(
    item: CampaignItem,
    grader,
    *,
    score: Any,
    comment: Any,
    issues: Any,
    active_seconds: Any,
    revision: Any = None,
    base_revision: Any = None,
    tab: Any = "",
) -> GradeDraft:
    """Autosave: keep the newest draft, never a stale one.

    Only the lease holder may start a draft (the lease may have lapsed if nobody took the
    item since); a grader who already has a draft may keep saving it. Otherwise a draft
    would be a back door around the queue, since a draft entitles its grader to submit.

    1. Lock the item row, as `submit_grade` does, then read in a statement of its own (a
       fresh snapshot: subqueries of the locking statement would see the rows from before
       it waited) whether the grader has graded it, and the stored draft's revision and
       tab. Under the lock a submission cannot commit between this check and the write
       (which would otherwise leave a stale draft next to the committed grade).
    2. `revision` (made by the page, only ever growing) orders writes: an older one than
       the stored draft is refused with `StaleDraft` (a late flush of a page that was
       reloaded meanwhile loses to what the new page saved), an equal one is a retry and
       writes nothing. Without a revision (API clients), the write is the newest.
    3. `base_revision` is the draft this tab last saw: when another tab has written since,
       the write is refused (`StaleDraft(other_tab=True)`) rather than overwriting it.
    4. One upsert writes the draft.
    """
    new_revision = parse_revision(revision)
    base = parse_revision(base_revision, "base_revision")
    tab_id = parse_tab(tab)
    draft = GradeDraft(
        item=item,
        grader=grader,
        score=parse_score(score, required=False),
        comment=parse_comment(comment),
        issues=issue_snapshot(parse_issues(issues, item.proof.text)),
        active_seconds=parse_active_seconds(active_seconds),
        tab=tab_id,
    )
    stored = GradeDraft.objects.filter(item=item, grader=grader)
    with transaction.atomic():
        locked = CampaignItem.objects.select_for_update().filter(pk=item.pk)
        holder = locked.values_list("lease_holder_id", flat=True).first()
        state = (
            CampaignItem.objects.filter(pk=item.pk)
            .annotate(
                graded=Exists(_own_grades(item, grader)),
                draft_revision=Subquery(stored.values("revision")[:1]),
                draft_tab=Subquery(stored.values("tab")[:1]),
            )
            .values("graded", "draft_revision", "draft_tab")
            .first()
        )
        if state is not None and state["graded"]:
            raise NotClaimed("You have already graded this proof; edit that grade instead.")
        stored_revision = None if state is None else state["draft_revision"]
        if state is None or not (holder == grader.pk or stored_revision is not None):
            raise NotClaimed("This item is not leased to you; claim it again to grade it.")
        if new_revision is None:
            new_revision = (stored_revision or 0) + 1
        elif stored_revision is not None:
            other_tab = bool(state["draft_tab"]) and bool(tab_id) and state["draft_tab"] != tab_id
            if new_revision < stored_revision:
                raise StaleDraft(stored_revision, other_tab=other_tab)
            if new_revision == stored_revision:
                draft.revision = new_revision
                return draft  # a retry of a write that arrived (or a beacon and its resend)
            if other_tab and base is not None and base != stored_revision:
                raise StaleDraft(stored_revision, other_tab=True)
        draft.revision = new_revision
        GradeDraft.objects.bulk_create(
            [draft],
            update_conflicts=True,
            unique_fields=["item", "grader"],
            update_fields=[
                "score", "comment", "issues", "active_seconds", "revision", "tab", "updated_at"
            ],
        )  # fmt: skip
    return draft


def get_draft(item: CampaignItem, grader) -> GradeDraft | None:
    return GradeDraft.objects.filter(item=item, grader=grader).first()


def _own_grades(item: CampaignItem, grader) -> QuerySet[Grade]:
    """The grader's committed grade of the item (at most one, by a constraint)."""
    return Grade.objects.made_in_app().filter(
        campaign_id=item.campaign_id, proof_id=item.proof_id, grader=grader
    )


def own_grade(item: CampaignItem, grader) -> Grade | None:
    return _own_grades(item, grader).prefetch_related("issues").first()


def has_graded(item: CampaignItem, grader) -> bool:
    return _own_grades(item, grader).exists()


def _check_replay(grade: Grade, item: CampaignItem, grader) -> Grade:
    if grade.grader_id != grader.pk or grade.proof_id != item.proof_id:
        raise GradingError("submission_key", "This submission key belongs to another grade.")
    return grade


def _replay(submission_key: uuid.UUID, item: CampaignItem, grader) -> Grade | None:
    """The grade an earlier POST with this key made, if any."""
    grade = Grade.objects.filter(submission_key=submission_key).first()
    return None if grade is None else _check_replay(grade, item, grader)


def _replay_or_refuse(submission_key: uuid.UUID, item: CampaignItem, grader) -> Grade | None:
    """`_replay`, and refuse a second grade of the item under a new key; one query.

    Reads the grade with this key and the grader's own grade of the item (the same row
    when this is a retry; at most two rows).
    """
    found = list(Grade.objects.filter(submission_key=submission_key) | _own_grades(item, grader))
    replayed = next((g for g in found if g.submission_key == submission_key), None)
    if replayed is not None:
        return _check_replay(replayed, item, grader)
    if found:
        raise AlreadyGraded(found[0])
    return None


def submit_grade(
    item: CampaignItem,
    grader,
    *,
    score: Any,
    comment: Any,
    issues: Any,
    active_seconds: Any,
    submission_key: Any,
) -> tuple[Grade, bool]:
    """Commit the grader's grade of an item: (the grade, whether this call created it).

    Idempotent by `submission_key`: a retry finds the grade the first call made and
    returns it with `False`, writing nothing. A key of another grader's or another proof's
    grade is refused (`GradingError` on "submission_key"), and so is a second grade of the
    item under a new key (on "score").

    Who may submit (decided here, documented for the API): the grader must hold the item's
    lease (expired or not, as long as nobody else has claimed it since), *or* have a draft
    of it. The draft rule is deliberate: an expert whose lease lapsed while they worked
    (laptop asleep) and whose item was claimed by someone else still gets their work
    committed; the item may then end with one grade more than `overlap`, which is more data,
    not wrong data. Anyone else gets `NotClaimed`.

    In one transaction, with the item row locked: the grade, its issues, history version 1,
    `committed_grades + 1`, the lease released, the draft deleted. After commit, a progress
    event (counts only, never scores) goes to the campaign's websocket group.
    """
    key = parse_submission_key(submission_key)
    parsed_score = parse_score(score)
    parsed_comment = parse_comment(comment)
    parsed_issues = parse_issues(issues, item.proof.text)
    seconds = parse_active_seconds(active_seconds)

    try:
        with transaction.atomic():
            locked = CampaignItem.objects.select_for_update().get(pk=item.pk)
            # Read after the lock, in a statement of its own (a fresh snapshot): a
            # concurrent retry of this POST may have just committed.
            replayed = _replay_or_refuse(key, item, grader)
            if replayed is not None:
                return replayed, False
            draft = (
                GradeDraft.objects.filter(item=item, grader=grader)
                .only("pk", "active_seconds")
                .first()
            )
            if locked.lease_holder_id != grader.pk and draft is None:
                raise NotClaimed("This item is not leased to you; claim it again to grade it.")
            grade = Grade.objects.create(
                proof_id=item.proof_id,
                campaign_id=item.campaign_id,
                grader=grader,
                origin=Grade.Origin.APP,
                score=parsed_score,
                comment=parsed_comment,
                active_seconds=max(seconds, draft.active_seconds if draft else 0),
                submission_key=key,
            )
            GradeIssue.objects.bulk_create(_issue_rows(grade, parsed_issues))
            GradeHistory.objects.create(
                grade=grade,
                version=1,
                changed_by=grader,
                new_score=parsed_score,
                new_comment=parsed_comment,
                new_issues=issue_snapshot(parsed_issues),
            )
            release = {}
            if locked.lease_holder_id == grader.pk:
                release = {"lease_holder": None, "lease_expires_at": None}
            CampaignItem.objects.filter(pk=item.pk).update(
                committed_grades=F("committed_grades") + 1, **release
            )
            if draft is not None:
                draft.delete()
            committed = locked.committed_grades + 1
            transaction.on_commit(
                lambda: send_progress(
                    item.campaign_id,
                    {
                        "item": item.pk,
                        "committed_grades": committed,
                        "overlap": item.campaign.overlap,
                    },
                )
            )
    except IntegrityError:
        # A racing retry with the same key won on a database without row locks (SQLite).
        replayed = _replay(key, item, grader)
        if replayed is None:
            raise
        return replayed, False
    item.committed_grades = committed
    if release:
        item.lease_holder_id, item.lease_expires_at = None, None
    return grade, True


def edit_grade(
    grade: Grade, editor, *, expected_version: Any, score: Any, comment: Any, issues: Any
) -> Grade:
    """Change a committed grade, if it is still at the version the editor saw.

    1. Read the grade and its issues (the "old" side of the history row).
    2. `UPDATE grade SET ..., version = version + 1 WHERE id = ? AND version = expected`.
       A concurrent editor's UPDATE of the same row waits for ours and then matches no row,
       so exactly one of two edits made from the same version wins.
    3. Zero rows updated: `StaleEdit` with the current version; nothing was written.
       Otherwise replace the issues and write the history row, in the same transaction.

    An edit that changes nothing (same score, comment and issues as now) writes nothing
    and keeps the version, whatever version it names: there is nothing to overwrite.
    """
    if isinstance(expected_version, bool):
        raise GradingError("version", "The version you edited is required.")
    try:
        expected = int(expected_version)
    except (TypeError, ValueError):
        raise GradingError("version", "The version you edited is required.") from None
    new_score = parse_score(score)
    new_comment = parse_comment(comment)
    new_issues = parse_issues(issues, grade.proof.text)
    with transaction.atomic():
        current = Grade.objects.get(pk=grade.pk)
        old_issues = issue_snapshot(list(current.issues.all()))
        if (current.score, current.comment, old_issues) == (
            new_score,
            new_comment,
            issue_snapshot(new_issues),
        ):
            return current
        if current.version != expected:
            raise _stale(current, editor)
        updated = Grade.objects.filter(pk=grade.pk, version=expected).update(
            score=new_score,
            comment=new_comment,
            version=F("version") + 1,
            updated_at=timezone.now(),
        )
        if not updated:
            raise _stale(Grade.objects.get(pk=grade.pk), editor)
        GradeIssue.objects.filter(grade=grade).delete()
        GradeIssue.objects.bulk_create(_issue_rows(grade, new_issues))
        GradeHistory.objects.create(
            grade=grade,
            version=expected + 1,
            changed_by=editor,
            old_score=current.score,
            new_score=new_score,
            old_comment=current.comment,
            new_comment=new_comment,
            old_issues=old_issues,
            new_issues=issue_snapshot(new_issues),
        )
    grade.refresh_from_db()
    return grade


def _stale(current: Grade, editor) -> StaleEdit:
    """`StaleEdit` naming who made the current version (the editor, or someone else)."""
    last_by = (
        GradeHistory.objects.filter(grade_id=current.pk, version=current.version)
        .values_list("changed_by_id", flat=True)
        .first()
    )
    return StaleEdit(current.version, by_editor=last_by == editor.pk)


# --- blind mode --------------------------------------------------------------------------


def roles_of(user, campaign: Campaign) -> set[str]:
    roles = Membership.objects.roles_of(user, campaign)
    if getattr(user, "is_staff", False):
        roles.add(Role.OWNER)
    return roles


def can_see_others(
    item: CampaignItem, user, *, roles: set[str] | None = None, graded: bool | None = None
) -> bool:
    """May `user` see other experts' grades and any model score of this item?

    In a non-blind campaign every member may. In a blind one, whoever has committed their
    own grade of the item may; before that, owners and adjudicators may, except while they
    grade the item themselves (they hold its lease or have a draft of it): a grade must be
    blind whoever makes it. Callers that already know the user's roles, or whether they
    graded the item, pass them to save a query.
    """
    if not user.is_authenticated:
        return False
    roles = roles_of(user, item.campaign) if roles is None else roles
    if not roles:
        return False
    if not item.campaign.blind:
        return True
    if has_graded(item, user) if graded is None else graded:
        return True
    return bool(roles & SEE_ALL_ROLES) and not is_grading(item, user)


def is_grading(item: CampaignItem, user) -> bool:
    """Does `user` hold the item's lease (expired or not) or have a draft of it?"""
    return (
        item.lease_holder_id == user.pk
        or GradeDraft.objects.filter(item=item, grader=user).exists()
    )


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def others_for(item: CampaignItem, user) -> dict[str, Any]:
    """Other experts' grades, imported grades and model scores of the item.

    Only for callers that checked `can_see_others`. `disagreement` is true when two expert
    grades (this campaign's or imported) differ, or when the model's mean automatic rating
    is at least 0.5 away from an expert grade of this campaign.
    """
    from verification.models import Analysis

    proof = item.proof
    grades = list(
        Grade.objects.made_in_app()
        .filter(campaign_id=item.campaign_id, proof_id=item.proof_id)
        .select_related("grader")
        .prefetch_related("issues")
        .order_by("created_at", "id")
    )
    imported = list(Grade.objects.imported().filter(proof_id=item.proof_id).order_by("id"))
    mean = proof.metadata.get("average_automatic_rating") if proof.metadata else None
    if isinstance(mean, bool) or not isinstance(mean, int | float):
        mean = None
    expert_scores = {g.score for g in grades} | {g.score for g in imported}
    disagreement = len(expert_scores) > 1 or (
        mean is not None and any(abs(float(g.score) - mean) >= 0.5 for g in grades)
    )
    return {
        "grades": [
            {
                "id": g.pk,
                "grader": g.grader.get_username(),
                "mine": g.grader_id == user.pk,
                "score": _num(g.score),
                "comment": g.comment,
                "issues": issue_snapshot(list(g.issues.all())),
                "created_at": g.created_at.isoformat(),
            }
            for g in grades
        ],
        "imported_grades": [
            {
                "grader": g.external_grader,
                "source": g.import_source,
                "score": _num(g.score),
                "raw_score": _num(g.raw_score),
                "raw_scale_max": _num(g.raw_scale_max),
                "comment": g.comment,
            }
            for g in imported
        ],
        "model": {
            "average_automatic_rating": mean,
            "analyses": Analysis.objects.filter(proof_id=item.proof_id).count(),
            "self_score": _num(proof.self_score),
            "self_evaluation": proof.self_evaluation,
        },
        "disagreement": disagreement,
    }


# --- progress ----------------------------------------------------------------------------


def send_progress(campaign_id: int, data: dict[str, Any]) -> None:
    """Tell the campaign's websocket group an item's count changed (never a score)."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        async_to_sync(layer.group_send)(
            campaign_group(campaign_id), {"type": "campaign.progress", "data": data}
        )
    except Exception:
        # Progress is a convenience; the grade is already committed.
        log.exception("could not send progress for campaign %s", campaign_id)
