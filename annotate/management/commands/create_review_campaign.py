"""`python manage.py create_review_campaign --name NAME --owner USERNAME [filters]`.

Makes a "review analyses" campaign of every analysis the filters match
(annotate/campaigns.py); `--owner` becomes its owner. Nothing is written when an argument
is wrong or no analysis matches.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.campaigns import create_review_campaign
from annotate.inputs import InputError
from annotate.models import Campaign


class Command(BaseCommand):
    help = "Create a campaign to review the analyses that the filters match."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, metavar="USERNAME")
        parser.add_argument("--model", default="", help="the verifier model's exact name")
        parser.add_argument("--score", default="", help="0, 0.5, 1, or none (no score)")
        parser.add_argument("--parse-status", default="", help="ok, no_score, conflicting, ...")
        parser.add_argument(
            "--campaign", default="", metavar="NAME_OR_ID", help="analyses of its proofs"
        )
        parser.add_argument(
            "--problem", action="append", default=[], metavar="ID", help="repeatable"
        )
        parser.add_argument("--category", default="")
        parser.add_argument("--overlap", type=int, default=1, help="reviewers per analysis")
        parser.add_argument("--not-blind", action="store_true")
        parser.add_argument("--instructions", default="")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options) -> None:
        try:
            owner = get_user_model().objects.get(username=options["owner"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {options['owner']!r}") from None
        filters = {
            "model": options["model"],
            "score": options["score"],
            "parse_status": options["parse_status"],
            "campaign": self._campaign(options["campaign"]),
            "problem": [p for arg in options["problem"] for p in arg.split(",")],
            "category": options["category"],
        }
        try:
            campaign, count = create_review_campaign(
                owner,
                options["name"],
                filters,
                overlap=options["overlap"],
                blind=not options["not_blind"],
                instructions=options["instructions"],
                seed=options["seed"],
            )
        except InputError as exc:
            raise CommandError(f"{exc.field}: {exc}; nothing was created") from None
        self.stdout.write(
            f"Created review campaign {campaign.name!r} (id {campaign.pk}) with {count} "
            f"analyses, owned by {owner.get_username()}."
        )

    @staticmethod
    def _campaign(value: str) -> Campaign | str:
        """A campaign by name, else the value as given (an id, checked by the filter)."""
        if not value:
            return ""
        return Campaign.objects.filter(name=value).first() or value
