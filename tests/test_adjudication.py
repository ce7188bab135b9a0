"""Adjudication, the third kind of expert work (annotate/adjudication.py and its page,
annotate/views/adjudication.py): who may adjudicate (never a grader of the proof), the
evidence the page shows, submit / edit / 409 / history on the shared machinery, the blind
rule between adjudicators, making adjudication campaigns, and in Chromium an adjudicator
resolving a proof by keyboard."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from annotate.adjudication import form
from annotate.campaigns import create_adjudication_campaign
from annotate.inputs import InputError
from annotate.models import (
    Adjudication,
    AdjudicationHistory,
    Campaign,
    CampaignItem,
    Draft,
    GoldLabel,
    Grade,
    GradeIssue,
    Membership,
    Proof,
    Review,
    Role,
)
from annotate.work import commit, queue
from tests.browser import run_orm
from tests.conftest import PASSWORD
from verification.models import Analysis, Claim

pytestmark = pytest.mark.django_db


@pytest.fixture
def adjudicator(django_user_model):
    return django_user_model.objects.create_user("ada_adjudicator", password=PASSWORD)


@pytest.fixture
def adjudicator2(django_user_model):
    return django_user_model.objects.create_user("abe_adjudicator", password=PASSWORD)


@pytest.fixture
def adj_campaign(owner, adjudicator, adjudicator2, expert, reviewer, proof, campaign):
    """A blind adjudication campaign of the proof; `expert` (a grader of the grading
    campaign) is also one of its adjudicators, `reviewer` only a grader here."""
    adj = Campaign.objects.create(
        name="Adjudication", kind=Campaign.Kind.ADJUDICATE, overlap=2, created_by=owner
    )
    CampaignItem.objects.create(campaign=adj, proof=proof)
    for user, role in [
        (owner, Role.OWNER),
        (adjudicator, Role.ADJUDICATOR),
        (adjudicator2, Role.ADJUDICATOR),
        (expert, Role.ADJUDICATOR),
        (reviewer, Role.GRADER),
    ]:
        Membership.objects.create(campaign=adj, user=user, role=role)
    return adj


@pytest.fixture
def evidence(proof, campaign, expert, expert2, reviewer, owner):
    """Two expert grades (one with an issue), an imported grade, a verifier analysis with a
    claim and a review of it."""
    grade = Grade.objects.create(
        proof=proof, campaign=campaign, grader=expert, score=Decimal("1"), comment="Clean."
    )
    Grade.objects.create(proof=proof, campaign=campaign, grader=expert2, score=Decimal("0"))
    GradeIssue.objects.create(grade=grade, note="Check the parity step", severity="minor")
    Grade.objects.create(
        proof=proof,
        origin=Grade.Origin.IMPORTED,
        external_grader="IMO marker",
        import_source="contest.jsonl",
        score=Decimal("0.5"),
        comment="Half marks",
    )
    analysis = Analysis.objects.create(
        proof=proof,
        text="The proof never shows q is even.",
        text_hash="h" * 64,
        model="verifier-7b",
        score=Decimal("0"),
        parse_status="ok",
    )
    claim = Claim.objects.create(
        analysis=analysis, order=1, text="q is never shown to be even", anchor_method="unanchored"
    )
    review_campaign = Campaign.objects.create(
        name="Review", kind=Campaign.Kind.REVIEW_ANALYSES, created_by=owner
    )
    item = CampaignItem.objects.create(campaign=review_campaign, proof=proof, analysis=analysis)
    review = Review.objects.create(
        campaign=review_campaign,
        item=item,
        analysis=analysis,
        reviewer=reviewer,
        score=Decimal("1"),
        comment="Spot on.",
    )
    review.verdicts.create(claim=claim, verdict="real", note="indeed")
    return analysis


def claimed(campaign, user) -> CampaignItem:
    item = queue.claim_next_item(campaign, user)
    assert item is not None
    return item


def page_url(item: CampaignItem, endpoint: str = "") -> str:
    return f"/campaigns/{item.campaign_id}/adjudicate/{item.pk}/{endpoint}"


def post_form(score="0.5", reason="The gap in step 2 is real but fixable.", **extra):
    return {"score": score, "reason": reason, "comment": "", "active_seconds": "30", **extra}


# -- who may adjudicate -----------------------------------------------------------------------


def test_the_queue_never_hands_a_proof_to_an_adjudicator_who_graded_it(
    adj_campaign, expert, adjudicator, campaign, proof
):
    Grade.objects.create(proof=proof, campaign=campaign, grader=expert, score=Decimal("1"))
    assert queue.claim_next_item(adj_campaign, expert) is None
    assert queue.claim_next_item(adj_campaign, adjudicator) is not None


def test_an_adjudicator_who_graded_the_proof_is_refused_by_page_and_submit(
    client, adj_campaign, expert, campaign, proof
):
    item = claimed(adj_campaign, expert)  # claimed before grading it elsewhere
    Grade.objects.create(proof=proof, campaign=campaign, grader=expert, score=Decimal("1"))
    client.force_login(expert)
    response = client.get(page_url(item))
    assert response.status_code == 403
    assert "You graded this proof yourself" in response.content.decode()
    response = client.post(page_url(item, "submit/"), post_form(submission_key=uuid.uuid4()))
    assert response.status_code == 403
    with pytest.raises(PermissionDenied, match="graded this proof"):
        commit.submit(
            item, expert, form("1", "fine"), active_seconds=0, submission_key=uuid.uuid4()
        )
    assert not Adjudication.objects.exists()


def test_graders_are_refused_and_outsiders_see_nothing(
    client, adj_campaign, reviewer, outsider, adjudicator
):
    item = claimed(adj_campaign, adjudicator)
    client.force_login(reviewer)  # a grader of this campaign
    assert client.get(page_url(item)).status_code == 403
    assert client.post(f"/campaigns/{adj_campaign.pk}/adjudicate/next/").status_code == 403
    client.force_login(outsider)
    assert client.get(page_url(item)).status_code == 404
    assert client.get(f"/campaigns/{adj_campaign.pk}/adjudicate/").status_code == 404
    client.logout()
    assert client.get(page_url(item)).status_code == 302


def test_an_adjudicator_opens_only_the_proof_leased_to_them(
    client, adj_campaign, adjudicator, adjudicator2
):
    item = claimed(adj_campaign, adjudicator)
    client.force_login(adjudicator2)
    response = client.get(page_url(item))
    assert response.status_code == 403
    assert "not assigned to you" in response.content.decode()


def test_the_submit_endpoint_takes_only_post(client, adj_campaign, adjudicator):
    item = claimed(adj_campaign, adjudicator)
    client.force_login(adjudicator)
    assert client.get(page_url(item, "submit/")).status_code == 405


# -- the page ---------------------------------------------------------------------------------


def test_the_page_shows_every_grade_analysis_claim_and_review_side_by_side(
    client, adj_campaign, adjudicator, evidence, django_assert_max_num_queries
):
    item = claimed(adj_campaign, adjudicator)
    client.force_login(adjudicator)
    with django_assert_max_num_queries(30):
        response = client.get(page_url(item))
    html = response.content.decode()
    assert response.status_code == 200
    for text in (
        "Clean.",
        "Check the parity step",
        "emmy_expert",
        "david_expert",
        "IMO marker",
        "Half marks",
        "verifier-7b",
        "q is never shown to be even",
        "rita_reviewer",
        "Spot on.",
        "indeed",
        'id="evidence-grades"',
        'id="evidence-analyses"',
    ):
        assert text in html, text
    assert 'name="reason"' in html and 'data-draft-key="proofdesk-draft:' in html
    # Beside the form, whatever the proof's length: every score, linked to its card.
    glance = html.split('id="glance"')[1].split("</section>")[0]
    grade_ids = set(Grade.objects.filter(proof=item.proof).values_list("pk", flat=True))
    assert len(grade_ids) == 3
    assert all(f'href="#grade-{pk}"' in glance for pk in grade_ids)
    assert 'href="#analysis-' in glance and 'href="#evidence"' in glance


def test_the_page_shows_the_verifier_mean_the_release_shipped(
    client, adj_campaign, adjudicator, proof
):
    item = claimed(adj_campaign, adjudicator)
    client.force_login(adjudicator)
    assert 'id="release-mean"' not in client.get(page_url(item)).content.decode()
    proof.metadata = {**(proof.metadata or {}), "average_automatic_rating": 0.8125}
    proof.save(update_fields=["metadata"])
    html = client.get(page_url(item)).content.decode()
    assert 'id="release-mean"' in html
    assert 'verifier mean: <span class="score">0.8125</span>' in html


def test_other_adjudications_are_hidden_until_this_adjudicator_commits(
    client, adj_campaign, adjudicator, adjudicator2
):
    item = claimed(adj_campaign, adjudicator2)
    commit.submit(
        item,
        adjudicator2,
        form("0", "SECRET-REASON"),
        active_seconds=0,
        submission_key=uuid.uuid4(),
    )
    item = claimed(adj_campaign, adjudicator)
    client.force_login(adjudicator)
    assert "SECRET-REASON" not in client.get(page_url(item)).content.decode()
    client.post(page_url(item, "submit/"), post_form(submission_key=uuid.uuid4()))
    assert "SECRET-REASON" in client.get(page_url(item)).content.decode()


def test_the_campaign_page_offers_start_adjudicating(client, adj_campaign, adjudicator):
    client.force_login(adjudicator)
    html = client.get(f"/campaigns/{adj_campaign.pk}/").content.decode()
    assert "Start adjudicating" in html
    assert f"/campaigns/{adj_campaign.pk}/adjudicate/next/" in html


# -- submit, edit, 409, history ---------------------------------------------------------------


def test_a_submit_commits_sets_the_gold_label_and_opens_the_next(
    client, adj_campaign, adjudicator, proof, django_capture_on_commit_callbacks
):
    item = claimed(adj_campaign, adjudicator)
    client.force_login(adjudicator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page_url(item, "submit/"), post_form(submission_key=uuid.uuid4()))
    assert response.status_code == 302
    assert f"/campaigns/{adj_campaign.pk}/adjudicate/" in response["Location"]
    made = Adjudication.objects.get()
    assert (made.score, made.adjudicator, made.version) == (Decimal("0.5"), adjudicator, 1)
    assert AdjudicationHistory.objects.get(adjudication=made).new["score"] == "0.5"
    label = GoldLabel.objects.get(proof=proof)
    assert (label.provenance, label.reason) == ("adjudicated", made.reason)
    assert CampaignItem.objects.get(pk=item.pk).committed == 1


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_submit_without_a_reason_is_refused_and_nothing_written(
    client, adj_campaign, adjudicator, reason
):
    item = claimed(adj_campaign, adjudicator)
    client.force_login(adjudicator)
    response = client.post(
        page_url(item, "submit/"), post_form(reason=reason, submission_key=uuid.uuid4())
    )
    assert response.status_code == 400
    assert "Say why the proof gets this gold score" in response.content.decode()
    assert not Adjudication.objects.exists()


def test_a_submit_outside_the_scale_is_refused(client, adj_campaign, adjudicator):
    item = claimed(adj_campaign, adjudicator)
    client.force_login(adjudicator)
    response = client.post(
        page_url(item, "submit/"), post_form(score="0.7", submission_key=uuid.uuid4())
    )
    assert response.status_code == 400
    assert not Adjudication.objects.exists()


def test_a_retried_submit_is_idempotent(client, adj_campaign, adjudicator):
    item = claimed(adj_campaign, adjudicator)
    client.force_login(adjudicator)
    data = post_form(submission_key=uuid.uuid4())
    client.post(page_url(item, "submit/"), data)
    client.post(page_url(item, "submit/"), data)
    assert Adjudication.objects.count() == 1
    assert CampaignItem.objects.get(pk=item.pk).committed == 1


def test_an_edit_makes_a_version_and_a_stale_edit_is_409(
    client, adj_campaign, adjudicator, proof, django_capture_on_commit_callbacks
):
    item = claimed(adj_campaign, adjudicator)
    client.force_login(adjudicator)
    client.post(page_url(item, "submit/"), post_form(submission_key=uuid.uuid4()))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            page_url(item, "submit/"),
            post_form(score="1", reason="On reflection, complete.", version="1"),
        )
    assert response.status_code == 302
    made = Adjudication.objects.get()
    assert (made.version, made.score) == (2, Decimal("1"))
    assert GoldLabel.objects.get(proof=proof).score == Decimal("1")
    history = list(made.history.order_by("version"))
    assert [(h.version, h.old and h.old["score"], h.new["score"]) for h in history] == [
        (1, None, "0.5"),
        (2, "0.5", "1"),
    ]
    response = client.post(
        page_url(item, "submit/"), post_form(score="0", reason="Stale tab", version="1")
    )
    assert response.status_code == 409
    assert "Stale tab" in response.content.decode()  # the input is kept
    assert Adjudication.objects.get().score == Decimal("1")


def test_the_draft_is_saved_and_restored(client, adj_campaign, adjudicator):
    item = claimed(adj_campaign, adjudicator)
    client.force_login(adjudicator)
    response = client.post(
        page_url(item, "draft/"), {"score": "0", "reason": "Half-written", "revision": "5"}
    )
    assert response.status_code == 200
    assert Draft.objects.get(item=item).content["reason"] == "Half-written"
    assert "Half-written" in client.get(page_url(item)).content.decode()


def test_a_skip_hands_the_proof_back_for_good(client, adj_campaign, adjudicator):
    item = claimed(adj_campaign, adjudicator)
    client.force_login(adjudicator)
    response = client.post(page_url(item, "skip/"), {"reason": "expertise"})
    assert response.status_code == 302
    assert queue.claim_next_item(adj_campaign, adjudicator) is None


# -- making adjudication campaigns ------------------------------------------------------------


def test_a_campaign_of_proofs_chosen_by_id(owner, proof, problem):
    other = Proof.objects.create(problem=problem, text="A second proof.")
    campaign, count = create_adjudication_campaign(
        owner, "Gold pass", proof_ids=[proof.pk, other.pk]
    )
    assert (campaign.kind, count) == (Campaign.Kind.ADJUDICATE, 2)
    assert set(campaign.items.values_list("proof_id", flat=True)) == {proof.pk, other.pk}
    assert campaign.memberships.get().role == Role.OWNER


def test_a_campaign_of_proofs_chosen_by_filter(owner, proof, campaign):
    _, count = create_adjudication_campaign(owner, "Gold pass", filters={"campaign": campaign.pk})
    assert count == 1
    _, count = create_adjudication_campaign(owner, "Gold 2", filters={"problem": "PB-Test-001"})
    assert count == 1


def _disagreement_model():
    from django.apps import apps

    try:
        return apps.get_model("verification", "Disagreement")
    except LookupError:
        return None


@pytest.mark.skipif(_disagreement_model() is None, reason="no disagreement records yet")
def test_proofs_with_an_open_disagreement_are_chosen_shown_and_resolved(
    client, owner, adjudicator, proof, problem
):
    Proof.objects.create(problem=problem, text="An uncontested proof.")
    _disagreement_model().objects.create(
        kind="expert_vs_expert",
        proof=proof,
        gap=1,
        parties=[{"who": "emmy_expert", "score": 1}, {"who": "david_expert", "score": 0}],
    )
    campaign, count = create_adjudication_campaign(
        owner, "Contested", filters={"disagreements": "open"}
    )
    assert count == 1 and campaign.items.get().proof == proof
    Membership.objects.create(campaign=campaign, user=adjudicator, role=Role.ADJUDICATOR)
    item = claimed(campaign, adjudicator)
    client.force_login(adjudicator)
    html = client.get(page_url(item)).content.decode()
    assert 'id="disagreements"' in html and "david_expert 0" in html
    # The adjudication resolves it.
    client.post(page_url(item, "submit/"), post_form(submission_key=uuid.uuid4()))
    assert _disagreement_model().objects.get().resolution == "adjudicated"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"proof_ids": [999999]}, "proofs"),
        ({"proof_ids": ["x"]}, "proofs"),
        ({}, "proofs"),
        ({"proof_ids": [1], "filters": {}}, "proofs"),
        ({"filters": {"model": "x"}}, "model"),
        ({"filters": {"category": "geometry"}}, "filters"),
        ({"filters": {"disagreements": "closed"}}, "disagreements"),
    ],
)
def test_a_bad_choice_is_refused_and_nothing_written(owner, proof, kwargs, field):
    with pytest.raises(InputError) as error:
        create_adjudication_campaign(owner, "Gold pass", **kwargs)
    assert error.value.field == field
    assert not Campaign.objects.filter(name="Gold pass").exists()


def test_the_command_makes_the_campaign_with_its_adjudicators(owner, adjudicator, proof, capsys):
    call_command(
        "create_adjudication_campaign",
        "--name",
        "Gold pass",
        "--owner",
        owner.username,
        "--adjudicator",
        adjudicator.username,
        "--proof",
        str(proof.pk),
    )
    campaign = Campaign.objects.get(name="Gold pass")
    assert campaign.memberships.filter(user=adjudicator, role=Role.ADJUDICATOR).exists()
    assert "with 1 proofs" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no user"):
        call_command("create_adjudication_campaign", "--name", "X", "--owner", "nobody")


def test_the_form_page_makes_a_campaign_for_owners_only(client, owner, expert, proof, campaign):
    url = "/campaigns/new/adjudication/"
    assert client.get(url).status_code == 302  # anonymous: to the login page
    client.force_login(expert)  # a grader owns no campaign
    assert client.get(url).status_code == 403
    client.force_login(owner)
    assert client.put(url).status_code == 405
    html = client.get(url, {"campaign": campaign.pk}).content.decode()
    assert "<strong>1</strong> matching proof." in html
    response = client.post(url, {"name": "Bad", "proofs": "1, nope", "overlap": "1"})
    assert response.status_code == 400 and "not a proof id" in response.content.decode()
    assert not Campaign.objects.filter(name="Bad").exists()
    data = {"name": "Gold", "proofs": str(proof.pk), "overlap": "1", "adjudicators": "nobody"}
    response = client.post(url, data)
    assert response.status_code == 400 and "No user is named" in response.content.decode()
    assert not Campaign.objects.filter(name="Gold").exists()
    response = client.post(url, data | {"adjudicators": f"{expert.username}, {owner.username}"})
    made = Campaign.objects.get(name="Gold")
    assert set(made.memberships.filter(role=Role.ADJUDICATOR).values_list("user", flat=True)) == {
        expert.pk,
        owner.pk,
    }
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{made.pk}/"
    assert made.kind == Campaign.Kind.ADJUDICATE and made.items.count() == 1


# -- in Chromium ------------------------------------------------------------------------------


@pytest.mark.browser
def test_an_adjudicator_resolves_a_proof_by_keyboard(
    browser, adj_campaign, adjudicator, evidence, proof
):
    page = browser.page
    page.set_viewport_size({"width": 1400, "height": 900})
    browser.login(adjudicator)
    browser.goto(f"/campaigns/{adj_campaign.pk}/adjudicate/")
    with page.expect_navigation():
        page.keyboard.press("n")  # Start adjudicating
    assert "/adjudicate/" in page.url and page.locator("#adjudication-form").is_visible()
    assert page.locator("#evidence-grades .grade-card").count() == 3
    assert page.locator("#evidence-analyses .analysis-card").count() == 1

    # Enter without a reason is refused on the page; 5 picks 0.5, r opens the reason.
    page.keyboard.press("5")
    page.keyboard.press("Enter")
    assert "reason is required" in page.locator("#draft-status").inner_text()
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    page.keyboard.type("The parity gap is real; the rest is right.")
    assert page.locator("input[name=score][value='0.5']").is_checked()
    page.screenshot(path="/tmp/adjudication_page.png", full_page=False)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    # Submitted, and on to the next proof: none is left here.
    assert page.locator("#nothing-left").is_visible()
    page.screenshot(path="/tmp/adjudication_done.png", full_page=False)
    browser.assert_clean()

    made = run_orm(lambda: Adjudication.objects.get(adjudicator=adjudicator))
    assert (made.score, made.reason) == (
        Decimal("0.5"),
        "The parity gap is real; the rest is right.",
    )
    label = run_orm(lambda: GoldLabel.objects.get(proof=proof))
    assert (label.provenance, label.score, label.evidence["adjudication"]) == (
        "adjudicated",
        Decimal("0.5"),
        made.pk,
    )
