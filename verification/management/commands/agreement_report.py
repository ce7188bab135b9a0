"""`python manage.py agreement_report`: expert, imported and verifier agreement, in numbers.

The numbers come from `verification.ratings.agreement_report`, the function the dashboard
and API use, so all three agree.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.models import Campaign
from verification.agreement import DEFAULT_RESAMPLES, DEFAULT_SEED
from verification.ratings import SLICE_KEYS, agreement_report

ROWS = [
    ("exact_agreement", "exact agreement"),
    ("kappa_linear", "kappa, linear weights"),
    ("kappa_quadratic", "kappa, quadratic weights"),
    ("alpha_ordinal", "Krippendorff's alpha (ordinal)"),
    ("false_positive_rate", "false-positive rate"),
    ("false_negative_rate", "false-negative rate"),
]
LEVELS = ("0", "0.5", "1")


class Command(BaseCommand):
    help = (
        "Agreement (exact, weighted kappa, Krippendorff's alpha, confusion, verifier false "
        "positives and negatives) with 95% intervals from a bootstrap over problems."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", help="only the proofs and app grades of this campaign")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES)
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
        parser.add_argument(
            "--slice",
            action="append",
            choices=SLICE_KEYS,
            dest="slices",
            help="also report per value of this key (repeatable; --json reports all)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = None
        if options["campaign"]:
            campaign = Campaign.objects.filter(name=options["campaign"]).first()
            if campaign is None:
                raise CommandError(f"no campaign named {options['campaign']!r}")
        if options["resamples"] < 0:
            raise CommandError("--resamples must be 0 or more")
        slices = SLICE_KEYS if options["json"] else tuple(options["slices"] or ())
        report = agreement_report(
            campaign, resamples=options["resamples"], seed=options["seed"], slice_keys=slices
        )
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        scope = f"campaign {report['campaign']!r}" if campaign else "all proofs"
        self.stdout.write(
            f"Agreement report, {scope}; 95% intervals from {report['resamples']} bootstrap "
            f"resamples of problems (seed {report['seed']})."
        )
        for comparison in report["comparisons"].values():
            self._comparison(comparison)

    def _comparison(self, comparison: dict[str, Any]) -> None:
        overall = comparison["overall"]
        self.stdout.write("")
        self.stdout.write(
            f"{comparison['title']}: {overall['pairs']} pairs, {overall['units']} proofs, "
            f"{overall['clusters']} problems"
        )
        if not overall["pairs"]:
            self.stdout.write("  no pairs")
            return
        for key, label in ROWS:
            self.stdout.write(f"  {label:<32}{_estimate(overall[key])}")
        self.stdout.write(
            f"  false positives (expert 0, candidate 1): {overall['false_positives']}; "
            f"false negatives (expert 1, candidate 0): {overall['false_negatives']}"
        )
        self.stdout.write("  confusion, rows expert, columns candidate:")
        self.stdout.write("        " + "".join(f"{level:>6}" for level in LEVELS))
        for level, row in zip(LEVELS, overall["confusion"], strict=True):
            self.stdout.write(f"  {level:>6}" + "".join(f"{count:>6}" for count in row))
        for key, by_label in comparison["slices"].items():
            self.stdout.write(f"  by {key}:")
            for label, m in by_label.items():
                self.stdout.write(
                    f"    {label:<30} n={m['pairs']:<5} exact {_estimate(m['exact_agreement'])}"
                    f"  kappa_q {_estimate(m['kappa_quadratic'])}"
                    f"  alpha {_estimate(m['alpha_ordinal'])}"
                )


def _estimate(estimate: dict[str, Any]) -> str:
    if estimate["value"] is None:
        return "undefined"
    text = f"{estimate['value']:.3f}"
    if estimate["low"] is not None:
        text += f" [{estimate['low']:.3f}, {estimate['high']:.3f}]"
    return text
