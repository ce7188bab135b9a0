"""`python manage.py import_data --format native FILE [--campaign NAME]`."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from annotate.importers import FORMATS, ScoreRule, import_path
from annotate.models import Campaign


def _fraction(value: str) -> Fraction:
    try:
        fraction = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise ValueError(value) from None
    if not 0 < fraction <= 1:
        raise ValueError(value)
    return fraction


class Command(BaseCommand):
    help = "Import problems, proofs, grades and analyses from a file (all or nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", required=True, choices=sorted(FORMATS))
        parser.add_argument(
            "--campaign", metavar="NAME", help="add the imported proofs to this campaign"
        )
        parser.add_argument(
            "--scale-max",
            type=int,
            metavar="POINTS",
            help="deepseek: points per problem, instead of deriving it from problem_idx",
        )
        parser.add_argument(
            "--partial-at",
            type=_fraction,
            default=ScoreRule.partial_at,
            metavar="FRACTION",
            help="deepseek: least fraction of full marks that scores 0.5 (default 4/5)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, path: Path, format: str, **options) -> None:
        if not (path.is_file() or (format == "opc" and path.is_dir())):
            raise CommandError(f"{path}: no such file")
        campaign = None
        if options["campaign"]:
            try:
                campaign = Campaign.objects.get(name=options["campaign"])
            except Campaign.DoesNotExist:
                raise CommandError(f"no campaign named {options['campaign']!r}") from None
        if options["scale_max"] is not None and options["scale_max"] < 1:
            raise CommandError("--scale-max must be a positive number of points")
        rule = ScoreRule(partial_at=options["partial_at"], scale_max=options["scale_max"])
        with tqdm(
            total=path.stat().st_size if path.is_file() else None,
            unit="B",
            unit_scale=True,
            desc=path.name,
            disable=True if options["no_progress"] else None,  # None: only on a terminal
            file=self.stderr._out,
        ) as bar:
            result = import_path(
                path, format, campaign=campaign, score_rule=rule, progress=bar.update
            )
        if not result.ok:
            for line in result.error_lines():
                self.stderr.write(line)
            raise CommandError(f"{path.name}: not imported, nothing was written")
        for line in result.summary():
            self.stdout.write(line)
