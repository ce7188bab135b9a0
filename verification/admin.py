from __future__ import annotations

from django.contrib import admin

from verification.models import Analysis


@admin.register(Analysis)
class AnalysisAdmin(admin.ModelAdmin):
    list_display = ["id", "proof", "origin", "model", "prompt_version", "created_at"]
    list_filter = ["origin", "model"]
    raw_id_fields = ["proof"]
