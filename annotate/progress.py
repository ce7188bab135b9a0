"""How far a campaign is, and how far one grader is: counts for the progress pages.

A campaign needs `items × overlap` grades. Its bar counts grades made in Proofdesk, each
item contributing at most `overlap` (an item can end with one grade more; see
`grading.submit_grade`), so the bar moves with every grade instead of only when an item's
last grade arrives. Every function here is one or two aggregate queries whatever the size
of the campaign, except the grading page's line, whose campaign totals are cached for a
few seconds (see `CAMPAIGN_TOTALS_SECONDS`).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Least
from django.utils import timezone

from annotate.models import Campaign, CampaignItem, Grade, Skip


@dataclass(frozen=True)
class CampaignCounts:
    """Grades done of grades needed, and items complete of items."""

    items: int
    complete: int
    grades_done: int
    grades_needed: int

    @property
    def percent(self) -> int:
        return percent(self.grades_done, self.grades_needed)

    @property
    def percent_text(self) -> str:
        return percent_text(self.grades_done, self.grades_needed)


@dataclass(frozen=True)
class GraderStatus:
    """What the grading page says: "you: 12 graded · this campaign: 140 of 168 grades ...".

    `left_for_you`: the items this grader could still be given (not complete, not graded
    or skipped by them, whoever holds them now). `seconds_left` estimates the time to grade
    them all at the grader's median active time per grade, so it is an upper bound: other
    graders take some of them meanwhile. None before the grader's first grade (no pace yet).
    """

    graded: int
    campaign: CampaignCounts
    left_for_you: int
    median_seconds: float | None

    @property
    def seconds_left(self) -> float | None:
        if self.median_seconds is None:
            return None
        return self.left_for_you * self.median_seconds

    @property
    def time_left_text(self) -> str:
        """E.g. "~35 min" or "~2 h 10 min": an estimate, so never to the second."""
        return rough_duration(self.seconds_left)

    @property
    def pace_text(self) -> str:
        return rough_duration(self.median_seconds)


def rough_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "<1 min"
    if minutes < 60:
        return f"~{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"~{hours} h {minutes:02d} min" if minutes else f"~{hours} h"


def percent(part: int, whole: int) -> int:
    """Rounded down, so 99.6 % done never reads as 100 %."""
    return 100 * part // whole if whole else 0


def percent_text(part: int, whole: int) -> str:
    """Like `percent`, but "<1 %" once there is any grade: a started campaign never reads 0 %."""
    share = percent(part, whole)
    return "<1 %" if share == 0 and part > 0 else f"{share} %"


def _counted_grades(campaign: Campaign) -> Least:
    return Least("committed", campaign.overlap)


def campaign_counts(campaign: Campaign) -> CampaignCounts:
    """The campaign bar, in one query."""
    row = CampaignItem.objects.filter(campaign=campaign).aggregate(
        items=Count("id"),
        complete=Count("id", filter=Q(committed__gte=campaign.overlap)),
        grades_done=Sum(_counted_grades(campaign)),
    )
    return CampaignCounts(
        items=row["items"],
        complete=row["complete"],
        grades_done=row["grades_done"] or 0,
        grades_needed=row["items"] * campaign.overlap,
    )


# The campaign-wide counts on the grading page are read on every page view; scanning a
# 10,000-item campaign for them each time costs more than the rest of the page. They are
# kept for a few seconds per server process (Django's cache), and work committed through
# this process is added to them at once (`note_commit`), without extending their life: so
# a grader's line counts their own commit at once, and other processes' commits within
# at most this long. The grader's own figures are always exact.
CAMPAIGN_TOTALS_SECONDS = 5


def _totals_key(campaign: Campaign) -> str:
    return f"progress:campaign-totals:{campaign.pk}:{campaign.overlap}"


def note_commit(campaign: Campaign, committed: int) -> None:
    """Work was committed on an item, which now has `committed` pieces of work: count it
    in this process's cached totals, if any (they keep their expiry)."""
    key = _totals_key(campaign)
    totals = cache.get(key)
    if totals is None:
        return
    left = totals["expires"] - time.monotonic()
    if left <= 0:
        cache.delete(key)
        return
    if committed <= campaign.overlap:
        totals["grades_done"] += 1
    if committed == campaign.overlap:
        totals["complete"] += 1
    cache.set(key, totals, left)


def _campaign_totals(campaign: Campaign) -> dict[str, Any]:
    key = _totals_key(campaign)
    totals = cache.get(key)
    if totals is None:
        row = CampaignItem.objects.filter(campaign=campaign).aggregate(
            items=Count("id"),
            complete=Count("id", filter=Q(committed__gte=campaign.overlap)),
            grades_done=Sum(_counted_grades(campaign)),
        )
        totals = {k: v or 0 for k, v in row.items()}
        totals["expires"] = time.monotonic() + CAMPAIGN_TOTALS_SECONDS
        cache.set(key, totals, CAMPAIGN_TOTALS_SECONDS)
    return totals


# The grader's own rows for their line, in one statement: one row per grade they made in
# the app (its active seconds, and whether its item is still open), then one row (NULL
# seconds) per skip of an item still open that they did not grade. Written as SQL because
# this runs on every page view and the ORM's compilation of the two equivalent querysets
# cost more than the database's work (docs/benchmarks.md); tests/test_progress.py pins it.
_GRADER_ROWS = """
SELECT g.active_seconds, CASE WHEN EXISTS (
    SELECT 1 FROM {item} i
    WHERE i.campaign_id = %(campaign)s AND i.analysis_id IS NULL
      AND i.committed < %(overlap)s AND i.proof_id = g.proof_id
) THEN 1 ELSE 0 END
FROM {grade} g
WHERE g.origin = %(app)s AND g.campaign_id = %(campaign)s AND g.grader_id = %(grader)s
UNION ALL
SELECT NULL, 1
FROM {skip} s JOIN {item} i ON i.id = s.item_id
WHERE s.grader_id = %(grader)s AND i.campaign_id = %(campaign)s AND i.analysis_id IS NULL
  AND i.committed < %(overlap)s
  AND i.proof_id NOT IN (
    SELECT g2.proof_id FROM {grade} g2
    WHERE g2.origin = %(app)s AND g2.campaign_id = %(campaign)s AND g2.grader_id = %(grader)s
  )
"""


def grader_status(campaign: Campaign, grader) -> GraderStatus:
    """The grader's line on the grading page: the campaign's totals (cached briefly, see
    above), then one query that starts from the grader's own rows (never a scan of the
    campaign): their grades with their active times and whether each item is still open,
    and their skips of items still open that they did not grade."""
    totals = _campaign_totals(campaign)
    sql = _GRADER_ROWS.format(
        item=CampaignItem._meta.db_table, grade=Grade._meta.db_table, skip=Skip._meta.db_table
    )
    params = {
        "campaign": campaign.pk,
        "overlap": campaign.overlap,
        "grader": grader.pk,
        "app": Grade.Origin.APP.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    seconds = [s for s, _ in rows if s is not None]
    counts = CampaignCounts(
        items=totals["items"],
        complete=totals["complete"],
        grades_done=totals["grades_done"],
        grades_needed=totals["items"] * campaign.overlap,
    )
    open_to_others_only = sum(1 for _, is_open in rows if is_open)
    return GraderStatus(
        graded=len(seconds),
        campaign=counts,
        left_for_you=totals["items"] - totals["complete"] - open_to_others_only,
        median_seconds=statistics.median(seconds) if seconds else None,
    )


def grader_progress(campaign: Campaign, grader) -> QuerySet[Grade]:
    """The grader's own grades in the campaign, newest first."""
    return (
        Grade.objects.made_in_app()
        .filter(campaign=campaign, grader=grader)
        .select_related("proof__problem")
        .order_by("-created_at", "-id")
    )


def campaign_progress(campaign: Campaign, *, now: datetime | None = None) -> dict[str, Any]:
    """Items complete / in progress / partly graded / untouched, grades, and per-grader work.

    `in_progress`: not complete and leased (unexpired). `partial`: some grades, not leased.
    `untouched`: no grade, not leased. The four add up to `items`. `grades` counts every
    grade made in Proofdesk; `grades_done` of `grades_needed` is the campaign bar (see the
    module docstring). Medians are of active seconds per graded item.
    """
    now = now or timezone.now()
    leased = Q(lease_holder__isnull=False, lease_expires_at__gt=now)
    complete = Q(committed__gte=campaign.overlap)
    counts = CampaignItem.objects.filter(campaign=campaign).aggregate(
        items=Count("id"),
        complete=Count("id", filter=complete),
        in_progress=Count("id", filter=~complete & leased),
        untouched=Count("id", filter=Q(committed=0) & ~leased),
        grades_done=Sum(_counted_grades(campaign)),
    )
    counts["grades_done"] = counts["grades_done"] or 0
    counts["grades_needed"] = counts["items"] * campaign.overlap
    counts["percent"] = percent(counts["grades_done"], counts["grades_needed"])
    counts["percent_text"] = percent_text(counts["grades_done"], counts["grades_needed"])
    counts["partial"] = (
        counts["items"] - counts["complete"] - counts["in_progress"] - counts["untouched"]
    )
    per_grader: dict[int, dict[str, Any]] = {}
    seconds: dict[int, list[int]] = {}
    rows = (
        Grade.objects.made_in_app()
        .filter(campaign=campaign)
        .values_list("grader_id", "grader__username", "active_seconds")
    )
    for grader_id, username, active in rows:
        per_grader.setdefault(grader_id, {"grader_id": grader_id, "username": username})
        seconds.setdefault(grader_id, []).append(active)
    all_seconds = [s for values in seconds.values() for s in values]
    graders = [
        {
            **per_grader[gid],
            "grades": len(values),
            "median_active_seconds": statistics.median(values),
        }
        for gid, values in seconds.items()
    ]
    graders.sort(key=lambda g: (-g["grades"], g["username"]))
    return {
        **counts,
        "overlap": campaign.overlap,
        "grades": len(all_seconds),
        "median_active_seconds": statistics.median(all_seconds) if all_seconds else None,
        "graders": graders,
    }
