"""`python manage.py create_adjudication_campaign --name NAME --owner USERNAME
(--proof ID ... | [--campaign C] [--problem P ...] [--category K])`.

Makes an "adjudicate" campaign of the proofs chosen by id or by filter
(annotate/campaigns.py); `--owner` becomes its owner, `--adjudicator` (repeatable) its
adjudicators. Nothing is written when an argument is wrong or no proof is chosen.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.campaigns import create_adjudication_campaign
from annotate.inputs import InputError
from annotate.management.commands.create_review_campaign import Command as ReviewCommand


class Command(BaseCommand):
    help = "Create a campaign to adjudicate the proofs chosen by id or by filter."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, metavar="USERNAME")
        # Repeatable, each also a list with commas: who adjudicates, the proofs by id, the
        # problems whose proofs are chosen (by filter, with --campaign and --category).
        repeatable = (("--adjudicator", "USERNAME"), ("--proof", "ID"), ("--problem", "ID"))
        for flag, metavar in repeatable:
            parser.add_argument(flag, action="append", default=[], metavar=metavar)
        parser.add_argument("--campaign", default="", metavar="NAME_OR_ID", help="its proofs")
        parser.add_argument("--category", default="")
        parser.add_argument("--overlap", type=int, default=1, help="adjudicators per proof")
        parser.add_argument("--not-blind", action="store_true")
        parser.add_argument("--instructions", default="")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options) -> None:
        users = get_user_model().objects
        adjudicators = [n.strip() for arg in options["adjudicator"] for n in arg.split(",")]
        options["adjudicator"] = [n for n in adjudicators if n]
        names = [options["owner"], *options["adjudicator"]]
        found = {u.get_username(): u for u in users.filter(username__in=names)}
        missing = [n for n in names if n not in found]
        if missing:
            raise CommandError(f"no user named {missing[0]!r}")
        proofs = [p for arg in options["proof"] for p in arg.split(",") if p.strip()]
        filters = {
            # A campaign by name, else the value as given, as the review command reads it.
            "campaign": ReviewCommand._campaign(options["campaign"]),
            "problem": [p for arg in options["problem"] for p in arg.split(",")],
            "category": options["category"],
        }
        try:
            campaign, count = create_adjudication_campaign(
                found[options["owner"]],
                options["name"],
                proof_ids=proofs or None,
                filters=None if proofs else filters,
                adjudicators=options["adjudicator"],
                blind=not options["not_blind"],
                **{key: options[key] for key in ("overlap", "instructions", "seed")},
            )
        except InputError as exc:
            raise CommandError(f"{exc.field}: {exc}; nothing was created") from None
        who = ", ".join(options["adjudicator"]) or "none yet"
        self.stdout.write(
            f"Created adjudication campaign {campaign.name!r} (id {campaign.pk}) with {count} "
            f"proofs, owned by {options['owner']}; adjudicators: {who}."
        )
