"""`python manage.py recompute_stale`: bring the disagreements and gold labels of every proof
marked stale up to date now (annotate/work/derived.py). Workers do this after every commit;
the command is for a deployment whose broker was down, or to drain the marks before an
export. Safe at any time, beside running workers.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from annotate.models import StaleProof
from annotate.work.derived import recompute_stale


class Command(BaseCommand):
    help = "Recompute the disagreements and gold labels of the proofs marked stale."

    def handle(self, *args, **options) -> None:
        before = StaleProof.objects.count()
        done = recompute_stale()
        self.stdout.write(f"Recomputed {done} stale proofs ({before} were marked).")
