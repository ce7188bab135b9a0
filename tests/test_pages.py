"""Login, the campaign list, the campaign page and the read-only proof page."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotate import grading
from annotate.models import (
    Campaign,
    CampaignItem,
    Grade,
    Membership,
    Problem,
    Proof,
    Role,
    content_hash,
)
from annotate.work import queue
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def campaign_url(campaign: Campaign) -> str:
    return reverse("campaign_detail", args=[campaign.pk])


def item_url(campaign: Campaign, item: CampaignItem | None = None) -> str:
    item = item or campaign.items.get()
    return reverse("item_detail", args=[campaign.pk, item.pk])


def add_items(campaign: Campaign, count: int, *, prefix: str = "P") -> None:
    """`count` more proofs (on `count` problems) in `campaign`, each graded once."""
    problems = Problem.objects.bulk_create(
        Problem(external_id=f"{prefix}-{campaign.pk}-{i:03}", statement=f"Problem {i}.")
        for i in range(count)
    )
    proofs = Proof.objects.bulk_create(
        Proof(problem=p, text=f"Proof of {p.external_id}.", content_hash=content_hash(f"{p.pk}"))
        for p in problems
    )
    CampaignItem.objects.bulk_create(CampaignItem(campaign=campaign, proof=p) for p in proofs)
    grader = campaign.memberships.filter(role=Role.GRADER).first()
    if grader:
        Grade.objects.bulk_create(
            Grade(proof=p, campaign=campaign, grader=grader.user, score=1) for p in proofs
        )


# --- login and logout --------------------------------------------------------------------


def test_login_page_renders_a_form(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b"csrfmiddlewaretoken" in response.content


def test_login_with_right_password_lands_on_campaign_list(client, expert, campaign):
    response = client.post(
        reverse("login"), {"username": expert.username, "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("campaign_list")
    assert campaign.name in response.content.decode()


def test_login_with_wrong_password_is_refused(client, expert):
    response = client.post(reverse("login"), {"username": expert.username, "password": "nope"})
    assert response.status_code == 200
    assert b'class="error"' in response.content
    assert "_auth_user_id" not in client.session


def test_login_follows_next_to_the_page_asked_for(client, expert, campaign):
    response = client.post(
        reverse("login") + f"?next={campaign_url(campaign)}",
        {"username": expert.username, "password": PASSWORD, "next": campaign_url(campaign)},
    )
    assert response.status_code == 302
    assert response.url == campaign_url(campaign)


def test_login_refuses_to_redirect_off_site(client, expert):
    response = client.post(
        reverse("login"),
        {"username": expert.username, "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert response.url == reverse("campaign_list")


def test_logout_is_a_post_and_ends_the_session(client, expert):
    client.force_login(expert)
    assert client.get(reverse("logout")).status_code == 405
    assert "_auth_user_id" in client.session

    response = client.post(reverse("logout"))

    assert response.status_code == 302
    assert response.url == reverse("login")
    assert client.get(reverse("campaign_list")).status_code == 302


def test_logout_needs_the_csrf_token(expert):
    client = Client(enforce_csrf_checks=True)
    client.force_login(expert)

    assert client.post(reverse("logout")).status_code == 403
    assert "_auth_user_id" in client.session

    page = client.get(reverse("campaign_list"))
    token = page.context["csrf_token"]
    response = client.post(reverse("logout"), {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_login_needs_the_csrf_token(expert):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": expert.username, "password": PASSWORD})
    assert response.status_code == 403


def test_favicon_is_served_without_login(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response.url == "/static/img/favicon.svg"


# --- who may see what --------------------------------------------------------------------


@pytest.mark.parametrize("page", ["list", "campaign", "item"])
def test_every_page_sends_anonymous_users_to_login(client, campaign, page):
    url = {"list": reverse("campaign_list"), "campaign": campaign_url(campaign),
           "item": item_url(campaign)}[page]  # fmt: skip
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("page", ["campaign", "item"])
def test_outsider_gets_404(client, outsider, campaign, page):
    client.force_login(outsider)
    url = campaign_url(campaign) if page == "campaign" else item_url(campaign)
    assert client.get(url).status_code == 404


def test_outsider_sees_no_campaign_in_the_list(client, outsider, campaign):
    client.force_login(outsider)
    response = client.get(reverse("campaign_list"))
    assert response.status_code == 200
    assert campaign.name not in response.content.decode()
    assert "not a member of any campaign" in response.content.decode()


def test_missing_campaign_and_item_are_404(client, expert, campaign):
    client.force_login(expert)
    assert client.get(reverse("campaign_detail", args=[campaign.pk + 1000])).status_code == 404
    assert client.get(reverse("item_detail", args=[campaign.pk, 10**6])).status_code == 404


def test_item_of_another_campaign_is_404_through_this_one(client, expert, campaign, proof):
    other = Campaign.objects.create(name="Elsewhere")
    foreign_item = CampaignItem.objects.create(campaign=other, proof=proof)
    client.force_login(expert)
    assert client.get(item_url(campaign, foreign_item)).status_code == 404


@pytest.mark.parametrize("person", ["owner", "expert", "reviewer"])
def test_members_see_campaign_and_item(client, campaign, proof, person, request):
    client.force_login(request.getfixturevalue(person))
    page = client.get(campaign_url(campaign))
    assert page.status_code == 200
    assert campaign.name in page.content.decode()
    assert item_url(campaign) in page.content.decode()

    item = client.get(item_url(campaign))
    assert item.status_code == 200
    body = item.content.decode()
    assert "PB-Test-001" in body
    assert '<span class="math inline">\\gcd(p,q)=1</span>' in body


def test_staff_see_every_campaign(client, django_user_model, campaign):
    admin = django_user_model.objects.create_user("ada_admin", password=PASSWORD, is_staff=True)
    client.force_login(admin)
    assert campaign.name in client.get(reverse("campaign_list")).content.decode()
    assert client.get(item_url(campaign)).status_code == 200


@pytest.mark.parametrize(
    "show_reference, show_guidelines", [(True, True), (False, True), (True, False), (False, False)]
)
def test_reference_and_guidelines_follow_campaign_flags_for_graders(
    client, expert, owner, campaign, show_reference, show_guidelines
):
    Campaign.objects.filter(pk=campaign.pk).update(
        show_reference_solution=show_reference, show_guidelines=show_guidelines
    )
    client.force_login(expert)
    body = client.get(item_url(campaign)).content.decode()
    assert ("Reference solution" in body) is show_reference
    assert ("Grading guidelines" in body) is show_guidelines
    assert ("Set up the contradiction" in body) is show_guidelines

    client.force_login(owner)
    body = client.get(item_url(campaign)).content.decode()
    assert "Reference solution" in body
    assert "Set up the contradiction" in body


@pytest.mark.parametrize("page", ["list", "campaign", "item"])
def test_pages_refuse_post(client, expert, campaign, page):
    client.force_login(expert)
    url = {"list": reverse("campaign_list"), "campaign": campaign_url(campaign),
           "item": item_url(campaign)}[page]  # fmt: skip
    assert client.post(url).status_code == 405


# --- rendering and htmx ------------------------------------------------------------------


def test_user_text_is_escaped(client, expert, campaign, proof):
    Problem.objects.filter(pk=proof.problem_id).update(
        statement="<script>alert('statement')</script> Show $a<b$.",
        external_id="<b>PB</b>",
    )
    Proof.objects.filter(pk=proof.pk).update(
        text="<img src=x onerror=alert(1)> fine", generator_model="<i>model</i>"
    )
    Campaign.objects.filter(pk=campaign.pk).update(name="<script>alert('name')</script>")
    client.force_login(expert)

    body = client.get(item_url(campaign)).content.decode()

    assert "<script>alert(" not in body
    assert "&lt;script&gt;alert(" in body
    assert "<img src=x" not in body
    assert "&lt;b&gt;PB&lt;/b&gt;" in body
    assert "&lt;i&gt;model&lt;/i&gt;" in body
    assert '<span class="math inline">a&lt;b</span>' in body
    listing = client.get(reverse("campaign_list")).content.decode()
    assert "<script>alert('name')" not in listing


def test_campaign_page_answers_htmx_with_the_items_fragment(client, expert, campaign):
    add_items(campaign, 60)
    client.force_login(expert)

    response = client.get(campaign_url(campaign) + "?page=2", HTTP_HX_REQUEST="true")

    body = response.content.decode().strip()
    assert response.status_code == 200
    assert body.startswith('<section id="items"')
    assert body.endswith("</section>")
    assert "<html" not in body and "<progress" not in body
    assert "page 2 of 2" in body
    assert 'hx-get="?page=1"' in body and 'href="?page=1"' in body


def test_campaign_page_without_htmx_is_the_whole_page(client, expert, campaign):
    client.force_login(expert)
    body = client.get(campaign_url(campaign)).content.decode()
    assert body.lstrip().startswith("<!doctype html>")
    assert '<section id="items"' in body


def _grade_next(campaign, grader, score: str) -> None:
    item = queue.claim_next_item(campaign, grader)
    grading.submit_grade(
        item, grader, score=score, comment="", issues=[], active_seconds=5,
        submission_key=str(uuid.uuid4()),
    )  # fmt: skip


def test_campaign_bar_counts_grades_not_only_complete_items(client, expert, expert2, campaign):
    _grade_next(campaign, expert, "1")
    client.force_login(expert)
    page = client.get(campaign_url(campaign)).content.decode()
    # The first grade moves the bar, although no item has all its grades yet.
    assert "1 of 2 grades (50 %) · 0 of 1 item complete" in page
    assert '<progress max="2" value="1"' in page
    assert "1 / 2" in page
    _grade_next(campaign, expert2, "0")
    page = client.get(campaign_url(campaign)).content.decode()
    assert "2 of 2 grades (100 %) · 1 of 1 item complete" in page
    assert "2 / 2" in page


# --- query counts do not grow with the data ----------------------------------------------------


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_campaign_page_queries_do_not_grow_with_items(
    client, expert, campaign, django_assert_max_num_queries
):
    client.force_login(expert)
    add_items(campaign, 4)
    small = count_queries(client, campaign_url(campaign))
    add_items(campaign, 55, prefix="Q")
    with django_assert_max_num_queries(7):
        large = count_queries(client, campaign_url(campaign))
    assert large == small


def test_item_page_queries_are_bounded(client, expert, campaign, django_assert_max_num_queries):
    path = item_url(campaign)
    client.force_login(expert)
    with django_assert_max_num_queries(6):
        client.get(path)


def test_campaign_list_queries_do_not_grow_with_campaigns(
    client, expert, django_assert_max_num_queries
):
    def make_campaigns(count: int, start: int) -> None:
        campaigns = Campaign.objects.bulk_create(
            Campaign(name=f"Round {i}") for i in range(start, start + count)
        )
        Membership.objects.bulk_create(
            Membership(campaign=c, user=expert, role=Role.GRADER) for c in campaigns
        )
        for c in campaigns[:3]:
            add_items(c, 2)

    client.force_login(expert)
    make_campaigns(5, 0)
    small = count_queries(client, reverse("campaign_list"))
    make_campaigns(55, 5)
    with django_assert_max_num_queries(4):  # session, user, campaigns, "may create?"
        large = count_queries(client, reverse("campaign_list"))
    assert large == small
    assert "Round 59" in client.get(reverse("campaign_list")).content.decode()


def test_campaign_list_counts_committed_work_once_per_item_whatever_the_roles(
    client, owner, campaign
):
    """An owner who also grades has two memberships: the counts must not double."""
    Membership.objects.create(campaign=campaign, user=owner, role=Role.GRADER)
    items = list(campaign.items.all())
    CampaignItem.objects.filter(pk=items[0].pk).update(committed=2)
    client.force_login(owner)
    response = client.get(reverse("campaign_list"))
    row = next(c for c in response.context["campaigns"] if c.pk == campaign.pk)
    assert (row.item_count, row.committed) == (len(items), 2)
    assert reverse("review_campaign_new") in response.content.decode()


def test_only_campaign_owners_are_offered_a_new_review_campaign(client, expert, campaign):
    client.force_login(expert)  # a grader of the campaign, owner of none
    html = client.get(reverse("campaign_list")).content.decode()
    assert reverse("review_campaign_new") not in html
