"""The owners' list of disagreements (`verification.disagreements` records them).

Who may: `annotate.access.disagreements_for` (staff every disagreement, an owner those about
proofs of the campaigns they own; anyone else 403). An owner does not learn the names of
other campaigns or their graders through a proof they share: a party from a campaign they
do not own reads "an expert of another campaign" (its score stays, it is part of the gap).
Filters arrive in the query string; a bad one is shown with its reason (400) and lists
nothing.

From the list an owner sends the proofs of the open disagreements it shows (every page of
them, under the same filters) to a new adjudication campaign
(`adjudicate_disagreements`, through `annotate.campaigns.create_adjudication_campaign`).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from annotate.access import disagreements_for, signed_in_user
from annotate.campaigns import create_adjudication_campaign
from annotate.inputs import InputError
from annotate.models import Campaign, CampaignItem
from verification.models import Disagreement

PER_PAGE = 50
OPEN = Disagreement.Status.OPEN
OTHER_CAMPAIGN = "an expert of another campaign"
NOTHING_TO_SEND = "No open disagreement matches these filters."
STATUS_CHOICES = [("open", "Open"), ("resolved", "Resolved"), ("all", "Open and resolved")]


class DisagreementFilter(forms.Form):
    kind = forms.ChoiceField(choices=[("", "Any kind"), *Disagreement.Kind.choices], required=False)
    campaign = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    problem = forms.CharField(max_length=200, required=False, strip=True)
    model = forms.CharField(max_length=200, required=False, strip=True)
    min_gap = forms.DecimalField(
        min_value=0, max_value=1, max_digits=3, decimal_places=2, required=False
    )
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)

    def __init__(self, *args: Any, campaigns: list[Campaign], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["campaign"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", "Any campaign"), *((c.pk, c.name) for c in campaigns)]

    def apply(self, disagreements: QuerySet[Disagreement]) -> QuerySet[Disagreement]:
        """The disagreements that pass the (valid) filters."""
        data = self.cleaned_data
        status = data.get("status") or "open"
        if status != "all":
            disagreements = disagreements.filter(status=status)
        if data.get("kind"):
            disagreements = disagreements.filter(kind=data["kind"])
        if data.get("campaign") is not None:
            of_campaign = CampaignItem.objects.filter(
                proof=OuterRef("proof"), campaign_id=data["campaign"]
            )
            disagreements = disagreements.filter(Exists(of_campaign))
        if data.get("problem"):
            disagreements = disagreements.filter(proof__problem__external_id=data["problem"])
        if data.get("model"):
            disagreements = disagreements.filter(model_names__contains=f"\n{data['model']}\n")
        if data.get("min_gap") is not None:
            disagreements = disagreements.filter(gap__gte=float(data["min_gap"]))
        return disagreements


def _shown_parties(disagreement: Disagreement, owned: set[int] | None) -> list[dict[str, Any]]:
    """The parties as this user may see them (`owned` None: staff, every name)."""
    shown = []
    for party in disagreement.parties:
        if not isinstance(party, dict):
            continue
        campaign = party.get("campaign")
        hidden = owned is not None and campaign is not None and campaign not in owned
        shown.append(
            {
                "side": str(party.get("side", "")),
                "who": OTHER_CAMPAIGN if hidden else str(party.get("who", "")),
                "score": party.get("score"),
                "majority": party.get("majority"),
            }
        )
    return shown


def _item_links(rows: list[Disagreement], owned: set[int] | None) -> dict[int, CampaignItem]:
    """Per proof of `rows`, the item page an owner opens it on: an item of a campaign they
    own (staff: any), a grading campaign's first; one query."""
    items = CampaignItem.objects.filter(proof_id__in={d.proof_id for d in rows})
    if owned is not None:
        items = items.filter(campaign_id__in=owned)
    grading_first = items.select_related("campaign").order_by("proof_id", "campaign__kind", "pk")
    links: dict[int, CampaignItem] = {}
    for item in grading_first:
        if item.campaign.kind == Campaign.Kind.GRADE_PROOFS or item.proof_id not in links:
            links.setdefault(item.proof_id, item)
    return links


def _campaign_names(
    disagreement: Disagreement, owned: set[int] | None, item: CampaignItem | None
) -> list[str]:
    """The campaigns of the parties this user may see; when no party is of a campaign
    (imported grades, models), the campaign the proof is linked to."""
    names = [c.name for c in disagreement.campaigns.all() if owned is None or c.pk in owned]
    if not names and item is not None:
        names = [item.campaign.name]
    return names


def _adjudication_values(data: QueryDict) -> dict[str, Any]:
    """The "send to adjudication" form as shown again."""
    today = timezone.localdate().isoformat()
    return {
        "name": data.get("name", f"Adjudicate disagreements {today}"),
        "adjudicators": data.get("adjudicators", ""),
        "overlap": data.get("overlap", "1"),
    }


def _list(
    request: HttpRequest,
    data: QueryDict,
    *,
    adjudication: dict[str, Any] | None = None,
    error: InputError | None = None,
) -> HttpResponse:
    """The list under the filters in `data` (the query string, or the form that sent
    them to adjudication and was refused: `adjudication` and `error` say what and why)."""
    visible, owned_campaigns = disagreements_for(request.user)
    campaigns = list(owned_campaigns.order_by("name"))
    owned = None if request.user.is_staff else {c.pk for c in campaigns}
    form = DisagreementFilter(data, campaigns=campaigns)
    status = 400 if error is not None else 200
    rows: Any = Disagreement.objects.none()
    to_adjudicate = 0
    if form.is_valid():
        chosen = form.apply(visible)
        rows = (
            chosen.select_related("proof__problem", "analysis")
            .prefetch_related("campaigns")
            .order_by("-gap", "-created_at", "-id")
        )
        to_adjudicate = chosen.filter(status=OPEN).values("proof_id").distinct().count()
    else:
        status = 400
    page = Paginator(rows, PER_PAGE).get_page(data.get("page"))
    query = data.copy()
    for key in ("page", "csrfmiddlewaretoken", *ADJUDICATION_FIELDS):
        query.pop(key, None)
    shown = list(page)
    links = _item_links(shown, owned)
    entries = [
        {
            "disagreement": d,
            "parties": _shown_parties(d, owned),
            "campaigns": _campaign_names(d, owned, links.get(d.proof_id)),
            "item": links.get(d.proof_id),
        }
        for d in shown
    ]
    context = {
        "form": form,
        "page": page,
        "entries": entries,
        "query": query.urlencode(),
        "filters": [(key, value) for key, value in query.items() if value],
        "to_adjudicate": to_adjudicate,
        "adjudication": adjudication or _adjudication_values(QueryDict()),
        "error": error,
    }
    return render(request, "verification/disagreements.html", context, status=status)


ADJUDICATION_FIELDS = ("name", "adjudicators", "overlap")


@require_GET
@login_required
def disagreement_list(request: HttpRequest) -> HttpResponse:
    return _list(request, request.GET)


@require_POST
@login_required
def adjudicate_disagreements(request: HttpRequest) -> HttpResponse:
    """A new adjudication campaign of the proofs of the open disagreements the list shows
    under the posted filters (every page), the sender its owner, the adjudicators named
    its adjudicators; refused (400, nothing written) when a filter or a field is bad or no
    open disagreement is left."""
    visible, owned_campaigns = disagreements_for(request.user)
    campaigns = list(owned_campaigns.order_by("name"))
    form = DisagreementFilter(request.POST, campaigns=campaigns)
    values = _adjudication_values(request.POST)
    if not form.is_valid():
        return _list(request, request.POST, adjudication=values)
    proofs = form.apply(visible).filter(status=OPEN).values_list("proof_id", flat=True)
    try:
        made, count = create_adjudication_campaign(
            signed_in_user(request),
            values["name"],
            proof_ids=sorted(set(proofs)),
            adjudicators=values["adjudicators"],
            overlap=values["overlap"],
        )
    except InputError as exc:
        # An empty selection (`create_adjudication_campaign` names it "filters"): say so
        # in the list's words.
        if exc.field in ("proofs", "filters"):
            exc = InputError("proofs", NOTHING_TO_SEND)
        return _list(request, request.POST, adjudication=values, error=exc)
    messages.success(
        request,
        f"Created {made.name!r} with {count} proof{'s' if count != 1 else ''} to adjudicate.",
    )
    return redirect("campaign_detail", made.pk)
