"""Sending disagreements to adjudication from the owners' list (`adjudicate_disagreements`,
verification/views.py): the filtered open disagreements' proofs become one new adjudication
campaign; who may, which method, CSRF, and an empty choice (a clear error, nothing made)."""

from __future__ import annotations

import pytest
from django.test import Client

from annotate.models import Campaign, CampaignItem, Membership, Problem, Role
from tests.conftest import PASSWORD
from tests.test_disagreements import analysis, app_grade, imported_grade, new_proof
from verification.disagreements import record_disagreements
from verification.models import Disagreement

pytestmark = pytest.mark.django_db

URL = "/disagreements/adjudicate/"
LIST = "/disagreements/"


@pytest.fixture
def adjudicator(django_user_model):
    return django_user_model.objects.create_user("ada_adjudicator", password=PASSWORD)


@pytest.fixture
def contested(problem, proof, campaign, expert, expert2):
    """Three proofs of `campaign` (owned by `owner`): `proof` with experts apart (1 and 0),
    `verified` where the expert and a verifier part, and `resolved` whose disagreement is
    settled; plus a contested proof of another owner's campaign."""
    app_grade(proof, campaign, expert, "1")
    app_grade(proof, campaign, expert2, "0")
    other_problem = Problem.objects.create(external_id="PB-Test-002", statement="S")
    verified = new_proof(other_problem, generator_model="gen-b")
    CampaignItem.objects.create(campaign=campaign, proof=verified)
    app_grade(verified, campaign, expert, "1")
    analysis(verified, "0", model="verifier-z")
    resolved = new_proof(problem)
    CampaignItem.objects.create(campaign=campaign, proof=resolved)
    app_grade(resolved, campaign, expert, "1")
    app_grade(resolved, campaign, expert2, "0")
    other = Campaign.objects.create(name="Not yours")
    elsewhere = new_proof(Problem.objects.create(external_id="PB-Else-003", statement="S"))
    CampaignItem.objects.create(campaign=other, proof=elsewhere)
    imported_grade(elsewhere, "1", "a")
    imported_grade(elsewhere, "0", "b")
    record_disagreements([proof.pk, verified.pk, resolved.pk, elsewhere.pk])
    Disagreement.objects.filter(proof=resolved).resolve(Disagreement.Resolution.ADJUDICATED)
    return {"proof": proof, "verified": verified, "resolved": resolved, "elsewhere": elsewhere}


def adjudication_campaigns():
    return Campaign.objects.filter(kind=Campaign.Kind.ADJUDICATE)


def proofs_of(campaign: Campaign) -> set[int]:
    return set(CampaignItem.objects.filter(campaign=campaign).values_list("proof_id", flat=True))


def test_an_owner_sends_the_open_disagreements_to_one_new_campaign(
    client, owner, adjudicator, contested
):
    client.force_login(owner)
    response = client.post(URL, {"name": "Round 1", "adjudicators": "ada_adjudicator"})
    made = adjudication_campaigns().get()
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{made.pk}/"
    # Exactly the proofs with an open disagreement the owner may list: not the resolved one,
    # not the other owner's.
    assert proofs_of(made) == {contested["proof"].pk, contested["verified"].pk}
    assert made.name == "Round 1" and made.overlap == 1
    roles = set(Membership.objects.filter(campaign=made).values_list("user__username", "role"))
    assert roles == {("olga_owner", Role.OWNER), ("ada_adjudicator", Role.ADJUDICATOR)}
    followed = client.get(response["Location"])
    assert "with 2 proofs to adjudicate" in followed.content.decode()
    assert 'data-live-what="as adjudications come in"' in followed.content.decode()


@pytest.mark.parametrize(
    ("filters", "chosen"),
    [
        ({"kind": "experts_vs_verifier"}, {"verified"}),
        ({"kind": "expert_vs_expert"}, {"proof"}),
        ({"problem": "PB-Test-002"}, {"verified"}),
        ({"model": "verifier-z"}, {"verified"}),
        ({"min_gap": "1"}, {"proof", "verified"}),
        # A resolved disagreement is listed but never sent: only open ones are.
        ({"status": "all"}, {"proof", "verified"}),
    ],
)
def test_the_filters_decide_which_proofs_are_sent(client, owner, contested, filters, chosen):
    client.force_login(owner)
    response = client.post(URL, {"name": "Filtered", **filters})
    assert response.status_code == 302
    assert proofs_of(adjudication_campaigns().get()) == {contested[k].pk for k in chosen}


def test_the_campaign_filter_is_honoured(client, owner, campaign, contested, problem):
    mine = Campaign.objects.create(name="Second", created_by=owner)
    Membership.objects.create(campaign=mine, user=owner, role=Role.OWNER)
    CampaignItem.objects.create(campaign=mine, proof=contested["verified"])
    client.force_login(owner)
    assert client.post(URL, {"name": "Only second", "campaign": mine.pk}).status_code == 302
    assert proofs_of(adjudication_campaigns().get()) == {contested["verified"].pk}


def test_every_page_of_the_list_is_sent(client, owner, campaign, problem, expert, expert2):
    proofs = [new_proof(problem) for _ in range(55)]  # more than a page (50)
    for p in proofs:
        CampaignItem.objects.create(campaign=campaign, proof=p)
        app_grade(p, campaign, expert, "1")
        app_grade(p, campaign, expert2, "0")
    record_disagreements([p.pk for p in proofs])
    client.force_login(owner)
    assert client.post(URL, {"name": "All of them", "page": "2"}).status_code == 302
    assert proofs_of(adjudication_campaigns().get()) == {p.pk for p in proofs}


@pytest.mark.parametrize("who", ["expert", "reviewer", "outsider", "adjudicator"])
def test_anyone_but_an_owner_is_refused_and_nothing_is_made(client, request, contested, who):
    client.force_login(request.getfixturevalue(who))
    response = client.post(URL, {"name": "Sneaky"})
    assert response.status_code == 403
    assert not adjudication_campaigns().exists()


def test_anonymous_is_sent_to_log_in_and_nothing_is_made(client, contested):
    response = client.post(URL, {"name": "Sneaky"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not adjudication_campaigns().exists()


def test_get_is_refused(client, owner, contested):
    client.force_login(owner)
    assert client.get(URL, {"name": "By GET"}).status_code == 405
    assert not adjudication_campaigns().exists()


def test_csrf_is_enforced(owner, contested):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    assert browser.post(URL, {"name": "No token"}).status_code == 403
    assert not adjudication_campaigns().exists()
    # The list's form carries the token, and with it the same post goes through.
    page = browser.get(LIST)
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    token = str(page.context["csrf_token"])
    response = browser.post(URL, {"name": "With token", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert adjudication_campaigns().count() == 1


def test_an_empty_choice_is_a_clear_error_and_nothing_is_made(client, owner, contested):
    client.force_login(owner)
    response = client.post(URL, {"name": "Nothing", "problem": "PB-None-999"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "No open disagreement matches these filters. Nothing was created" in body
    assert not adjudication_campaigns().exists()
    # Only resolved disagreements match: nothing open to send either.
    response = client.post(URL, {"name": "Resolved only", "status": "resolved"})
    assert response.status_code == 400
    assert "No open disagreement matches these filters." in response.content.decode()
    assert not adjudication_campaigns().exists()


def test_a_bad_filter_or_field_is_refused_and_nothing_is_made(client, owner, contested):
    client.force_login(owner)
    response = client.post(URL, {"name": "Bad gap", "min_gap": "lots"})
    assert response.status_code == 400 and "Enter a number" in response.content.decode()
    response = client.post(URL, {"name": "Bad adjudicator", "adjudicators": "nobody_here"})
    assert response.status_code == 400
    assert "nobody_here" in response.content.decode()
    response = client.post(URL, {"name": ""})
    assert response.status_code == 400
    assert not adjudication_campaigns().exists()
    # The form is shown again with what was typed.
    response = client.post(URL, {"name": "Kept", "adjudicators": "nobody_here"})
    assert 'value="Kept"' in response.content.decode()
