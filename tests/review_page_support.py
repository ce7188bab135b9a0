"""A review campaign built from the Open Proof Corpus sample: the judge's analyses of one
problem's proofs, each with its claims anchored in the proof (the opc importer)."""

from __future__ import annotations

from pathlib import Path

from annotate.importers import import_path
from annotate.models import Campaign, CampaignItem, Membership, Role
from verification.models import Analysis

OPC_FILE = Path(__file__).resolve().parent.parent / "data/open_proof_corpus/BMOSL/2016_3.json"


def review_campaign(owner, members: dict[object, str], *, items: int = 2, **fields) -> Campaign:
    """A blind review campaign with `items` OPC judge analyses (4 claims each) and members
    `{user: role}`, owned by `owner`."""
    result = import_path(OPC_FILE, "opc")
    assert result.ok, result.errors
    campaign = Campaign.objects.create(
        name=fields.pop("name", "Review campaign"),
        kind=Campaign.Kind.REVIEW_ANALYSES,
        overlap=fields.pop("overlap", 2),
        blind=fields.pop("blind", True),
        created_by=owner,
        **fields,
    )
    for analysis in Analysis.objects.order_by("id")[:items]:
        CampaignItem.objects.create(campaign=campaign, proof=analysis.proof, analysis=analysis)
    Membership.objects.create(campaign=campaign, user=owner, role=Role.OWNER)
    for user, role in members.items():
        Membership.objects.create(campaign=campaign, user=user, role=role)
    return campaign


def review_form(item: CampaignItem, verdicts: list[str], score: str, **extra) -> dict[str, str]:
    """The review page's form: one verdict per claim of the item's analysis, in order."""
    claims = list(item.analysis.claims.order_by("order"))
    form = {f"verdict-{c.pk}": v for c, v in zip(claims, verdicts, strict=False) if v}
    form["score"] = score
    form.update(extra)
    return form
