"""Model suggestions on the grading page in Chromium: a grader accepts one claim into the
grade and dismisses another by keyboard; the decisions survive a reload (the draft) and are
committed with the grade."""

from __future__ import annotations

import pytest

from annotate.models import ClaimDecision, Draft, Grade, GradeIssue
from tests.browser import run_orm
from tests.suggestions_support import add_analysis
from tests.test_grading_browser import open_claimed, wait_for_server

pytestmark = pytest.mark.browser

PASSAGE = "Then $p^2 = 2q^2$"


def draft_decisions(grader):
    draft = Draft.objects.filter(expert=grader).first()
    return draft.content.get("suggestions") if draft else None


def test_a_grader_accepts_and_dismisses_suggestions_by_keyboard(browser, campaign, proof, expert):
    campaign.blind = False
    campaign.save(update_fields=["blind"])
    analysis, (one, two) = add_analysis(proof, PASSAGE)
    page, item = open_claimed(browser, campaign, expert)

    assert page.locator("#suggestions .suggestion").count() == 2
    assert page.locator(f"#suggestion-{one.pk}.current").count() == 1  # the first undecided
    assert page.locator("mark.suggestion-mark.current").count() > 0  # its passage, shown
    page.keyboard.press("?")
    assert page.locator("#help-dialog").get_by_text("accept the suggestion").is_visible()
    page.keyboard.press("Escape")
    page.locator("#help-dialog").wait_for(state="hidden")

    page.keyboard.press("Shift+A")  # accept claim 1 as a fatal issue; on to claim 2
    assert page.locator("#issue-list li.fatal .origin").count() == 1
    assert page.locator("mark.issue.fatal").count() > 0
    assert page.locator(f"#suggestion-{two.pk}.current").count() == 1
    page.keyboard.press("d")  # dismiss claim 2
    assert page.locator(f"#suggestion-{two.pk}.dismissed").count() == 1
    assert page.locator("#suggestions-progress").inner_text() == "2 of 2 decided"

    expected = [
        {"claim": one.pk, "decision": "accepted"},
        {"claim": two.pk, "decision": "dismissed"},
    ]
    assert wait_for_server(page, lambda: draft_decisions(expert), expected) == expected
    page.evaluate("localStorage.clear()")  # the server's draft alone must bring them back
    page.reload()
    page.locator(f"#suggestion-{one.pk}.accepted").wait_for()
    assert page.locator(f"#suggestion-{two.pk}.dismissed").count() == 1
    assert page.locator("#issue-list li .origin").count() == 1

    # Undo claim 2 and dismiss it again (u, then d): j/k move between claims.
    page.keyboard.press("j")
    page.keyboard.press("u")
    assert page.locator(f"#suggestion-{two.pk}.dismissed").count() == 0
    page.keyboard.press("d")

    page.keyboard.press("0")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    grade = run_orm(lambda: Grade.objects.get(grader=expert, campaign=campaign))
    issue = run_orm(lambda: GradeIssue.objects.get(grade=grade))
    assert (issue.claim_id, issue.analysis_id, issue.severity) == (one.pk, analysis.pk, "fatal")
    assert (issue.start, issue.end, issue.quote) == (one.start, one.end, PASSAGE)
    assert run_orm(
        lambda: sorted(ClaimDecision.objects.filter(grade=grade).values_list("claim", "decision"))
    ) == [(one.pk, "accepted"), (two.pk, "dismissed")]
    browser.assert_clean()


def test_a_removed_accepted_issue_makes_its_claim_undecided(browser, campaign, proof, expert):
    campaign.blind = False
    campaign.save(update_fields=["blind"])
    _, (one, _two) = add_analysis(proof, PASSAGE)
    page, item = open_claimed(browser, campaign, expert)
    page.keyboard.press("a")
    assert page.locator(f"#suggestion-{one.pk}.accepted").count() == 1
    page.locator("#issue-list button.remove").click()
    assert page.locator(f"#suggestion-{one.pk}.accepted").count() == 0
    assert page.locator("#suggestions-progress").inner_text() == "0 of 2 decided"
    browser.assert_clean()
