"""`python manage.py load_demo`: the demo data set and logins (run by `make run`)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotate.demo import DemoDataError, load_demo


class Command(BaseCommand):
    help = "Load the demo problems, proofs, analyses, campaigns and people; print fresh logins."

    def handle(self, *args, **options) -> None:
        try:
            demo = load_demo()
        except DemoDataError as exc:
            raise CommandError(f"demo data not loaded: {exc}") from None
        proofs = demo.campaign.items.count()
        created = sum(r.counts["proofs"]["created"] for _, r in demo.imports)
        self.stdout.write(f"Demo campaign {demo.campaign.name!r}: {proofs} proofs.")
        review = demo.review_campaign
        self.stdout.write(
            f"Demo review campaign {review.name!r}: {review.items.count()} analyses to review."
        )
        graded = demo.suggestions_campaign
        self.stdout.write(
            f"Demo grading campaign with model suggestions {graded.name!r}: "
            f"{graded.items.count()} proofs."
        )
        self.stdout.write(f"Proofs new in the library this run: {created}.")
        self.stdout.write("Demo logins (new passwords on every run of load_demo):")
        for username, password in demo.logins:
            self.stdout.write(f"  {username} / {password}")
