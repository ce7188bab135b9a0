"""The demo data set behind `make run`: real DeepSeekMath-V2 proofs, ready to grade, and
real verifier analyses, ready to review.

Imports the IMO-ProofBench problems and the five DeepSeekMath-V2 proof files shipped in
data/ (see data/NOTICE.md), puts the 84 proofs in one blind grading campaign with two
experts per proof, and gives four demo people a role in it. It also imports a few problems
of the Open Proof Corpus sample (data/open_proof_corpus/NOTICE.md: model proofs, each with
the corpus judge's analysis and its claimed issues) and makes a review campaign of those
analyses (`annotate.campaigns.create_review_campaign`), owned by the demo owner and
reviewed by the demo reviewer. Running it again imports nothing new; it gives the demo
people fresh random passwords, so that whoever runs it always gets logins that work (no
password is stored anywhere in the repository).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from annotate.campaigns import create_review_campaign
from annotate.importers import ImportResult, import_path
from annotate.importers.opc import JUDGE_MODEL
from annotate.inputs import InputError
from annotate.models import Campaign, CampaignItem, Membership, Proof, Role
from verification.disagreements import record_disagreements

CAMPAIGN_NAME = "Demo: DeepSeekMath-V2 proofs"
PROOFBENCH_CSV = Path("imobench/proofbench_v2.csv")
DEEPSEEK_FILES = [
    Path("deepseek_math_v2") / name
    for name in (
        "IMO2025.jsonl",
        "CMO2024.jsonl",
        "Putnam2024.jsonl",
        "IMO-ProofBench-Basic.jsonl",
        "IMO-ProofBench-Advanced.jsonl",
    )
]
# A slice of the Open Proof Corpus: four problems, five judged proofs each (one problem
# whose judge claims no issue at all, so the demo shows that case too).
OPC_FILES = [
    Path("open_proof_corpus") / name
    for name in (
        "USAMO/2002_1.json",
        "USAMO/2011_6.json",
        "USAMO/1997_5.json",
        "BMOSL/2021_12.json",
    )
]
REVIEW_CAMPAIGN_NAME = "Demo: review the Open Proof Corpus judge"
REVIEW_PEOPLE = [("owner", Role.OWNER), ("reviewer", Role.REVIEWER)]
# Not blind, so the judge's claims show on the grading page as suggestions at once
# (annotate/suggestions.py): a grader accepts or dismisses them by keyboard.
SUGGESTIONS_CAMPAIGN_NAME = "Demo: grade Open Proof Corpus proofs with model suggestions"
SUGGESTIONS_PEOPLE = [("owner", Role.OWNER), ("grader1", Role.GRADER), ("grader2", Role.GRADER)]
SUGGESTIONS_INSTRUCTIONS = """\
Grade each proof on the 3-level scale (1, 0.5, 0). The corpus judge's claims are shown
beside the proof as suggestions: **a** accepts one into your grade as an issue (**A**: as
a fatal one), **d** dismisses it, **j**/**k** move between them. Your decisions are
recorded as judgements of the judge's claims.
"""
PEOPLE = [
    ("owner", Role.OWNER),
    ("grader1", Role.GRADER),
    ("grader2", Role.GRADER),
    ("reviewer", Role.REVIEWER),
    # Sees every grade of the campaign; an owner names them adjudicator of an adjudication
    # campaign made from the open disagreements (/campaigns/new/adjudication/).
    ("adjudicator", Role.ADJUDICATOR),
]
INSTRUCTIONS = """\
Grade each proof on the 3-level scale:

- **1**: completely correct and rigorous;
- **0.5**: generally correct, with minor errors or omitted details;
- **0**: a fatal error, a severe omission, or it does not address the problem.

Select passages of the proof to anchor your comments. The campaign is blind: you see
neither the other expert's grade nor the model's scores until you commit yours.
"""


REVIEW_INSTRUCTIONS = """\
Each analysis is the Open Proof Corpus judge's verdict on one model proof. Judge every
issue it claims: **real**, **not real** or **unsure**, with a note when it helps. Then rate
the analysis:

- **0**: every claimed defect is unreasonable;
- **0.5**: some claims are real and some not, or all are real but the analysis misstates
  or mis-scores them;
- **1**: otherwise (praise in the analysis is out of scope).

The rubric suggests a score from your verdicts; give another one only with a reason.
"""


class DemoDataError(Exception):
    pass


@dataclass
class DemoResult:
    campaign: Campaign
    review_campaign: Campaign
    suggestions_campaign: Campaign
    imports: list[tuple[str, ImportResult]]
    logins: list[tuple[str, str]]


def load_demo(data_dir: Path | None = None) -> DemoResult:
    data_dir = data_dir or Path(settings.BASE_DIR) / "data"
    with transaction.atomic():
        campaign, _ = Campaign.objects.get_or_create(
            name=CAMPAIGN_NAME,
            defaults={
                "kind": Campaign.Kind.GRADE_PROOFS,
                "overlap": 2,
                "blind": True,
                "seed": 2025,
                "instructions": INSTRUCTIONS,
            },
        )
        imports = [(PROOFBENCH_CSV.name, import_path(data_dir / PROOFBENCH_CSV, "proofbench"))]
        for path in DEEPSEEK_FILES:
            imports.append((path.name, import_path(data_dir / path, "deepseek", campaign=campaign)))
        for path in OPC_FILES:
            imports.append((path.name, import_path(data_dir / path, "opc")))
        for name, result in imports:
            if not result.ok:
                raise DemoDataError(f"{name}: " + "; ".join(result.error_lines()))
        logins = []
        User = get_user_model()
        for username, role in PEOPLE:
            user, _ = User.objects.get_or_create(username=username)
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save(update_fields=["password"])
            Membership.objects.get_or_create(campaign=campaign, user=user, role=role)
            logins.append((username, password))
        owner = User.objects.get(username=PEOPLE[0][0])
        if campaign.created_by_id is None:
            campaign.created_by = owner
            campaign.save(update_fields=["created_by"])
        review_campaign = _review_campaign(data_dir, owner)
        for username, role in REVIEW_PEOPLE:
            user = User.objects.get(username=username)
            Membership.objects.get_or_create(campaign=review_campaign, user=user, role=role)
        suggestions_campaign = _suggestions_campaign(owner)
        for username, role in SUGGESTIONS_PEOPLE:
            user = User.objects.get(username=username)
            Membership.objects.get_or_create(campaign=suggestions_campaign, user=user, role=role)
        # The release's grades and model scores disagree on some proofs: record them, so
        # the owner's disagreements list is filled from the start.
        record_disagreements(campaign.items.values_list("proof_id", flat=True))
    return DemoResult(campaign, review_campaign, suggestions_campaign, imports, logins)


def _suggestions_campaign(owner) -> Campaign:
    """The grading campaign, not blind, of the OPC proofs whose judge claims issues (made
    once)."""
    campaign, created = Campaign.objects.get_or_create(
        name=SUGGESTIONS_CAMPAIGN_NAME,
        defaults={
            "kind": Campaign.Kind.GRADE_PROOFS,
            "overlap": 2,
            "blind": False,
            "seed": 2025,
            "instructions": SUGGESTIONS_INSTRUCTIONS,
            "created_by": owner,
        },
    )
    if created:
        proofs = (
            Proof.objects.filter(analyses__model=JUDGE_MODEL, analyses__claims__isnull=False)
            .distinct()
            .order_by("id")
        )
        for proof in proofs:
            CampaignItem.objects.create(campaign=campaign, proof=proof)
    return campaign


def _review_campaign(data_dir: Path, owner) -> Campaign:
    """The review campaign of the judge's analyses of the OPC slice (made once)."""
    existing = Campaign.objects.filter(name=REVIEW_CAMPAIGN_NAME).first()
    if existing is not None:
        return existing
    # The problems' ids as the files give them (what the importer stored).
    problem_ids = [json.loads((data_dir / path).read_bytes())["problem_id"] for path in OPC_FILES]
    try:
        campaign, _ = create_review_campaign(
            owner,
            REVIEW_CAMPAIGN_NAME,
            {"model": JUDGE_MODEL, "problem": problem_ids},
            overlap=1,
            blind=True,
            instructions=REVIEW_INSTRUCTIONS,
            seed=2025,
        )
    except InputError as exc:
        raise DemoDataError(f"review campaign: {exc.field}: {exc}") from None
    return campaign
