"""Autosaved work in progress, for every kind of work: the newest draft wins, a stale page
or another tab never silently overwrites it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, Subquery

from annotate.inputs import parse_active_seconds, parse_revision, parse_tab
from annotate.models import CampaignItem, Draft
from annotate.work.errors import NotClaimed, StaleDraft
from annotate.work.queue import work_kind


def save_draft(
    item: CampaignItem,
    expert: User,
    content: dict[str, Any],
    *,
    active_seconds: Any,
    revision: Any = None,
    base_revision: Any = None,
    tab: Any = "",
) -> Draft:
    """Autosave: keep the newest draft, never a stale one. `content` is the kind's form.

    Only the lease holder may start a draft (the lease may have lapsed if nobody took the
    item since); an expert who already has a draft may keep saving it. Otherwise a draft
    would be a back door around the queue, since a draft entitles its expert to submit.

    1. Lock the item row, as `commit.submit` does, then read in a statement of its own (a
       fresh snapshot: subqueries of the locking statement would see the rows from before
       it waited) whether the expert has committed work on it, and the stored draft's
       revision and tab. Under the lock a submission cannot commit between this check and
       the write (which would otherwise leave a stale draft next to the committed work).
    2. `revision` (made by the page, only ever growing) orders writes: an older one than
       the stored draft is refused with `StaleDraft` (a late flush of a page that was
       reloaded meanwhile loses to what the new page saved), an equal one is a retry and
       writes nothing. Without a revision (API clients), the write is the newest.
    3. `base_revision` is the draft this tab last saw: when another tab has written since,
       the write is refused (`StaleDraft(other_tab=True)`) rather than overwriting it.
    4. One upsert writes the draft.
    """
    kind = work_kind(item.campaign)
    new_revision = parse_revision(revision)
    base = parse_revision(base_revision, "base_revision")
    tab_id = parse_tab(tab)
    draft = Draft(
        item=item,
        expert=expert,
        content=kind.to_json(kind.parse(item, content, draft=True)),
        active_seconds=parse_active_seconds(active_seconds),
        tab=tab_id,
    )
    stored = Draft.objects.filter(item=item, expert=expert)
    with transaction.atomic():
        locked = CampaignItem.objects.select_for_update().filter(pk=item.pk)
        holder = locked.values_list("lease_holder_id", flat=True).first()
        state = (
            CampaignItem.objects.filter(pk=item.pk)
            .annotate(
                done=Exists(kind.own_records(item, expert)),
                draft_revision=Subquery(stored.values("revision")[:1]),
                draft_tab=Subquery(stored.values("tab")[:1]),
            )
            .values("done", "draft_revision", "draft_tab")
            .first()
        )
        if state is not None and state["done"]:
            raise NotClaimed(kind.already_done)
        stored_revision = None if state is None else state["draft_revision"]
        if state is None or not (holder == expert.pk or stored_revision is not None):
            raise NotClaimed("This item is not leased to you; claim it again to work on it.")
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
        Draft.objects.bulk_create(
            [draft],
            update_conflicts=True,
            unique_fields=["item", "expert"],
            update_fields=["content", "active_seconds", "revision", "tab", "updated_at"],
        )
    return draft


def get_draft(item: CampaignItem, expert: User) -> Draft | None:
    return Draft.objects.filter(item=item, expert=expert).first()
