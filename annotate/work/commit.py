"""Committing expert work and editing it, for every kind of work.

`submit` is idempotent by the form's submission key; `edit` names the version the editor
saw and is refused (`StaleEdit`, nothing written) when it is stale. Both write the kind's
history; the kind writes only its own rows (annotate/work/kinds.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotate.broadcast import send_progress
from annotate.inputs import InputError, parse_active_seconds, parse_submission_key, parse_version
from annotate.models import CampaignItem, CommittedWork, Draft
from annotate.work import derived
from annotate.work.errors import AlreadyCommitted, NotClaimed, StaleEdit
from annotate.work.kinds import WorkKind
from annotate.work.queue import work_kind


def _check_replay[R: CommittedWork](
    kind: WorkKind[R, Any], record: R, item: CampaignItem, expert: User
) -> R:
    if kind.expert_id(record) != expert.pk or not kind.belongs_to(record, item):
        raise InputError("submission_key", f"This submission key belongs to another {kind.noun}.")
    return record


def _replay[R: CommittedWork](
    kind: WorkKind[R, Any], key: uuid.UUID, item: CampaignItem, expert: User
) -> R | None:
    """The work an earlier POST with this key made, if any."""
    record = kind.model._default_manager.filter(submission_key=key).first()
    return None if record is None else _check_replay(kind, record, item, expert)


def _replay_or_refuse[R: CommittedWork](
    kind: WorkKind[R, Any], key: uuid.UUID, item: CampaignItem, expert: User
) -> R | None:
    """`_replay`, and refuse second work on the item under a new key; one query.

    Reads the work with this key and the expert's own work on the item (the same row
    when this is a retry; at most two rows).
    """
    found = list(
        kind.model._default_manager.filter(submission_key=key) | kind.own_records(item, expert)
    )
    replayed = next((r for r in found if r.submission_key == key), None)
    if replayed is not None:
        return _check_replay(kind, replayed, item, expert)
    if found:
        raise AlreadyCommitted(found[0], kind.already_done)
    return None


def submit(
    item: CampaignItem,
    expert: User,
    content: dict[str, Any],
    *,
    active_seconds: Any,
    submission_key: Any,
) -> tuple[Any, bool]:
    """Commit the expert's work on an item: (the record, whether this call created it).

    Idempotent by `submission_key`: a retry finds the work the first call made and returns
    it with `False`, writing nothing. A key of another expert's or another item's work is
    refused (`InputError` on "submission_key"), and so is second work on the item under a
    new key (`AlreadyCommitted`).

    Who may submit (decided here, documented for the API): the expert must hold the item's
    lease (expired or not, as long as nobody else has claimed it since), *or* have a draft
    of it. The draft rule is deliberate: an expert whose lease lapsed while they worked
    (laptop asleep) and whose item was claimed by someone else still gets their work
    committed; the item may then end with one piece of work more than `overlap`, which is
    more data, not wrong data. Anyone else gets `NotClaimed`.

    In one transaction, with the item row locked: the kind's rows, history version 1,
    `committed + 1`, the lease released, the draft deleted, the proof marked stale. After
    commit, a progress event (counts only, never scores) goes to the campaign's websocket
    group, and the proof's disagreements and gold label are recomputed off the request
    path (annotate/work/derived.py).
    """
    kind = work_kind(item.campaign)
    key = parse_submission_key(submission_key)
    parsed = kind.parse(item, content, draft=False)
    seconds = parse_active_seconds(active_seconds)
    try:
        with transaction.atomic():
            locked = CampaignItem.objects.select_for_update().get(pk=item.pk)
            # Read after the lock, in a statement of its own (a fresh snapshot): a
            # concurrent retry of this POST may have just committed.
            replayed = _replay_or_refuse(kind, key, item, expert)
            if replayed is not None:
                return replayed, False
            draft = (
                Draft.objects.filter(item=item, expert=expert).only("pk", "active_seconds").first()
            )
            if locked.lease_holder_id != expert.pk and draft is None:
                raise NotClaimed("This item is not leased to you; claim it again to work on it.")
            derived.mark_stale([item.proof_id])
            record = kind.create(
                item,
                expert,
                parsed,
                submission_key=key,
                active_seconds=max(seconds, draft.active_seconds if draft else 0),
            )
            kind.write_history(record, 1, expert, None, kind.to_json(parsed))
            release: dict[str, None] = {}
            if locked.lease_holder_id == expert.pk:
                release = {"lease_holder": None, "lease_expires_at": None}
            CampaignItem.objects.filter(pk=item.pk).update(committed=F("committed") + 1, **release)
            if draft is not None:
                draft.delete()
            committed = locked.committed + 1
            progress = {"item": item.pk, "committed": committed, "overlap": item.campaign.overlap}
            transaction.on_commit(lambda: _committed(item, progress))
    except IntegrityError:
        # A racing retry with the same key won on a database without row locks (SQLite).
        replayed = _replay(kind, key, item, expert)
        if replayed is None:
            raise
        return replayed, False
    item.committed = committed
    if release:
        item.lease_holder_id, item.lease_expires_at = None, None
    return record, True


def _committed(item: CampaignItem, progress: dict[str, Any]) -> None:
    """After a commit: this process's cached campaign totals count it, and the campaign's
    websocket group hears of the new count."""
    from annotate.progress import note_commit

    note_commit(item.campaign, progress["committed"])
    send_progress(item.campaign_id, progress)


def edit[R: CommittedWork](
    kind: WorkKind[R, Any],
    record: R,
    editor: User,
    content: dict[str, Any],
    *,
    expected_version: Any,
    item: CampaignItem,
) -> R:
    """Change committed work, if it is still at the version the editor saw.

    Only the expert who made it may edit it (`NotClaimed` for anyone else).

    1. Read the record (the "old" side of the history row).
    2. `UPDATE ... SET ..., version = version + 1 WHERE id = ? AND version = expected`.
       A concurrent editor's UPDATE of the same row waits for ours and then matches no row,
       so exactly one of two edits made from the same version wins.
    3. Zero rows updated: `StaleEdit` with the current version; nothing was written.
       Otherwise the kind rewrites its own rows and the history row is written, in the same
       transaction.

    An edit that changes nothing writes nothing and keeps the version, whatever version it
    names: there is nothing to overwrite.
    """
    if kind.expert_id(record) != editor.pk:
        raise NotClaimed(f"Only the expert who made this {kind.noun} can edit it.")
    expected = parse_version(expected_version)
    parsed = kind.parse(item, content, draft=False)
    new = kind.to_json(parsed)
    records = kind.model._default_manager
    with transaction.atomic():
        current = records.get(pk=record.pk)
        old = kind.snapshot(current)
        if old == new:
            return current
        if current.version != expected:
            raise stale(kind, current, editor)
        # The version is claimed first, so a losing editor writes none of the kind's rows.
        updated = records.filter(pk=record.pk, version=expected).update(
            version=F("version") + 1, updated_at=timezone.now()
        )
        if not updated:
            raise stale(kind, records.get(pk=record.pk), editor)
        fields = kind.update(current, parsed)
        if fields:
            records.filter(pk=record.pk).update(**fields)
        kind.write_history(current, expected + 1, editor, old, new)
        derived.mark_stale([item.proof_id])
    record.refresh_from_db()
    return record


def stale(kind: WorkKind[Any, Any], current: Any, editor: User) -> StaleEdit:
    """`StaleEdit` naming who made the current version (the editor, or someone else)."""
    last_by = (
        current.history.filter(version=current.version)
        .values_list("changed_by_id", flat=True)
        .first()
    )
    return StaleEdit(current.version, by_editor=last_by == editor.pk)
