"""Celery tasks. Thin: each calls one domain function."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from annotate.importers import jobs
from annotate.work import derived
from workers import runs
from workers.models import ModelRun


@shared_task(name="workers.tasks.run_import_job")
def run_import_job(job_id: int) -> str:
    """Import an uploaded file (cpu queue); safe to redeliver (see annotate/importers/jobs.py)."""
    job = jobs.run_import_job(job_id)
    return job.status if job is not None else "skipped"


@shared_task(name="workers.tasks.recompute_stale_proofs")
def recompute_stale_proofs() -> int:
    """Bring stale proofs' disagreements and gold labels up to date (cpu queue); any number
    of these may run or be redelivered at once (see annotate/work/derived.py)."""
    return derived.recompute_stale()


@shared_task(name="workers.tasks.start_model_run")
def start_model_run(run_id: int) -> int:
    """Queue every batch of a run (cpu queue); batches already stored are skipped when run."""
    run = ModelRun.objects.get(pk=run_id)
    parts = runs.batches(run)
    for batch in parts:
        gpu_execute_run_batch.delay(run.pk, batch)
    return len(parts)


@shared_task(name="workers.tasks.gpu_execute_run_batch")
def gpu_execute_run_batch(run_id: int, target_ids: list[int]) -> int:
    """One batch of a model run (gpu queue: routed by the `gpu_` prefix); safe to redeliver."""
    return runs.execute_run_batch(run_id, target_ids)


def queue_run(run_id: int) -> None:
    """Hand a created or resumed run to the workers once the transaction is committed."""
    transaction.on_commit(lambda: start_model_run.delay(run_id))
