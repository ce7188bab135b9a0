"""Access helpers: the one way every view, API endpoint and consumer reaches an object.

Each returns the object or raises Http404 (the object does not exist or the user may not
know it exists) or PermissionDenied (a member without the needed role). Their messages are
sentences the error pages show (annotate/views/errors.py): they never say more than the
user may know, so a 404 reads the same for "missing" and "not yours".
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotate.models import Campaign, CampaignItem, Grade, Membership, Role

NO_CAMPAIGN = "This campaign does not exist, or you are not a member of it."
NO_ITEM = "This item is not part of the campaign."
NO_GRADE = "This grade does not exist, or it is not yours to see."


def _role_needed(roles: Iterable[str]) -> PermissionDenied:
    names = sorted(Role(role).label.lower() + "s" for role in roles)
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return PermissionDenied(f"Only this campaign's {who} can open this page.")


def roles_in(user, campaign: Campaign | int) -> set[str]:
    """The user's roles in the campaign; staff count as owners of every campaign (the one
    place that rule is written)."""
    if not user.is_authenticated:
        return set()
    roles = Membership.objects.roles_of(user, campaign)
    if user.is_staff:
        roles.add(Role.OWNER)
    return roles


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
        raise Http404(NO_CAMPAIGN)
    # One query for a member: their memberships, each carrying the campaign.
    memberships = list(
        Membership.objects.filter(user=user, campaign_id=campaign_id).select_related("campaign")
    )
    user_roles = {m.role for m in memberships}
    if memberships:
        campaign = memberships[0].campaign
    elif user.is_staff:
        try:
            campaign = Campaign.objects.get(pk=campaign_id)
        except Campaign.DoesNotExist:
            raise Http404(NO_CAMPAIGN) from None
    else:
        raise Http404(NO_CAMPAIGN)
    if user.is_staff:
        user_roles.add(Role.OWNER)
    if roles is not None and not user_roles.intersection(roles):
        raise _role_needed(roles)
    return campaign, user_roles


def get_item_for_member(
    user, campaign_id: int, item_id: int, roles: Iterable[str] | None = None
) -> tuple[CampaignItem, set[str]]:
    """Return (item with its campaign, proof and problem, the user's roles in the campaign).

    Same rules as `get_campaign_for_member`, checked in the same order, in two queries: the
    roles, then the item with its campaign.
    """
    if not user.is_authenticated:
        raise Http404(NO_CAMPAIGN)
    member_roles = Membership.objects.roles_of(user, campaign_id)
    user_roles = (member_roles | {Role.OWNER}) if user.is_staff else member_roles
    if not user_roles:
        raise Http404(NO_CAMPAIGN)
    if roles is not None and not user_roles.intersection(roles):
        # A membership proves the campaign exists; staff without one must not learn
        # from a 403 that a missing campaign exists.
        if not member_roles and not Campaign.objects.filter(pk=campaign_id).exists():
            raise Http404(NO_CAMPAIGN)
        raise _role_needed(roles)
    try:
        item = CampaignItem.objects.select_related("campaign", "proof__problem").get(
            pk=item_id, campaign_id=campaign_id
        )
    except CampaignItem.DoesNotExist:
        raise Http404(NO_ITEM) from None
    return item, user_roles


def get_grade_for_member(
    user, grade_id: int, roles: Iterable[str] | None = None
) -> tuple[Grade, set[str]]:
    """Return (a grade made in Proofdesk, the user's roles in its campaign).

    Visible to its grader and to the campaign's owners and adjudicators; to anyone else it
    does not exist (404), so blind campaigns cannot be read grade by grade. `roles` as in
    `get_campaign_for_member`; the grade's own grader passes without them.
    """
    if not user.is_authenticated:
        raise Http404(NO_GRADE)
    try:
        grade = Grade.objects.select_related("campaign", "proof__problem", "grader").get(
            pk=grade_id, origin=Grade.Origin.APP
        )
    except Grade.DoesNotExist:
        raise Http404(NO_GRADE) from None
    user_roles = Membership.objects.roles_of(user, grade.campaign)
    if user.is_staff:
        user_roles.add(Role.OWNER)
    is_grader = grade.grader_id == user.pk and Role.GRADER in user_roles
    if not is_grader and not user_roles.intersection({Role.OWNER, Role.ADJUDICATOR}):
        raise Http404(NO_GRADE)
    if roles is not None and not user_roles.intersection(roles):
        raise _role_needed(roles)
    return grade, user_roles
