from __future__ import annotations

from django.contrib import admin

from annotate.models import Campaign, CampaignItem, Grade, GradeIssue, Membership, Problem, Proof


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


class GradeIssueInline(admin.TabularInline):
    model = GradeIssue
    extra = 0


@admin.register(Grade)
class GradeAdmin(admin.ModelAdmin):
    list_display = ["id", "proof", "origin", "campaign", "grader", "external_grader", "score"]
    list_filter = ["origin", "score"]
    raw_id_fields = ["proof", "grader"]
    inlines = [GradeIssueInline]
