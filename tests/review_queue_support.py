"""Builders shared by the review tests: analyses of proofs, review campaigns, a race of
reviewers (the review twin of tests/grading_support.py)."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection

from annotate.anchoring import AnchorMethod
from annotate.models import Campaign, CampaignItem, Membership, Problem, Proof, Review, Role
from annotate.review import submit_review
from annotate.work import queue
from verification.models import Analysis, Claim


def add_proofs(count: int, *, problem: Problem | None = None, category: str = "") -> list[Proof]:
    """`count` new proofs of one new problem (unless given)."""
    if problem is None:
        problem = Problem.objects.create(
            external_id=f"PB-Review-{uuid.uuid4().hex[:8]}",
            statement="Show that $1+1=2$.",
            category=category,
        )
    texts = [f"Proof {i}: since $1+1=2$, we are done. {uuid.uuid4().hex}" for i in range(count)]
    return Proof.objects.bulk_create(
        [Proof(problem=problem, text=t, content_hash=hashlib.sha256(t.encode()).hexdigest())
         for t in texts]
    )  # fmt: skip


def add_analyses(
    proofs: list[Proof],
    *,
    model: str = "verifier-a",
    score: str | None = "1",
    claims: int = 0,
) -> list[Analysis]:
    """One analysis per proof by `model`, with `score` (None: parse status "no score")
    and `claims` unanchored claimed issues each."""
    rows = []
    for proof in proofs:
        text = f"{model} on proof {proof.pk}: score {score}. {uuid.uuid4().hex}"
        rows.append(
            Analysis(
                proof=proof,
                text=text,
                text_hash=hashlib.sha256(text.encode()).hexdigest(),
                model=model,
                score=None if score is None else Decimal(score),
                parse_status="ok" if score is not None else "no_score",
            )
        )
    analyses = Analysis.objects.bulk_create(rows)
    Claim.objects.bulk_create(
        [
            Claim(
                analysis=a,
                order=n,
                text=f"Step {n} is not justified.",
                anchor_method=AnchorMethod.UNANCHORED,
            )
            for a in analyses
            for n in range(1, claims + 1)
        ]
    )
    return analyses


def add_reviewers(campaign: Campaign, count: int, *, prefix: str = "reviewer") -> list:
    """`count` reviewers without usable passwords."""
    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=f"{prefix}{i:03d}") for i in range(count)]
    )
    Membership.objects.bulk_create(
        [Membership(campaign=campaign, user=u, role=Role.REVIEWER) for u in users]
    )
    return users


def all_real(item: CampaignItem) -> list[dict]:
    return [
        {"claim": pk, "verdict": "real", "note": ""}
        for pk in item.analysis.claims.order_by("order").values_list("pk", flat=True)
    ]


@dataclass
class ReviewerRace:
    """What `race_reviewers` saw: every list empty and nobody still running is a clean run."""

    violations: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    reviewed: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    still_running: int = 0

    def twice_to_one_reviewer(self) -> list[str]:
        return [
            f"reviewer {reviewer} got analysis {analysis} twice"
            for reviewer, analyses in self.reviewed.items()
            for analysis in {a for a in analyses if analyses.count(a) > 1}
        ]


def race_reviewers(campaign: Campaign, reviewers: list, *, timeout: float = 300) -> ReviewerRace:
    """Each reviewer in a thread of its own, with its own connection, claims → submits a
    review until nothing is left for them; records any item two reviewers held at once.

    As in `grading_support.race_graders`, "nothing left" while items the reviewer could
    still review are leased to others means: wait for the next submission, ask again.
    """
    race = ReviewerRace()
    lock = threading.Lock()
    submitted = threading.Condition(lock)
    submissions = 0
    stopped = threading.Event()
    holders: dict[int, int] = {}  # item id -> reviewer id holding it (per our records)

    def still_open_for(reviewer) -> bool:
        done = Review.objects.filter(campaign=campaign, reviewer=reviewer).values("item_id")
        return (
            CampaignItem.objects.filter(campaign=campaign, committed__lt=campaign.overlap)
            .exclude(pk__in=done)
            .exists()
        )

    def work(reviewer) -> None:
        nonlocal submissions
        try:
            while True:
                with lock:
                    seen = submissions
                item = queue.claim_next_item(campaign, reviewer)
                if item is None:
                    if not still_open_for(reviewer) or stopped.is_set():
                        return
                    with submitted:
                        if submissions == seen:
                            submitted.wait(timeout=1)
                    continue
                with lock:
                    other = holders.get(item.pk)
                    if other is not None:
                        race.violations.append(
                            f"item {item.pk} leased to {other} and {reviewer.pk}"
                        )
                    holders[item.pk] = reviewer.pk
                    race.reviewed[reviewer.pk].append(item.analysis_id)
                if not queue.renew_lease(item, reviewer):
                    race.violations.append(f"item {item.pk} lost by {reviewer.pk}")
                with lock:
                    del holders[item.pk]
                submit_review(
                    item,
                    reviewer,
                    verdicts=all_real(item),
                    score="0.5",
                    override_reason="the analysis misstates the gap",
                    active_seconds=30,
                    submission_key=uuid.uuid4(),
                )
                with submitted:
                    submissions += 1
                    submitted.notify_all()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            race.errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in reviewers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    race.still_running = sum(t.is_alive() for t in threads)
    stopped.set()
    return race
