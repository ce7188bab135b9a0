"""`python manage.py recompute_gold_labels [--proof ID ...]`: recompute the gold labels of
every proof (or of the proofs named) from the adjudications and grades stored
(annotate/gold.py). Safe to run at any time: a label that would not change is not written.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.gold import recompute_gold_labels
from annotate.models import Proof


class Command(BaseCommand):
    help = "Recompute the gold labels of every proof (or of the proofs named)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--proof", action="append", default=[], metavar="ID", help="repeatable, or 1,2,3"
        )

    def handle(self, *args, **options) -> None:
        wanted = [p.strip() for arg in options["proof"] for p in arg.split(",") if p.strip()]
        if not all(p.isdigit() for p in wanted):
            raise CommandError("--proof takes proof ids (whole numbers)")
        proofs = Proof.objects.order_by("pk")
        if wanted:
            proofs = proofs.filter(pk__in=[int(p) for p in wanted])
        ids = list(proofs.values_list("pk", flat=True))
        changed = recompute_gold_labels(ids)
        self.stdout.write(f"Recomputed the gold labels of {len(ids)} proofs: {changed} changed.")
