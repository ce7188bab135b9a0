"""The review page in Chromium: a reviewer reviews an Open Proof Corpus judge's analysis by
keyboard only, each claim's passage highlighted in the proof."""

from __future__ import annotations

from decimal import Decimal

import pytest

from annotate.models import Review, Role
from annotate.work import queue
from tests.browser import run_orm
from tests.review_page_support import review_campaign

pytestmark = pytest.mark.browser


@pytest.fixture
def campaign(owner, reviewer):
    return review_campaign(owner, {reviewer: Role.REVIEWER}, items=2)


def wait_rendered(page) -> None:
    page.wait_for_function(
        "[...document.querySelectorAll('#proof-text .math')].every(e => e.dataset.rendered)"
    )


def current_mark_in_view(page) -> bool:
    return page.evaluate(
        """() => {
          const mark = document.querySelector('#proof-text mark.claim.current');
          if (!mark) return false;
          const r = mark.getBoundingClientRect();
          return r.bottom > 0 && r.top < window.innerHeight && r.width > 0;
        }"""
    )


def test_a_reviewer_reviews_an_analysis_by_keyboard_only(browser, campaign, reviewer):
    item = queue.claim_next_item(campaign, reviewer)
    claims = list(item.analysis.claims.order_by("order"))
    page = browser.page
    page.set_viewport_size({"width": 1400, "height": 900})
    browser.login(reviewer)
    browser.goto(f"/campaigns/{campaign.pk}/review/{item.pk}/")
    wait_rendered(page)

    # Every anchored claim's passage is marked in the proof; the first is current.
    marks = page.locator("#proof-text mark.claim")
    assert marks.count() >= len(claims)
    assert page.locator(".claim-item.current").get_attribute("data-index") == "0"
    assert page.locator("#suggested-score").inner_text() == "—"

    # j / k move between claims; the current claim's passage scrolls into view.
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.locator(".claim-item.current").get_attribute("data-index") == "2"
    assert current_mark_in_view(page)
    page.keyboard.press("k")
    page.keyboard.press("k")
    assert page.locator(".claim-item.current").get_attribute("data-index") == "0"

    # r / f / u give the verdict and move on to the next claim.
    page.keyboard.press("r")
    assert page.locator(".claim-item.current").get_attribute("data-index") == "1"
    page.keyboard.press("f")
    page.keyboard.press("u")
    assert page.locator("#suggested-score").inner_text() == "—"  # an unsure claim
    page.keyboard.press("k")
    page.keyboard.press("t")  # a note on claim 3, then it is real after all
    page.keyboard.type("The step really is unjustified.")
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    page.keyboard.press("r")  # claim 4
    # Real, not real, real, real: the rubric suggests 0.5, live.
    assert page.locator("#suggested-score").inner_text() == "0.5"

    # A score other than the suggestion asks for a reason; Enter without one is refused.
    page.keyboard.press("1")
    assert page.locator("#override").is_visible()
    page.keyboard.press("Enter")
    assert "say why you give 1" in page.locator("#draft-status").inner_text()
    assert page.evaluate("document.activeElement.id") == "override-reason"
    page.keyboard.press("Escape")
    page.keyboard.press("5")  # confirm the suggestion instead
    assert not page.locator("#override").is_visible()

    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("k")  # claim 2 current: its passage shown for the screenshot
    assert current_mark_in_view(page)
    page.screenshot(path="/tmp/review_page.png", full_page=False)

    with page.expect_navigation():
        page.keyboard.press("Enter")
    # Submit moved on to the next analysis, with a link back to the committed one.
    assert page.locator("#committed-link").is_visible()
    assert page.locator("input[name=submission_key]").count() == 1
    browser.assert_clean()

    review = run_orm(lambda: Review.objects.prefetch_related("verdicts").get(reviewer=reviewer))
    verdicts = run_orm(lambda: list(review.verdicts.order_by("claim__order")))
    assert [v.verdict for v in verdicts] == ["real", "not_real", "real", "real"]
    assert verdicts[2].note == "The step really is unjustified."
    assert (review.score, review.suggested_score, review.override_reason) == (
        Decimal("0.5"),
        Decimal("0.5"),
        "",
    )

    # The committed review: read-only until e; n takes the next analysis.
    with page.expect_navigation():
        page.locator("#committed-link a").click()
    wait_rendered(page)
    page.keyboard.press("f")
    assert "committed" in page.locator("#draft-status").inner_text()
    assert page.locator("#review-fields").get_attribute("disabled") is not None
    with page.expect_navigation():
        page.keyboard.press("e")
    assert page.locator("#review-fields").get_attribute("disabled") is None
    page.screenshot(path="/tmp/review_committed.png", full_page=False)
    browser.assert_clean()


def test_a_reviewer_merges_and_splits_claims_by_keyboard_and_keeps_the_draft(
    browser, campaign, reviewer
):
    item = queue.claim_next_item(campaign, reviewer)
    first, second, third, fourth = item.analysis.claims.order_by("order")
    page = browser.page
    page.set_viewport_size({"width": 1400, "height": 900})
    browser.login(reviewer)
    browser.goto(f"/campaigns/{campaign.pk}/review/{item.pk}/")
    wait_rendered(page)

    page.keyboard.press("r")  # claim 1 real; claim 2 is current
    page.wait_for_function(
        "document.getElementById('draft-status').textContent.includes('Draft saved')"
    )
    # m: merge claim 2 with claim 3 (both checked in the dialog); Ctrl+Enter merges.
    page.keyboard.press("m")
    dialog = page.locator("#merge-dialog")
    assert dialog.is_visible()
    checked = dialog.locator("input[name=claim]:checked")
    assert [checked.nth(k).get_attribute("value") for k in range(2)] == [
        str(second.pk),
        str(third.pk),
    ]
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    wait_rendered(page)
    assert page.locator(".claim-item").count() == 3
    assert "Claims merged into claim 2" in page.locator(".messages").inner_text()
    # The verdict on claim 1 survived the reload (the draft is by claim).
    assert page.locator(f"input[name=verdict-{first.pk}][value=real]").is_checked()

    # x: split the current claim (the merged one, claim 2) at the cursor.
    assert page.locator(".claim-item.current").get_attribute("data-index") == "1"
    page.keyboard.press("x")
    assert page.locator("#split-dialog").is_visible()
    assert page.evaluate("document.activeElement.id") == "split-text"
    page.evaluate(
        "() => { const t = document.getElementById('split-text');"
        " const at = t.value.indexOf('\\n\\n') + 2; t.setSelectionRange(at, at); }"
    )
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    wait_rendered(page)
    assert page.locator(".claim-item").count() == 4
    browser.assert_clean()

    texts = run_orm(
        lambda: list(item.analysis.claims.order_by("order").values_list("text", flat=True))
    )
    assert texts == [first.text, second.text, third.text, fourth.text]
