"""The review pages (meta-verification): a reviewer judges a verifier's analysis of a proof,
claim by claim, then rates it, on the shared work machinery (docs/work.md).

Views are thin: check access with `annotate.access`, read the form, call the domain
(`annotate.review`, `annotate.work`, `verification.claims`), render. The page's script
(static/js/review.js, on static/js/work.js and static/js/anchoring.js) adds the keyboard,
the claims' highlights in the proof, the live rubric suggestion and autosave, on top of
plain forms that work without it.

Blind rules as for grading: other reviewers' reviews and the models' meta-assessments of
the analysis enter the template context only once `can_see_others` allows, so they cannot
leak into the HTML before the reviewer commits.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from annotate import flags, inputs, review
from annotate.access import get_expert_item, get_work_campaign, get_work_item, signed_in_user
from annotate.anchoring import clean_quote
from annotate.models import Campaign, CampaignItem, Review, Skip, Verdict
from annotate.views.grading import score_text, score_text_or_blank
from annotate.work import drafts, errors, visibility
from annotate.work import queue as work_queue
from verification.claims import ClaimEditRefused, merge_claims, split_claim
from verification.models import Analysis, Claim

KIND = Campaign.Kind.REVIEW_ANALYSES
TEMPLATE = "annotate/review.html"
# (value, key, hint) of the quality score buttons: the rubric (docs/work.md).
SCORE_BUTTONS = [
    ("0", "0", "every defect it claims is unreasonable"),
    ("0.5", "5", "some claims real and some not, or all real but misstated or mis-scored"),
    ("1", "1", "otherwise"),
]
# (value, key, label) of the verdict buttons of each claim.
VERDICT_BUTTONS = [
    (Verdict.REAL.value, "r", "real"),
    (Verdict.NOT_REAL.value, "f", "not real"),
    (Verdict.UNSURE.value, "u", "unsure"),
]


def _item(request: HttpRequest, campaign_id: int, item_id: int) -> tuple[Any, Any, set[str]]:
    """(item, the reviewer's own review or None, roles): the review page's access rule."""
    return get_work_item(request.user, campaign_id, item_id, kind=KIND)


# -- the queue -------------------------------------------------------------------------------


@require_GET
@login_required
def queue(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Where "Start reviewing" lives, and the page shown when nothing is left to review."""
    campaign, _ = get_work_campaign(request.user, campaign_id, KIND)
    context = {
        "campaign": campaign,
        "reviewed": Review.objects.filter(
            campaign=campaign, reviewer=signed_in_user(request)
        ).count(),
        "nothing_left": request.GET.get("empty") == "1",
    }
    return render(request, "annotate/review_queue.html", context)


@require_POST
@login_required
def next_item(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Claim the next analysis (or the one already leased to this reviewer) and open it."""
    campaign, _ = get_work_campaign(request.user, campaign_id, KIND)
    return _open_next(campaign, signed_in_user(request))


def _open_next(campaign: Campaign, user: User, committed: int | None = None) -> HttpResponse:
    nxt = work_queue.claim_next_item(campaign, user)
    if nxt is None:
        target = reverse("review_queue", args=[campaign.pk]) + "?empty=1"
    else:
        target = reverse("review_page", args=[campaign.pk, nxt.pk])
    if committed is not None:
        target += ("&" if "?" in target else "?") + f"committed={committed}"
    return redirect(target)


# -- the review page -------------------------------------------------------------------------


def _claims(item: CampaignItem) -> list[Claim]:
    if item.analysis is None:
        raise Http404("This item has no analysis to review.")
    return list(item.analysis.claims.order_by("order"))


def _anchor_label(claim: Claim) -> tuple[str, str]:
    """(css class, words) for how well a claim's passage was located in the proof."""
    if claim.anchor_method == "exact":
        return "exact", "quoted exactly"
    if claim.anchor_method == "fuzzy" and (claim.anchor_score or 0) >= 100:
        # The quote as the verifier rewrote it (delimiters, quotes, spacing), found verbatim.
        return "exact", "quoted (reformatted)"
    if claim.anchor_method == "fuzzy":
        return "approximate", f"approximate match ({claim.anchor_score:g}%)"
    if claim.anchor_method == "index_span":
        return "approximate", "approximate: the verifier's own position"
    return "unanchored", "not located in the proof"


def _suggestions(claims: list[Claim], analysis_score: Decimal | None) -> dict[str, str]:
    """The rubric's suggestion for each number of claims judged real, every claim judged
    real or not real (any other verdict suggests nothing): the page's script shows it live
    from this table, so the rule is written once, in `review.suggest_score`."""
    n = len(claims)
    table = {}
    for real in range(n + 1):
        verdicts = [Verdict.REAL] * real + [Verdict.NOT_REAL] * (n - real)
        table[str(real)] = score_text(review.suggest_score(verdicts, analysis_score))
    return table


def _form_values(source: Any, claims: list[Claim]) -> dict[str, Any]:
    """What the form shows: from a review, a draft's JSON, or nothing. Verdicts on claims
    that no longer exist (merged or split since) are dropped, and counted."""
    if isinstance(source, Review):
        verdicts = {v.claim_id: (v.verdict, v.note) for v in source.verdicts.all()}
        content: dict[str, Any] = {
            "score": score_text(source.score),
            "override_reason": source.override_reason,
            "comment": source.comment,
        }
    else:
        content = source.content if source is not None else {}
        verdicts = {}
        for entry in content.get("verdicts") or []:
            if isinstance(entry, dict) and isinstance(entry.get("claim"), int):
                verdicts[entry["claim"]] = (entry.get("verdict") or "", entry.get("note") or "")
    known = {c.pk for c in claims}
    return {
        "verdicts": {cid: v for cid, v in verdicts.items() if cid in known},
        "dropped": len(set(verdicts) - known),
        "score": content.get("score") or "",
        "override_reason": content.get("override_reason") or "",
        "comment": content.get("comment") or "",
    }


def _others(item: CampaignItem, user: User) -> dict[str, Any]:
    """Other reviewers' reviews of this analysis and the models' meta-assessments of it;
    only for callers that checked `can_see_others`."""
    from workers.models import ModelOutput
    from workers.prompts import Kind

    reviews = (
        Review.objects.filter(item=item)
        .exclude(reviewer=user)
        .select_related("reviewer")
        .prefetch_related("verdicts")
        .order_by("created_at", "id")
    )
    meta = ModelOutput.objects.filter(
        run__kind=Kind.META_VERIFY, target_id=cast(int, item.analysis_id), error_reason=""
    ).order_by("id")
    return {
        "reviews": [
            {
                "reviewer": r.reviewer.get_username(),
                "score": score_text(r.score),
                "comment": r.comment,
                "verdicts": {v.claim_id: v.get_verdict_display() for v in r.verdicts.all()},
            }
            for r in reviews
        ],
        "meta": [{"model": m.model, "score": score_text(m.score), "text": m.text} for m in meta],
    }


def _page_context(
    request: HttpRequest, item: CampaignItem, own: Review | None, roles: set[str], **posted: Any
) -> dict[str, Any]:
    campaign, proof = item.campaign, item.proof
    claims = _claims(item)
    analysis = cast(Analysis, item.analysis)  # `_claims` refused an item without one
    user = signed_in_user(request)
    draft = None if own else drafts.get_draft(item, user)
    values = _form_values(own if own is not None else draft, claims)
    if posted:
        values.update(posted)
    edit_open = own is not None and (request.GET.get("edit") == "1" or bool(posted))
    suggestions = _suggestions(claims, analysis.score)
    judged = [values["verdicts"].get(c.pk, ("", ""))[0] for c in claims]
    suggested = score_text(review.suggest_score(judged, analysis.score))
    others = None
    if visibility.can_see_others(item, user, roles=roles, done=own is not None):
        others = _others(item, user)
    rows = []
    for number, claim in enumerate(claims, start=1):
        css, words = _anchor_label(claim)
        verdict, note = values["verdicts"].get(claim.pk, ("", ""))
        seen = (
            {}
            if others is None
            else {o["reviewer"]: o["verdicts"].get(claim.pk) for o in others["reviews"]}
        )
        rows.append(
            {
                "claim": claim,
                # Shown inside typographic quotes: without the marks the verifier put round it.
                "quote": clean_quote(claim.quote),
                "number": number,
                "anchor_class": css,
                "anchor_words": words,
                "verdict": verdict,
                "note": note,
                "others": seen,
            }
        )
    history = []
    if own is not None:
        history = list(own.history.select_related("changed_by").order_by("-version"))
    return {
        "campaign": campaign,
        "item": item,
        "analysis": analysis,
        "proof": proof,
        "problem": proof.problem,
        "claims": rows,
        "claim_anchors": [
            {
                "id": c.pk,
                "start": c.start,
                "end": c.end,
                "approximate": css != "exact",
                "text": c.text,
            }
            for c, css in ((r["claim"], r["anchor_class"]) for r in rows)
        ],
        "suggestions": suggestions,
        "suggested": suggested,
        # The review (committed, or its draft) and the page's state, which the shared work
        # templates and static/js/work.js read.
        "own": own,
        "draft": draft,
        "draft_revision": draft.revision if draft else 0,
        "editing": own is not None,
        "edit_open": edit_open,
        "read_only": own is not None and not edit_open,
        "committed": _committed_link(request, campaign),
        "dropped": values["dropped"],
        "score": values["score"],
        "override_reason": values["override_reason"],
        "comment": values["comment"],
        "active_seconds": own.active_seconds if own else (draft.active_seconds if draft else 0),
        "submission_key": uuid.uuid4(),
        "others": others,
        "history": history,
        "flags": list(flags.open_flags(campaign, proof.problem)),
        "lease_poll_seconds": _poll_seconds(campaign),
        "score_choices": SCORE_BUTTONS,
        "verdict_choices": VERDICT_BUTTONS,
        "skip_reasons": Skip.Reason.choices,
        "error": None,
        **_urls(item),
    }


def _urls(item: CampaignItem) -> dict[str, str]:
    """The page's endpoints, which the shared work templates link to."""
    args = [item.campaign_id, item.pk]
    names = {"page": "review_page", "draft": "review_draft", "skip": "review_skip"}
    urls = {f"{key}_url": reverse(name, args=args) for key, name in names.items()}
    return urls | {"lease_url": reverse("review_lease", args=args)}


def _poll_seconds(campaign: Campaign) -> int:
    """How often the page renews its lease: three times per lease, at most every 10 s."""
    return max(10, campaign.lease_seconds // 3)


def _committed_link(request: HttpRequest, campaign: Campaign) -> int | None:
    """The item just committed (`?committed=<item>` after a submission), to link back to."""
    raw = request.GET.get("committed", "")
    if raw.isdigit() and CampaignItem.objects.filter(pk=int(raw), campaign=campaign).exists():
        return int(raw)
    return None


@require_GET
@login_required
# Never from the browser's cache: Back after a commit must show the committed review, not
# the form as it was before (whose Enter would submit it again).
@never_cache
def review_page(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    item, own, roles = _item(request, campaign_id, item_id)
    return render(request, TEMPLATE, _page_context(request, item, own, roles))


def _posted(post: QueryDict, claims: list[Claim]) -> dict[str, Any]:
    """The form as the domain takes it: a verdict and note per claim of the analysis, from
    the fields `verdict-<claim>` and `note-<claim>` (fields of claims that no longer exist
    are ignored: the page was drawn before a merge or split)."""
    verdicts = []
    for claim in claims:
        verdict = post.get(f"verdict-{claim.pk}", "")
        note = post.get(f"note-{claim.pk}", "")
        if verdict or note:
            verdicts.append({"claim": claim.pk, "verdict": verdict, "note": note})
    return {
        "verdicts": verdicts,
        "score": post.get("score"),
        "override_reason": post.get("override_reason", ""),
        "comment": post.get("comment", ""),
    }


@require_POST
@login_required
def save_draft(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Autosave (htmx, or a beacon when the page is left); answers with the status line, with
    the same headers as grading's (static/js/work.js reads them)."""
    item, own, _ = get_work_item(
        request.user, campaign_id, item_id, kind=KIND, read_holder_work=False
    )
    if own is not None:
        return _draft_status(request, 409, "This analysis is already reviewed; save your edit.")
    try:
        saved = review.save_review_draft(
            item,
            signed_in_user(request),
            **_posted(request.POST, _claims(item)),
            active_seconds=request.POST.get("active_seconds"),
            revision=request.POST.get("revision"),
            base_revision=request.POST.get("base_revision"),
            tab=request.POST.get("tab", ""),
        )
    except (errors.StaleDraft, errors.NotClaimed, inputs.InputError) as exc:
        return _draft_refused(request, exc)
    response = _draft_status(request, 200, "")
    response["Proofdesk-Draft-Revision"] = str(saved.revision)
    return response


def _draft_refused(request: HttpRequest, exc: Exception) -> HttpResponse:
    """400 for input the domain refuses; 409 for a draft that may not be written now: the
    item is not the reviewer's, or the server keeps a newer draft (its revision in a header,
    and whether another tab wrote it)."""
    if isinstance(exc, inputs.InputError):
        return _draft_status(request, 400, str(exc))
    response = _draft_status(request, 409, str(exc))
    if isinstance(exc, errors.StaleDraft):
        response["Proofdesk-Draft-Revision"] = str(exc.revision)
        response["Proofdesk-Draft-Conflict"] = "other-tab" if exc.other_tab else "newer"
    return response


def _draft_status(request: HttpRequest, status: int, refusal: str) -> HttpResponse:
    context = {"draft_error": refusal, "saved_at": None if refusal else timezone.now()}
    response = render(request, TEMPLATE + "#draft-status", context, status=status)
    response["Proofdesk-Draft"] = "refused" if refusal else "saved"
    return response


@require_POST
@login_required
def submit(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Commit a review (idempotent by the form's submission key), or save an edit of the
    committed one (the form carries `version`; a stale one answers 409 and keeps the input)."""
    item, own, roles = _item(request, campaign_id, item_id)
    claims = _claims(item)
    content = _posted(request.POST, claims)
    shown = {
        "verdicts": {v["claim"]: (v["verdict"], v["note"]) for v in content["verdicts"]},
        "score": score_text_or_blank(request.POST.get("score")),
        "override_reason": content["override_reason"],
        "comment": content["comment"],
    }
    try:
        if "version" in request.POST:
            return _save_edit(request, item, own, content)
        review.submit_review(
            item,
            signed_in_user(request),
            **content,
            active_seconds=request.POST.get("active_seconds"),
            submission_key=request.POST.get("submission_key"),
        )
    except errors.AlreadyCommitted as exc:
        messages.warning(
            request,
            f"This analysis was already reviewed, probably from another tab (version "
            f"{exc.record.version}, score {score_text(exc.record.score)}); what this tab held "
            "was not saved. Press Edit to change the committed review.",
        )
        return redirect("review_page", item.campaign_id, item.pk)
    except errors.StaleEdit as exc:
        message = (
            f"{exc} You opened version {request.POST.get('version')}; nothing was overwritten "
            "and your input is kept below."
        )
        return _rerender(request, item, own, roles, shown, message, 409)
    except errors.NotClaimed as exc:
        return _rerender(request, item, own, roles, shown, str(exc), 409)
    except inputs.InputError as exc:
        return _rerender(request, item, own, roles, shown, str(exc), 400)
    messages.success(request, "Review committed.")
    return _open_next(item.campaign, signed_in_user(request), committed=item.pk)


def _save_edit(
    request: HttpRequest, item: CampaignItem, own: Review | None, content: dict[str, Any]
) -> HttpResponse:
    """An edit of the committed review, naming the version the page showed."""
    if own is None:
        raise inputs.InputError("version", "There is no committed review of yours to edit.")
    edited = review.edit_review(
        own, signed_in_user(request), expected_version=request.POST["version"], **content
    )
    if edited.version == own.version:
        messages.info(request, f"Nothing changed; the review stays at version {own.version}.")
    else:
        messages.success(request, f"Your edit is saved (version {edited.version}).")
    return redirect("review_page", item.campaign_id, item.pk)


def _rerender(
    request: HttpRequest,
    item: CampaignItem,
    own: Review | None,
    roles: set[str],
    shown: dict[str, Any],
    error: str,
    status: int,
) -> HttpResponse:
    """The page again, with the message and what the reviewer had entered."""
    context = _page_context(request, item, own, roles, **shown)
    context["error"] = error
    return render(request, TEMPLATE, context, status=status)


@require_POST
@login_required
def skip(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Give the analysis back with a reason, then go straight to the next one."""
    item, own, roles = _item(request, campaign_id, item_id)
    if own is not None:
        raise PermissionDenied("You already reviewed this analysis; it cannot be skipped.")
    try:
        work_queue.skip_item(
            item,
            signed_in_user(request),
            request.POST.get("reason", ""),
            request.POST.get("note", ""),
        )
    except inputs.InputError as exc:
        context = _page_context(request, item, None, roles)
        context["error"] = str(exc)
        return render(request, TEMPLATE, context, status=400)
    messages.info(request, "Skipped.")
    return _open_next(item.campaign, signed_in_user(request))


@require_POST
@login_required
def lease(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Heartbeat while the page is open: renew the lease, answer with the banner (if any)."""
    # A reviewer who lost the lease gets the banner, not a 403.
    item, _ = get_expert_item(request.user, campaign_id, item_id, kind=KIND)
    # Committed work holds no lease (an edit is saved by version, whoever holds it).
    user = signed_in_user(request)
    editing = review.own_review(item, user) is not None
    lost = not editing and not work_queue.renew_lease(item, user)
    context = dict(
        campaign=item.campaign,
        item=item,
        lease_lost=lost,
        lease_poll_seconds=_poll_seconds(item.campaign),
        editing=editing,
        lease_url=_urls(item)["lease_url"],
    )
    return render(request, TEMPLATE + "#lease", context)


# -- merging and splitting claims ------------------------------------------------------------


def _claim_ids(raw: list[str]) -> list[int]:
    if not raw or not all(value.isdigit() for value in raw):
        raise ClaimEditRefused("Choose the claims by their numbers.")
    return [int(value) for value in raw]


@require_POST
@login_required
def merge(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Merge the posted claims (`claim`, twice or more) into one; back to the page."""
    item, own, roles = _item(request, campaign_id, item_id)
    try:
        merged = merge_claims(
            item.analysis, _claim_ids(request.POST.getlist("claim")), request.user
        )
    except ClaimEditRefused as exc:
        return _claim_edit_refused(request, item, own, roles, exc)
    messages.success(request, f"Claims merged into claim {merged.order}.")
    return redirect("review_page", item.campaign_id, item.pk)


@require_POST
@login_required
def split(request: HttpRequest, campaign_id: int, item_id: int, claim_id: int) -> HttpResponse:
    """Split one claim in two at a character offset of its text (`at`); back to the page."""
    item, own, roles = _item(request, campaign_id, item_id)
    claim = next((c for c in _claims(item) if c.pk == claim_id), None)
    if claim is None:
        raise Http404("This claim is not part of the analysis.")
    raw = request.POST.get("at", "")
    try:
        if not raw.isdigit():
            raise ClaimEditRefused("Say where to split the claim: a position in its text.")
        parts = split_claim(claim, at=int(raw), by=request.user)
    except ClaimEditRefused as exc:
        return _claim_edit_refused(request, item, own, roles, exc)
    messages.success(
        request, f"Claim {claim.order} split into claims {parts[0].order}–{parts[-1].order}."
    )
    return redirect("review_page", item.campaign_id, item.pk)


def _claim_edit_refused(
    request: HttpRequest, item: CampaignItem, own: Review | None, roles: set[str], exc: Exception
) -> HttpResponse:
    context = _page_context(request, item, own, roles)
    context["error"] = str(exc)
    return render(request, TEMPLATE, context, status=400)
