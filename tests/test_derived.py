"""Disagreements and gold labels recomputed off the request path (annotate/work/derived.py):
a commit marks its proof stale, the recomputation (a cpu-queue task with a broker) clears
the mark, and a crash or a commit made during a recomputation loses nothing."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from annotate import grading
from annotate.models import CampaignItem, GoldLabel, Grade, Provenance, StaleProof
from annotate.work import derived
from verification import disagreements
from verification.models import Disagreement

D = Decimal


def lease(item, expert) -> None:
    CampaignItem.objects.filter(pk=item.pk).update(
        lease_holder=expert, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    item.refresh_from_db()


def submit(item, expert, score: str) -> Grade:
    lease(item, expert)
    grade, _ = grading.submit_grade(
        item,
        expert,
        score=score,
        comment="",
        issues=[],
        active_seconds=5,
        submission_key=str(uuid.uuid4()),
    )
    return grade


def other_grade(proof, campaign, grader, score: str) -> Grade:
    return Grade.objects.create(
        proof=proof, campaign=campaign, grader=grader, origin=Grade.Origin.APP, score=D(score)
    )


@pytest.fixture
def item(campaign, proof) -> CampaignItem:
    return CampaignItem.objects.get(campaign=campaign, proof=proof)


@pytest.fixture
def deferred(settings):
    """A deployment with a broker: the request only marks, a worker recomputes."""
    settings.RECOMPUTE_INLINE = False


@pytest.fixture
def published(monkeypatch):
    """The tasks the requests published (the broker's side is Celery's, not ours)."""
    from workers import tasks

    sent: list[tuple] = []
    monkeypatch.setattr(tasks.recompute_stale_proofs, "delay", lambda *a: sent.append(a))
    return sent


def test_a_commit_only_marks_its_proof_and_publishes_one_task(
    deferred, published, proof, campaign, item, expert, expert2, django_capture_on_commit_callbacks
):
    other_grade(proof, campaign, expert2, "1")
    with django_capture_on_commit_callbacks(execute=True):
        submit(item, expert, "0")
    assert published == [()]
    assert list(StaleProof.objects.values_list("proof_id", flat=True)) == [proof.pk]
    assert not Disagreement.objects.exists()
    assert not GoldLabel.objects.exists()

    # The worker's task: the records come up to date and the mark goes.
    from workers import tasks

    assert tasks.recompute_stale_proofs.run() == 1
    assert not StaleProof.objects.exists()
    opened = Disagreement.objects.get()
    assert opened.kind == Disagreement.Kind.EXPERT_VS_EXPERT and opened.gap == 1.0


def test_the_gold_label_follows_when_the_worker_runs(
    deferred, published, proof, item, expert, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        submit(item, expert, "0.5")
    assert not GoldLabel.objects.exists()
    derived.recompute_stale()
    label = GoldLabel.objects.get(proof=proof)
    assert (label.provenance, label.score) == (Provenance.SINGLE_EXPERT, D("0.5"))


def test_an_edit_marks_its_proof_too(
    deferred, published, proof, campaign, item, expert, expert2, django_capture_on_commit_callbacks
):
    other_grade(proof, campaign, expert2, "1")
    with django_capture_on_commit_callbacks(execute=True):
        grade = submit(item, expert, "1")
    derived.recompute_stale()
    assert not Disagreement.objects.open().exists()

    with django_capture_on_commit_callbacks(execute=True):
        grading.edit_grade(
            grade, expert, expected_version=grade.version, score="0", comment="", issues=[]
        )
    assert StaleProof.objects.filter(proof=proof).exists()
    assert not Disagreement.objects.open().exists()  # not yet: the worker's job
    derived.recompute_stale()
    assert Disagreement.objects.open().get().gap == 1.0


def test_a_rolled_back_commit_leaves_no_mark(deferred, published, proof, item, expert):
    lease(item, expert)
    with pytest.raises(RuntimeError), transaction.atomic():
        submit(item, expert, "1")
        raise RuntimeError("the request failed after the commit's statements")
    assert not StaleProof.objects.exists()
    assert published == []


def test_a_crash_during_the_recomputation_keeps_the_mark(
    deferred, published, monkeypatch, proof, campaign, item, expert, expert2,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    other_grade(proof, campaign, expert2, "1")
    with django_capture_on_commit_callbacks(execute=True):
        submit(item, expert, "0")

    def crash(ids):
        raise MemoryError("worker killed")

    with monkeypatch.context() as m:
        m.setattr(disagreements, "record_disagreements", crash)
        with pytest.raises(MemoryError):
            derived.recompute_stale()
    assert StaleProof.objects.filter(proof=proof).exists()

    # The next run, after any commit or from the command, catches up.
    call_command("recompute_stale", stdout=open("/dev/null", "w"))
    assert not StaleProof.objects.exists()
    assert Disagreement.objects.open().get().gap == 1.0


def test_inline_mode_recomputes_in_the_request(
    proof, campaign, item, expert, expert2, django_capture_on_commit_callbacks
):
    other_grade(proof, campaign, expert2, "1")
    with django_capture_on_commit_callbacks(execute=True):
        submit(item, expert, "0")
    assert not StaleProof.objects.exists()
    assert Disagreement.objects.open().get().gap == 1.0


def test_recomputation_is_batched_and_bounded(deferred, proof, campaign, expert):
    from annotate.models import Proof

    proofs = [
Proof.objects.create(problem=proof.problem, text=f"proof {i}")
        for i in range(5)
    ]
    now = timezone.now()
    StaleProof.objects.bulk_create(StaleProof(proof=p, marked_at=now) for p in proofs)
    assert derived.recompute_stale(limit=2) == 2
    assert StaleProof.objects.count() == 3
    assert derived.recompute_stale() == 3
    assert not StaleProof.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_work_committed_during_a_recomputation_stays_marked(
    on_postgres, deferred, published, proof, campaign, item, expert, expert2, monkeypatch
):
    """The race the mark's timestamp is for (PostgreSQL): a recomputation reads the marks,
    then, while it computes, an expert commits new work on the same proof. That work may
    be invisible to the recomputation, so its mark must survive it."""
    other_grade(proof, campaign, expert2, "1")
    submit(item, expert, "1")  # marked; nothing recomputed yet
    assert StaleProof.objects.filter(proof=proof).exists()

    computing, committed = threading.Event(), threading.Event()
    real = disagreements.record_disagreements

    def slow(ids):
        result = real(ids)
        computing.set()
        assert committed.wait(10)
        return result

    def commit_meanwhile():
        try:
            assert computing.wait(10)
            # A new grade of the proof, committed while the recomputation's transaction is
            # open: its mark is an upsert of the row the recomputation read.
            with transaction.atomic():
                derived.mark_stale([proof.pk])
                Grade.objects.create(
                    proof=proof,
                    origin=Grade.Origin.IMPORTED,
                    external_grader="jury",
                    import_source="late.jsonl",
                    score=D("0"),
                )
        finally:
            committed.set()
            connection.close()

    monkeypatch.setattr(disagreements, "record_disagreements", slow)
    worker = threading.Thread(target=commit_meanwhile)
    worker.start()
    assert derived.recompute_stale(limit=1) == 1
    worker.join(10)
    assert StaleProof.objects.filter(proof=proof).exists(), "the later commit's mark was lost"
