"""Experts of a campaign, and a race of them over its queue, for every kind of work
(grading, review): each expert claims → submits in a thread of its own until nothing is
left for them, and the race records any item two experts held at once."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Exists

from annotate.models import Campaign, CampaignItem, Membership
from annotate.work import queue
from annotate.work.kinds import kind_of

# Commits the expert's work on an item they hold (the kind's own submit, valid content).
Submit = Callable[[CampaignItem, User], Any]


def add_experts(campaign: Campaign, count: int, *, role: str, prefix: str) -> list[User]:
    """`count` members of `campaign` in `role`, named `prefix000`, `prefix001`, ..., without
    usable passwords (hashing 32 passwords would cost seconds)."""
    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=f"{prefix}{i:03d}") for i in range(count)]
    )
    Membership.objects.bulk_create(
        [Membership(campaign=campaign, user=u, role=role) for u in users]
    )
    return users


@dataclass
class WorkRace:
    """What `race_experts` saw: every list empty and nobody still running is a clean run."""

    violations: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    # expert id -> the items the queue handed them, in order (an item is one proof in a
    # grading campaign, one analysis in a review campaign, by the items' constraints)
    claimed: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    still_running: int = 0

    def twice_to_one_expert(self) -> list[str]:
        return [
            f"expert {expert} got item {item} twice"
            for expert, items in self.claimed.items()
            for item in {i for i in items if items.count(i) > 1}
        ]

    def claims(self) -> int:
        return sum(len(items) for items in self.claimed.values())


def still_open_for(campaign: Campaign, expert: User) -> bool:
    """Is any item of `campaign` short of its overlap and not yet worked on by `expert`
    (the kind's `done_by`, as the queue reads it)? Leases are not looked at."""
    done = kind_of(campaign).done_by(campaign, expert)
    return (
        CampaignItem.objects.filter(campaign=campaign, committed__lt=campaign.overlap)
        .exclude(Exists(done))
        .exists()
    )


def race_experts(
    campaign: Campaign, experts: list[User], submit: Submit, *, timeout: float = 300
) -> WorkRace:
    """Each expert in a thread of its own, with its own connection, claims → `submit`s
    until nothing is left for them; records any item two experts held at once.

    "Nothing left" is the queue's answer only while every item the expert could still
    work on is leased to someone else: that expert waits for the next submission and asks
    again, as a real one would press Next later (else the last items, handed back with one
    piece of work short, would find nobody left to finish them).
    """
    race = WorkRace()
    lock = threading.Lock()
    submitted = threading.Condition(lock)
    submissions = 0
    stopped = threading.Event()
    holders: dict[int, int] = {}  # item id -> expert id currently holding it (per our records)

    def work(expert: User) -> None:
        nonlocal submissions
        try:
            while True:
                with lock:
                    seen = submissions
                item = queue.claim_next_item(campaign, expert)
                if item is None:
                    if not still_open_for(campaign, expert) or stopped.is_set():
                        return
                    with submitted:
                        if submissions == seen:  # none since we asked: wait for the next
                            submitted.wait(timeout=1)
                    continue
                with lock:
                    other = holders.get(item.pk)
                    if other is not None:
                        race.violations.append(f"item {item.pk} leased to {other} and {expert.pk}")
                    holders[item.pk] = expert.pk
                    race.claimed[expert.pk].append(item.pk)
                # While our entry is in `holders`, the database must agree that we hold it
                # (renewing succeeds only for the holder). Submitting without a draft also
                # requires the lease, so a stolen lease would surface as NotClaimed.
                if not queue.renew_lease(item, expert):
                    race.violations.append(f"item {item.pk} lost by {expert.pk}")
                with lock:
                    del holders[item.pk]
                submit(item, expert)
                with submitted:
                    submissions += 1
                    submitted.notify_all()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            race.errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(e,)) for e in experts]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    race.still_running = sum(t.is_alive() for t in threads)
    stopped.set()  # experts waiting for an item whose holder failed give up
    return race
