"""Campaign owners upload a file to import; a worker imports it; the job page reports."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotate.access import IMPORT_ROLES, get_campaign_for_member, get_import_job
from annotate.importers.forms import ImportUploadForm
from annotate.models import ImportJob
from workers.tasks import run_import_job

RECENT_JOBS = 20
# Multipart framing around the file: a request this much over the limit cannot be valid.
MULTIPART_SLACK = 64 * 1024


@require_http_methods(["GET", "POST"])
@login_required
def upload(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign, _ = get_campaign_for_member(request.user, campaign_id, IMPORT_ROLES)
    form = ImportUploadForm()
    status, too_large = 200, False
    if request.method == "POST" and _body_too_large(request):
        # Refused before Django reads the body into a temporary file.
        status, too_large = 413, True
    elif request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            job = ImportJob.objects.create(
                campaign=campaign,
                uploaded_by=request.user,
                format=form.cleaned_data["format"],
                file=upload,
                original_name=Path(upload.name).name[:255],
            )
            transaction.on_commit(partial(run_import_job.delay, job.pk))
            return redirect("import_job", campaign.pk, job.pk)
        status = 400
    context = {
        "campaign": campaign,
        "form": form,
        "too_large": too_large,
        "max_bytes": settings.IMPORT_MAX_UPLOAD_BYTES,
        "jobs": campaign.import_jobs.select_related("uploaded_by")[:RECENT_JOBS],
    }
    return render(request, "annotate/import_upload.html", context, status=status)


def _body_too_large(request: HttpRequest) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > settings.IMPORT_MAX_UPLOAD_BYTES + MULTIPART_SLACK


@require_GET
@login_required
def job_detail(request: HttpRequest, campaign_id: int, job_id: int) -> HttpResponse:
    job, campaign = get_import_job(request.user, campaign_id, job_id)
    template = "annotate/import_job.html"
    if request.htmx:
        template += "#job-status"
    counts = [
        (kind.replace("_", " "), count["created"], count["existing"])
        for kind, count in (job.counts or {}).items()
    ]
    return render(request, template, {"campaign": campaign, "job": job, "counts": counts})
