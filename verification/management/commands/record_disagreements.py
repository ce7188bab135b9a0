"""`python manage.py record_disagreements [--campaign NAME]`: bring the disagreement records
(and the priority of campaign items) up to date with existing data.

The same function as after every commit (`verification.disagreements.record_disagreements`),
over every proof, or the proofs of one campaign, a chunk at a time.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from annotate.models import Campaign, Proof
from verification.disagreements import Recorded, record_disagreements

CHUNK = 500  # proofs per call: a handful of queries each, whatever the chunk holds


class Command(BaseCommand):
    help = (
        "Record disagreements (experts among themselves, experts vs verifier, reviews vs "
        "models' meta-assessments) over existing data, resolve those that no longer hold, "
        "and set campaign items' priority from them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", help="only the proofs of this campaign")

    def handle(self, *args: Any, **options: Any) -> None:
        proofs = Proof.objects.order_by("pk")
        if options["campaign"]:
            campaign = Campaign.objects.filter(name=options["campaign"]).first()
            if campaign is None:
                raise CommandError(f"no campaign named {options['campaign']!r}")
            proofs = proofs.filter(campaign_items__campaign=campaign)
        ids = list(dict.fromkeys(proofs.values_list("pk", flat=True)))
        total = Recorded()
        with tqdm(total=len(ids), unit="proof", disable=None) as bar:
            for at in range(0, len(ids), CHUNK):
                chunk = ids[at : at + CHUNK]
                total.add(record_disagreements(chunk))
                bar.update(len(chunk))
        self.stdout.write(
            f"{len(ids)} proofs: {total.opened} opened, {total.updated} updated, "
            f"{total.resolved} resolved; {total.items_reprioritised} items reprioritised"
        )
