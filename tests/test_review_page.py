"""The review page (meta-verification): claims and their passages, verdicts, the rubric's
suggestion and its override, autosave, submit, edits and history, blind rules, access, and
a reviewer's merging and splitting of claims."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from annotate import review
from annotate.models import CampaignItem, Draft, Review, ReviewHistory, Role, Skip, Verdict
from annotate.work import queue
from tests.review_page_support import review_campaign, review_form
from verification.claims import ClaimEditRefused, merge_claims, split_claim
from verification.models import Analysis, Claim

pytestmark = pytest.mark.django_db

R, F, U = Verdict.REAL.value, Verdict.NOT_REAL.value, Verdict.UNSURE.value


@pytest.fixture
def campaign(owner, reviewer, expert, expert2):
    """Two OPC judge analyses; rita and david review, emmy grades (in a review campaign)."""
    return review_campaign(
        owner, {reviewer: Role.REVIEWER, expert2: Role.REVIEWER, expert: Role.GRADER}
    )


@pytest.fixture
def leased(campaign, reviewer) -> CampaignItem:
    return queue.claim_next_item(campaign, reviewer)


def url(name: str, item: CampaignItem, *more: int) -> str:
    return reverse(name, args=[item.campaign_id, item.pk, *more])


def claims_of(item: CampaignItem) -> list[Claim]:
    return list(item.analysis.claims.order_by("order"))


def commit(item, user, verdicts, score, reason=""):
    ids = [c.pk for c in claims_of(item)]
    return review.submit_review(
        item,
        user,
        verdicts=[
            {"claim": i, "verdict": v, "note": ""} for i, v in zip(ids, verdicts, strict=True)
        ],
        score=score,
        override_reason=reason,
        submission_key=str(uuid.uuid4()),
    )[0]


def hand_over(item: CampaignItem, user) -> None:
    """Lease `item` to `user` (another reviewer committed it meanwhile)."""
    until = timezone.now() + timedelta(hours=1)
    CampaignItem.objects.filter(pk=item.pk).update(lease_holder=user, lease_expires_at=until)


# -- the rubric's suggestion, for every combination of verdicts ------------------------------


def expected_suggestion(verdicts: tuple[str, ...], analysis_score: Decimal | None):
    """docs/work.md's rubric, written out as a table."""
    if any(v == U for v in verdicts):
        return None
    if not verdicts:
        if analysis_score is None:
            return None
        return Decimal("1") if analysis_score == 1 else Decimal("0.5")
    real = verdicts.count(R)
    if real == 0:
        return Decimal("0")
    if real < len(verdicts):
        return Decimal("0.5")
    return Decimal("0.5") if analysis_score == 1 else Decimal("1")


CASES = [
    (verdicts, score)
    for n in range(4)
    for verdicts in itertools.product((R, F, U), repeat=n)
    for score in (None, Decimal("0"), Decimal("0.5"), Decimal("1"))
]


@pytest.mark.parametrize(("verdicts", "analysis_score"), CASES)
def test_the_rubric_suggestion_for_every_verdict_combination(verdicts, analysis_score):
    assert review.suggest_score(verdicts, analysis_score) == expected_suggestion(
        verdicts, analysis_score
    )


def test_the_page_carries_the_suggestion_for_every_count_of_real_claims(client, reviewer, leased):
    client.force_login(reviewer)
    html = client.get(url("review_page", leased)).content.decode()
    table = json.loads(html.split('id="suggestions" type="application/json">')[1].split("<")[0])
    # Four claims, and the OPC judge gives no score: none real 0, some 0.5, all real 1.
    assert table == {"0": "0", "1": "0.5", "2": "0.5", "3": "0.5", "4": "1"}


# -- the page --------------------------------------------------------------------------------


def test_the_page_shows_problem_proof_analysis_and_every_claim(client, reviewer, leased):
    client.force_login(reviewer)
    response = client.get(url("review_page", leased))
    assert response.status_code == 200
    html = response.content.decode()
    analysis = leased.analysis
    assert 'id="proof-text"' in html and 'class="rendered analysis-text"' in html
    assert "No score could be read from this analysis" in html  # the judge gives none
    assert 'id="parse-status">No score</span>' in html
    claims = claims_of(leased)
    assert len(claims) == 4
    for claim in claims:
        assert f'id="claim-{claim.pk}"' in html
        assert f'name="verdict-{claim.pk}" value="real"' in html
    anchors = json.loads(html.split('id="claim-anchors" type="application/json">')[1].split("<")[0])
    assert [(a["id"], a["start"], a["end"]) for a in anchors] == [
        (c.pk, c.start, c.end) for c in claims
    ]
    assert "Issues claimed (4):" in html and analysis.claims.first().text[:40] in html


def test_approximate_and_unanchored_claims_are_marked(client, reviewer, leased):
    first, second, third, fourth = claims_of(leased)
    # Which of the two analyses is leased depends on ids (the seeded order), and their
    # fourth claims anchor differently: make this one exact whichever it is.
    span = (fourth.start, fourth.end) if fourth.start is not None else (0, 5)
    Claim.objects.filter(pk=fourth.pk).update(
        anchor_method="exact", anchor_score=None, start=span[0], end=span[1]
    )
    Claim.objects.filter(pk=first.pk).update(anchor_method="index_span", anchor_score=None)
    Claim.objects.filter(pk=second.pk).update(
        anchor_method="unanchored", start=None, end=None, anchor_score=None
    )
    Claim.objects.filter(pk=third.pk).update(anchor_method="fuzzy", anchor_score=72.5)
    client.force_login(reviewer)
    html = client.get(url("review_page", leased)).content.decode()
    assert "approximate: the verifier&#x27;s own position" in html
    assert "not located in the proof" in html
    assert "approximate match (72.5%)" in html
    anchors = json.loads(html.split('id="claim-anchors" type="application/json">')[1].split("<")[0])
    assert [a["approximate"] for a in anchors] == [True, True, True, False]


def test_a_claims_location_and_quote_are_shown_as_math_not_source(client, reviewer, leased):
    """The judge writes TeX in a claim's location and wraps its quotes in quotation marks:
    the page typesets the one and does not double the other (seen in the browser walk)."""
    first = claims_of(leased)[0]
    Claim.objects.filter(pk=first.pk).update(
        location=r"Step 1, derivation of \(a^2 \ge ab\)", quote=r"“since \(x > 0\)”"
    )
    client.force_login(reviewer)
    html = client.get(url("review_page", leased)).content.decode()
    head = html.split(f'id="claim-{first.pk}"')[1].split("</p>")[0]
    assert "\\(a^2" not in head and 'class="math' in head
    assert "““" not in html and "“since" in html


def test_an_unparseable_analysis_is_shown_as_written(client, reviewer, leased):
    Analysis.objects.filter(pk=leased.analysis_id).update(
        text="<script>alert(1)</script> garbled **verdict", parse_status="truncated"
    )
    client.force_login(reviewer)
    html = client.get(url("review_page", leased)).content.decode()
    assert "garbled" in html and "<script>alert(1)</script>" not in html
    assert "No score could be read" in html


def test_the_page_documents_its_keys(client, reviewer, leased):
    client.force_login(reviewer)
    html = client.get(url("review_page", leased)).content.decode()
    for key in ("j", "k", "r", "f", "u", "0", "5", "1", "Enter", "n", "s", "e", "m", "x", "o"):
        assert f"<kbd>{key}</kbd>" in html, key


def test_the_page_reads_a_bounded_number_of_queries(
    client, reviewer, leased, django_assert_max_num_queries
):
    client.force_login(reviewer)
    with django_assert_max_num_queries(8):
        assert client.get(url("review_page", leased)).status_code == 200
    # Committed: the other reviews, the models' meta-assessments and the history too.
    commit(leased, reviewer, [R, F, R, R], "0.5")
    with django_assert_max_num_queries(13):
        assert client.get(url("review_page", leased)).status_code == 200


# -- submit, the override reason, edits and history ------------------------------------------


def test_a_submit_that_confirms_the_suggestion_commits_and_opens_the_next(client, reviewer, leased):
    client.force_login(reviewer)
    form = review_form(leased, [R, F, R, R], "0.5", submission_key=str(uuid.uuid4()))
    response = client.post(url("review_submit", leased), form)
    assert response.status_code == 302
    done = Review.objects.get()
    assert (done.score, done.suggested_score, done.override_reason) == (
        Decimal("0.5"),
        Decimal("0.5"),
        "",
    )
    assert [v.verdict for v in done.verdicts.order_by("claim__order")] == [R, F, R, R]
    nxt = CampaignItem.objects.exclude(pk=leased.pk).get()
    assert response["Location"] == url("review_page", nxt) + f"?committed={leased.pk}"


def test_an_override_without_a_reason_is_refused_and_nothing_written(client, reviewer, leased):
    client.force_login(reviewer)
    form = review_form(leased, [R, R, R, R], "0", submission_key=str(uuid.uuid4()))
    response = client.post(url("review_submit", leased), form)
    assert response.status_code == 400
    assert "The rubric suggests 1 from your verdicts; say why you give 0." in (
        response.content.decode()
    )
    assert Review.objects.count() == 0
    # The reviewer's input is kept on the page.
    claim = claims_of(leased)[0]
    assert f'name="verdict-{claim.pk}" value="real" checked' in response.content.decode()


def test_an_override_with_a_reason_is_committed_with_it(client, reviewer, leased):
    client.force_login(reviewer)
    form = review_form(
        leased,
        [R, R, R, R],
        "0.5",
        override_reason="All real, but it misstates claim 2.",
        submission_key=str(uuid.uuid4()),
    )
    assert client.post(url("review_submit", leased), form).status_code == 302
    done = Review.objects.get()
    assert (done.score, done.suggested_score) == (Decimal("0.5"), Decimal("1"))
    assert done.override_reason == "All real, but it misstates claim 2."


def test_an_unsure_claim_leaves_the_score_to_the_reviewer(client, reviewer, leased):
    client.force_login(reviewer)
    form = review_form(leased, [R, U, F, R], "1", submission_key=str(uuid.uuid4()))
    assert client.post(url("review_submit", leased), form).status_code == 302
    assert Review.objects.get().suggested_score is None


@pytest.mark.parametrize(
    ("verdicts", "score", "message"),
    [
        ([R, F, R], "0.5", "Give a verdict on every claim (missing: 4)."),
        ([R, F, R, R], "", "score"),
        ([R, F, R, R], "0.7", "score"),
    ],
)
def test_an_incomplete_or_invalid_review_is_refused(
    client, reviewer, leased, verdicts, score, message
):
    client.force_login(reviewer)
    form = review_form(leased, verdicts, score, submission_key=str(uuid.uuid4()))
    response = client.post(url("review_submit", leased), form)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Review.objects.count() == 0


def test_a_retried_submit_is_idempotent(client, reviewer, leased):
    client.force_login(reviewer)
    form = review_form(leased, [F, F, F, F], "0", submission_key=str(uuid.uuid4()))
    assert client.post(url("review_submit", leased), form).status_code == 302
    assert client.post(url("review_submit", leased), form).status_code == 302
    assert Review.objects.count() == 1
    assert CampaignItem.objects.get(pk=leased.pk).committed == 1


def test_a_committed_review_is_read_only_until_edit_then_edits_name_the_version(
    client, reviewer, leased
):
    done = commit(leased, reviewer, [R, F, R, R], "0.5")
    client.force_login(reviewer)
    html = client.get(url("review_page", leased)).content.decode()
    assert 'id="review-fields" disabled' in html and 'id="edit-link"' in html
    assert 'name="version" value="1"' in html
    html = client.get(url("review_page", leased) + "?edit=1").content.decode()
    assert 'id="review-fields" disabled' not in html

    form = review_form(leased, [F, F, F, F], "0", version="1")
    assert client.post(url("review_submit", leased), form).status_code == 302
    done.refresh_from_db()
    assert (done.version, done.score) == (2, Decimal("0"))
    # The stale tab that still shows version 1 is refused and overwrites nothing.
    stale = review_form(leased, [R, R, R, R], "1", version="1")
    response = client.post(url("review_submit", leased), stale)
    assert response.status_code == 409
    assert "nothing was overwritten" in response.content.decode()
    done.refresh_from_db()
    assert (done.version, done.score) == (2, Decimal("0"))
    # History: both versions, shown on the page.
    rows = list(ReviewHistory.objects.filter(review=done).order_by("version"))
    assert [(h.version, h.new["score"]) for h in rows] == [(1, "0.5"), (2, "0")]
    assert rows[1].old["score"] == "0.5"
    html = client.get(url("review_page", leased)).content.decode()
    assert 'id="history"' in html and "version 2" in html and "(was 0.5)" in html


def test_an_edit_still_needs_a_reason_for_an_override(client, reviewer, leased):
    commit(leased, reviewer, [R, F, R, R], "0.5")
    client.force_login(reviewer)
    form = review_form(leased, [R, R, R, R], "0", version="1")
    assert client.post(url("review_submit", leased), form).status_code == 400
    assert Review.objects.get().version == 1


# -- autosave --------------------------------------------------------------------------------


def test_a_draft_is_saved_and_restored_in_the_page(client, reviewer, leased):
    client.force_login(reviewer)
    first = claims_of(leased)[0]
    form = review_form(leased, [R, "", F], "", revision="1000", tab="tab-a")
    form[f"note-{first.pk}"] = "Indeed unjustified."
    response = client.post(url("review_draft", leased), form)
    assert response.status_code == 200
    assert response["Proofdesk-Draft"] == "saved" and response["Proofdesk-Draft-Revision"] == "1000"
    draft = Draft.objects.get()
    assert draft.content["verdicts"][0] == {
        "claim": first.pk,
        "verdict": R,
        "note": "Indeed unjustified.",
    }
    html = client.get(url("review_page", leased)).content.decode()
    assert f'name="verdict-{first.pk}" value="real" checked' in html
    assert "Indeed unjustified." in html and 'data-draft-revision="1000"' in html


def test_a_stale_or_other_tab_draft_is_refused(client, reviewer, leased):
    client.force_login(reviewer)
    form = review_form(leased, [R], "", revision="2000", tab="tab-a")
    assert client.post(url("review_draft", leased), form).status_code == 200
    older = review_form(leased, [F], "", revision="1000", tab="tab-a")
    response = client.post(url("review_draft", leased), older)
    assert response.status_code == 409 and response["Proofdesk-Draft-Revision"] == "2000"
    other = review_form(leased, [F], "", revision="3000", base_revision="0", tab="tab-b")
    response = client.post(url("review_draft", leased), other)
    assert response.status_code == 409 and response["Proofdesk-Draft-Conflict"] == "other-tab"
    assert Draft.objects.get().content["verdicts"][0]["verdict"] == R


def test_a_draft_after_commit_is_refused(client, reviewer, leased):
    commit(leased, reviewer, [R, F, R, R], "0.5")
    client.force_login(reviewer)
    response = client.post(url("review_draft", leased), review_form(leased, [F], ""))
    assert response.status_code == 409 and response["Proofdesk-Draft"] == "refused"
    assert Draft.objects.count() == 0


def test_an_invalid_draft_is_refused_with_a_message(client, reviewer, leased):
    client.force_login(reviewer)
    response = client.post(url("review_draft", leased), review_form(leased, ["maybe"], ""))
    assert response.status_code == 400 and "real, not_real or unsure" in response.content.decode()
    assert Draft.objects.count() == 0


def test_verdicts_of_a_draft_on_claims_merged_since_are_dropped_on_load(client, reviewer, leased):
    c1, c2, c3, c4 = claims_of(leased)
    client.force_login(reviewer)
    form = review_form(leased, [R, F, U, R], "", revision="1000", tab="t")
    assert client.post(url("review_draft", leased), form).status_code == 200
    merge_claims(leased.analysis, [c2.pk, c3.pk], reviewer)
    html = client.get(url("review_page", leased)).content.decode()
    assert 'id="dropped-verdicts"' in html and "1 verdict of your draft was" in html
    assert f'id="claim-{c3.pk}"' not in html
    assert f'name="verdict-{c4.pk}" value="real" checked' in html


# -- skip and lease --------------------------------------------------------------------------


def test_skip_records_the_reason_and_opens_the_next(client, reviewer, leased):
    client.force_login(reviewer)
    response = client.post(url("review_skip", leased), {"reason": Skip.Reason.values[0]})
    assert response.status_code == 302 and Skip.objects.filter(item=leased).exists()
    assert response["Location"] != url("review_page", leased)


def test_skip_without_a_reason_is_refused(client, reviewer, leased):
    client.force_login(reviewer)
    assert client.post(url("review_skip", leased), {"reason": "bored"}).status_code == 400
    assert Skip.objects.count() == 0


def test_the_lease_heartbeat_renews_or_says_it_was_lost(client, reviewer, leased):
    client.force_login(reviewer)
    assert "expired" not in client.post(url("review_lease", leased)).content.decode()
    CampaignItem.objects.filter(pk=leased.pk).update(lease_holder=None, lease_expires_at=None)
    assert "has expired" in client.post(url("review_lease", leased)).content.decode()


def test_the_queue_claims_the_next_analysis(client, reviewer, campaign):
    client.force_login(reviewer)
    assert (
        "Start reviewing"
        in client.get(reverse("review_queue", args=[campaign.pk])).content.decode()
    )
    response = client.post(reverse("review_next", args=[campaign.pk]))
    item = CampaignItem.objects.get(lease_holder=reviewer)
    assert response["Location"] == url("review_page", item)


# -- blind rules -----------------------------------------------------------------------------


def test_other_reviews_are_not_in_the_page_before_commit(client, reviewer, expert2, campaign):
    item = queue.claim_next_item(campaign, expert2)
    commit(item, expert2, [R, R, R, R], "0", reason="SECRET-REASON")
    Review.objects.filter(reviewer=expert2).update(comment="SECRET-COMMENT")
    hand_over(item, reviewer)
    client.force_login(reviewer)
    html = client.get(url("review_page", item)).content.decode()
    assert "SECRET" not in html and "david_expert" not in html and 'id="others"' not in html

    commit(item, reviewer, [F, F, F, F], "0")
    html = client.get(url("review_page", item)).content.decode()
    assert 'id="others"' in html and "SECRET-COMMENT" in html and "david_expert" in html


def test_a_models_meta_assessment_is_not_in_the_page_before_commit(client, reviewer, leased):
    from workers.models import ModelOutput, ModelRun

    run = ModelRun.objects.create(
        kind="meta_verify",
        target={},
        target_description="the campaign's analyses",
        backend="replay",
        model="meta-judge-x",
        sampling={},
        template_text="t",
        template_hash="0" * 64,
        template_version="meta-v1",
    )
    ModelOutput.objects.create(
        run=run,
        target_id=leased.analysis_id,
        sample_index=0,
        text="META-SECRET verdict",
        backend="replay",
        model="meta-judge-x",
        template_version="meta-v1",
        sampling={},
        score=Decimal("0.5"),
    )
    client.force_login(reviewer)
    html = client.get(url("review_page", leased)).content.decode()
    assert "META-SECRET" not in html and "meta-judge-x" not in html
    commit(leased, reviewer, [F, F, F, F], "0")
    html = client.get(url("review_page", leased)).content.decode()
    assert "META-SECRET" in html and "meta-judge-x" in html


# -- access, for every endpoint --------------------------------------------------------------

ITEM_ENDPOINTS = [
    ("get", "review_page"),
    ("post", "review_draft"),
    ("post", "review_submit"),
    ("post", "review_skip"),
    ("post", "review_lease"),
    ("post", "review_merge"),
]


def _endpoints(item: CampaignItem) -> list[tuple[str, str]]:
    claim = claims_of(item)[0]
    return [(method, url(name, item)) for method, name in ITEM_ENDPOINTS] + [
        ("post", url("review_split", item, claim.pk)),
        ("get", reverse("review_queue", args=[item.campaign_id])),
        ("post", reverse("review_next", args=[item.campaign_id])),
    ]


def test_every_endpoint_sends_anonymous_users_to_login(client, leased):
    for method, path in _endpoints(leased):
        response = getattr(client, method)(path)
        assert response.status_code == 302 and "/login/" in response["Location"], path


def test_every_endpoint_hides_the_campaign_from_outsiders(client, outsider, leased):
    client.force_login(outsider)
    for method, path in _endpoints(leased):
        assert getattr(client, method)(path).status_code == 404, path


def test_every_endpoint_refuses_graders(client, expert, leased):
    client.force_login(expert)
    for method, path in _endpoints(leased):
        assert getattr(client, method)(path).status_code == 403, path


def test_every_endpoint_is_open_to_the_reviewer(client, reviewer, leased):
    client.force_login(reviewer)
    ok = {"get": {200}, "post": {200, 302, 400}}
    for method, path in _endpoints(leased):
        status = getattr(client, method)(path).status_code
        assert status in ok[method], (path, status)


def test_another_reviewer_may_not_open_an_item_leased_to_someone_else(client, expert2, leased):
    client.force_login(expert2)
    assert client.get(url("review_page", leased)).status_code == 403
    assert client.post(url("review_merge", leased)).status_code == 403


def test_endpoints_refuse_the_wrong_method(client, reviewer, leased):
    client.force_login(reviewer)
    assert client.post(url("review_page", leased)).status_code == 405
    for name in ("review_draft", "review_submit", "review_skip", "review_merge", "review_lease"):
        assert client.get(url(name, leased)).status_code == 405, name
    claim = claims_of(leased)[0]
    assert client.get(url("review_split", leased, claim.pk)).status_code == 405
    assert client.get(reverse("review_next", args=[leased.campaign_id])).status_code == 405
    assert client.post(reverse("review_queue", args=[leased.campaign_id])).status_code == 405


# -- merging and splitting claims ------------------------------------------------------------


def place(claim: Claim, start: int, end: int, method: str = "exact", score=None) -> None:
    Claim.objects.filter(pk=claim.pk).update(
        start=start, end=end, anchor_method=method, anchor_score=score
    )


def test_merging_two_claims_joins_them_where_the_first_stands(reviewer, leased):
    c1, c2, c3, c4 = claims_of(leased)
    place(c2, 100, 150)
    place(c3, 160, 200, "fuzzy", 88.0)
    merged = merge_claims(leased.analysis, [c3.pk, c2.pk], reviewer)
    assert merged.pk == c2.pk and merged.order == 2
    assert merged.text == f"{c2.text}\n\n{c3.text}"
    assert merged.quote == f"{c2.quote.strip()} … {c3.quote.strip()}"
    # From the first passage to the last, as sure as the less sure of the two.
    assert (merged.start, merged.end, merged.anchor_method, merged.anchor_score) == (
        100,
        200,
        "fuzzy",
        88.0,
    )
    assert merged.exact == leased.proof.text[100:200]
    assert [(c.pk, c.order) for c in claims_of(leased)] == [(c1.pk, 1), (c2.pk, 2), (c4.pk, 3)]


def test_a_merge_of_passages_far_apart_or_of_an_unlocated_claim_is_approximate(reviewer, leased):
    c1, c2, c3, c4 = claims_of(leased)
    length = len(leased.proof.text)
    place(c1, 0, 40)
    place(c2, length - 40, length)
    far = merge_claims(leased.analysis, [c1.pk, c2.pk], reviewer)
    assert (far.start, far.end, far.anchor_method) == (0, length, "index_span")
    Claim.objects.filter(pk=c4.pk).update(
        anchor_method="unanchored", start=None, end=None, anchor_score=None
    )
    place(c3, 300, 340)
    partly = merge_claims(leased.analysis, [c3.pk, c4.pk], reviewer)
    assert (partly.start, partly.end, partly.anchor_method) == (300, 340, "index_span")


def test_splitting_a_claim_at_an_offset_makes_two_claims_in_its_place(reviewer, leased):
    c1, c2, c3, c4 = claims_of(leased)
    Claim.objects.filter(pk=c2.pk).update(
        text='First problem: "' + c2.quote.strip("“”")[:40] + '" is wrong. Second problem: x.'
    )
    c2.refresh_from_db()
    at = c2.text.index("Second")
    parts = split_claim(c2, at=at, by=reviewer)
    assert [p.text for p in parts] == [c2.text[:at].strip(), "Second problem: x."]
    assert parts[0].pk == c2.pk and parts[0].anchor_method in ("exact", "fuzzy")
    assert parts[1].quote == c2.quote  # no passage of its own: the claim's
    assert [c.pk for c in claims_of(leased)] == [c1.pk, c2.pk, parts[1].pk, c3.pk, c4.pk]
    assert [c.order for c in claims_of(leased)] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("at", [0, 10_000, -3])
def test_a_split_that_leaves_a_blank_part_is_refused(reviewer, leased, at):
    claim = claims_of(leased)[0]
    with pytest.raises(ClaimEditRefused):
        split_claim(claim, at=at, by=reviewer)
    assert leased.analysis.claims.count() == 4


def test_merge_refuses_fewer_than_two_or_foreign_claims(reviewer, leased, campaign):
    c1 = claims_of(leased)[0]
    other = Claim.objects.exclude(analysis=leased.analysis).first()
    with pytest.raises(ClaimEditRefused, match="at least two"):
        merge_claims(leased.analysis, [c1.pk], reviewer)
    with pytest.raises(ClaimEditRefused, match="claim of this analysis"):
        merge_claims(leased.analysis, [c1.pk, other.pk], reviewer)
    assert leased.analysis.claims.count() == 4


def test_merge_and_split_are_refused_once_a_review_is_committed(reviewer, expert2, campaign):
    item = queue.claim_next_item(campaign, expert2)
    commit(item, expert2, [R, F, R, R], "0.5")
    before = list(item.analysis.claims.values_list("pk", "order", "text"))
    c1, c2, *_ = claims_of(item)
    with pytest.raises(ClaimEditRefused, match="review of this analysis is committed"):
        merge_claims(item.analysis, [c1.pk, c2.pk], reviewer)
    with pytest.raises(ClaimEditRefused, match="review of this analysis is committed"):
        split_claim(c1, at=10, by=reviewer)
    assert list(item.analysis.claims.values_list("pk", "order", "text")) == before


def test_the_merge_and_split_endpoints(client, reviewer, leased):
    c1, c2, c3, c4 = claims_of(leased)
    client.force_login(reviewer)
    response = client.post(url("review_merge", leased), {"claim": [c1.pk, c2.pk]})
    assert response.status_code == 302 and leased.analysis.claims.count() == 3
    response = client.post(url("review_split", leased, c3.pk), {"at": str(len(c3.text) // 2)})
    assert response.status_code == 302 and leased.analysis.claims.count() == 4
    response = client.post(url("review_split", leased, c4.pk), {"at": "abc"})
    assert response.status_code == 400 and leased.analysis.claims.count() == 4
    response = client.post(url("review_merge", leased), {"claim": [c1.pk]})
    assert response.status_code == 400 and "at least two" in response.content.decode()


def test_the_endpoints_refuse_a_merge_after_another_reviewers_commit(
    client, reviewer, expert2, campaign
):
    item = queue.claim_next_item(campaign, expert2)
    commit(item, expert2, [R, F, R, R], "0.5")
    hand_over(item, reviewer)
    c1, c2, *_ = claims_of(item)
    client.force_login(reviewer)
    response = client.post(url("review_merge", item), {"claim": [c1.pk, c2.pk]})
    assert response.status_code == 400
    assert "can no longer be merged or split" in response.content.decode()
    assert item.analysis.claims.count() == 4


def test_a_split_of_a_claim_of_another_analysis_is_not_found(client, reviewer, leased):
    other = Claim.objects.exclude(analysis=leased.analysis).first()
    client.force_login(reviewer)
    assert client.post(url("review_split", leased, other.pk), {"at": "5"}).status_code == 404


def test_the_campaign_page_offers_reviewers_the_review_queue(client, reviewer, expert, campaign):
    client.force_login(reviewer)
    html = client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    assert reverse("review_next", args=[campaign.pk]) in html
    client.force_login(expert)
    html = client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    assert reverse("review_next", args=[campaign.pk]) not in html


def test_an_analysis_without_claims_is_rated_on_its_score_alone(client, reviewer, leased):
    """No claims and no score (the OPC judge gives none): the rubric has nothing to go on,
    so it suggests nothing and any score needs no reason; with a score below 1 that no
    claim justifies, it suggests 0.5."""
    leased.analysis.claims.all().delete()
    client.force_login(reviewer)
    html = client.get(url("review_page", leased)).content.decode()
    assert 'id="no-claims"' in html and 'id="suggested-score">0.5<' not in html
    form = review_form(leased, [], "1", submission_key=str(uuid.uuid4()))
    assert client.post(url("review_submit", leased), form).status_code == 302
    assert Review.objects.get().suggested_score is None


def test_an_analysis_without_claims_but_a_low_score_is_suggested_half(client, reviewer, leased):
    leased.analysis.claims.all().delete()
    Analysis.objects.filter(pk=leased.analysis_id).update(score=Decimal("0"), parse_status="ok")
    client.force_login(reviewer)
    html = client.get(url("review_page", leased)).content.decode()
    assert 'id="suggested-score">0.5<' in html
    form = review_form(leased, [], "1", submission_key=str(uuid.uuid4()))
    refused = client.post(url("review_submit", leased), form)
    assert refused.status_code == 400 and Review.objects.count() == 0
    assert "The rubric suggests 0.5 from your verdicts; say why you give 1." in (
        refused.content.decode()
    )
    form = review_form(leased, [], "0.5", submission_key=str(uuid.uuid4()))
    assert client.post(url("review_submit", leased), form).status_code == 302
    assert Review.objects.get().verdicts.count() == 0


def test_a_review_campaigns_page_speaks_of_reviews_and_analyses(client, owner, campaign):
    client.force_login(owner)
    html = client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    assert "0 of 4 reviews" in html and "<th>Analysis</th>" in html  # 2 items × overlap 2
    item = campaign.items.first()
    assert f"analysis {item.analysis_id} of proof {item.proof_id}" in html
    # Review campaigns are made from analyses, not filled by the proof importer.
    assert reverse("import_upload", args=[campaign.pk]) not in html
