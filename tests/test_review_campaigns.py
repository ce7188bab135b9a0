"""Making a review campaign from analyses chosen by filter: the domain functions
(annotate/campaigns.py), the owner's page and `manage.py create_review_campaign`."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotate import campaigns
from annotate.campaigns import analyses_matching, create_review_campaign
from annotate.inputs import InputError
from annotate.models import Campaign, CampaignItem, Membership, Problem, Role, order_key_for
from tests.import_support import row_counts
from tests.review_queue_support import add_analyses, add_proofs
from verification.models import Analysis

pytestmark = pytest.mark.django_db

URL = reverse("review_campaign_new")


@pytest.fixture
def library(campaign, proof):
    """Analyses that differ in one property each from the `base` set:

    - base: 3 by verifier-a scoring 1, of 3 proofs of an algebra problem;
    - other_model: 2 by verifier-b scoring 1 (same proofs as base);
    - zero: 2 by verifier-a scoring 0, of a geometry problem;
    - unscored: 1 by verifier-a with no score (parse status "no score");
    - in_campaign: 1 by verifier-a of the proof of the `campaign` fixture.
    """
    algebra = add_proofs(3, category="algebra")
    geometry = add_proofs(2, category="geometry")
    return {
        "base": add_analyses(algebra),
        "other_model": add_analyses(algebra[:2], model="verifier-b"),
        "zero": add_analyses(geometry, score="0"),
        "unscored": add_analyses(add_proofs(1, category="algebra"), score=None),
        "in_campaign": add_analyses([proof]),
        "algebra": algebra[0].problem,
        "campaign": campaign,
    }


def ids(*groups) -> list[int]:
    return sorted(a.pk for group in groups for a in group)


def matching(filters, **kwargs) -> list[int]:
    return list(analyses_matching(filters, **kwargs).values_list("pk", flat=True))


# --- the filters --------------------------------------------------------------------------


def test_no_filter_matches_every_analysis(library):
    assert matching({}) == sorted(Analysis.objects.values_list("pk", flat=True))


@pytest.mark.parametrize(
    "filters, groups",
    [
        ({"model": "verifier-b"}, ["other_model"]),
        ({"score": "0"}, ["zero"]),
        ({"score": "1", "model": "verifier-a"}, ["base", "in_campaign"]),
        ({"score": "none"}, ["unscored"]),
        ({"parse_status": "no_score"}, ["unscored"]),
        ({"category": "geometry"}, ["zero"]),
        ({"category": "algebra", "model": "verifier-a"}, ["base", "unscored"]),
    ],
)
def test_each_filter_narrows_the_selection(library, filters, groups):
    assert matching(filters) == ids(*(library[g] for g in groups))


def test_the_problem_filter_takes_one_or_several_problem_ids(library, problem):
    algebra = library["algebra"].external_id
    assert matching({"problem": algebra}) == ids(library["base"], library["other_model"])
    both = ids(library["base"], library["other_model"], library["in_campaign"])
    assert matching({"problem": f"{algebra}, {problem.external_id}"}) == both
    assert matching({"problem": [algebra, problem.external_id]}) == both


def test_the_campaign_filter_takes_analyses_of_the_campaigns_proofs(library):
    assert matching({"campaign": library["campaign"].pk}) == ids(library["in_campaign"])
    assert matching({"campaign": str(library["campaign"].pk)}) == ids(library["in_campaign"])


def test_a_review_campaign_does_not_repeat_analyses_under_the_campaign_filter(library, owner):
    """A review campaign has one item per analysis, several per proof: its proofs' other
    analyses come once each."""
    review, _ = create_review_campaign(owner, "R", {"problem": library["algebra"].external_id})
    assert review.items.count() == 5  # 3 proofs, 5 analyses
    assert matching({"campaign": review.pk}) == ids(library["base"], library["other_model"])


@pytest.mark.parametrize(
    "filters, field",
    [
        ({"score": "2"}, "score"),
        ({"score": "half"}, "score"),
        ({"parse_status": "fine"}, "parse_status"),
        ({"category": "topology"}, "category"),
        ({"problem": "PB-Nowhere"}, "problem"),
        ({"problem": 7}, "problem"),
        ({"campaign": "first"}, "campaign"),
        ({"campaign": 999_999}, "campaign"),
        ({"model": ["a", "b"]}, "model"),
        ({"model": "x" * 201}, "model"),
        ({"verifier": "a"}, "verifier"),
    ],
)
def test_a_bad_filter_is_refused_naming_it(library, filters, field):
    with pytest.raises(InputError) as refused:
        analyses_matching(filters)
    assert refused.value.field == field


def test_the_campaign_filter_names_only_the_campaigns_given(library):
    other = Campaign.objects.create(name="Not yours")
    with pytest.raises(InputError) as refused:
        analyses_matching({"campaign": other.pk}, campaigns=Campaign.objects.exclude(pk=other.pk))
    assert refused.value.field == "campaign"
    assert str(refused.value) == campaigns.NO_CAMPAIGN


# --- creating the campaign ----------------------------------------------------------------


def test_it_creates_a_review_campaign_with_one_item_per_analysis(library, owner):
    campaign, count = create_review_campaign(
        owner,
        "Review verifier-a",
        {"model": "verifier-a", "score": "1"},
        overlap=2,
        blind=False,
        instructions="Judge each claim.",
        seed=11,
    )
    chosen = library["base"] + library["in_campaign"]
    assert count == len(chosen) == campaign.items.count()
    assert (campaign.kind, campaign.overlap, campaign.blind, campaign.seed) == (
        Campaign.Kind.REVIEW_ANALYSES,
        2,
        False,
        11,
    )
    assert campaign.instructions == "Judge each claim."
    assert campaign.created_by == owner
    assert list(Membership.objects.filter(campaign=campaign).values_list("user", "role")) == [
        (owner.pk, Role.OWNER)
    ]
    items = {i.analysis_id: i for i in campaign.items.all()}
    assert sorted(items) == ids(chosen)
    for analysis in chosen:
        item = items[analysis.pk]
        assert item.proof_id == analysis.proof_id
        assert item.order_key == order_key_for(11, analysis.pk)
        assert (item.committed, item.lease_holder_id) == (0, None)


def test_items_are_written_in_batches_in_a_few_queries(
    owner, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(campaigns, "ITEM_BATCH", 40)
    add_analyses(add_proofs(100))
    with django_assert_max_num_queries(12):  # 3 batches of 40, whatever the count
        _, count = create_review_campaign(owner, "Batched", {})
    assert count == 100 == CampaignItem.objects.filter(campaign__name="Batched").count()


@pytest.mark.parametrize(
    "name, filters, options, field",
    [
        ("", {}, {}, "name"),
        ("   ", {}, {}, "name"),
        ("Test campaign", {}, {}, "name"),  # the conftest campaign's name
        ("New", {"score": "3"}, {}, "score"),
        ("New", {"model": "nobody"}, {}, "filters"),  # matches nothing
        ("New", {}, {"overlap": 0}, "overlap"),
        ("New", {}, {"overlap": "two"}, "overlap"),
        ("New", {}, {"seed": 2**40}, "seed"),
        ("New", {}, {"instructions": 5}, "instructions"),
    ],
)
def test_bad_input_creates_nothing(library, owner, name, filters, options, field):
    before = row_counts()
    campaigns_before = Campaign.objects.count()
    memberships_before = Membership.objects.count()
    with pytest.raises(InputError) as refused:
        create_review_campaign(owner, name, filters, **options)
    assert refused.value.field == field
    assert row_counts() == before
    assert Campaign.objects.count() == campaigns_before
    assert Membership.objects.count() == memberships_before


# --- the owner's page ---------------------------------------------------------------------


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("who", ["expert", "reviewer", "outsider"])
def test_only_owners_and_staff_may_open_the_page(client, library, request, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(URL).status_code == 403
    before = Campaign.objects.count()
    response = client.post(URL, {"name": "Mine", "model": "verifier-a"})
    assert response.status_code == 403
    assert Campaign.objects.count() == before


def test_staff_may_open_the_page_without_owning_a_campaign(client, library, outsider):
    outsider.is_staff = True
    outsider.save(update_fields=["is_staff"])
    client.force_login(outsider)
    response = client.get(URL, {"model": "verifier-b"})
    assert response.status_code == 200
    assert response.context["matching"] == 2


def test_the_page_counts_the_matching_analyses(
    client, library, owner, django_assert_max_num_queries
):
    client.force_login(owner)
    with django_assert_max_num_queries(8):
        response = client.get(URL, {"model": "verifier-a", "score": "1"})
    assert response.status_code == 200
    assert response.context["matching"] == 4
    assert "<strong>4</strong> matching analyses" in response.content.decode()
    # Only the campaigns the user owns are offered to the campaign filter.
    assert list(response.context["campaigns"]) == [library["campaign"]]


def test_an_htmx_change_renders_only_the_count(client, library, owner):
    client.force_login(owner)
    response = client.get(URL, {"category": "geometry"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert body.strip().startswith('<p id="preview"') and "<form" not in body
    assert "<strong>2</strong> matching analyses" in body


def test_a_bad_filter_is_shown_on_the_page_without_a_count(client, library, owner):
    client.force_login(owner)
    response = client.get(URL, {"score": "7"})
    assert response.status_code == 200
    assert response.context["matching"] is None
    assert response.context["error"].field == "score"
    assert "The score filter is 0, 0.5, 1 or none." in response.content.decode()


def test_a_campaign_the_owner_does_not_own_is_no_filter(client, library, owner):
    other = Campaign.objects.create(name="Someone else's")
    client.force_login(owner)
    response = client.get(URL, {"campaign": other.pk})
    assert response.context["matching"] is None
    assert response.context["error"].field == "campaign"


def test_posting_creates_the_campaign_and_opens_it(client, library, owner):
    client.force_login(owner)
    response = client.post(
        URL,
        {
            "name": "Review the judge",
            "model": "verifier-a",
            "problem": library["algebra"].external_id,
            "overlap": "2",
            "seed": "5",
            "blind": "on",
            "instructions": "Be fair.",
        },
    )
    campaign = Campaign.objects.get(name="Review the judge")
    assert response.status_code == 302
    assert response["Location"] == reverse("campaign_detail", args=[campaign.pk])
    assert (campaign.kind, campaign.overlap, campaign.seed, campaign.blind) == (
        "review",
        2,
        5,
        True,
    )
    assert sorted(campaign.items.values_list("analysis_id", flat=True)) == ids(library["base"])
    assert Membership.objects.filter(campaign=campaign, user=owner, role=Role.OWNER).exists()


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "", "model": "verifier-a"}, "name"),
        ({"name": "X", "model": "nobody"}, "filters"),
        ({"name": "X", "category": "topology"}, "category"),
        ({"name": "X", "overlap": "0"}, "overlap"),
    ],
)
def test_posting_bad_input_shows_the_error_and_creates_nothing(client, library, owner, data, field):
    client.force_login(owner)
    before = (Campaign.objects.count(), CampaignItem.objects.count(), Membership.objects.count())
    response = client.post(URL, data)
    assert response.status_code == 400
    assert response.context["error"].field == field
    assert 'role="alert"' in response.content.decode()
    after = (Campaign.objects.count(), CampaignItem.objects.count(), Membership.objects.count())
    assert after == before


def test_the_page_takes_get_and_post_only(client, owner, campaign):
    client.force_login(owner)
    assert client.put(URL).status_code == 405


# --- the command --------------------------------------------------------------------------


def test_the_command_creates_the_campaign(library, owner, capsys):
    call_command(
        "create_review_campaign",
        "--name", "From the shell",
        "--owner", owner.username,
        "--model", "verifier-a",
        "--score", "1",
        "--campaign", library["campaign"].name,
        "--overlap", "3",
    )  # fmt: skip
    campaign = Campaign.objects.get(name="From the shell")
    assert "with 1 analyses" in capsys.readouterr().out
    assert (campaign.kind, campaign.overlap, campaign.created_by) == ("review", 3, owner)
    assert list(campaign.items.values_list("analysis_id", flat=True)) == ids(library["in_campaign"])


def test_the_command_takes_several_problems(library, owner, problem):
    call_command(
        "create_review_campaign",
        "--name", "Two problems",
        "--owner", owner.username,
        "--problem", library["algebra"].external_id,
        "--problem", problem.external_id,
        "--model", "verifier-a",
    )  # fmt: skip
    items = Campaign.objects.get(name="Two problems").items
    assert sorted(items.values_list("analysis_id", flat=True)) == ids(
        library["base"], library["in_campaign"]
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--owner", "nobody"], "no user named 'nobody'"),
        (["--score", "2"], "score: The score filter is 0, 0.5, 1 or none."),
        (["--model", "nobody"], "filters: No analysis matches these filters."),
        (["--campaign", "No such campaign"], "campaign:"),
    ],
)
def test_the_command_refuses_bad_arguments_writing_nothing(library, owner, args, message):
    before = (Campaign.objects.count(), CampaignItem.objects.count())
    base = ["--name", "Refused", "--owner", owner.username]
    with pytest.raises(CommandError) as refused:
        call_command("create_review_campaign", *base, *args)
    assert message in str(refused.value)
    assert (Campaign.objects.count(), CampaignItem.objects.count()) == before


def test_scores_are_compared_as_numbers(library):
    """ "0.5", 0.5 and Decimal("0.5") are one filter."""
    add_analyses(add_proofs(1, problem=Problem.objects.first()), score="0.5")
    half = matching({"score": "0.5"})
    assert len(half) == 1 and matching({"score": 0.5}) == half
    assert matching({"score": Decimal("0.5")}) == half
