"""An owner makes a "review analyses" campaign from analyses chosen by filter, or an
"adjudicate" campaign from proofs chosen by id or by filter.

Who may: staff, and anyone who already owns a campaign (`access.require_campaign_creator`).
Campaigns are otherwise made by staff in the admin or by `manage.py` commands; an owner is
someone staff (or the demo) trusted with a campaign, so an owner may start another one,
while a grader or reviewer, who works in campaigns, may not make them. The `campaign`
filter offers only the campaigns the user owns (`access.campaigns_owned_by`), so the page
never counts the proofs of a campaign the user may not see.

GET shows the form and the number of analyses its filters match (with `?...` filters; an
htmx request on a change of the form renders only the `preview` partial); POST creates the
campaign with `annotate.campaigns.create_review_campaign` and opens its page. Bad input
is shown next to its field (400) and nothing is written.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from django_htmx.middleware import HtmxDetails

from annotate.access import campaigns_owned_by, require_campaign_creator, signed_in_user
from annotate.campaigns import (
    FILTERS,
    NO_SCORE,
    PROOF_FILTERS,
    analyses_matching,
    create_adjudication_campaign,
    create_review_campaign,
    proofs_matching,
)
from annotate.inputs import InputError
from annotate.models import Category
from verification.models import Analysis
from verification.parsing import ParseStatus

FIELDS = ("name", "overlap", "instructions", "seed")


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it (for the type checker)."""

    htmx: HtmxDetails


def _filters(data: QueryDict, keys: tuple[str, ...] = FILTERS) -> dict[str, str]:
    return {key: data.get(key, "").strip() for key in keys if data.get(key, "").strip()}


def _values(data: QueryDict, keys: tuple[str, ...]) -> dict[str, Any]:
    """The form as shown again: the filters `keys` and the campaign's own fields."""
    values: dict[str, Any] = {key: data.get(key, "") for key in (*keys, *FIELDS)}
    values["overlap"] = values["overlap"] or "1"
    values["seed"] = values["seed"] or "0"
    values["blind"] = data.get("blind") == "on" if data else True
    return values


@require_http_methods(["GET", "POST"])
@login_required
def new_review_campaign(request: HtmxHttpRequest) -> HttpResponse:
    require_campaign_creator(request.user)
    owned = campaigns_owned_by(request.user)
    data = request.POST if request.method == "POST" else request.GET
    filters = _filters(data)
    values = _values(data, FILTERS)
    error: InputError | None = None
    status = 200
    if request.method == "POST":
        try:
            campaign, count = create_review_campaign(
                signed_in_user(request),
                values["name"],
                filters,
                overlap=values["overlap"],
                blind=values["blind"],
                instructions=values["instructions"],
                seed=values["seed"],
                campaigns=owned,
            )
        except InputError as exc:
            error, status = exc, 400
        else:
            messages.success(request, f"Created {campaign.name!r} with {count} analyses to review.")
            return redirect("campaign_detail", campaign.pk)
    matching: int | None = None
    if error is None or error.field not in FILTERS:
        try:
            matching = analyses_matching(filters, campaigns=owned).count()
        except InputError as exc:
            error = error or exc
    context = {
        "values": values,
        "error": error,
        "matching": matching,
        "models": Analysis.objects.order_by("model").values_list("model", flat=True).distinct(),
        "scores": ["0", "0.5", "1", NO_SCORE],
        "parse_statuses": ParseStatus.choices,
        "categories": Category.choices,
        "campaigns": owned.order_by("name").only("pk", "name"),
    }
    template = "annotate/review_campaign_new.html"
    if request.htmx:
        template += "#preview"
    return render(request, template, context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def new_adjudication_campaign(request: HtmxHttpRequest) -> HttpResponse:
    """An "adjudicate" campaign of proofs chosen by id (`proofs`: ids separated by commas)
    or by filter (`PROOF_FILTERS`); as `new_review_campaign` otherwise."""
    require_campaign_creator(request.user)
    owned = campaigns_owned_by(request.user)
    data = request.POST if request.method == "POST" else request.GET
    values = _values(data, (*PROOF_FILTERS, "proofs", "adjudicators"))
    by_id = bool(values["proofs"].strip())
    filters = _filters(data, PROOF_FILTERS)
    choice = {"proof_ids": values["proofs"]} if by_id else {"filters": filters}
    context: dict[str, Any] = {"values": values, "by_id": by_id, "error": None, "matching": None}
    if request.method == "POST":
        settings = {key: values[key] for key in ("overlap", "blind", "instructions", "seed")}
        try:
            made, count = create_adjudication_campaign(
                signed_in_user(request),
                values["name"],
                adjudicators=values["adjudicators"],
                campaigns=owned,
                **choice,
                **settings,
            )
            messages.success(request, f"Created {made.name!r} with {count} proofs.")
            return redirect("campaign_detail", made.pk)
        except InputError as exc:
            context["error"] = exc
    refused = context["error"] is not None and context["error"].field in PROOF_FILTERS
    if not by_id and not refused:
        try:
            context["matching"] = proofs_matching(filters, campaigns=owned).count()
        except InputError as exc:
            context["error"] = context["error"] or exc
    context["categories"] = Category.choices
    context["campaigns"] = owned.order_by("name").only("pk", "name")
    template = "annotate/adjudication_campaign_new.html" + ("#preview" if request.htmx else "")
    return render(request, template, context, status=400 if request.method == "POST" else 200)
