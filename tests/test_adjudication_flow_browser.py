"""The whole road of a contested proof, in Chromium, as its people walk it: the owner opens
the disagreements list, sends the open disagreements to a new adjudication campaign, an
adjudicator resolves the proof by keyboard, and the proof's item page in the grading
campaign shows the gold label "Adjudicated" with its adjudicator, reason and evidence."""

from __future__ import annotations

from decimal import Decimal

import pytest

from annotate.models import Adjudication, Campaign, CampaignItem
from tests.browser import run_orm
from tests.test_disagreements import app_grade
from verification.disagreements import record_disagreements
from verification.models import Disagreement

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def adjudicator(django_user_model):
    from tests.conftest import PASSWORD

    return django_user_model.objects.create_user(
        "ada_adjudicator", password=PASSWORD, first_name="Ada", last_name="Lovelace"
    )


def test_a_disagreement_goes_from_the_list_to_a_gold_label(
    browser, owner, expert, expert2, adjudicator, campaign, proof
):
    app_grade(proof, campaign, expert, "1")
    app_grade(proof, campaign, expert2, "0")
    record_disagreements([proof.pk])
    grading_item = CampaignItem.objects.get(campaign=campaign, proof=proof)
    grading_item.committed = 2  # as the grading transaction keeps it (the grades above skip it)
    grading_item.save(update_fields=["committed"])
    page = browser.page
    page.set_viewport_size({"width": 1400, "height": 900})

    # The owner lists the open disagreements and sends them to adjudication.
    browser.login(owner)
    browser.goto("/disagreements/")
    assert page.locator("#to-adjudicate").inner_text() == "1"
    page.fill("#id_adj_name", "Round one")
    page.fill("#id_adj_adjudicators", "ada_adjudicator")
    page.screenshot(path="/tmp/flow_disagreements.png", full_page=True)
    with page.expect_navigation():
        page.click("#adjudicate-form button[type=submit]")
    assert "with 1 proof to adjudicate" in page.content()
    # The new campaign's page opens its live websocket, which pytest-django's WSGI live
    # server cannot serve (a 404 in the console); everything before it must be clean.
    seen = browser.log.problems()
    assert all("/ws/campaigns/" in problem for problem in seen), seen
    browser.log.clear()
    with page.expect_navigation():
        page.click("header form button[type=submit]")  # Log out

    # The adjudicator resolves it by keyboard: n starts, 0 scores, r opens the reason.
    made = run_orm(lambda: Campaign.objects.get(kind=Campaign.Kind.ADJUDICATE))
    browser.login(adjudicator)
    browser.goto(f"/campaigns/{made.pk}/adjudicate/")
    with page.expect_navigation():
        page.keyboard.press("n")
    assert page.locator("#evidence-grades .grade-card").count() == 2
    assert page.locator("#disagreements li").count() == 1  # the experts' 1 against 0
    page.keyboard.press("0")
    page.keyboard.press("r")
    page.keyboard.type("Step 2 assumes *p* even without proof: the argument does not close.")
    page.screenshot(path="/tmp/flow_adjudicate.png", full_page=False)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#nothing-left").is_visible()
    browser.assert_clean()
    with page.expect_navigation():
        page.click("header form button[type=submit]")

    adjudication = run_orm(
        lambda: Adjudication.objects.get(adjudicator__username="ada_adjudicator")
    )
    assert adjudication.score == Decimal("0")
    assert run_orm(lambda: Disagreement.objects.filter(proof=proof, status="open").count()) == 0

    # The owner opens the proof in the grading campaign: its gold label says who and why.
    browser.login(owner)
    browser.goto(f"/campaigns/{campaign.pk}/items/{grading_item.pk}/")
    gold = page.locator("#gold-label")
    gold.scroll_into_view_if_needed()
    page.screenshot(path="/tmp/flow_gold.png", full_page=True)
    assert page.locator("#gold-provenance").inner_text() == "Adjudicated"
    assert page.locator("#gold-score").inner_text() == "0"
    assert "Ada Lovelace" in page.locator("#gold-adjudicated").inner_text()
    assert "in Round one" in page.locator("#gold-adjudicated").inner_text()
    reason = page.locator("#gold-reason")
    assert "does not close" in reason.inner_text() and reason.locator("em").inner_text() == "p"
    evidence = page.locator("#gold-evidence").inner_text()
    assert f"adjudication {adjudication.pk}" in evidence and ": 1" in evidence and ": 0" in evidence
    browser.assert_clean()
