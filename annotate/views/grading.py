"""The expert grading pages: the queue, the grading page and its endpoints, progress.

Views are thin: check access with `annotate.access`, parse the form, call the domain
functions in `annotate.grading`, render. The grading page is the only page a grader needs;
its JavaScript (static/js/grading.js) adds keyboard shortcuts, anchored issues, autosave and
the lease heartbeat on top of plain forms that also work without it.

Blind mode is enforced here by never putting other grades, model scores or analyses in the
template context until `can_see_others` says so: what is not in the context cannot leak
into the HTML, hidden or not.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from annotate import flags, grading, inputs, progress, suggestions
from annotate.access import (
    get_committed_work,
    get_expert_item,
    get_skippable_item,
    get_work_campaign,
    get_work_item,
)
from annotate.models import (
    Campaign,
    CampaignItem,
    Grade,
    GradeIssue,
    Role,
    Skip,
)
from annotate.others import others_for
from annotate.work import drafts, errors, visibility
from annotate.work import queue as work_queue

GRADES_PER_PAGE = 50
# (value, key, hint) of the score buttons.
SCORE_BUTTONS = [
    ("0", "0", "fatal error, severe omission, or not a proof of this problem"),
    ("0.5", "5", "generally correct, minor errors or omitted details"),
    ("1", "1", "completely correct and rigorous"),
]


# -- access ----------------------------------------------------------------------------------

GRADING = Campaign.Kind.GRADE_PROOFS


def _grading_campaign(request: HttpRequest, campaign_id: int) -> Campaign:
    campaign, _ = get_work_campaign(request.user, campaign_id, GRADING)
    return campaign


# -- form parsing ----------------------------------------------------------------------------


class FormError(ValueError):
    """A form field the domain never sees because it is not even well-formed."""


def score_text(score: Decimal | None) -> str:
    """'0', '0.5' or '1' (the database hands back 1.0), '' for no score."""
    if score is None:
        return ""
    return format(score.normalize(), "f")


def score_text_or_blank(raw: str | None) -> str:
    """A score typed into a form or URL as '0', '0.5' or '1'; '' if it is not one."""
    try:
        return score_text(inputs.parse_score(raw, required=False))
    except inputs.InputError:
        return ""


def duration_text(seconds: float | None) -> str:
    """12 s, 4 min 05 s, 1 h 02 min."""
    if seconds is None:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _parse_issues_field(raw: str | None) -> list[Any]:
    """The issues JSON the page's script keeps in a hidden field (validated by the domain)."""
    if not raw:
        return []
    try:
        issues = json.loads(raw)
    except ValueError:
        raise FormError("The issues field is not valid JSON.") from None
    if not isinstance(issues, list):
        raise FormError("The issues field must be a list of issues.")
    return issues


ISSUE_FIELDS = ("start", "end", "quote", "note", "severity")


def _issue_dicts(issues: Iterable[GradeIssue | dict[str, Any]]) -> list[dict[str, Any]]:
    """Issues (rows of a grade, or a draft's JSON) as the JSON the page's script edits."""
    return [
        {
            **{
                k: issue.get(k) if isinstance(issue, dict) else getattr(issue, k)
                for k in ISSUE_FIELDS
            },
            # The verifier's claim an issue was accepted from (annotate/suggestions.py).
            "claim": issue.get("claim") if isinstance(issue, dict) else issue.claim_id,
        }
        for issue in issues
    ]


# -- the queue -------------------------------------------------------------------------------


@require_GET
@login_required
def queue(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Where "Start grading" lives, and the page shown when nothing is left to grade."""
    campaign = _grading_campaign(request, campaign_id)
    context = {
        "campaign": campaign,
        "graded": progress.grader_progress(campaign, request.user).count(),
        "nothing_left": request.GET.get("empty") == "1",
        "committed": _committed_link(request, campaign),
    }
    return render(request, "annotate/grading_queue.html", context)


@require_POST
@login_required
def next_item(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Claim the next item (or the one already leased to this grader) and open it."""
    campaign = _grading_campaign(request, campaign_id)
    item = work_queue.claim_next_item(campaign, request.user)
    if item is None:
        return redirect(reverse("grading_queue", args=[campaign.pk]) + "?empty=1")
    return redirect("grading_page", campaign.pk, item.pk)


# -- the grading page ------------------------------------------------------------------------


def _committed_link(request: HttpRequest, campaign: Campaign) -> dict[str, int] | None:
    """The proof the grader just committed (`?committed=<item>` after a submission), so the
    page that follows links back to it; None without one. One query, only when asked."""
    raw = request.GET.get("committed", "")
    if not raw.isdigit():
        return None
    proof_id = (
        CampaignItem.objects.filter(pk=int(raw), campaign=campaign)
        .values_list("proof_id", flat=True)
        .first()
    )
    return None if proof_id is None else {"item": int(raw), "proof": proof_id}


def _after_commit(item: CampaignItem, user) -> HttpResponse:
    """Where a committed grade leads: the next claimed proof, or the "all done" page;
    either links back to the proof just committed."""
    nxt = work_queue.claim_next_item(item.campaign, user)
    if nxt is None:
        target = reverse("grading_queue", args=[item.campaign_id]) + "?empty=1&"
    else:
        target = reverse("grading_page", args=[item.campaign_id, nxt.pk]) + "?"
    return redirect(f"{target}committed={item.pk}")


def _page_context(
    request: HttpRequest,
    item: CampaignItem,
    own_grade: Grade | None,
    roles: set[str],
    posted_decisions: list[suggestions.DecisionInput] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """`posted_decisions`: a refused submit's decisions on the suggestions, shown again."""
    campaign = item.campaign
    proof = item.proof
    problem = proof.problem
    draft = None if own_grade else drafts.get_draft(item, request.user)
    # A committed grade is shown read-only until the grader deliberately opens the edit
    # form (?edit=1: the "Edit" link, key e), so no stray keystroke can change it.
    edit_open = own_grade is not None and request.GET.get("edit") == "1"
    if own_grade is not None:
        score, comment = own_grade.score, own_grade.comment
        issues = _issue_dicts(own_grade.issues.all())
        active_seconds = own_grade.active_seconds
    elif draft is not None:
        score, comment, draft_issues = grading.draft_values(draft)
        issues = _issue_dicts(draft_issues)
        active_seconds = draft.active_seconds
    else:
        score, comment, issues, active_seconds = None, "", [], 0
    # Blind mode: nothing about other raters enters the context before the grader commits.
    others = None
    if visibility.can_see_others(item, request.user, roles=roles, done=own_grade is not None):
        others = others_for(item, request.user)
    # The verifier's claims as suggestions: no query when the proof has no analyses.
    model_suggestions = suggestions.for_item(
        item, others, own_grade=own_grade, draft=draft, posted=posted_decisions
    )
    context: dict[str, Any] = {
        "campaign": campaign,
        "item": item,
        "proof": proof,
        "problem": problem,
        "own_grade": own_grade,
        "editing": own_grade is not None,
        "edit_open": edit_open,
        "read_only": own_grade is not None and not edit_open,
        "committed": _committed_link(request, campaign),
        "draft": draft,
        "draft_revision": draft.revision if draft else 0,
        "score": score_text(score),
        "comment": comment,
        "issues": issues,
        "active_seconds": active_seconds,
        # A fresh key per render: a retried POST of this form finds the grade it made.
        "submission_key": uuid.uuid4(),
        "others": others,
        "suggestions": model_suggestions,
        "suggestion_anchors": suggestions.page_anchors(model_suggestions),
        # Only this campaign's flags (annotate/flags.py says who sees which flag).
        "flags": list(flags.open_flags(campaign, problem)),
        "my_progress": progress.grader_status(campaign, request.user),
        "lease_poll_seconds": max(10, campaign.lease_seconds // 3),
        "score_choices": SCORE_BUTTONS,
        "skip_reasons": Skip.Reason.choices,
        "error": None,
    }
    context.update(overrides)
    return context


@require_GET
@login_required
# Never from the browser's cache: Back after a commit must show the committed grade, not
# the form as it was before (whose Enter would submit it again).
@never_cache
def grading_page(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    item, own_grade, roles = get_work_item(request.user, campaign_id, item_id, GRADING)
    return render(request, "annotate/grading.html", _page_context(request, item, own_grade, roles))


@require_POST
@login_required
def save_draft(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Autosave (htmx, or a beacon when the page is left). Answers with the status line.

    The lease holder goes straight to the domain, which checks under the item's lock that
    they have not graded it (autosave is the most frequent request: every query counts);
    anyone else passes the page's access rule first."""
    item, own_grade, _ = get_work_item(
        request.user, campaign_id, item_id, GRADING, read_holder_work=False
    )
    if own_grade is not None:
        # Edits of a committed grade are saved explicitly, never as a draft.
        return _draft_status(
            request, draft_error="This proof is already graded; save your edit instead.", status=409
        )
    try:
        saved = grading.save_draft(
            item,
            request.user,
            score=request.POST.get("score"),
            comment=request.POST.get("comment", ""),
            issues=_parse_issues_field(request.POST.get("issues")),
            suggestions=request.POST.get("suggestions"),
            active_seconds=request.POST.get("active_seconds"),
            revision=request.POST.get("revision"),
            base_revision=request.POST.get("base_revision"),
            tab=request.POST.get("tab", ""),
        )
    except errors.StaleDraft as exc:
        response = _draft_status(request, draft_error=str(exc), status=409)
        response["Proofdesk-Draft-Revision"] = str(exc.revision)
        response["Proofdesk-Draft-Conflict"] = "other-tab" if exc.other_tab else "newer"
        return response
    except errors.NotClaimed as exc:
        return _draft_status(request, draft_error=str(exc), status=409)
    except (FormError, inputs.InputError) as exc:
        return _draft_status(request, draft_error=str(exc), status=400)
    response = _draft_status(request, saved_at=timezone.now())
    response["Proofdesk-Draft-Revision"] = str(saved.revision)
    return response


def _draft_status(request: HttpRequest, *, status: int = 200, **context: Any) -> HttpResponse:
    """The status line; its header tells the page's script that this is the answer of the
    draft endpoint (a login page that a redirect led to is not, whatever its status)."""
    response = render(request, "annotate/grading.html#draft-status", context, status=status)
    response["Proofdesk-Draft"] = "saved" if status == 200 else "refused"
    return response


@require_POST
@login_required
def submit(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Commit a grade, or save an edit of a committed one (the form then carries `version`).

    A new grade is idempotent by the form's submission key (a retried POST finds the grade
    it made). An edit names the version the editor saw; a stale one answers 409, overwrites
    nothing and keeps the editor's input on the page.
    """
    item, own_grade, roles = get_work_item(request.user, campaign_id, item_id, GRADING)
    posted: dict[str, Any] = {
        "score": score_text_or_blank(request.POST.get("score")),
        "comment": request.POST.get("comment", ""),
    }
    try:
        issues = _parse_issues_field(request.POST.get("issues"))
        posted["issues"] = _issue_dicts(i for i in issues if isinstance(i, dict))
        if "version" in request.POST:
            if own_grade is None:
                raise FormError("There is no committed grade of yours to edit.")
            edited = grading.edit_grade(
                own_grade,
                request.user,
                expected_version=request.POST["version"],
                score=request.POST.get("score"),
                comment=posted["comment"],
                issues=issues,
                suggestions=request.POST.get("suggestions"),
            )
            if edited.version == own_grade.version:
                messages.info(
                    request, f"Nothing changed; the grade stays at version {edited.version}."
                )
            else:
                messages.success(request, f"Your edit is saved (version {edited.version}).")
            return redirect("grading_page", item.campaign_id, item.pk)
        grading.submit_grade(
            item,
            request.user,
            score=request.POST.get("score"),
            comment=posted["comment"],
            issues=issues,
            suggestions=request.POST.get("suggestions"),
            active_seconds=request.POST.get("active_seconds"),
            submission_key=request.POST.get("submission_key"),
        )
        messages.success(request, "Grade committed.")
    except errors.AlreadyCommitted as exc:
        # A stale tab: this proof was committed elsewhere (another tab) since this form was
        # drawn. Show the committed grade as it is, and what this tab held, never as if it
        # were the grade.
        messages.warning(
            request,
            f"This proof was already committed, probably from another tab (version "
            f"{exc.record.version}, score {score_text(exc.record.score)}). What this tab held was "
            f"not saved: score {posted['score'] or 'none'}"
            + (f", comment “{posted['comment']}”" if posted["comment"] else "")
            + ". Press Edit to change the committed grade.",
        )
        return redirect("grading_page", item.campaign_id, item.pk)
    except errors.StaleEdit as exc:
        who = "You" if exc.by_editor else "Someone else"
        where = " in another tab" if exc.by_editor else ""
        error = (
            f"{who} changed this grade{where} while you were editing it: it is now at version "
            f"{exc.current_version}, you opened version {request.POST.get('version')}. Nothing was "
            "overwritten. Your input is kept below; reload the page to see the current grade, "
            "then apply your change again."
        )
        context_overrides = {"edit_open": True, "read_only": False}
        return _rerender(
            request, item, own_grade, roles, {**posted, **context_overrides}, error, status=409
        )
    except errors.NotClaimed as exc:
        return _rerender(request, item, own_grade, roles, posted, str(exc), status=409)
    except (FormError, inputs.InputError) as exc:
        if own_grade is not None:
            posted.update(edit_open=True, read_only=False)
        return _rerender(request, item, own_grade, roles, posted, str(exc), status=400)
    return _after_commit(item, request.user)


def _rerender(
    request: HttpRequest,
    item: CampaignItem,
    own_grade: Grade | None,
    roles: set[str],
    posted: dict[str, Any],
    error: str,
    *,
    status: int,
) -> HttpResponse:
    """The grading page again, with the message and what the grader had typed: score,
    comment, issues and the decisions on the suggestions (those since the last autosave
    are only in the form)."""
    overrides = {"error": error, **posted}
    decisions = suggestions.posted_decisions(request.POST.get("suggestions"))
    context = _page_context(
        request, item, own_grade, roles, posted_decisions=decisions, **overrides
    )
    return render(request, "annotate/grading.html", context, status=status)


@require_POST
@login_required
def skip(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Give the item back with a reason, then go straight to the next one."""
    item, roles = get_skippable_item(request.user, campaign_id, item_id, GRADING)
    reason = request.POST.get("reason", "")
    if reason not in Skip.Reason.values:
        context = _page_context(request, item, None, roles, error="Choose a reason for skipping.")
        return render(request, "annotate/grading.html", context, status=400)
    try:
        work_queue.skip_item(item, request.user, reason, request.POST.get("note", ""))
    except inputs.InputError as exc:
        context = _page_context(request, item, None, roles, error=str(exc))
        return render(request, "annotate/grading.html", context, status=400)
    if reason == Skip.Reason.STATEMENT_WRONG:
        messages.warning(
            request, "Skipped; the problem statement is flagged for this campaign's graders."
        )
    else:
        messages.info(request, "Skipped.")
    nxt = work_queue.claim_next_item(item.campaign, request.user)
    if nxt is None:
        return redirect(reverse("grading_queue", args=[item.campaign_id]) + "?empty=1")
    return redirect("grading_page", item.campaign_id, nxt.pk)


@require_POST
@login_required
def lease(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Heartbeat while the page is open: renew the lease, answer with the banner (if any)."""
    # Not `get_work_item`: a grader who lost the lease gets the banner, not a 403.
    item, _ = get_expert_item(request.user, campaign_id, item_id, GRADING)
    own_grade = grading.own_grade(item, request.user)
    held = own_grade is not None or work_queue.renew_lease(item, request.user)
    context = {
        "campaign": item.campaign,
        "item": item,
        "lease_lost": not held,
        "lease_poll_seconds": max(10, item.campaign.lease_seconds // 3),
        "editing": own_grade is not None,
    }
    return render(request, "annotate/grading.html#lease", context)


# -- progress --------------------------------------------------------------------------------


@require_GET
@login_required
def my_grades(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The grader's own grades in the campaign, filterable by score, each one editable."""
    campaign = _grading_campaign(request, campaign_id)
    grades = progress.grader_progress(campaign, request.user).annotate(issue_count=Count("issues"))
    score_filter = score_text_or_blank(request.GET.get("score"))
    if score_filter:
        grades = grades.filter(score=Decimal(score_filter))
    page = Paginator(grades, GRADES_PER_PAGE).get_page(request.GET.get("page"))
    items = {
        i.proof_id: i.pk
        for i in CampaignItem.objects.filter(
            campaign=campaign, proof_id__in=[g.proof_id for g in page]
        ).only("pk", "proof_id")
    }
    rows = [
        {
            "grade": g,
            "item_id": items.get(g.proof_id),
            "score": score_text(g.score),
            "active": duration_text(g.active_seconds),
        }
        for g in page
    ]
    context = {
        "campaign": campaign,
        "page": page,
        "rows": rows,
        "score_filter": score_filter,
        "score_choices": SCORE_BUTTONS,
    }
    template = "annotate/grading_mine.html"
    if request.htmx:
        template += "#grades"
    return render(request, template, context)


@require_GET
@login_required
def grade_history(request: HttpRequest, campaign_id: int, grade_id: int) -> HttpResponse:
    """Every change to one grade (who, when, old and new score, comment, issues): for its
    grader and the campaign's owners and adjudicators."""
    grade, roles = get_committed_work(request.user, campaign_id, grade_id, GRADING)
    campaign = grade.campaign
    history = [
        {
            "row": h,
            "old_score": score_text(h.old_score),
            "new_score": score_text(h.new_score),
        }
        for h in grade.history.select_related("changed_by").order_by("version")
    ]
    context = {
        "campaign": campaign,
        "grade": grade,
        "score": score_text(grade.score),
        "history": history,
        # The progress page is the owners'; a grader's way back is their own list.
        "sees_progress": Role.OWNER in roles,
    }
    return render(request, "annotate/grading_history.html", context)
