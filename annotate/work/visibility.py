"""The blind rules, for every kind of work: who may see other experts' work on an item
(and model scores), and when."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

from annotate.access import roles_in
from annotate.models import CampaignItem, Draft, Role
from annotate.work.queue import work_kind

# Roles that see everything in a blind campaign (unless they are working on the item).
SEE_ALL_ROLES = {Role.OWNER, Role.ADJUDICATOR}


def has_committed(item: CampaignItem, user: User) -> bool:
    return work_kind(item.campaign).own_records(item, user).exists()


def can_see_others(
    item: CampaignItem,
    user: User | AnonymousUser,
    *,
    roles: set[str] | None = None,
    done: bool | None = None,
) -> bool:
    """May `user` see other experts' work and any model score of this item?

    In a non-blind campaign every member may. In a blind one, whoever has committed their
    own work on the item may; before that, owners and adjudicators may, except while they
    work on the item themselves (they hold its lease or have a draft of it): work must be
    blind whoever does it. Callers that already know the user's roles, or whether they
    committed work on the item, pass them to save a query.
    """
    if not user.is_authenticated:
        return False
    roles = roles_in(user, item.campaign) if roles is None else roles
    if not roles:
        return False
    if not item.campaign.blind:
        return True
    if has_committed(item, user) if done is None else done:
        return True
    return bool(roles & SEE_ALL_ROLES) and not is_working(item, user)


def is_working(item: CampaignItem, user: User) -> bool:
    """Does `user` hold the item's lease (expired or not) or have a draft of it?"""
    return item.lease_holder_id == user.pk or Draft.objects.filter(item=item, expert=user).exists()
