"""The item page of an adjudicated proof (annotate/views/pages.py, templates/annotate/
item_detail.html): the gold label names who adjudicated, why and when; an adjudication
campaign's item page speaks of adjudications, in the words of its kind
(annotate/work/kinds.py `WorkKind.noun`)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.test import TestCase

from annotate import gold
from annotate.adjudication import form
from annotate.models import Campaign, CampaignItem, Membership, Role
from annotate.work import commit, queue
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def adjudicator(django_user_model):
    return django_user_model.objects.create_user(
        "ada_adjudicator", password=PASSWORD, first_name="Ada", last_name="Lovelace"
    )


@pytest.fixture
def adj_campaign(owner, adjudicator, proof):
    adj = Campaign.objects.create(
        name="Round one", kind=Campaign.Kind.ADJUDICATE, overlap=1, created_by=owner
    )
    CampaignItem.objects.create(campaign=adj, proof=proof)
    Membership.objects.create(campaign=adj, user=owner, role=Role.OWNER)
    Membership.objects.create(campaign=adj, user=adjudicator, role=Role.ADJUDICATOR)
    return adj


def adjudicate(campaign, adjudicator, score="0.5", reason="The *parity* step is a gap."):
    item = queue.claim_next_item(campaign, adjudicator)
    assert item is not None
    with TestCase.captureOnCommitCallbacks(execute=True):  # the gold label, on commit
        made, _ = commit.submit(
            item,
            adjudicator,
            form(score, reason),
            active_seconds=30,
            submission_key=uuid.uuid4(),
        )
    return item, made


def page(client, item) -> str:
    response = client.get(f"/campaigns/{item.campaign_id}/items/{item.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_gold_label_names_the_adjudicator_the_reason_and_when(
    client, owner, campaign, adj_campaign, adjudicator, proof
):
    _, made = adjudicate(adj_campaign, adjudicator)
    grading_item = CampaignItem.objects.get(campaign=campaign, proof=proof)
    client.force_login(owner)
    html = page(client, grading_item)
    assert 'id="gold-provenance">Adjudicated<' in html
    assert 'id="gold-adjudicated"' in html
    assert "Adjudicated by <strong class=\"adjudicator\">Ada Lovelace</strong>" in html
    assert "(ada_adjudicator)" in html and "in Round one" in html
    assert made.updated_at.strftime("%Y-%m-%d %H:%M") in html
    assert "<em>parity</em>" in html  # the reason, rendered


def test_without_a_full_name_the_username_names_the_adjudicator(
    client, owner, campaign, adj_campaign, adjudicator, proof
):
    adjudicator.first_name = adjudicator.last_name = ""
    adjudicator.save()
    adjudicate(adj_campaign, adjudicator)
    client.force_login(owner)
    html = page(client, CampaignItem.objects.get(campaign=campaign, proof=proof))
    assert 'Adjudicated by <strong class="adjudicator">ada_adjudicator</strong>' in html


def test_an_edited_adjudication_is_named_with_its_version(
    client, owner, campaign, adj_campaign, adjudicator, proof
):
    item, made = adjudicate(adj_campaign, adjudicator)
    from annotate.adjudication import ADJUDICATING

    content = form("1", "On reflection, fine.")
    with TestCase.captureOnCommitCallbacks(execute=True):
        commit.edit(ADJUDICATING, made, adjudicator, content, expected_version=1, item=item)
    client.force_login(owner)
    html = page(client, CampaignItem.objects.get(campaign=campaign, proof=proof))
    assert "(version 2)" in html and "On reflection, fine." in html


def test_a_label_of_expert_grades_names_no_adjudicator(client, owner, campaign, expert, proof):
    from annotate.models import Grade

    Grade.objects.create(proof=proof, campaign=campaign, grader=expert, score=Decimal("1"))
    gold.recompute_gold_labels([proof.pk])
    client.force_login(owner)
    html = page(client, CampaignItem.objects.get(campaign=campaign, proof=proof))
    assert 'id="gold-label"' in html and 'id="gold-adjudicated"' not in html


def test_an_adjudication_campaigns_item_page_speaks_of_adjudications(
    client, owner, adj_campaign, adjudicator, proof
):
    item = CampaignItem.objects.get(campaign=adj_campaign, proof=proof)
    client.force_login(owner)
    before = page(client, item)
    assert "0 of 1 adjudication<" in before and "Not adjudicated yet." in before
    assert "grade" not in before.split('id="grades"')[1].split("</section>")[0].lower()

    adjudicate(adj_campaign, adjudicator, score="0.5", reason="The *parity* step is a gap.")
    html = page(client, item)
    section = html.split('id="grades"')[1].split("</section>")[0]
    assert "Adjudications (1 of 1)" in section
    assert '<span class="score">0.5</span> by ada_adjudicator' in section
    assert "<em>parity</em>" in section
    assert "No grades yet" not in html and "1 of 1 adjudication<" in html


def test_a_grading_campaigns_item_page_still_speaks_of_grades(client, owner, campaign, proof):
    client.force_login(owner)
    html = page(client, CampaignItem.objects.get(campaign=campaign, proof=proof))
    assert "Grades (0 of" in html and "No grades yet." in html
