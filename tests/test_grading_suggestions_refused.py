"""A refused submit of the grading page shows the page again with the grader's decisions on
the model suggestions as they were posted, including those made since the last autosave
(annotate/views/grading.py `_rerender`, annotate/suggestions.py `for_item(posted=...)`)."""

from __future__ import annotations

import json
import uuid

import pytest

from annotate.models import CampaignItem, ClaimDecision, Draft, Grade
from annotate.work import queue
from tests.suggestions_support import SECRETS, add_analysis
from tests.test_grading_suggestions import PASSAGE, accepted_issue, decisions, draft_url, submit_url
from tests.test_grading_suggestions import form as filled

pytestmark = pytest.mark.django_db


@pytest.fixture
def claimed(campaign, proof, expert):
    """The campaign's (blind) item leased to `expert`; its proof's analysis has two claims."""
    analysis, claims = add_analysis(proof, PASSAGE)
    item = queue.claim_next_item(campaign, expert)
    item = CampaignItem.objects.select_related("campaign", "proof__problem").get(pk=item.pk)
    return item, analysis, claims


@pytest.fixture
def open_claimed(claimed):
    item = claimed[0]
    item.campaign.blind = False
    item.campaign.save(update_fields=["blind"])
    return claimed


def form(claims, **extra) -> dict:
    """Claim 1 accepted, claim 2 dismissed, as the page's form posts it."""
    return filled(claims, submission_key=str(uuid.uuid4()), **extra)


def shown_decisions(response) -> list[dict]:
    """The decisions the page hands its script, read from the HTML."""
    html = response.content.decode()
    raw = html.split('id="suggestion-anchors" type="application/json">')[1].split("</script>")[0]
    return json.loads(raw)["decisions"]


def test_a_refused_submit_keeps_the_dismissals_made_since_the_autosave(
    client, expert, open_claimed
):
    item, _, (one, two) = open_claimed
    client.force_login(expert)
    # The last autosave knew of claim 1's acceptance only.
    autosaved = {
        "issues": json.dumps([accepted_issue(one)]),
        "suggestions": decisions((one, "accepted")),
        "active_seconds": "5",
    }
    assert client.post(draft_url(item), autosaved).status_code == 200
    # Claim 2 dismissed since, then a submit the server refuses (no score).
    response = client.post(submit_url(item), form([one, two], score=""))
    assert response.status_code == 400
    assert "Choose a score" in response.content.decode()
    assert shown_decisions(response) == [
        {"claim": one.pk, "decision": "accepted"},
        {"claim": two.pk, "decision": "dismissed"},
    ]
    assert response.context["issues"][0]["claim"] == one.pk
    # Nothing was written: no grade, no verdict, the draft as it was autosaved.
    assert not Grade.objects.exists() and not ClaimDecision.objects.exists()
    draft = Draft.objects.get(item=item, expert=expert)
    assert draft.content["suggestions"] == [{"claim": one.pk, "decision": "accepted"}]


def test_a_refused_submit_keeps_an_undone_decision_undone(client, expert, open_claimed):
    item, _, (one, two) = open_claimed
    client.force_login(expert)
    autosaved = {"suggestions": decisions((two, "dismissed")), "active_seconds": "5"}
    assert client.post(draft_url(item), autosaved).status_code == 200
    response = client.post(
        submit_url(item), {"score": "", "suggestions": "[]", "submission_key": str(uuid.uuid4())}
    )
    assert response.status_code == 400
    assert shown_decisions(response) == []


def test_an_unreadable_suggestions_field_shows_the_draft_s_decisions(client, expert, open_claimed):
    item, _, (one, two) = open_claimed
    client.force_login(expert)
    autosaved = {"suggestions": decisions((two, "dismissed")), "active_seconds": "5"}
    assert client.post(draft_url(item), autosaved).status_code == 200
    response = client.post(
        submit_url(item),
        {"score": "0", "suggestions": "not json", "submission_key": str(uuid.uuid4())},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.content.decode()
    assert shown_decisions(response) == [{"claim": two.pk, "decision": "dismissed"}]


def test_a_refused_edit_keeps_the_posted_decisions_over_the_committed_ones(
    client, expert, open_claimed
):
    item, _, (one, two) = open_claimed
    client.force_login(expert)
    assert client.post(submit_url(item), form([one, two])).status_code == 302
    grade = Grade.objects.get(grader=expert)
    # An edit that turns claim 2 to accepted... and is refused (a score outside the scale).
    edit = {
        "version": str(grade.version),
        "score": "0.7",
        "comment": "",
        "issues": json.dumps([accepted_issue(one), accepted_issue(two, "minor")]),
        "suggestions": decisions((one, "accepted"), (two, "accepted")),
    }
    response = client.post(submit_url(item), edit)
    assert response.status_code == 400
    assert shown_decisions(response) == [
        {"claim": one.pk, "decision": "accepted"},
        {"claim": two.pk, "decision": "accepted"},
    ]
    stored = set(ClaimDecision.objects.filter(grade=grade).values_list("claim", "decision"))
    assert stored == {(one.pk, "accepted"), (two.pk, "dismissed")}


def test_posted_decisions_about_other_claims_are_not_shown(client, expert, open_claimed):
    item, _, (one, _two) = open_claimed
    client.force_login(expert)
    posted = json.dumps(
        [{"claim": one.pk, "decision": "dismissed"}, {"claim": 999999, "decision": "dismissed"}]
    )
    body = {"score": "", "suggestions": posted, "submission_key": str(uuid.uuid4())}
    response = client.post(submit_url(item), body)
    assert response.status_code == 400
    assert shown_decisions(response) == [{"claim": one.pk, "decision": "dismissed"}]


def test_blind_a_refused_submit_with_decisions_shows_nothing_of_the_suggestions(
    client, expert, claimed
):
    item, _, (one, two) = claimed
    client.force_login(expert)
    # The grader's own issue note comes back (it is their input), not the claim's words.
    issue = {**accepted_issue(one), "note": "my own words"}
    response = client.post(submit_url(item), form([one, two], score="", issues=json.dumps([issue])))
    assert response.status_code == 400
    html = response.content.decode()
    for secret in SECRETS:
        assert secret not in html


# -- in Chromium -----------------------------------------------------------------------------


@pytest.mark.browser
def test_in_chromium_a_dismissal_since_the_autosave_survives_a_refused_submit(
    browser, campaign, proof, expert
):
    from annotate.inputs import MAX_COMMENT_CHARS
    from tests.browser import run_orm
    from tests.suggestions_support import add_analysis
    from tests.test_grading_browser import open_claimed as open_page
    from tests.test_grading_browser import wait_for_server

    campaign.blind = False
    campaign.save(update_fields=["blind"])
    _, (one, two) = add_analysis(proof, "Then $p^2 = 2q^2$")
    page, _ = open_page(browser, campaign, expert)

    def autosaved():
        draft = Draft.objects.filter(expert=expert).first()
        return draft.content.get("suggestions") if draft else None

    page.keyboard.press("a")  # accept claim 1, and let the autosave store it
    accepted = [{"claim": one.pk, "decision": "accepted"}]
    assert wait_for_server(page, autosaved, accepted) == accepted
    # Dismiss claim 2 and submit at once, before the next autosave (3 s after a change),
    # with a comment the server refuses (too long; pasted, say).
    page.keyboard.press("d")
    page.evaluate(
        "n => { document.getElementById('comment').value = 'x'.repeat(n); }",
        MAX_COMMENT_CHARS + 1,
    )
    page.keyboard.press("0")
    # The button (a real submit event: the page forgets its local copy of the draft, so
    # only what the server shows again can bring the dismissal back).
    with page.expect_navigation():
        page.get_by_role("button", name="Submit grade").click()
    assert "longer than" in page.locator(".banner.error").first.inner_text()
    assert run_orm(autosaved) == accepted  # the dismissal was never autosaved
    page.locator(f"#suggestion-{two.pk}.dismissed").wait_for()
    assert page.locator(f"#suggestion-{one.pk}.accepted").count() == 1
    assert page.locator("#suggestions-progress").inner_text() == "2 of 2 decided"
    page.screenshot(path="/tmp/y_refused_grading.png", full_page=False)
    assert not run_orm(lambda: Grade.objects.exists())
    browser.log.clear()  # the refused submit's 400 was the point
    browser.assert_clean()
