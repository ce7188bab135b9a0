from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from annotate.models import (
    Adjudication,
    AdjudicationHistory,
    Campaign,
    CampaignItem,
    ClaimVerdict,
    GoldLabel,
    GoldLabelHistory,
    Grade,
    GradeHistory,
    GradeIssue,
    Membership,
    Problem,
    Proof,
    Review,
    ReviewHistory,
)


class CommittedWorkAdmin(admin.ModelAdmin):
    """Committed expert work and its history are only shown here: an edit must bump the
    version and write a history row (annotate/work/commit.py), which the admin's save does
    not, and a grade is added or deleted only by grading or an import."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "category", "level", "source"]
    list_filter = ["category", "level"]
    search_fields = ["external_id", "statement", "source"]


@admin.register(Proof)
class ProofAdmin(admin.ModelAdmin):
    list_display = ["id", "problem", "external_id", "generator_model", "human_author"]
    list_filter = ["generator_model"]
    search_fields = ["external_id", "problem__external_id"]
    raw_id_fields = ["problem"]
    readonly_fields = ["content_hash"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    raw_id_fields = ["user"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "overlap", "blind", "created_at"]
    list_filter = ["kind", "blind"]
    inlines = [MembershipInline]


@admin.register(CampaignItem)
class CampaignItemAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "proof", "priority"]
    raw_id_fields = ["proof"]


class GradeIssueInline(ReadOnlyInline):
    model = GradeIssue


@admin.register(Grade)
class GradeAdmin(CommittedWorkAdmin):
    list_display = ["id", "proof", "origin", "campaign", "grader", "external_grader", "score"]
    list_filter = ["origin", "score"]
    raw_id_fields = ["proof", "grader"]
    inlines = [GradeIssueInline]


@admin.register(GradeHistory)
class GradeHistoryAdmin(CommittedWorkAdmin):
    list_display = ["grade", "version", "changed_by", "changed_at", "old_score", "new_score"]
    raw_id_fields = ["grade"]


class ClaimVerdictInline(ReadOnlyInline):
    model = ClaimVerdict


@admin.register(Review)
class ReviewAdmin(CommittedWorkAdmin):
    list_display = ["id", "campaign", "analysis", "reviewer", "score", "version"]
    list_filter = ["score"]
    raw_id_fields = ["item", "analysis", "reviewer"]
    inlines = [ClaimVerdictInline]


@admin.register(ClaimVerdict)
class ClaimVerdictAdmin(CommittedWorkAdmin):
    list_display = ["id", "review", "claim", "verdict"]
    raw_id_fields = ["review", "claim"]


@admin.register(ReviewHistory)
class ReviewHistoryAdmin(CommittedWorkAdmin):
    list_display = ["review", "version", "changed_by", "changed_at"]
    raw_id_fields = ["review"]


@admin.register(Adjudication)
class AdjudicationAdmin(CommittedWorkAdmin):
    list_display = ["id", "campaign", "proof", "adjudicator", "score", "version"]
    list_filter = ["score"]
    raw_id_fields = ["item", "proof", "adjudicator"]


@admin.register(AdjudicationHistory)
class AdjudicationHistoryAdmin(CommittedWorkAdmin):
    list_display = ["adjudication", "version", "changed_by", "changed_at"]
    raw_id_fields = ["adjudication"]


# Gold labels are computed (annotate/gold.py), never edited by hand: read-only, like work.
@admin.register(GoldLabel)
class GoldLabelAdmin(CommittedWorkAdmin):
    list_display = ["proof", "score", "provenance", "updated_at"]
    list_filter = ["provenance", "score"]
    raw_id_fields = ["proof"]


@admin.register(GoldLabelHistory)
class GoldLabelHistoryAdmin(CommittedWorkAdmin):
    list_display = ["proof", "changed_at"]
    raw_id_fields = ["proof"]
