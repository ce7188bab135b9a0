"""Access helpers: the one way every view, API endpoint and consumer reaches an object.

Each returns the object or raises Http404 (the object does not exist or the user may not
know it exists) or PermissionDenied (a member without the needed role).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotate.models import Campaign, CampaignItem, Membership, Role


def campaigns_for(user) -> Iterable[Campaign]:
    if not user.is_authenticated:
        return Campaign.objects.none()
    if user.is_staff:
        return Campaign.objects.all()
    return Campaign.objects.filter(memberships__user=user).distinct()


def get_campaign_for_member(
    user, campaign_id: int, roles: Iterable[str] | None = None
) -> tuple[Campaign, set[str]]:
    """Return (campaign, the user's roles in it).

    Outsiders get 404, so campaign ids are not an oracle. Members lacking every role in
    `roles` get PermissionDenied. Staff are treated as owners.
    """
    if not user.is_authenticated:
        raise Http404
    try:
        campaign = Campaign.objects.get(pk=campaign_id)
    except Campaign.DoesNotExist:
        raise Http404 from None
    user_roles = Membership.objects.roles_of(user, campaign)
    if user.is_staff:
        user_roles.add(Role.OWNER)
    if not user_roles:
        raise Http404
    if roles is not None and not user_roles.intersection(roles):
        raise PermissionDenied
    return campaign, user_roles


def get_item_for_member(
    user, campaign_id: int, item_id: int, roles: Iterable[str] | None = None
) -> tuple[CampaignItem, set[str]]:
    campaign, user_roles = get_campaign_for_member(user, campaign_id, roles)
    try:
        item = CampaignItem.objects.select_related("proof__problem", "campaign").get(
            pk=item_id, campaign=campaign
        )
    except CampaignItem.DoesNotExist:
        raise Http404 from None
    return item, user_roles
