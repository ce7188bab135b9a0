"""What a kind of expert work supplies to the shared machinery, and which kind a campaign
does.

The machinery (queue, drafts, commit, visibility) never names a grade or a review: it
asks the campaign's `WorkKind` for the few things that differ. A kind is a subclass with
its committed-work model (built on `annotate.models.CommittedWork`) and these methods:

- `parse(item, raw, draft=...)`: the kind's form (a dict) to validated content, or
  `InputError`; a draft may be incomplete (`draft=True`).
- `to_json(content)` / `snapshot(record)`: the content as plain JSON, for drafts and
  history; equal for the same content, so "nothing changed" is an equality.
- `create(item, expert, content, **work)` and `update(record, content)`: write the
  kind's rows (the machinery has locked the item and checked everything else).
- `write_history(record, version, editor, old, new)`: one history row (a kind that keeps
  the JSON as it was and became names its model in `json_history` instead).
- `done_by(campaign, expert)`: the expert's committed work in the campaign on the item
  `OuterRef("pk")` (or anything else that bars them from it), which the queue excludes;
  `own_records(item, expert)`: the expert's committed work on one item.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import User
from django.db.models import QuerySet

from annotate.models import Campaign, CampaignItem, CommittedWork


class WorkKind[RecordT: CommittedWork, ContentT]:
    """`RecordT`: the committed-work model; `ContentT`: the parsed form."""

    campaign_kind: ClassVar[str]
    model: type[RecordT]
    expert_field: ClassVar[str]  # the model's foreign key to the expert ("grader", ...)
    expert_role: ClassVar[str]  # the campaign role that does this kind of work
    noun: ClassVar[str]  # "grade", "review": for messages
    already_done: ClassVar[str]  # the message for second work on an item by one expert

    def parse(self, item: CampaignItem, raw: dict[str, Any], *, draft: bool) -> ContentT:
        raise NotImplementedError

    def to_json(self, content: ContentT) -> dict[str, Any]:
        raise NotImplementedError

    def snapshot(self, record: RecordT) -> dict[str, Any]:
        raise NotImplementedError

    def create(
        self,
        item: CampaignItem,
        expert: User,
        content: ContentT,
        *,
        submission_key: uuid.UUID,
        active_seconds: int,
    ) -> RecordT:
        raise NotImplementedError

    def update(self, record: RecordT, content: ContentT) -> dict[str, Any]:
        """Write the content's own rows (issues, verdicts) and return the field values of
        the record's row to update, which the machinery writes with the version bump."""
        raise NotImplementedError

    # A kind whose history rows hold the content's JSON as it was and became (`old`, `new`)
    # names its history model and that model's foreign key to the record: the default
    # `write_history` writes them.
    json_history: ClassVar[tuple[type[Any], str] | None] = None

    def write_history(
        self,
        record: RecordT,
        version: int,
        editor: User,
        old: dict[str, Any] | None,
        new: dict[str, Any],
    ) -> None:
        if self.json_history is None:
            raise NotImplementedError
        model, record_field = self.json_history
        model._default_manager.create(
            **{record_field: record}, version=version, changed_by=editor, old=old, new=new
        )

    def done_by(self, campaign: Campaign, expert: User) -> QuerySet[Any]:
        """What bars `expert` from the item `OuterRef("pk")`: usually their committed work
        on it; the queue excludes items for which it is not empty."""
        raise NotImplementedError

    def own_records(self, item: CampaignItem, expert: User) -> QuerySet[RecordT]:
        raise NotImplementedError

    def expert_id(self, record: RecordT) -> int:
        expert_id: int = getattr(record, f"{self.expert_field}_id")
        return expert_id

    def belongs_to(self, record: RecordT, item: CampaignItem) -> bool:
        """Is `record` work on `item`? (a submission key reused for another item is not)"""
        raise NotImplementedError


_KINDS: dict[str, WorkKind[Any, Any]] = {}


def register[K: WorkKind[Any, Any]](kind: K) -> K:
    _KINDS[kind.campaign_kind] = kind
    return kind


def kind_of(campaign: Campaign) -> WorkKind[Any, Any]:
    """The kind of work `campaign` does; `KeyError` for a kind with no work machinery yet."""
    if campaign.kind not in _KINDS:
        # The kinds register themselves when their modules load (one loaded alone, say
        # grading by a view, must not hide the others).
        import annotate.adjudication  # noqa: F401
        import annotate.grading  # noqa: F401
        import annotate.review  # noqa: F401
    return _KINDS[campaign.kind]
