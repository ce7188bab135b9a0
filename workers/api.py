"""REST API for model runs (DRF), under /api/runs/.

    GET    /api/runs/               the runs I may see (staff: all; owners: their campaigns')
    POST   /api/runs/               launch: {"kind", "target", "backend", "model",
                                    "sampling": {"n", "temperature", "top_p", "max_tokens",
                                    "seed"}, "template_text"?, "backend_options"? (staff)}
    GET    /api/runs/<id>/          a run's figures (`ModelRun.to_dict`)
    POST   /api/runs/<id>/cancel/   stop making model calls
    POST   /api/runs/<id>/resume/   ask for the missing and failed samples again

A malformed request is a 400 `{"detail": "..."}` from `workers.runs.create_run`, the same
check as the launch page's and `run_model`'s, and nothing is written. Who may is
annotate/access.py's (`require_run_launcher`, `get_model_run`), as for the pages.
"""

# DRF's api_view is untyped.
# mypy: disallow-untyped-decorators=False
from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied as DRFPermissionDenied
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.access import get_model_run, require_run_launcher, runs_for
from workers import runs, tasks

FIELDS = {"kind", "target", "backend", "model", "sampling", "template_text", "backend_options"}


def _request(data: Any, staff: bool) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError({"detail": "send a JSON object"})
    if unknown := set(data) - FIELDS:
        raise ValidationError({"detail": f"unknown fields: {', '.join(sorted(unknown))}"})
    if data.get("backend_options") and not staff:
        # Options name files and endpoints the workers will read: staff only.
        raise DRFPermissionDenied("Only staff can set backend options.")
    for name, kind in (("target", dict), ("sampling", dict), ("kind", str), ("backend", str)):
        if not isinstance(data.get(name), kind):
            word = "an object" if kind is dict else "a string"
            raise ValidationError({"detail": f"{name} must be {word}"})
    if not isinstance(data.get("model"), str):
        raise ValidationError({"detail": "model must be a string"})
    template = data.get("template_text")
    if template is not None and not isinstance(template, str):
        raise ValidationError({"detail": "template_text must be a string"})
    return {name: data[name] for name in FIELDS if name in data}


@api_view(["GET", "POST"])
def run_list(request: Request) -> Response:
    if request.method == "GET":
        return Response([run.to_dict() for run in runs_for(request.user)[:200]])
    run_request = _request(request.data, request.user.is_staff)
    require_run_launcher(request.user, run_request["target"])
    try:
        run = runs.create_run(**run_request, created_by=request.user)
    except runs.RunRequestError as exc:
        raise ValidationError({"detail": str(exc)}) from None
    tasks.queue_run(run.pk)
    return Response(run.to_dict(), status=status.HTTP_201_CREATED)


@api_view(["GET"])
def run_detail(request: Request, run_id: int) -> Response:
    return Response(get_model_run(request.user, run_id).to_dict())


@api_view(["POST"])
def run_cancel(request: Request, run_id: int) -> Response:
    run = get_model_run(request.user, run_id)
    runs.cancel_run(run)
    run.refresh_from_db()
    return Response(run.to_dict())


@api_view(["POST"])
def run_resume(request: Request, run_id: int) -> Response:
    run = get_model_run(request.user, run_id)
    runs.resume_run(run)
    tasks.queue_run(run.pk)
    return Response(run.to_dict())


urlpatterns = [
    path("", run_list, name="api_runs"),
    path("<int:run_id>/", run_detail, name="api_run"),
    path("<int:run_id>/cancel/", run_cancel, name="api_run_cancel"),
    path("<int:run_id>/resume/", run_resume, name="api_run_resume"),
]
