"""Campaign list, campaign page, the proof page and the owner's progress page.

The campaign page and the progress page update live: static/js/live.js opens the
campaign's websocket (annotate/consumers.py) and, when a grade or skip is reported, fires
`campaign-progress` on <body>; the page's live parts re-fetch themselves with `hx-get`
(the same view, rendering the template's `{% partialdef %}` named by the htmx target).
The websocket only says *that* something changed; the numbers come from these views, so
they are authorised exactly like the page.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Subquery, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotate import flags, gold, progress
from annotate.access import (
    campaigns_for,
    campaigns_owned_by,
    get_campaign_for_member,
    get_item_to_view,
)
from annotate.models import Adjudication, Campaign, CampaignItem, Grade, Role, Skip
from annotate.others import others_for
from annotate.views.grading import duration_text, score_text
from annotate.work import visibility
from annotate.work.kinds import kind_of

ITEMS_PER_PAGE = 50
RECENT_ROWS = 50


def _template(request: HttpRequest, template: str, default: str, *others: str) -> str:
    """The page; on an htmx request, the partial named by the element it targets."""
    if not request.htmx:
        return template
    target = request.htmx.target
    return f"{template}#{target if target in others else default}"


def _per_campaign(aggregate):
    """`aggregate` over the items of the campaign `OuterRef("pk")`, for a Subquery."""
    items = CampaignItem.objects.filter(campaign=OuterRef("pk")).order_by()
    return items.values("campaign").annotate(value=aggregate).values("value")


@require_GET
@login_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = (
        campaigns_for(request.user)
        # Committed work of any kind (grades, reviews): the items' own counters, summed in
        # a subquery (the membership join of `campaigns_for` would repeat the items).
        .annotate(
            item_count=Subquery(_per_campaign(Count("id"))),
            committed=Subquery(_per_campaign(Sum("committed"))),
        )
        .order_by("name")
    )
    context = {
        "campaigns": campaigns,
        # The page to make a review campaign is for staff and campaign owners.
        "may_create": campaigns_owned_by(request.user).exists(),
    }
    return render(request, "annotate/campaign_list.html", context)


@require_GET
@login_required
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign, roles = get_campaign_for_member(request.user, campaign_id)
    is_owner = Role.OWNER in roles
    # `committed` is kept by the grading transaction itself (annotate/grading.py).
    items = campaign.items.select_related("proof__problem", "analysis").order_by(
        "proof__problem__external_id", "id"
    )
    if is_owner:
        # Who skipped what is the owner's business only.
        items = items.annotate(skip_count=Count("skips"))
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "campaign": campaign,
        "roles": roles,
        "is_owner": is_owner,
        "page": page,
        "counts": progress.campaign_counts(campaign),
        # What one piece of work is called on this campaign's page.
        "noun": {
            Campaign.Kind.REVIEW_ANALYSES: "review",
            Campaign.Kind.ADJUDICATE: "adjudication",
        }.get(campaign.kind, "grade"),
    }
    template = _template(request, "annotate/campaign_detail.html", "items", "campaign-progress")
    return render(request, template, context)


@require_GET
@login_required
def item_detail(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """The proof as members see it; owners also see every grade, skip and flag of it.

    Grades follow the grading page's blind rule (`visibility.can_see_others`): an owner who is
    grading this proof themselves sees no other grade until theirs is in.
    """
    item, roles = get_item_to_view(request.user, campaign_id, item_id)
    campaign = item.campaign
    problem = item.proof.problem
    is_owner = Role.OWNER in roles
    others = None
    if visibility.can_see_others(item, request.user, roles=roles):
        others = others_for(item, request.user)
    skips = None
    if is_owner:
        skips = list(Skip.objects.filter(item=item).select_related("grader").order_by("created_at"))
    adjudications = None
    if others is not None and campaign.kind == Campaign.Kind.ADJUDICATE:
        # An adjudication campaign's work on the item is its adjudications, not grades.
        adjudications = [
            {"adjudication": a, "score_text": score_text(a.score)}
            for a in Adjudication.objects.filter(item=item).select_related("adjudicator")
        ]
    context = {
        "campaign": campaign,
        "item": item,
        # What one piece of this campaign's work is called ("grade", "adjudication", ...).
        "noun": kind_of(campaign).noun,
        "adjudications": adjudications,
        "proof": item.proof,
        "problem": problem,
        "is_owner": is_owner,
        "show_reference": campaign.show_reference_solution or is_owner,
        "show_guidelines": campaign.show_guidelines or is_owner,
        "others": others,
        "grades": [
            {**g, "score_text": _score(g["score"]), "at": datetime.fromisoformat(g["created_at"])}
            for g in (others["grades"] if others else [])
        ],
        "skips": skips,
        # The proof's gold label (annotate/gold.py), for whoever sees every grade of it.
        "gold": gold.shown_to(roles, item.proof) if others is not None else None,
        "flags": list(flags.open_flags(campaign, problem)),
        "flagged_elsewhere": flags.flagged_elsewhere(campaign, problem) if is_owner else 0,
    }
    return render(request, "annotate/item_detail.html", context)


def _score(value: float | None) -> str:
    return score_text(None if value is None else Decimal(str(value)))


@require_GET
@login_required
def campaign_progress(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Owners: items complete / in progress / untouched, graders, skips, flags, latest grades."""
    campaign, _ = get_campaign_for_member(request.user, campaign_id, [Role.OWNER])
    stats = progress.campaign_progress(campaign)
    graders = [
        {**g, "median_text": duration_text(g["median_active_seconds"])} for g in stats["graders"]
    ]
    item_of_proof = CampaignItem.objects.filter(campaign=campaign, proof=OuterRef("proof"))
    recent = (
        Grade.objects.made_in_app()
        .for_campaign(campaign)
        .select_related("grader", "proof__problem")
        .annotate(campaign_item_id=Subquery(item_of_proof.values("pk")[:1]))
        .order_by("-updated_at", "-id")[:RECENT_ROWS]
    )
    skips = (
        Skip.objects.filter(item__campaign=campaign)
        .select_related("grader", "item__proof__problem")
        .order_by("-created_at", "-id")[:RECENT_ROWS]
    )
    context = {
        "campaign": campaign,
        "progress": stats,
        "graders": graders,
        "median_text": duration_text(stats["median_active_seconds"]),
        "recent": [{"grade": g, "score": score_text(g.score)} for g in recent],
        "skips": skips,
        "flags": flags.campaign_flags(campaign)[:RECENT_ROWS],
    }
    template = _template(request, "annotate/grading_progress.html", "live-progress")
    return render(request, template, context)
