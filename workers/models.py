"""Model runs and the raw outputs they store.

A `ModelRun` asks one backend and model for n samples for each of its targets (problems
for `generate`, proofs for `verify`, analyses for `meta_verify`), with one prompt template
and one sampling. Its targets are resolved when it is created (`target_ids`), so a run
resumed later asks about the same things. Every sample is stored as a `ModelOutput` under
the key (run, target, sample index), unique in the database: a batch retried or
redelivered after a crash finds the samples already stored and never writes one twice
(`workers.runs.execute_run_batch`). A failed sample is stored too, with its reason, and
is asked for again when the run is resumed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Count, Q, Sum
from django.utils import timezone

from verification.parsing import ParseStatus
from workers.prompts import Kind


class ModelRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    # What was asked for ({"campaign": "name"}, {"problems": [...]} or {"filter": {...}}, the
    # filters as read: workers/targets.py) and, in words with the number matched, for pages.
    target = models.JSONField(default=dict)
    target_description = models.CharField(max_length=500)
    target_ids = models.JSONField(default=list)
    backend = models.CharField(max_length=50)
    backend_options = models.JSONField(default=dict, blank=True)  # never secrets
    model = models.CharField(max_length=200)
    sampling = models.JSONField(default=dict)
    template_text = models.TextField()
    template_hash = models.CharField(max_length=64)
    template_version = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    cancel_requested = models.BooleanField(default=False)
    # Counts of samples, recomputed from the stored outputs after every batch.
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    failed_by_reason = models.JSONField(default=dict, blank=True)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="model_run_kind_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running", "done", "cancelled"]),
                name="model_run_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(template_hash__regex=r"^[0-9a-f]{64}$"), name="model_run_template_hash"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} run {self.pk} ({self.model} on {self.target_description})"

    @property
    def n(self) -> int:
        return int(self.sampling.get("n", 1))

    @property
    def finished(self) -> int:
        """Samples with an answer: stored, or failed with a reason."""
        return self.done + self.failed

    def elapsed_s(self, now: datetime | None = None) -> float | None:
        """Seconds since the first batch started, up to the end (or now, while running)."""
        if self.started_at is None:
            return None
        end = self.finished_at or now or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())

    def throughput_per_s(self, now: datetime | None = None) -> float | None:
        """Samples answered per second of elapsed time."""
        elapsed = self.elapsed_s(now)
        if not elapsed or not self.finished:
            return None
        return self.finished / elapsed

    def eta_s(self, now: datetime | None = None) -> float | None:
        """Seconds left at the throughput so far; None when unknown or not running."""
        if self.status != self.Status.RUNNING:
            return None
        rate = self.throughput_per_s(now)
        if not rate:
            return None
        return max(0, self.total - self.finished) / rate

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        """The run as the API and the run page's live channel give it (no model text)."""
        now = now or timezone.now()
        return {
            "id": self.pk,
            "kind": self.kind,
            "status": self.status,
            "cancel_requested": self.cancel_requested,
            "target": self.target,
            "target_description": self.target_description,
            "target_count": len(self.target_ids),
            "backend": self.backend,
            "model": self.model,
            "sampling": self.sampling,
            "template_version": self.template_version,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "failed_by_reason": self.failed_by_reason,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "elapsed_s": self.elapsed_s(now),
            "throughput_per_s": self.throughput_per_s(now),
            "eta_s": self.eta_s(now),
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }

    def refresh_counts(self) -> None:
        """Counts and tokens from the stored outputs (right after a redelivery too)."""
        outputs = self.outputs.all()
        by_reason = dict(
            outputs.exclude(error_reason="")
            .values_list("error_reason")
            .annotate(n=Count("id"))
            .values_list("error_reason", "n")
        )
        totals = outputs.aggregate(
            done=Count("id", filter=Q(error_reason="")),
            # The prompt is read once per request: count it on sample 0.
            tokens_in=Sum("prompt_tokens", filter=Q(sample_index=0)),
            tokens_out=Sum("completion_tokens"),
        )
        self.done = totals["done"] or 0
        self.failed = sum(by_reason.values())
        self.failed_by_reason = by_reason
        self.tokens_in = totals["tokens_in"] or 0
        self.tokens_out = totals["tokens_out"] or 0


class ModelOutput(models.Model):
    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, related_name="outputs")
    # A problem (generate), a proof (verify) or an analysis (meta_verify), by primary key.
    target_id = models.BigIntegerField()
    sample_index = models.PositiveIntegerField()
    text = models.TextField(blank=True)  # exactly as the model wrote it
    reasoning = models.TextField(blank=True)  # the engine's separate reasoning channel
    finish_reason = models.CharField(max_length=20, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_s = models.FloatField(default=0)
    backend = models.CharField(max_length=50)
    model = models.CharField(max_length=200)
    template_version = models.CharField(max_length=100)
    sampling = models.JSONField(default=dict)
    # The score read from the output (verdict, self-score or meta score), when one is read.
    score = models.DecimalField(max_digits=2, decimal_places=1, null=True, blank=True)
    parse_status = models.CharField(max_length=20, choices=ParseStatus.choices, blank=True)
    error_reason = models.CharField(max_length=50, blank=True)  # "" for a stored sample
    error_message = models.TextField(blank=True)
    # What the output became: an analysis (verify) or a proof (generate).
    analysis = models.OneToOneField(
        "verification.Analysis",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_output",
    )
    proof = models.ForeignKey(
        "annotate.Proof",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_outputs",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run_id", "target_id", "sample_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "target_id", "sample_index"], name="model_output_key_unique"
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__in=["0", "0.5", "1"]),
                name="model_output_score_on_scale",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} target {self.target_id} sample {self.sample_index}"

    @property
    def ok(self) -> bool:
        return not self.error_reason
