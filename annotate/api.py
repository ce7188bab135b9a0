"""REST API for expert grading (DRF), under /api/.

Thin by design: each endpoint checks access through `annotate.access`, hands the JSON body
to one function of `annotate.grading` and returns what it made. Invalid input is a 400
whose body names the field (`{"score": ["The score must be 0, 0.5 or 1."]}`) and nothing
is written; a stale edit or a lost lease is a 409.

    POST   /api/campaigns/<id>/claim/                      next item for me (or null)
    GET    /api/campaigns/<id>/items/<item>/               the item as a member sees it
    PUT    /api/campaigns/<id>/items/<item>/draft/         autosave (newest `revision` wins)
    POST   /api/campaigns/<id>/items/<item>/grade/         submit (idempotent by submission_key)
    POST   /api/campaigns/<id>/items/<item>/skip/          skip with a reason (not once graded)
    POST   /api/campaigns/<id>/items/<item>/lease/         renew my lease
    DELETE /api/campaigns/<id>/items/<item>/lease/         give the item back
    GET    /api/campaigns/<id>/progress/                   owners
    GET    /api/grades/<id>/                               the grader, owners, adjudicators
    PATCH  /api/grades/<id>/                               the grader, with the `version` seen
                                                           (changing nothing keeps the version)
    GET    /api/grades/<id>/history/                       the grader, owners, adjudicators

Who may do what is annotate/access.py's, the same rule as the grading pages' for each action.
"""

from __future__ import annotations

from typing import Any

from django.urls import path, reverse
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from annotate import flags, grading, inputs, suggestions
from annotate import progress as progress_stats
from annotate.access import (
    get_campaign_for_member,
    get_expert_item,
    get_grade_for_member,
    get_grade_to_edit,
    get_item_to_view,
    get_skippable_item,
    get_work_campaign,
)
from annotate.issues import issue_snapshot
from annotate.models import Campaign, CampaignItem, Draft, Grade, Role
from annotate.others import others_for
from annotate.work import drafts, errors, visibility
from annotate.work import queue as work_queue

GRADING = Campaign.Kind.GRADE_PROOFS
OWNER_ROLES = {Role.OWNER}
REFERENCE_NOTE = "The reference solution may itself contain mistakes."


def _invalid(exc: inputs.InputError) -> ValidationError:
    return ValidationError({exc.field: [str(exc)]})


def _conflict(message: str, **extra: Any) -> Response:
    return Response({"detail": message, **extra}, status=status.HTTP_409_CONFLICT)


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationError({"non_field_errors": ["Send a JSON object."]})
    return request.data


# --- representations ------------------------------------------------------------------------


def _num(value) -> float | None:
    return None if value is None else float(value)


def grade_json(grade: Grade) -> dict[str, Any]:
    return {
        "id": grade.pk,
        "campaign": grade.campaign_id,
        "proof": grade.proof_id,
        "score": _num(grade.score),
        "comment": grade.comment,
        "issues": issue_snapshot(list(grade.issues.all())),
        "active_seconds": grade.active_seconds,
        "version": grade.version,
        "submission_key": str(grade.submission_key) if grade.submission_key else None,
        "created_at": grade.created_at.isoformat(),
        "updated_at": grade.updated_at.isoformat(),
    }


def draft_json(draft: Draft) -> dict[str, Any]:
    score, comment, issues = grading.draft_values(draft)
    return {
        "score": _num(score),
        "comment": comment,
        "issues": issues,
        "suggestions": suggestions.draft_decisions(draft),
        "active_seconds": draft.active_seconds,
        "revision": draft.revision,
        "updated_at": draft.updated_at.isoformat() if draft.updated_at else None,
    }


def item_url(item: CampaignItem) -> str:
    return reverse("api_item", args=[item.campaign_id, item.pk])


def item_json(item: CampaignItem, user, roles: set[str]) -> dict[str, Any]:
    """The item as `user` may see it: in a blind campaign, nothing about other grades or
    model scores (not even the generator's self-score) until the user's grade is in."""
    campaign, proof, problem = item.campaign, item.proof, item.proof.problem
    is_owner = Role.OWNER in roles
    own = grading.own_grade(item, user)
    draft = None if own else drafts.get_draft(item, user)
    body: dict[str, Any] = {
        "id": item.pk,
        "url": item_url(item),
        "campaign": {
            "id": campaign.pk,
            "name": campaign.name,
            "blind": campaign.blind,
            "overlap": campaign.overlap,
            "instructions": campaign.instructions,
            "rubric_version": campaign.rubric_version,
        },
        "problem": {
            "id": problem.pk,
            "external_id": problem.external_id,
            "statement": problem.statement,
            "category": problem.category,
            "level": problem.level,
            "source": problem.source,
            "flags": [
                {
                    "note": f.note,
                    "raised_by": f.raised_by.get_username(),
                    "at": f.created_at.isoformat(),
                }
                # Only this campaign's flags (annotate/flags.py says who sees which flag).
                for f in flags.open_flags(campaign, problem)
            ],
        },
        "proof": {"id": proof.pk, "text": proof.text},
        "lease": {
            "mine": work_queue.holds_lease(item, user),
            "expires_at": (
                item.lease_expires_at.isoformat()
                if item.lease_holder_id == user.pk and item.lease_expires_at
                else None
            ),
        },
        "draft": draft_json(draft) if draft else None,
        "grade": grade_json(own) if own else None,
    }
    if is_owner:
        body["problem"]["flagged_elsewhere"] = flags.flagged_elsewhere(campaign, problem)
    if campaign.show_guidelines or is_owner:
        body["problem"]["guidelines"] = problem.guidelines
    if (campaign.show_reference_solution or is_owner) and problem.reference_solution:
        body["problem"]["reference_solution"] = problem.reference_solution
        body["problem"]["reference_solution_note"] = REFERENCE_NOTE
    visible = visibility.can_see_others(item, user, roles=roles, done=own is not None)
    body["can_see_others"] = visible
    if visible:
        body["others"] = others_for(item, user)
        # The verifier's claims as suggestions, with the grader's decisions so far.
        body["suggestions"] = suggestions.for_item(item, body["others"], own_grade=own, draft=draft)
    return body


# --- endpoints ------------------------------------------------------------------------------


@api_view(["POST"])
def claim(request: Request, campaign_id: int) -> Response:
    campaign, _ = get_work_campaign(request.user, campaign_id, GRADING)
    try:
        item = work_queue.claim_next_item(campaign, request.user)
    except inputs.InputError as exc:
        raise _invalid(exc) from exc
    if item is None:
        return Response({"item": None, "detail": "Nothing left for you to grade here."})
    return Response(
        {
            "item": {
                "id": item.pk,
                "url": item_url(item),
                "proof": item.proof_id,
                "problem": item.proof.problem.external_id,
                "lease_expires_at": item.lease_expires_at.isoformat(),
            }
        }
    )


@api_view(["GET"])
def item_detail(request: Request, campaign_id: int, item_id: int) -> Response:
    item, roles = get_item_to_view(request.user, campaign_id, item_id, GRADING)
    return Response(item_json(item, request.user, roles))


@api_view(["PUT"])
def draft(request: Request, campaign_id: int, item_id: int) -> Response:
    # Whether the item is the grader's to work on is the domain's to say (409), under its lock.
    item, _ = get_expert_item(request.user, campaign_id, item_id, GRADING)
    data = _body(request)
    try:
        saved = grading.save_draft(
            item,
            request.user,
            score=data.get("score"),
            comment=data.get("comment"),
            issues=data.get("issues"),
            suggestions=data.get("suggestions"),
            active_seconds=data.get("active_seconds"),
            revision=data.get("revision"),
            base_revision=data.get("base_revision"),
            tab=data.get("tab", ""),
        )
    except inputs.InputError as exc:
        raise _invalid(exc) from exc
    except errors.StaleDraft as exc:
        return _conflict(str(exc), revision=exc.revision, other_tab=exc.other_tab)
    except errors.NotClaimed as exc:
        return _conflict(str(exc))
    return Response(draft_json(saved))


@api_view(["POST"])
def submit(request: Request, campaign_id: int, item_id: int) -> Response:
    item, _ = get_expert_item(request.user, campaign_id, item_id, GRADING)
    data = _body(request)
    try:
        grade, created = grading.submit_grade(
            item,
            request.user,
            score=data.get("score"),
            comment=data.get("comment"),
            issues=data.get("issues"),
            suggestions=data.get("suggestions"),
            active_seconds=data.get("active_seconds"),
            submission_key=data.get("submission_key"),
        )
    except inputs.InputError as exc:
        raise _invalid(exc) from exc
    except errors.NotClaimed as exc:
        return _conflict(str(exc))
    # 200: a retry of a submission that already made this grade.
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return Response(grade_json(grade), status=code)


@api_view(["POST"])
def skip(request: Request, campaign_id: int, item_id: int) -> Response:
    item, _ = get_skippable_item(request.user, campaign_id, item_id, GRADING)
    data = _body(request)
    try:
        made = work_queue.skip_item(
            item, request.user, data.get("reason") or "", data.get("note") or ""
        )
    except inputs.InputError as exc:
        raise _invalid(exc) from exc
    return Response(
        {"item": item.pk, "reason": made.reason, "note": made.note},
        status=status.HTTP_201_CREATED,
    )


@api_view(["POST", "DELETE"])
def lease(request: Request, campaign_id: int, item_id: int) -> Response:
    item, _ = get_expert_item(request.user, campaign_id, item_id, GRADING)
    if request.method == "DELETE":
        work_queue.release_lease(item, request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
    if not work_queue.renew_lease(item, request.user):
        return _conflict("Your lease on this item was lost; claim the next item.", held=False)
    return Response({"held": True, "expires_at": item.lease_expires_at.isoformat()})


@api_view(["GET"])
def progress(request: Request, campaign_id: int) -> Response:
    campaign, _ = get_campaign_for_member(request.user, campaign_id, OWNER_ROLES)
    return Response(progress_stats.campaign_progress(campaign))


@api_view(["GET", "PATCH"])
def grade_detail(request: Request, grade_id: int) -> Response:
    if request.method == "GET":
        grade, _ = get_grade_for_member(request.user, grade_id)
        return Response(grade_json(grade))
    grade, _ = get_grade_to_edit(request.user, grade_id)
    data = _body(request)
    # PATCH: what is left out keeps its current value.
    if "issues" in data:
        issues = data["issues"]
    else:
        issues = issue_snapshot(list(grade.issues.all()))
    if "suggestions" in data:
        decisions = data["suggestions"]
    else:
        decisions = suggestions.decisions_json(suggestions.stored_decisions(grade))
    try:
        edited = grading.edit_grade(
            grade,
            request.user,
            expected_version=data.get("version"),
            score=data.get("score", grade.score),
            comment=data.get("comment", grade.comment),
            issues=issues,
            suggestions=decisions,
        )
    except inputs.InputError as exc:
        raise _invalid(exc) from exc
    except errors.StaleEdit as exc:
        return _conflict(str(exc), current_version=exc.current_version)
    return Response(grade_json(edited))


@api_view(["GET"])
def grade_history(request: Request, grade_id: int) -> Response:
    grade, _ = get_grade_for_member(request.user, grade_id)
    rows = grade.history.select_related("changed_by").order_by("version")
    return Response(
        {
            "grade": grade.pk,
            "history": [
                {
                    "version": h.version,
                    "changed_by": h.changed_by.get_username() if h.changed_by else None,
                    "changed_at": h.changed_at.isoformat(),
                    "old_score": _num(h.old_score),
                    "new_score": _num(h.new_score),
                    "old_comment": h.old_comment,
                    "new_comment": h.new_comment,
                    "old_issues": h.old_issues,
                    "new_issues": h.new_issues,
                }
                for h in rows
            ],
        }
    )


ITEM = "campaigns/<int:campaign_id>/items/<int:item_id>/"

urlpatterns = [
    path("campaigns/<int:campaign_id>/claim/", claim, name="api_claim"),
    path("campaigns/<int:campaign_id>/progress/", progress, name="api_progress"),
    path(ITEM, item_detail, name="api_item"),
    path(ITEM + "draft/", draft, name="api_draft"),
    path(ITEM + "grade/", submit, name="api_submit"),
    path(ITEM + "skip/", skip, name="api_skip"),
    path(ITEM + "lease/", lease, name="api_lease"),
    path("grades/<int:grade_id>/", grade_detail, name="api_grade"),
    path("grades/<int:grade_id>/history/", grade_history, name="api_grade_history"),
]
