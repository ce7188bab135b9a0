"""The adjudication pages: an adjudicator reads everything known about a proof (every
expert grade with its issues, every verifier analysis with its claims and the reviews of
those analyses, open disagreements) and sets its gold score with a reason, on the shared
work machinery (docs/work.md).

Views are thin: check access with `annotate.access` (`get_adjudication_item` refuses an
adjudicator who graded the proof), read the form, call the domain (`annotate.adjudication`,
`annotate.work`), render. The page's script (static/js/adjudication.js, on
static/js/work.js) adds the keyboard (0 / 5 / 1, r for the reason, Enter to submit and move
on) and autosave on top of a plain form that works without it.

Blind rules: the evidence is the point of the page and is always shown. Other
adjudicators' adjudications of the proof enter the context only once `can_see_others`
allows (in a blind campaign: once this adjudicator has committed theirs).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.apps import apps
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate import adjudication, flags, inputs
from annotate.access import (
    get_adjudication_item,
    get_expert_item,
    get_skippable_item,
    get_work_campaign,
)
from annotate.models import Adjudication, Campaign, CampaignItem, Grade, Proof, Review, Skip

# The gold score is a grade of the proof: the grading scale and its buttons.
from annotate.views.grading import SCORE_BUTTONS, score_text, score_text_or_blank
from annotate.views.review import _committed_link, _draft_refused, _draft_status, _poll_seconds
from annotate.work import commit, drafts, errors, visibility
from annotate.work import queue as work_queue
from verification.disagreements import release_mean
from verification.models import Analysis

KIND = Campaign.Kind.ADJUDICATE
TEMPLATE = "annotate/adjudication.html"


# -- the queue -------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def queue(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The queue: GET shows "Start adjudicating" (or that nothing is left); POST (the queue's
    "next" URL) claims the next proof, never one this adjudicator graded, and opens it."""
    campaign, _ = get_work_campaign(request.user, campaign_id, KIND)
    if request.method == "POST":
        return _open_next(campaign, request.user)
    done = Adjudication.objects.filter(campaign=campaign, adjudicator=request.user).count()
    context = {"campaign": campaign, "done": done, "nothing_left": "empty" in request.GET}
    return render(request, "annotate/adjudication_queue.html", context)


def _open_next(campaign: Campaign, user: Any, committed: int | None = None) -> HttpResponse:
    claimed = work_queue.claim_next_item(campaign, user)
    query = [] if committed is None else [f"committed={committed}"]
    if claimed is None:
        target, query = reverse("adjudication_queue", args=[campaign.pk]), ["empty=1", *query]
    else:
        target = reverse("adjudication_page", args=[campaign.pk, claimed.pk])
    return redirect(target + ("?" + "&".join(query) if query else ""))


# -- the evidence ----------------------------------------------------------------------------


def _grades(proof: Proof) -> list[dict[str, Any]]:
    """Every expert grade of the proof, made here (any campaign) or imported."""
    grades = (
        Grade.objects.filter(proof=proof)
        .select_related("grader", "campaign")
        .prefetch_related("issues")
        .order_by("origin", "created_at", "id")
    )
    return [
        {
            "id": g.pk,
            "score": score_text(g.score),
            "who": g.grader.get_username() if g.grader else g.external_grader,
            "where": g.campaign.name if g.campaign else g.import_source,
            "imported": g.origin == Grade.Origin.IMPORTED,
            "comment": g.comment,
            "issues": list(g.issues.all()),
        }
        for g in grades
    ]


def _analyses(proof: Proof) -> list[dict[str, Any]]:
    """Every verifier analysis of the proof with its claims, and every review of it with
    the reviewer's verdict on each claim."""
    reviews = Review.objects.select_related("reviewer").prefetch_related("verdicts")
    analyses = (
        Analysis.objects.filter(proof=proof)
        .prefetch_related("claims", Prefetch("reviews", reviews.order_by("created_at", "id")))
        .order_by("id")
    )
    shown = []
    for analysis in analyses:
        judged = [(r, {v.claim_id: v for v in r.verdicts.all()}) for r in analysis.reviews.all()]
        claims = [
            {
                "claim": claim,
                "verdicts": [
                    (r.reviewer.get_username(), by_claim[claim.pk])
                    for r, by_claim in judged
                    if claim.pk in by_claim
                ],
            }
            for claim in analysis.claims.all()
        ]
        rows = [{"review": r, "score": score_text(r.score)} for r, _ in judged]
        shown.append({"analysis": analysis, "claims": claims, "reviews": rows})
    return shown


def _disagreements(proof: Proof) -> list[Any]:
    """The proof's open disagreements, where disagreement records exist (verification/)."""
    try:
        disagreement = apps.get_model("verification", "Disagreement")
    except LookupError:
        return []
    return list(disagreement._default_manager.filter(proof=proof, status="open")[:20])


def _other_adjudications(item: CampaignItem, user: Any) -> list[dict[str, Any]]:
    """Other adjudicators' adjudications of the proof in this campaign; only for callers
    that checked `can_see_others`."""
    found = (
        Adjudication.objects.filter(item=item)
        .exclude(adjudicator=user)
        .select_related("adjudicator")
        .order_by("created_at", "id")
    )
    return [
        {"who": a.adjudicator.get_username(), "score": score_text(a.score), "reason": a.reason}
        for a in found
    ]


# -- the adjudication page -------------------------------------------------------------------


def _page_context(
    request: HttpRequest,
    item: CampaignItem,
    own: Adjudication | None,
    roles: set[str],
    **posted: Any,
) -> dict[str, Any]:
    campaign, proof = item.campaign, item.proof
    draft = None if own else drafts.get_draft(item, request.user)
    if own is not None:
        values = {"score": score_text(own.score), "reason": own.reason, "comment": own.comment}
    else:
        content = draft.content if draft is not None else {}
        values = {key: content.get(key) or "" for key in ("score", "reason", "comment")}
    values.update(posted)
    edit_open = own is not None and (request.GET.get("edit") == "1" or bool(posted))
    revision = draft.revision if draft else 0
    others = None
    if visibility.can_see_others(item, request.user, roles=roles, done=own is not None):
        others = _other_adjudications(item, request.user)
    history = []
    if own is not None:
        history = list(own.history.select_related("changed_by").order_by("-version"))
    args = [item.campaign_id, item.pk]
    return {
        "campaign": campaign,
        "item": item,
        "proof": proof,
        "problem": proof.problem,
        "grades": _grades(proof),
        "analyses": _analyses(proof),
        # The verifier mean the proof's release shipped with (the experts-vs-verifier rule
        # of verification/disagreements.py reads the same number).
        "release_mean": release_mean(proof.metadata),
        "disagreements": _disagreements(proof),
        "others": others,
        # The adjudication (committed, or its draft) and the page's state, which the shared
        # work templates and static/js/work.js read.
        **dict(own=own, draft=draft, editing=own is not None, edit_open=edit_open),
        **dict(read_only=own is not None and not edit_open, draft_revision=revision),
        "committed": _committed_link(request, campaign),
        **values,
        "active_seconds": own.active_seconds if own else (draft.active_seconds if draft else 0),
        "submission_key": uuid.uuid4(),
        "history": history,
        "flags": list(flags.open_flags(campaign, proof.problem)),
        "lease_poll_seconds": _poll_seconds(campaign),
        "score_choices": SCORE_BUTTONS,
        "skip_reasons": Skip.Reason.choices,
        "error": None,
        "page_url": reverse("adjudication_page", args=args),
        "draft_url": reverse("adjudication_draft", args=args),
        "skip_url": reverse("adjudication_skip", args=args),
        "lease_url": reverse("adjudication_lease", args=args),
    }


@require_GET
@login_required
# Never from the browser's cache: Back after a commit must show the committed adjudication.
@never_cache
def adjudication_page(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    item, own, roles = get_adjudication_item(request.user, campaign_id, item_id)
    return render(request, TEMPLATE, _page_context(request, item, own, roles))


def _posted(post: QueryDict) -> dict[str, Any]:
    return adjudication.form(post.get("score"), post.get("reason", ""), post.get("comment", ""))


@require_POST
@login_required
def save_draft(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Autosave (htmx, or a beacon when the page is left); answers with the status line and
    the headers static/js/work.js reads, as the other kinds' pages do."""
    item, own, _ = get_adjudication_item(request.user, campaign_id, item_id, read_holder_work=False)
    if own is not None:
        return _draft_status(request, 409, "This proof is already adjudicated; save your edit.")
    # The page's autosave state (static/js/work.js): active time, revisions, tab.
    state = {key: request.POST.get(key) for key in ("active_seconds", "revision", "base_revision")}
    content = _posted(request.POST)
    try:
        saved = drafts.save_draft(
            item, request.user, content, tab=request.POST.get("tab", ""), **state
        )
    except (errors.StaleDraft, errors.NotClaimed, inputs.InputError) as exc:
        return _draft_refused(request, exc)
    saved_response = _draft_status(request, 200, "")
    saved_response["Proofdesk-Draft-Revision"] = str(saved.revision)
    return saved_response


@require_POST
@login_required
def submit(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Commit an adjudication (idempotent by the form's submission key) and open the next
    proof, or save an edit of the committed one (the form carries `version`; a stale one
    answers 409 and keeps the input)."""
    found = get_adjudication_item(request.user, campaign_id, item_id)
    item, own, _ = found
    content = _posted(request.POST)
    shown = {**content, "score": score_text_or_blank(request.POST.get("score"))}
    status, error = 400, ""
    try:
        if "version" not in request.POST:
            commit.submit(
                item,
                request.user,
                content,
                active_seconds=request.POST.get("active_seconds"),
                submission_key=request.POST.get("submission_key"),
            )
            messages.success(request, "Adjudication committed.")
            return _open_next(item.campaign, request.user, committed=item.pk)
        if own is None:
            raise inputs.InputError("version", "There is no adjudication of yours to edit.")
        edited = commit.edit(
            adjudication.ADJUDICATING,
            own,
            request.user,
            content,
            expected_version=request.POST["version"],
            item=item,
        )
    except errors.AlreadyCommitted as exc:
        messages.warning(
            request,
            f"This proof was already adjudicated, probably from another tab (version "
            f"{exc.record.version}); what this tab held was not saved. Press Edit to change it.",
        )
        return redirect("adjudication_page", item.campaign_id, item.pk)
    except errors.StaleEdit as exc:
        status, error = 409, f"{exc} Nothing was overwritten; your input is kept below."
    except errors.NotClaimed as exc:
        status, error = 409, str(exc)
    except inputs.InputError as exc:
        error = str(exc)
    if error:
        return _refused(request, found, error, status, **shown)
    said = "Nothing changed" if edited.version == own.version else "Saved"
    messages.info(request, f"{said}: the adjudication is at version {edited.version}.")
    return redirect("adjudication_page", item.campaign_id, item.pk)


def _refused(
    request: HttpRequest, found: tuple[Any, Any, set[str]], error: str, status: int, **shown: Any
) -> HttpResponse:
    """The page again (`found`: the item, own work and roles `get_adjudication_item` gave),
    with the refusal and what the adjudicator had entered."""
    context = _page_context(request, *found, **shown) | {"error": error}
    return render(request, TEMPLATE, context, status=status)


@require_POST
@login_required
def skip(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Give the proof back with a reason (not once adjudicated), then open the next one."""
    item, roles = get_skippable_item(request.user, campaign_id, item_id, KIND)
    reason, note = request.POST.get("reason", ""), request.POST.get("note", "")
    try:
        work_queue.skip_item(item, request.user, reason, note)
    except inputs.InputError as exc:
        return _refused(request, (item, None, roles), str(exc), 400)
    messages.info(request, "Skipped.")
    return _open_next(item.campaign, request.user)


@require_POST
@login_required
def lease(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Heartbeat while the page is open: renew the lease; the answer is the banner, if any
    (a lost lease is an answer, not a 403). Committed work holds no lease: an edit is saved
    by its version, whoever holds the item."""
    item, _ = get_expert_item(request.user, campaign_id, item_id, kind=KIND)
    done = adjudication.own_adjudication(item, request.user) is not None
    lost = not done and not work_queue.renew_lease(item, request.user)
    url = reverse("adjudication_lease", args=[item.campaign_id, item.pk])
    context = {"lease_lost": lost, "editing": done, "lease_url": url}
    context["lease_poll_seconds"] = _poll_seconds(item.campaign)
    return render(request, TEMPLATE + "#lease", context)
