"""The owners' list of disagreements (`verification.disagreements` records them).

Who may: `annotate.access.disagreements_for` (staff every disagreement, an owner those about
proofs of the campaigns they own; anyone else 403). An owner does not learn the names of
other campaigns or their graders through a proof they share: a party from a campaign they
do not own reads "an expert of another campaign" (its score stays, it is part of the gap).
Filters arrive in the query string; a bad one is shown with its reason (400) and lists
nothing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotate.access import disagreements_for
from annotate.models import Campaign, CampaignItem
from verification.models import Disagreement

PER_PAGE = 50
OTHER_CAMPAIGN = "an expert of another campaign"
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


@require_GET
@login_required
def disagreement_list(request: HttpRequest) -> HttpResponse:
    visible, owned_campaigns = disagreements_for(request.user)
    campaigns = list(owned_campaigns.order_by("name"))
    owned = None if request.user.is_staff else {c.pk for c in campaigns}
    form = DisagreementFilter(request.GET, campaigns=campaigns)
    status = 200
    rows: Any = Disagreement.objects.none()
    if form.is_valid():
        rows = (
            form.apply(visible)
            .select_related("proof__problem", "analysis")
            .prefetch_related("campaigns")
            .order_by("-gap", "-created_at", "-id")
        )
    else:
        status = 400
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    entries = [
        {
            "disagreement": d,
            "parties": _shown_parties(d, owned),
            "campaigns": [c.name for c in d.campaigns.all() if owned is None or c.pk in owned],
        }
        for d in page
    ]
    context = {
        "form": form,
        "page": page,
        "entries": entries,
        "query": query.urlencode(),
    }
    return render(request, "verification/disagreements.html", context, status=status)
