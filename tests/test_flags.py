""" "The problem statement is wrong" flags stay in the campaign they were raised in.

The rule (annotate/flags.py): members of the flag's campaign see it in full; nobody else
sees its note or who raised it; owners of another campaign with the same problem see only
how many open flags it has elsewhere.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotate import flags
from annotate.models import Campaign, CampaignItem, Membership, ProblemFlag, Proof, Role
from annotate.work import queue

pytestmark = pytest.mark.django_db

NOTE = "Zebra-note: n must be odd"


def lease(item: CampaignItem, grader) -> CampaignItem:
    CampaignItem.objects.filter(pk=item.pk).update(
        lease_holder=grader, lease_expires_at=timezone.now() + timedelta(hours=1)
    )
    item.refresh_from_db()
    return item


@pytest.fixture
def other_campaign(proof, django_user_model) -> Campaign:
    """Campaign B: another proof of the same problem, its own owner and grader."""
    b = Campaign.objects.create(name="Campaign B", overlap=1)
    other = Proof.objects.create(problem=proof.problem, text="A different attempt.")
    CampaignItem.objects.create(campaign=b, proof=other)
    for name, role in [("bob_owner_b", Role.OWNER), ("bella_raiser_b", Role.GRADER)]:
        user = django_user_model.objects.create_user(username=name, password="x")
        Membership.objects.create(campaign=b, user=user, role=role)
    return b


@pytest.fixture
def flag_in_b(other_campaign) -> ProblemFlag:
    raiser = other_campaign.memberships.get(role=Role.GRADER).user
    item = lease(other_campaign.items.get(), raiser)
    queue.skip_item(item, raiser, "statement_wrong", NOTE)
    return ProblemFlag.objects.get()


def test_a_flag_raised_in_b_is_not_shown_on_a_grading_page_in_a(
    client, campaign, expert, flag_in_b
):
    item = lease(campaign.items.get(), expert)
    client.force_login(expert)
    html = client.get(reverse("grading_page", args=[campaign.pk, item.pk])).content.decode()
    assert "flagged as wrong" not in html
    assert "Zebra-note" not in html and "bella_raiser_b" not in html


def test_a_flag_raised_in_b_is_not_in_a_api(client, campaign, expert, owner, flag_in_b):
    item = lease(campaign.items.get(), expert)
    path = reverse("api_item", args=[campaign.pk, item.pk])
    client.force_login(expert)
    body = client.get(path).json()
    assert body["problem"]["flags"] == []
    assert "flagged_elsewhere" not in body["problem"]
    client.force_login(owner)
    body = client.get(path).json()
    assert body["problem"]["flags"] == []
    # Owners learn that the problem is flagged elsewhere, and nothing else about it.
    assert body["problem"]["flagged_elsewhere"] == 1
    assert "Zebra-note" not in str(body) and "bella_raiser_b" not in str(body)


def test_owner_of_a_sees_only_that_the_problem_is_flagged_elsewhere(
    client, campaign, owner, flag_in_b
):
    client.force_login(owner)
    item = campaign.items.get()
    html = client.get(reverse("item_detail", args=[campaign.pk, item.pk])).content.decode()
    assert "flagged as wrong in 1 other campaign" in html
    assert "Zebra-note" not in html and "bella_raiser_b" not in html and "Campaign B" not in html
    html = client.get(reverse("grading_progress", args=[campaign.pk])).content.decode()
    assert "Zebra-note" not in html and "bella_raiser_b" not in html


def test_within_its_campaign_the_flag_is_shown_in_full(client, other_campaign, flag_in_b):
    owner_b = other_campaign.memberships.get(role=Role.OWNER).user
    client.force_login(owner_b)
    item = other_campaign.items.get()
    html = client.get(reverse("item_detail", args=[other_campaign.pk, item.pk])).content.decode()
    assert NOTE in html and "bella_raiser_b" in html
    html = client.get(reverse("grading_progress", args=[other_campaign.pk])).content.decode()
    assert NOTE in html and "bella_raiser_b" in html
    body = client.get(reverse("api_item", args=[other_campaign.pk, item.pk])).json()
    assert [(f["note"], f["raised_by"]) for f in body["problem"]["flags"]] == [
        (NOTE, "bella_raiser_b")
    ]
    assert body["problem"]["flagged_elsewhere"] == 0


def test_graders_of_a_see_no_elsewhere_count(client, campaign, expert, flag_in_b):
    client.force_login(expert)  # a grader of A, not an owner
    item = campaign.items.get()
    html = client.get(reverse("item_detail", args=[campaign.pk, item.pk])).content.decode()
    assert "other campaign" not in html and "Zebra-note" not in html


def test_flag_queries_follow_the_rule(campaign, other_campaign, flag_in_b):
    problem = flag_in_b.problem
    assert list(flags.open_flags(campaign, problem)) == []
    assert list(flags.open_flags(other_campaign, problem)) == [flag_in_b]
    assert list(flags.campaign_flags(campaign)) == []
    assert flags.flagged_elsewhere(campaign, problem) == 1
    assert flags.flagged_elsewhere(other_campaign, problem) == 0
    # A second raiser in B: still one other campaign.
    second = other_campaign.memberships.get(role=Role.OWNER).user
    ProblemFlag.objects.create(problem=problem, campaign=other_campaign, raised_by=second)
    assert flags.flagged_elsewhere(campaign, problem) == 1
    ProblemFlag.objects.filter(problem=problem).update(resolved=True)
    assert flags.flagged_elsewhere(campaign, problem) == 0
    assert list(flags.open_flags(other_campaign, problem)) == []
