"""Who sees a "the problem statement is wrong" flag.

A flag is raised by a grader of one campaign (skipping with that reason) and belongs to
that campaign. The rule, used by every page and the API:

1. Members of the flag's campaign see it in full: the note, when, and who raised it (they
   already work together on that campaign; the owner needs the name to follow it up).
2. Anyone else sees nothing of it: not the note, not the name, not the other campaign.
   Campaigns share problems, not people: a grader of campaign A must not learn who grades
   campaign B, nor what B's graders wrote.
3. The one exception: owners of a campaign see *in how many* other campaigns the same
   problem has an open flag (a number, nothing else), so a wrong statement can be noticed and
   fixed once for everyone without anyone's note or name crossing over.
"""

from __future__ import annotations

from django.db.models import QuerySet

from annotate.models import Campaign, Problem, ProblemFlag


def open_flags(campaign: Campaign | int, problem: Problem | int) -> QuerySet[ProblemFlag]:
    """Rule 1: the problem's open flags raised in this campaign, with who raised them."""
    return (
        ProblemFlag.objects.filter(campaign=campaign, problem=problem, resolved=False)
        .select_related("raised_by")
        .order_by("-created_at", "-id")
    )


def campaign_flags(campaign: Campaign) -> QuerySet[ProblemFlag]:
    """Rule 1, for the owner's progress page: every flag of the campaign, open ones first."""
    return (
        ProblemFlag.objects.filter(campaign=campaign)
        .select_related("problem", "raised_by")
        .order_by("resolved", "-created_at", "-id")
    )


def flagged_elsewhere(campaign: Campaign | int, problem: Problem | int) -> int:
    """Rule 3: in how many other campaigns the problem has an open flag (for owners only)."""
    return (
        ProblemFlag.objects.filter(problem=problem, resolved=False)
        .exclude(campaign=campaign)
        .values("campaign")
        .distinct()
        .count()
    )
