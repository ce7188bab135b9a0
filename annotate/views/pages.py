"""Campaign list, campaign page and the read-only proof page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotate.access import campaigns_for, get_campaign_for_member, get_item_for_member
from annotate.models import Role

ITEMS_PER_PAGE = 50


@require_GET
@login_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = (
        campaigns_for(request.user)
        .annotate(
            item_count=Count("items", distinct=True),
            grade_count=Count("grades", filter=Q(grades__origin="app"), distinct=True),
        )
        .order_by("name")
    )
    return render(request, "annotate/campaign_list.html", {"campaigns": campaigns})


@require_GET
@login_required
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign, roles = get_campaign_for_member(request.user, campaign_id)
    # `committed_grades` is kept by the grading transaction itself (annotate/grading.py).
    items = campaign.items.select_related("proof__problem").order_by(
        "proof__problem__external_id", "id"
    )
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    total = campaign.items.count()
    complete = campaign.items.filter(committed_grades__gte=campaign.overlap).count()
    context = {
        "campaign": campaign,
        "roles": roles,
        "is_owner": Role.OWNER in roles,
        "page": page,
        "total": total,
        "complete": complete,
        "percent": round(100 * complete / total) if total else 0,
    }
    template = "annotate/campaign_detail.html"
    if request.htmx:
        template += "#items"
    return render(request, template, context)


@require_GET
@login_required
def item_detail(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    item, roles = get_item_for_member(request.user, campaign_id, item_id)
    campaign = item.campaign
    is_owner = Role.OWNER in roles
    context = {
        "campaign": campaign,
        "item": item,
        "proof": item.proof,
        "problem": item.proof.problem,
        "show_reference": campaign.show_reference_solution or is_owner,
        "show_guidelines": campaign.show_guidelines or is_owner,
    }
    return render(request, "annotate/item_detail.html", context)
