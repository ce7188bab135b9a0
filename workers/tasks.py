"""Celery tasks. Thin: each calls one domain function (see DESIGN.md section 3)."""

from __future__ import annotations

from celery import shared_task

from annotate.importers import jobs


@shared_task(name="workers.tasks.run_import_job")
def run_import_job(job_id: int) -> str:
    """Import an uploaded file (cpu queue); safe to redeliver (see annotate/importers/jobs.py)."""
    job = jobs.run_import_job(job_id)
    return job.status if job is not None else "skipped"
