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
- `write_history(record, version, editor, old, new)`: one history row.
- `done_by(campaign, expert)`: the expert's committed work in the campaign on the item
  `OuterRef("pk")`, which the queue excludes; `own_records(item, expert)`: the same for
  one item.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Model, QuerySet

from annotate.models import Campaign, CampaignItem


class WorkKind:
    campaign_kind: ClassVar[str]
    model: ClassVar[type[Model]]
    expert_field: ClassVar[str]  # the model's foreign key to the expert ("grader", ...)
    expert_role: ClassVar[str]  # the campaign role that does this kind of work
    noun: ClassVar[str]  # "grade", "review": for messages
    already_done: ClassVar[str]  # the message for second work on an item by one expert

    def parse(self, item: CampaignItem, raw: dict[str, Any], *, draft: bool) -> Any:
        raise NotImplementedError

    def to_json(self, content: Any) -> dict[str, Any]:
        raise NotImplementedError

    def snapshot(self, record: Any) -> dict[str, Any]:
        raise NotImplementedError

    def create(
        self, item: CampaignItem, expert, content: Any, *, submission_key, active_seconds: int
    ) -> Any:
        raise NotImplementedError

    def update(self, record: Any, content: Any) -> dict[str, Any]:
        """Write the content's own rows (issues, verdicts) and return the field values of
        the record's row to update, which the machinery writes with the version bump."""
        raise NotImplementedError

    def write_history(
        self, record: Any, version: int, editor, old: dict[str, Any] | None, new: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    def done_by(self, campaign: Campaign, expert) -> QuerySet:
        raise NotImplementedError

    def own_records(self, item: CampaignItem, expert) -> QuerySet:
        raise NotImplementedError

    def expert_id(self, record: Any) -> int:
        return getattr(record, f"{self.expert_field}_id")

    def belongs_to(self, record: Any, item: CampaignItem) -> bool:
        """Is `record` work on `item`? (a submission key reused for another item is not)"""
        raise NotImplementedError


_KINDS: dict[str, WorkKind] = {}


def register(kind: WorkKind) -> WorkKind:
    _KINDS[kind.campaign_kind] = kind
    return kind


def kind_of(campaign: Campaign) -> WorkKind:
    """The kind of work `campaign` does; `KeyError` for a kind with no work machinery yet."""
    if not _KINDS:
        # The kinds register themselves when their modules load.
        import annotate.grading  # noqa: F401
        import annotate.review  # noqa: F401
    return _KINDS[campaign.kind]
