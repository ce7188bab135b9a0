"""Model suggestions while grading: a verifier's claims beside the proof, accepted into the
grade or dismissed, each decision kept as a human verdict (annotate/suggestions.py); the
blind rules (nothing of them before commit in HTML, API or websocket), who may post
decisions, and what they cost the page and autosave."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotate import grading
from annotate.models import CampaignItem, ClaimDecision, Draft, Grade, GradeIssue, Proof
from annotate.suggestions import BLIND_REFUSAL
from annotate.work import queue
from tests.suggestions_support import CLAIM_ONE, CLAIM_TWO, SECRETS, add_analysis

pytestmark = pytest.mark.django_db

PASSAGE = "Then $p^2 = 2q^2$"


@pytest.fixture
def claimed(campaign, proof, expert):
    """The campaign's item leased to `expert`; its proof has an analysis with two claims
    (the first anchored on PASSAGE, the second unanchored). The campaign is blind."""
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


def page_url(item) -> str:
    return reverse("grading_page", args=[item.campaign_id, item.pk])


def draft_url(item) -> str:
    return reverse("grading_draft", args=[item.campaign_id, item.pk])


def submit_url(item) -> str:
    return reverse("grading_submit", args=[item.campaign_id, item.pk])


def api_url(item, end: str = "") -> str:
    return f"/api/campaigns/{item.campaign_id}/items/{item.pk}/{end}"


def accepted_issue(claim, severity="fatal") -> dict:
    return {
        "start": claim.start,
        "end": claim.end,
        "quote": claim.exact,
        "note": claim.text,
        "severity": severity,
        "claim": claim.pk,
    }


def decisions(*pairs) -> str:
    return json.dumps([{"claim": c.pk, "decision": d} for c, d in pairs])


def form(claims, **extra) -> dict:
    """Claim 1 accepted (as a fatal issue), claim 2 dismissed."""
    one, two = claims
    return {
        "score": "0",
        "comment": "",
        "issues": json.dumps([accepted_issue(one)]),
        "suggestions": decisions((one, "accepted"), (two, "dismissed")),
        "active_seconds": "12",
        **extra,
    }


# --- not blind: shown at once, accepted and dismissed, committed with the grade -------------


def test_the_claims_are_shown_beside_the_proof_sanitised(client, expert, open_claimed):
    item, analysis, claims = open_claimed
    client.force_login(expert)
    html = client.get(page_url(item)).content.decode()
    assert 'id="suggestions"' in html
    assert "ZEBRA the step multiplying both sides" in html and "QUAGGA" in html
    assert "<script>alert" not in html  # the model's text goes through the sanitiser
    assert "verifier-under-test" in html
    assert "accept the suggestion as an issue of your grade" in html  # in the key help
    assert f'id="suggestion-{claims[0].pk}"' in html
    anchors = json.loads(html.split('id="suggestion-anchors" type="application/json">')[1]
                         .split("</script>")[0])  # fmt: skip
    assert [(c["id"], c["start"], c["exact"]) for c in anchors["claims"]] == [
        (claims[0].pk, claims[0].start, PASSAGE),
        (claims[1].pk, None, ""),
    ]


def test_decisions_in_a_draft_survive_and_are_committed_with_the_grade(
    client, expert, open_claimed
):
    item, analysis, claims = open_claimed
    one, two = claims
    client.force_login(expert)
    body = {k: v for k, v in form(claims).items() if k != "score"}
    assert client.post(draft_url(item), body).status_code == 200
    draft = Draft.objects.get(item=item, expert=expert)
    assert draft.content["suggestions"] == [
        {"claim": one.pk, "decision": "accepted"},
        {"claim": two.pk, "decision": "dismissed"},
    ]
    assert draft.content["issues"][0]["claim"] == one.pk
    assert not ClaimDecision.objects.exists()  # verdicts are written with the grade

    # The page drawn again from the draft holds the decisions and the issue's origin.
    response = client.get(page_url(item))
    assert response.context["suggestion_anchors"]["decisions"] == draft.content["suggestions"]
    assert response.context["issues"][0]["claim"] == one.pk

    key = str(uuid.uuid4())
    response = client.post(submit_url(item), {**form(claims), "submission_key": key})
    assert response.status_code == 302
    grade = Grade.objects.get(submission_key=key)
    issue = GradeIssue.objects.get(grade=grade)
    assert (issue.claim_id, issue.analysis_id) == (one.pk, analysis.pk)
    assert (issue.start, issue.end, issue.quote) == (one.start, one.end, PASSAGE)
    assert issue.severity == "fatal"
    rows = {d.claim_id: d for d in ClaimDecision.objects.filter(grade=grade)}
    assert {cid: d.decision for cid, d in rows.items()} == {
        one.pk: "accepted",
        two.pk: "dismissed",
    }
    assert all(d.grade.grader == expert and d.decided_at for d in rows.values())


def test_an_edit_keeps_unchanged_decisions_and_moves_changed_ones(client, expert, open_claimed):
    item, analysis, claims = open_claimed
    one, two = claims
    grade, _ = grading.submit_grade(
        item, expert, score="0", comment="", issues=[accepted_issue(one)],
        suggestions=[{"claim": one.pk, "decision": "accepted"},
                     {"claim": two.pk, "decision": "dismissed"}],
        active_seconds=1, submission_key=uuid.uuid4(),
    )  # fmt: skip
    before = {d.claim_id: d.decided_at for d in grade.claim_decisions.all()}
    grading.edit_grade(
        grade, expert, expected_version=grade.version, score="0.5", comment="",
        issues=[{**accepted_issue(two), "start": None, "end": None, "quote": ""}],
        suggestions=[{"claim": one.pk, "decision": "dismissed"},
                     {"claim": two.pk, "decision": "accepted"}],
    )  # fmt: skip
    after = {d.claim_id: (d.decision, d.decided_at) for d in grade.claim_decisions.all()}
    assert after[one.pk][0] == "dismissed" and after[two.pk][0] == "accepted"
    assert after[one.pk][1] >= before[one.pk]
    assert list(GradeIssue.objects.filter(grade=grade).values_list("claim", "start")) == [
        (two.pk, None)
    ]


@pytest.mark.parametrize(
    "issues, made",
    [
        ([], "An accepted suggestion is one of the grade"),  # accepted, no issue
        ("both", "A suggestion is accepted as one issue"),
    ],
)
def test_accepted_and_issues_must_match(client, expert, open_claimed, issues, made):
    item, analysis, claims = open_claimed
    one = claims[0]
    if issues == "both":
        issues = [accepted_issue(one), accepted_issue(one, "minor")]
    client.force_login(expert)
    body = {**form(claims), "issues": json.dumps(issues), "submission_key": str(uuid.uuid4())}
    response = client.post(submit_url(item), body)
    assert response.status_code == 400
    assert made in response.content.decode()
    assert not Grade.objects.filter(grader=expert).exists()


def test_a_claim_of_another_proof_is_refused(client, expert, open_claimed, problem):
    item, analysis, claims = open_claimed
    other = Proof.objects.create(problem=problem, text="Another proof. " + PASSAGE)
    _, foreign = add_analysis(other, PASSAGE)
    client.force_login(expert)
    body = {"issues": "[]", "suggestions": decisions((foreign[1], "dismissed"))}
    response = client.post(draft_url(item), body)
    assert response.status_code == 400
    assert "not a claim of this proof" in response.content.decode()
    assert not Draft.objects.exists()


def test_the_api_shows_suggestions_and_takes_decisions(client, expert, open_claimed):
    item, analysis, claims = open_claimed
    one, two = claims
    client.force_login(expert)
    body = client.get(api_url(item)).json()
    shown = body["suggestions"]["analyses"][0]
    assert (shown["id"], shown["score"]) == (analysis.pk, "0")
    assert [c["text"] for c in shown["claims"]] == [CLAIM_ONE, CLAIM_TWO]
    response = client.post(
        api_url(item, "grade/"),
        data={
            "score": "0", "submission_key": str(uuid.uuid4()), "comment": "",
            "issues": [accepted_issue(one)],
            "suggestions": [{"claim": two.pk, "decision": "dismissed"},
                            {"claim": one.pk, "decision": "accepted"}],
        },
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    assert response.json()["issues"][0]["claim"] == one.pk
    assert sorted(ClaimDecision.objects.values_list("claim", "decision")) == [
        (one.pk, "accepted"),
        (two.pk, "dismissed"),
    ]
    assert client.get(api_url(item)).json()["suggestions"]["decisions"] == [
        {"claim": one.pk, "decision": "accepted"},
        {"claim": two.pk, "decision": "dismissed"},
    ]


# --- who may post decisions ---------------------------------------------------------------


def test_an_outsider_cannot_post_decisions(client, outsider, open_claimed):
    item, analysis, claims = open_claimed
    client.force_login(outsider)
    assert client.post(draft_url(item), form(claims)).status_code in (403, 404)
    body = {**form(claims), "submission_key": str(uuid.uuid4())}
    assert client.post(submit_url(item), body).status_code in (403, 404)
    api = {"score": "0", "submission_key": str(uuid.uuid4()), "issues": [],
           "suggestions": [{"claim": claims[1].pk, "decision": "dismissed"}]}  # fmt: skip
    response = client.post(api_url(item, "grade/"), data=api, content_type="application/json")
    assert response.status_code in (403, 404)
    assert not (Draft.objects.exists() or Grade.objects.exists() or ClaimDecision.objects.exists())


def test_another_grader_cannot_post_decisions_on_an_item_leased_to_someone_else(
    client, expert2, open_claimed
):
    item, analysis, claims = open_claimed  # leased to `expert`
    client.force_login(expert2)
    assert client.post(draft_url(item), form(claims)).status_code in (403, 404, 409)
    body = {**form(claims), "submission_key": str(uuid.uuid4())}
    assert client.post(submit_url(item), body).status_code in (403, 404, 409)
    assert not (Draft.objects.exists() or Grade.objects.exists() or ClaimDecision.objects.exists())


# --- blind: nothing before commit, everything after -----------------------------------------


def test_blind_before_commit_the_page_and_api_hold_no_suggestion(client, expert, claimed):
    item, analysis, claims = claimed
    client.force_login(expert)
    html = client.get(page_url(item)).content.decode()
    api = client.get(api_url(item)).content.decode()
    for text in (html, api):
        for secret in SECRETS:
            assert secret not in text
        assert "suggestions.js" not in text and '"suggestions"' not in text
    assert 'name="suggestions"' not in html


def test_blind_before_commit_any_decision_is_refused_alike(client, expert, claimed):
    """The same refusal for a real claim and for a made-up id: posting ids cannot tell
    whether the proof has analyses."""
    item, analysis, claims = claimed
    client.force_login(expert)
    answers = []
    for named in ([claims[1].pk], [999_999]):
        body = {"issues": "[]", "suggestions": json.dumps(
            [{"claim": named[0], "decision": "dismissed"}])}  # fmt: skip
        response = client.post(draft_url(item), body)
        answers.append((response.status_code, BLIND_REFUSAL in response.content.decode()))
        body = {**body, "score": "1", "submission_key": str(uuid.uuid4())}
        response = client.post(submit_url(item), body)
        answers.append((response.status_code, BLIND_REFUSAL in response.content.decode()))
    assert answers == [(400, True)] * 4
    issue = {**accepted_issue(claims[0])}
    response = client.post(
        api_url(item, "grade/"),
        data={"score": "1", "submission_key": str(uuid.uuid4()), "issues": [issue]},
        content_type="application/json",
    )
    assert response.status_code == 400 and BLIND_REFUSAL in response.content.decode()
    assert not (Draft.objects.exists() or Grade.objects.exists() or ClaimDecision.objects.exists())


def test_blind_after_commit_the_suggestions_appear_and_an_edit_takes_them(client, expert, claimed):
    item, analysis, claims = claimed
    one, two = claims
    client.force_login(expert)
    key = str(uuid.uuid4())
    plain = {"score": "1", "comment": "", "issues": "[]", "submission_key": key}
    assert client.post(submit_url(item), plain).status_code == 302
    grade = Grade.objects.get(submission_key=key)

    html = client.get(page_url(item)).content.decode()
    assert "ZEBRA" in html and 'id="suggestions"' in html
    assert client.get(api_url(item)).json()["suggestions"]["count"] == 2

    response = client.post(submit_url(item), {**form(claims), "version": grade.version})
    assert response.status_code == 302
    issue = GradeIssue.objects.get(grade=grade)
    assert (issue.claim_id, issue.analysis_id, issue.start) == (one.pk, analysis.pk, one.start)
    assert sorted(grade.claim_decisions.values_list("claim", "decision")) == [
        (one.pk, "accepted"),
        (two.pk, "dismissed"),
    ]


def test_blind_an_edit_naming_a_foreign_claim_is_refused(client, expert, claimed, problem):
    item, analysis, claims = claimed
    other = Proof.objects.create(problem=problem, text="Another proof. " + PASSAGE)
    _, foreign = add_analysis(other, PASSAGE)
    grade, _ = grading.submit_grade(
        item, expert, score="1", comment="", issues=[], active_seconds=1,
        submission_key=uuid.uuid4(),
    )  # fmt: skip
    client.force_login(expert)
    body = {"score": "1", "issues": "[]", "version": grade.version,
            "suggestions": decisions((foreign[0], "dismissed"))}  # fmt: skip
    response = client.post(submit_url(item), body)
    assert response.status_code == 400
    grade.refresh_from_db()
    assert grade.version == 1 and not ClaimDecision.objects.exists()


# --- cost: nothing on autosave, nothing on a page without claims ----------------------------


def claim_queries(captured) -> list[str]:
    return [
        q["sql"]
        for q in captured.captured_queries
        if '"verification_claim"' in q["sql"] or '"annotate_claimdecision"' in q["sql"]
    ]


def test_without_claims_the_page_and_autosave_read_nothing_more(client, expert, campaign, proof):
    campaign.blind = False
    campaign.save(update_fields=["blind"])
    item = queue.claim_next_item(campaign, expert)
    client.force_login(expert)
    with CaptureQueriesContext(connection) as page:
        assert client.get(page_url(item)).status_code == 200
    # One EXISTS, inside the query that already counts the analyses (annotate/others.py).
    assert len(claim_queries(page)) == 1
    assert "EXISTS" in claim_queries(page)[0]
    with CaptureQueriesContext(connection) as save:
        assert client.post(draft_url(item), {"comment": "x", "issues": "[]"}).status_code == 200
    assert claim_queries(save) == []


def test_with_claims_the_page_reads_them_in_one_query(client, expert, open_claimed):
    item, analysis, claims = open_claimed
    client.force_login(expert)
    with CaptureQueriesContext(connection) as page:
        assert client.get(page_url(item)).status_code == 200
    assert len([q for q in claim_queries(page) if "EXISTS" not in q]) == 1
    # Autosave without decisions reads no claim; with them, one query checks them.
    with CaptureQueriesContext(connection) as save:
        client.post(draft_url(item), {"comment": "x", "issues": "[]"})
    assert claim_queries(save) == []


# --- websocket -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_websocket_carries_nothing_of_the_suggestions(campaign, proof, expert, expert2):
    """A blind campaign: `expert` watches (not committed yet) while `expert2` commits a
    grade and then accepts a claim into it; the frames carry counts only."""
    from asgiref.sync import async_to_sync, sync_to_async
    from django.test import Client

    from tests.test_websocket import ORIGIN, TIMEOUT, communicator, session_cookie

    analysis, claims = add_analysis(proof, PASSAGE)
    item = queue.claim_next_item(campaign, expert2)
    watcher = session_cookie(expert)
    grader = Client()
    grader.force_login(expert2)

    def work() -> None:
        key = str(uuid.uuid4())
        plain = {"score": "1", "comment": "", "issues": "[]", "submission_key": key}
        assert grader.post(submit_url(item), plain).status_code == 302
        version = Grade.objects.get(submission_key=key).version
        assert (
            grader.post(submit_url(item), {**form(claims), "version": version}).status_code == 302
        )

    async def scenario():
        ws = communicator(campaign, [ORIGIN, watcher])
        assert (await ws.connect(timeout=TIMEOUT))[0]
        try:
            await sync_to_async(work)()
            frames = [await ws.receive_json_from(timeout=TIMEOUT)]
            while not await ws.receive_nothing(timeout=0.3):
                frames.append(await ws.receive_json_from(timeout=TIMEOUT))
            return frames
        finally:
            await ws.disconnect()

    frames = async_to_sync(scenario)()
    assert ClaimDecision.objects.count() == 2  # the decisions were made meanwhile
    text = json.dumps(frames)
    for secret in SECRETS:
        assert secret not in text
    assert all(set(f) <= {"type", "item", "committed", "overlap"} for f in frames), frames
