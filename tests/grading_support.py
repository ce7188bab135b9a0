"""Builders shared by the grading tests: many proofs in a campaign, many graders."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from annotate import grading
from annotate.models import (
    Campaign,
    CampaignItem,
    Grade,
    Membership,
    Problem,
    Proof,
    Role,
    content_hash,
    order_key_for,
)
from annotate.work import queue
from verification.models import Analysis


def submit_data(**extra) -> dict:
    """The grading form's fields for a valid submit, with `extra` replacing some."""
    return {
        "score": "0.5",
        "comment": "",
        "issues": "[]",
        "active_seconds": "42",
        "submission_key": str(uuid.uuid4()),
        **extra,
    }


def add_items(
    campaign: Campaign, count: int, *, problem: Problem | None = None
) -> list[CampaignItem]:
    """`count` new proofs (of one new problem unless given) as items of `campaign`."""
    if problem is None:
        problem = Problem.objects.create(
            external_id=f"PB-Load-{uuid.uuid4().hex[:8]}", statement="Show that $1+1=2$."
        )
    texts = [
        f"Proof number {i}: since $1+1=2$, we are done. {uuid.uuid4().hex}" for i in range(count)
    ]
    proofs = Proof.objects.bulk_create(
        [Proof(problem=problem, text=t, content_hash=content_hash(t)) for t in texts]
    )
    return CampaignItem.objects.bulk_create(
        [
            CampaignItem(campaign=campaign, proof=p, order_key=order_key_for(campaign.seed, p.pk))
            for p in proofs
        ]
    )


def add_graders(campaign: Campaign, count: int, *, prefix: str = "grader") -> list:
    """`count` graders without usable passwords (hashing 32 passwords would cost seconds)."""
    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=f"{prefix}{i:03d}") for i in range(count)]
    )
    Membership.objects.bulk_create(
        [Membership(campaign=campaign, user=u, role=Role.GRADER) for u in users]
    )
    return users


def add_others_ratings(item: CampaignItem, count: int, *, prefix: str) -> None:
    """`count` other graders' committed grades of `item` (two issues each, made through
    `submit_grade`), and as many imported grades and verifier analyses of its proof: what
    the page or API shows once the viewer may see others' ratings, so that a query per
    grade, issue or analysis shows up in a query count.

    The item's lease is handed to each grader in turn for their submission, then given back
    to whoever held it before.
    """
    before = CampaignItem.objects.values("lease_holder", "lease_expires_at").get(pk=item.pk)
    for grader in add_graders(item.campaign, count, prefix=prefix):
        # Leased directly: the queue would offer this grader another item first.
        CampaignItem.objects.filter(pk=item.pk).update(
            lease_holder=grader, lease_expires_at=timezone.now() + timedelta(minutes=5)
        )
        grading.submit_grade(
            CampaignItem.objects.select_related("campaign", "proof").get(pk=item.pk),
            grader,
            score="0.5",
            comment=f"{grader.username} finds a gap",
            issues=[
                {"start": 0, "end": 5, "note": "unclear", "severity": "minor"},
                {"note": "overall too terse", "severity": "fatal"},
            ],
            active_seconds=5,
            submission_key=uuid.uuid4(),
        )
    CampaignItem.objects.filter(pk=item.pk).update(
        lease_holder=before["lease_holder"], lease_expires_at=before["lease_expires_at"]
    )
    Grade.objects.bulk_create(
        [
            Grade(
                proof_id=item.proof_id,
                origin=Grade.Origin.IMPORTED,
                external_grader=f"{prefix}jury{i}",
                import_source="tests/grading_support.py",
                score=Decimal("1"),
            )
            for i in range(count)
        ]
    )
    texts = [f"{prefix} analysis {i}: the proof is fine." for i in range(count)]
    Analysis.objects.bulk_create(
        [
            Analysis(
                proof_id=item.proof_id,
                text=t,
                text_hash=hashlib.sha256(t.encode()).hexdigest(),
                model="verifier",
            )
            for t in texts
        ]
    )


@dataclass
class GraderRace:
    """What `race_graders` saw: every list empty and nobody still running is a clean run."""

    violations: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    graded: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    still_running: int = 0

    def twice_to_one_grader(self) -> list[str]:
        return [
            f"grader {grader} got proof {proof} twice"
            for grader, proofs in self.graded.items()
            for proof in {p for p in proofs if proofs.count(p) > 1}
        ]


def race_graders(campaign: Campaign, graders: list, *, timeout: float = 300) -> GraderRace:
    """Each grader in a thread of its own, with its own connection, claims → submits until
    nothing is left for them; records any item two graders held at once.

    "Nothing left" is the queue's answer only while every item the grader could still grade
    is leased to someone else: that grader waits for the next submission and asks again, as
    a real one would press Next later (else the last items, handed back with one grade
    short, would find nobody left to grade them).
    """
    race = GraderRace()
    lock = threading.Lock()
    submitted = threading.Condition(lock)
    submissions = 0
    stopped = threading.Event()
    holders: dict[int, int] = {}  # item id -> grader id currently holding it (per our records)

    def still_open_for(grader) -> bool:
        graded = Grade.objects.filter(campaign=campaign, grader=grader).values("proof_id")
        return (
            CampaignItem.objects.filter(campaign=campaign, committed__lt=campaign.overlap)
            .exclude(proof_id__in=graded)
            .exists()
        )

    def work(grader) -> None:
        nonlocal submissions
        try:
            while True:
                with lock:
                    seen = submissions
                item = queue.claim_next_item(campaign, grader)
                if item is None:
                    if not still_open_for(grader) or stopped.is_set():
                        return
                    with submitted:
                        if submissions == seen:  # none since we asked: wait for the next
                            submitted.wait(timeout=1)
                    continue
                with lock:
                    other = holders.get(item.pk)
                    if other is not None:
                        race.violations.append(f"item {item.pk} leased to {other} and {grader.pk}")
                    holders[item.pk] = grader.pk
                    race.graded[grader.pk].append(item.proof_id)
                # While our entry is in `holders`, the database must agree that we hold it
                # (renewing succeeds only for the holder). Submitting without a draft also
                # requires the lease, so a stolen lease would surface as NotClaimed.
                if not queue.renew_lease(item, grader):
                    race.violations.append(f"item {item.pk} lost by {grader.pk}")
                with lock:
                    del holders[item.pk]
                grading.submit_grade(
                    item,
                    grader,
                    score="0.5",
                    comment="",
                    issues=[],
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

    threads = [threading.Thread(target=work, args=(g,)) for g in graders]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    race.still_running = sum(t.is_alive() for t in threads)
    stopped.set()  # graders waiting for an item whose holder failed give up
    return race
