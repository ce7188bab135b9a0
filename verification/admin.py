from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from verification.models import Analysis, Claim, Disagreement


class ReadOnlyAdmin(admin.ModelAdmin):
    """Analyses and claims come from imports and model runs; the admin only shows them
    (an edited score or anchor would no longer be what the verifier wrote)."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


CLAIM_FIELDS = ("order", "text", "quote", "anchor_method", "anchor_score", "start", "end", "exact")


class ClaimInline(admin.TabularInline):
    model = Claim
    fields = CLAIM_FIELDS
    readonly_fields = CLAIM_FIELDS
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Analysis)
class AnalysisAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "proof",
        "origin",
        "model",
        "prompt_version",
        "score",
        "parse_status",
        "created_at",
    ]
    list_filter = ["origin", "model", "parse_status"]
    raw_id_fields = ["proof"]
    inlines = [ClaimInline]


@admin.register(Claim)
class ClaimAdmin(ReadOnlyAdmin):
    list_display = ["id", "analysis", "order", "category", "anchor_method", "anchor_score"]
    list_filter = ["anchor_method", "category"]
    raw_id_fields = ["analysis"]


@admin.register(Disagreement)
class DisagreementAdmin(ReadOnlyAdmin):
    """Recorded by `verification.disagreements` and resolved by adjudication or
    recomputation, never by hand."""

    list_display = ["id", "kind", "proof", "analysis", "gap", "status", "resolution", "created_at"]
    list_filter = ["kind", "status", "resolution"]
    raw_id_fields = ["proof", "analysis"]
