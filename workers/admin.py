from __future__ import annotations

from django.contrib import admin

from verification.admin import ReadOnlyAdmin
from workers.models import ModelOutput, ModelRun


@admin.register(ModelRun)
class ModelRunAdmin(ReadOnlyAdmin):
    """Runs are created by `run_model` (or the API); the admin shows what they did."""

    list_display = [
        "id",
        "kind",
        "target_description",
        "backend",
        "model",
        "status",
        "done",
        "failed",
        "total",
        "created_at",
    ]
    list_filter = ["kind", "status", "backend"]
    search_fields = ["model", "target_description"]


@admin.register(ModelOutput)
class ModelOutputAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "run",
        "target_id",
        "sample_index",
        "finish_reason",
        "parse_status",
        "score",
        "error_reason",
    ]
    list_filter = ["error_reason", "parse_status", "backend"]
    list_select_related = ["run"]
    raw_id_fields = ["analysis", "proof"]
