"""Model-run pages: the list, launching a run, a run's page with cancel and resume.

Who may: `annotate.access` decides (staff, and the owners of a run's target campaign); the
launch page opens for whoever may create campaigns (`require_campaign_creator`) and offers
the campaigns they own. A launch goes through `workers.runs.create_run`, the one check of a
run request that the API and `run_model` use too: a malformed request (unknown backend,
n = 0, a template missing a variable) is shown with its reason (400) and nothing is
written. The run page's status part is re-rendered on an htmx request (`run-status`
partial); static/js/live.js asks for it whenever the run's websocket reports a change.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from annotate.access import (
    campaigns_owned_by,
    get_model_run,
    require_campaign_creator,
    require_run_launcher,
    runs_for,
)
from annotate.models import Campaign, Category, Problem, Proof
from verification.models import Analysis
from workers import runs, targets, tasks
from workers.backends import BACKENDS
from workers.models import ModelRun
from workers.prompts import Kind, default_template

SAMPLING_FIELDS = {
    "n": int,
    "temperature": float,
    "top_p": float,
    "max_tokens": int,
    "seed": int,
}
# The filter target's fields (workers/targets.py), named filter_<key> in the form.
FILTER_FIELDS = tuple(dict.fromkeys(k for keys in targets.KIND_FILTERS.values() for k in keys))
FAILED_SHOWN = 50
RECENT_SHOWN = 5


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def request_from_form(data: QueryDict) -> dict[str, Any]:
    """The run request a launch form describes, for `runs.create_run`; `RunRequestError`
    naming the field for a value that is not a number."""
    sampling: dict[str, Any] = {}
    for name, kind in SAMPLING_FIELDS.items():
        raw = data.get(name, "").strip()
        if not raw:
            continue
        try:
            sampling[name] = kind(raw)
        except ValueError:
            word = "a whole number" if kind is int else "a number"
            raise runs.RunRequestError(f"{name} must be {word}, got {raw!r}") from None
    problems = data.get("problems", "").split()
    target: dict[str, Any] = {"problems": problems} if problems else {}
    if campaign := data.get("campaign", "").strip():
        target["campaign"] = campaign
    filters = {
        key: data.get(f"filter_{key}", "").strip()
        for key in FILTER_FIELDS
        if data.get(f"filter_{key}", "").strip()
    }
    if filters:
        target["filter"] = filters
    template = data.get("template", "").replace("\r\n", "\n")
    return {
        "kind": data.get("kind", ""),
        "target": target,
        "backend": data.get("backend", ""),
        "model": data.get("model", ""),
        "sampling": sampling,
        "template_text": template if template.strip() else None,
    }


@require_GET
@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    visible = runs_for(request.user).select_related("created_by")[:200]
    owned = campaigns_owned_by(request.user)
    may_launch = request.user.is_staff or owned.exists()
    return render(request, "workers/run_list.html", {"runs": visible, "may_launch": may_launch})


@require_http_methods(["GET", "POST"])
@login_required
def run_new(request: HttpRequest) -> HttpResponse:
    require_campaign_creator(request.user)
    data = request.POST if request.method == "POST" else request.GET
    values = {
        "kind": data.get("kind", Kind.VERIFY),
        "campaign": data.get("campaign", ""),
        "problems": data.get("problems", ""),
        "backend": data.get("backend", "replay"),
        "model": data.get("model", ""),
        "n": data.get("n", "1"),
        "temperature": data.get("temperature", "1.0"),
        "top_p": data.get("top_p", "1.0"),
        "max_tokens": data.get("max_tokens", "4096"),
        "seed": data.get("seed", ""),
        "template": data.get("template", ""),
        **{f"filter_{key}": data.get(f"filter_{key}", "") for key in FILTER_FIELDS},
    }
    error = ""
    status = 200
    if request.method == "POST":
        try:
            run_request = request_from_form(request.POST)
            require_run_launcher(request.user, run_request["target"])
            run = runs.create_run(**run_request, created_by=request.user)
        except runs.RunRequestError as exc:
            error, status = str(exc), 400
        else:
            tasks.queue_run(run.pk)
            messages.success(request, f"Run {run.pk} launched: {run.total} samples.")
            return redirect("run_detail", run.pk)
    context = {
        "values": values,
        "error": error,
        "kinds": Kind.choices,
        "backends": sorted(BACKENDS),
        "campaigns": campaigns_owned_by(request.user).order_by("name"),
        "default_templates": {kind: default_template(kind).text for kind in Kind.values},
        "filter_kinds": {
            key: ", ".join(k for k, keys in targets.KIND_FILTERS.items() if key in keys)
            for key in FILTER_FIELDS
        },
    }
    if request.user.is_staff:  # the filter target is staff's (annotate/access.py)
        context["filter_choices"] = _filter_choices()
    return render(request, "workers/run_new.html", context, status=status)


def _filter_choices() -> dict[str, Any]:
    """What the filter fields offer: the library's categories, sources and models."""
    return {
        "categories": Category.choices,
        "sources": Problem.objects.exclude(source="")
        .order_by("source")
        .values_list("source", flat=True)
        .distinct(),
        "generator_models": Proof.objects.exclude(generator_model="")
        .order_by("generator_model")
        .values_list("generator_model", flat=True)
        .distinct(),
        "models": Analysis.objects.order_by("model").values_list("model", flat=True).distinct(),
        "all_campaigns": Campaign.objects.order_by("name").values_list("name", flat=True),
    }


@require_GET
@login_required
def run_detail(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    run = get_model_run(request.user, run_id)
    failed = run.outputs.exclude(error_reason="").order_by("target_id", "sample_index")
    recent = run.outputs.filter(error_reason="").order_by("-id")[:RECENT_SHOWN]
    context = {
        "run": run,
        "figures": run.to_dict(),
        "reasons": sorted(run.failed_by_reason.items()),
        "failed": failed[:FAILED_SHOWN],
        "recent": recent,
        "live": run.status in (ModelRun.Status.PENDING, ModelRun.Status.RUNNING),
    }
    if request.htmx:
        return render(request, "workers/run_detail.html#run-status", context)
    return render(request, "workers/run_detail.html", context)


@require_POST
@login_required
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_model_run(request.user, run_id)
    runs.cancel_run(run)
    messages.success(request, f"Run {run.pk} cancelled: no new model calls are made.")
    return redirect("run_detail", run.pk)


@require_POST
@login_required
def run_resume(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_model_run(request.user, run_id)
    runs.resume_run(run)
    tasks.queue_run(run.pk)
    messages.success(request, f"Run {run.pk} resumed: missing and failed samples are asked anew.")
    return redirect("run_detail", run.pk)
