"""The demo data set behind `make run`: real DeepSeekMath-V2 proofs, ready to grade.

Imports the IMO-ProofBench problems and the five DeepSeekMath-V2 proof files shipped in
data/ (see data/NOTICE.md), puts the 84 proofs in one blind grading campaign with two
experts per proof, and gives four demo people a role in it. Running it again imports
nothing new; it gives the demo people fresh random passwords, so that whoever runs it
always gets logins that work (no password is stored anywhere in the repository).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from annotate.importers import ImportResult, import_path
from annotate.models import Campaign, Membership, Role

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
PEOPLE = [
    ("owner", Role.OWNER),
    ("grader1", Role.GRADER),
    ("grader2", Role.GRADER),
    ("reviewer", Role.REVIEWER),
]
INSTRUCTIONS = """\
Grade each proof on the 3-level scale:

- **1**: completely correct and rigorous;
- **0.5**: generally correct, with minor errors or omitted details;
- **0**: a fatal error, a severe omission, or it does not address the problem.

Select passages of the proof to anchor your comments. The campaign is blind: you see
neither the other expert's grade nor the model's scores until you commit yours.
"""


class DemoDataError(Exception):
    pass


@dataclass
class DemoResult:
    campaign: Campaign
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
        if campaign.created_by_id is None:
            campaign.created_by = User.objects.get(username=PEOPLE[0][0])
            campaign.save(update_fields=["created_by"])
    return DemoResult(campaign, imports, logins)
