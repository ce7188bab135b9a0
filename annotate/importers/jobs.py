"""Running an uploaded import (an `ImportJob`), safely under redelivery.

Celery delivers a task at least once (acks late, re-queued when a worker dies), so
`run_import_job` may run twice for one job, even at the same time:

1. Mark the job running, conditionally: only a pending job, or a running one whose
   worker died (its transaction died with it, so nothing of that run remains). A job
   already done or failed is never run again.
2. In one transaction: lock the job row (a second delivery waits here), re-check that it
   is still running, import the file (all or nothing, in a savepoint), and record the
   counts or errors with the final status. The status and the imported rows commit
   together, so "done" always means "imported".
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from annotate.importers import import_stream
from annotate.importers.engine import ImportResult
from annotate.models import ImportJob

log = logging.getLogger(__name__)


def run_import_job(job_id: int) -> ImportJob | None:
    """Import the job's file; return the job, or None when there was nothing to run."""
    claimed = ImportJob.objects.filter(
        pk=job_id, status__in=[ImportJob.Status.PENDING, ImportJob.Status.RUNNING]
    ).update(status=ImportJob.Status.RUNNING)
    if not claimed:
        return None
    with transaction.atomic():
        job = (
            ImportJob.objects.select_for_update(of=("self",))
            .select_related("campaign")
            .get(pk=job_id)
        )
        if job.status != ImportJob.Status.RUNNING:
            return job  # another delivery finished it while this one waited
        result = _import(job)
        job.status = ImportJob.Status.DONE if result.ok else ImportJob.Status.FAILED
        job.counts = result.as_json()["counts"]
        job.errors = result.error_lines()
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "counts", "errors", "finished_at"])
    return job


def _import(job: ImportJob) -> ImportResult:
    try:
        with job.file.open("rb") as fileobj:
            return import_stream(
                fileobj,
                size=job.file.size,
                fmt=job.format,
                source_name=job.original_name,
                campaign=job.campaign,
            )
    except OSError as exc:
        return _failed(f"file: cannot be read ({exc.strerror or exc})")
    except Exception:
        # A bug, not bad input: the import's savepoint is rolled back, the job says so.
        log.exception("import job %s failed unexpectedly", job.pk)
        return _failed("the import stopped on an unexpected error; nothing was written")


def _failed(message: str) -> ImportResult:
    result = ImportResult()
    result.add_errors([message])
    return result
