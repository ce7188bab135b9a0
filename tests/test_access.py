"""The access helpers (annotate/access.py): who gets the object, a 404 or a 403."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotate.access import get_campaign_for_member, get_item_for_member
from annotate.models import Campaign, CampaignItem, Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

GRADER_ROLES = [Role.GRADER]
MISSING = 999_999


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ada_admin", password=PASSWORD, is_staff=True)


@pytest.fixture
def item(campaign) -> CampaignItem:
    return campaign.items.get()


@pytest.fixture
def other_item(owner, proof) -> CampaignItem:
    other = Campaign.objects.create(name="Other campaign", created_by=owner)
    return CampaignItem.objects.create(campaign=other, proof=proof)


# --- campaigns -------------------------------------------------------------------------------


def test_a_member_gets_the_campaign_and_their_roles(expert, campaign):
    found, roles = get_campaign_for_member(expert, campaign.pk, GRADER_ROLES)
    assert found == campaign and roles == {Role.GRADER}


def test_a_member_costs_one_query(expert, campaign, django_assert_num_queries):
    with django_assert_num_queries(1):
        get_campaign_for_member(expert, campaign.pk, GRADER_ROLES)


def test_campaigns_are_404_to_anonymous_users_and_outsiders(outsider, campaign):
    for user in (AnonymousUser(), outsider):
        with pytest.raises(Http404):
            get_campaign_for_member(user, campaign.pk)
        with pytest.raises(Http404):
            get_campaign_for_member(user, MISSING)


def test_a_member_without_the_role_is_refused(reviewer, campaign):
    with pytest.raises(PermissionDenied):
        get_campaign_for_member(reviewer, campaign.pk, GRADER_ROLES)


def test_staff_are_owners_of_every_campaign(staff, campaign):
    found, roles = get_campaign_for_member(staff, campaign.pk, [Role.OWNER])
    assert found == campaign and roles == {Role.OWNER}
    with pytest.raises(PermissionDenied):
        get_campaign_for_member(staff, campaign.pk, GRADER_ROLES)


def test_staff_get_404_for_a_missing_campaign(staff):
    for roles in (None, [Role.OWNER], GRADER_ROLES):
        with pytest.raises(Http404):
            get_campaign_for_member(staff, MISSING, roles)


# --- items -----------------------------------------------------------------------------------


def test_a_member_gets_the_item_with_campaign_proof_and_problem(
    expert, item, django_assert_num_queries
):
    with django_assert_num_queries(2):
        found, roles = get_item_for_member(expert, item.campaign_id, item.pk, GRADER_ROLES)
        assert (found.campaign.name, found.proof.problem.external_id) == (
            "Test campaign",
            "PB-Test-001",
        )
    assert found == item and roles == {Role.GRADER}


def test_items_are_404_to_anonymous_users_and_outsiders(outsider, item):
    for user in (AnonymousUser(), outsider):
        with pytest.raises(Http404):
            get_item_for_member(user, item.campaign_id, item.pk)
        with pytest.raises(Http404):
            get_item_for_member(user, MISSING, item.pk)


def test_a_missing_item_or_one_of_another_campaign_is_404(expert, item, other_item):
    for item_id in (MISSING, other_item.pk):
        with pytest.raises(Http404):
            get_item_for_member(expert, item.campaign_id, item_id, GRADER_ROLES)


def test_a_member_without_the_role_is_refused_before_the_item_is_looked_up(reviewer, item):
    for item_id in (item.pk, MISSING):
        with pytest.raises(PermissionDenied):
            get_item_for_member(reviewer, item.campaign_id, item_id, GRADER_ROLES)


def test_staff_are_owners_of_every_item(staff, item):
    found, roles = get_item_for_member(staff, item.campaign_id, item.pk, [Role.OWNER])
    assert found == item and roles == {Role.OWNER}
    with pytest.raises(PermissionDenied):
        get_item_for_member(staff, item.campaign_id, item.pk, GRADER_ROLES)
    with pytest.raises(PermissionDenied):
        get_item_for_member(staff, item.campaign_id, MISSING, GRADER_ROLES)


def test_staff_get_404_for_a_missing_campaign_or_item(staff, item, other_item):
    for roles in (None, [Role.OWNER], GRADER_ROLES):
        with pytest.raises(Http404):
            get_item_for_member(staff, MISSING, item.pk, roles)
    for roles in (None, [Role.OWNER]):
        for item_id in (MISSING, other_item.pk):
            with pytest.raises(Http404):
                get_item_for_member(staff, item.campaign_id, item_id, roles)


def test_a_staff_member_keeps_their_own_roles_too(staff, item):
    item.campaign.memberships.create(user=staff, role=Role.GRADER)
    _, roles = get_item_for_member(staff, item.campaign_id, item.pk, GRADER_ROLES)
    assert roles == {Role.GRADER, Role.OWNER}
    _, roles = get_campaign_for_member(staff, item.campaign_id, GRADER_ROLES)
    assert roles == {Role.GRADER, Role.OWNER}
