"""What follows committed work off the request path: a proof's disagreement records
(verification/disagreements.py) and its gold label (annotate/gold.py).

Submitting or editing work marks the proof stale (`mark_stale`, one upsert in the work's
own transaction); once that transaction commits, `recompute_stale` brings the records up to
date, in batches. Where it runs depends on the deployment (docs/work.md):

- with a broker (`REDIS_URL`), a `cpu`-queue Celery task does it: the expert's request pays
  one upsert and one publish, not the dozen queries of the recomputation, and under load a
  task finds many stale proofs and recomputes them together in a fixed number of queries;
- without one (`make run`, in-process tasks) or with `RECOMPUTE_INLINE=true`, the request
  does it itself right after its commit.

Nothing is lost to a crash: a stale mark is removed only in the transaction that
recomputed its proof, so a process killed before or during the recomputation leaves the
mark, and the next recomputation, after any commit or from `manage.py recompute_stale`,
picks it up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotate import gold
from annotate.models import StaleProof
from verification import disagreements

log = logging.getLogger(__name__)

# Stale proofs recomputed together: the recomputations are set-based, so a batch costs
# about what one proof does.
BATCH = 100


def mark_stale(proof_ids: Iterable[int]) -> None:
    """Inside the transaction that commits work on these proofs, before it writes anything
    that refers to them: mark them stale, and once it commits, have their derived records
    recomputed (inline or by a worker).

    An upsert: a proof already marked gets a new `marked_at`, which tells a recomputation
    running meanwhile that its result may already be out of date (see `recompute_stale`).
    """
    now = timezone.now()
    marks = [StaleProof(proof_id=pk, marked_at=now) for pk in sorted(set(proof_ids))]
    if not marks:
        return
    StaleProof.objects.bulk_create(
        marks, update_conflicts=True, unique_fields=["proof"], update_fields=["marked_at"]
    )
    transaction.on_commit(_dispatch, robust=True)


def _dispatch() -> None:
    if settings.RECOMPUTE_INLINE:
        recompute_stale()
        return
    from workers import tasks

    tasks.recompute_stale_proofs.delay()


def recompute_stale(limit: int | None = None) -> int:
    """Recompute the disagreements and gold labels of stale proofs, oldest marks first,
    `BATCH` at a time, until none is left (or `limit` proofs are done); the number of
    proofs recomputed.

    The marks are read without a lock, so an expert's commit never waits for a
    recomputation; a mark is removed only if it is still the one that was read. Work
    committed after the read has moved its proof's `marked_at` (or waits on the removal
    and then finds the row gone and inserts a new one), so its proof stays marked and is
    recomputed again. Two recomputations of one proof run one after the other (the domain
    functions lock the proofs); one that finds its marks already removed does no harm.
    """
    done = 0
    while limit is None or done < limit:
        size = BATCH if limit is None else min(BATCH, limit - done)
        marks = list(
            StaleProof.objects.order_by("marked_at", "proof_id").values_list(
                "proof_id", "marked_at"
            )[:size]
        )
        if not marks:
            break
        proof_ids = [proof for proof, _ in marks]
        read = Q()
        for proof, marked_at in marks:
            read |= Q(proof_id=proof, marked_at=marked_at)
        with transaction.atomic():
            disagreements.record_disagreements(proof_ids)
            gold.recompute_gold_labels(proof_ids)
            StaleProof.objects.filter(read).delete()
        done += len(marks)
    if done:
        log.debug("recomputed %d stale proofs", done)
    return done
