"""Verifier analyses (model-written evaluations of proofs) and the claims they make.

An analysis keeps the text exactly as the model wrote it, with the model, prompt template
and sampling that produced it, and what `verification.parsing.parse_analysis` read from it:
the reasoning section, the score and the parse status. An analysis whose score cannot be
read is kept with its status (never dropped). Its claims (`Claim`) are the issues it
raises, each anchored to the passage of the proof it is about (`annotate.anchoring`).
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import F, Q

from annotate.anchoring import AnchorMethod
from annotate.models import Proof
from verification.parsing import ParseStatus, parse_analysis

SCORE_VALUES = ("0", "0.5", "1")


class Analysis(models.Model):
    class Origin(models.TextChoices):
        IMPORTED = "imported", "Imported"
        MODEL_RUN = "model_run", "Model run"

    proof = models.ForeignKey(Proof, on_delete=models.PROTECT, related_name="analyses")
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.IMPORTED)
    text = models.TextField()
    text_hash = models.CharField(max_length=64)
    model = models.CharField(max_length=200, blank=True)
    prompt_version = models.CharField(max_length=100, blank=True)
    sampling = models.JSONField(default=dict, blank=True)
    # The sampler's reason for stopping ("stop", "length"), when the source says.
    finish_reason = models.CharField(max_length=20, blank=True)
    # Read from `text` by `parse_analysis` (see `parsed_fields`); never edited by hand.
    reasoning = models.TextField(blank=True)
    score = models.DecimalField(max_digits=2, decimal_places=1, null=True, blank=True)
    parse_status = models.CharField(
        max_length=20, choices=ParseStatus.choices, default=ParseStatus.NO_SCORE
    )
    parse_detail = models.CharField(max_length=200, blank=True)
    import_source = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["proof_id", "id"]
        verbose_name_plural = "analyses"
        constraints = [
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__in=SCORE_VALUES),
                name="analysis_score_on_scale",
            ),
            models.CheckConstraint(
                condition=Q(parse_status__in=ParseStatus.values), name="analysis_parse_status_valid"
            ),
            # A score exactly when it was read: no score is ever guessed for a bad parse.
            models.CheckConstraint(
                condition=Q(parse_status=ParseStatus.OK, score__isnull=False)
                | (~Q(parse_status=ParseStatus.OK) & Q(score__isnull=True)),
                name="analysis_score_iff_parsed",
            ),
            models.UniqueConstraint(
                fields=["proof", "model", "prompt_version", "text_hash"],
                condition=Q(origin="imported"),
                name="imported_analysis_unique",
            ),
            models.CheckConstraint(condition=~Q(text=""), name="analysis_text_set"),
        ]

    def __str__(self) -> str:
        return f"analysis {self.pk} of proof {self.proof_id} by {self.model or 'unknown model'}"

    @staticmethod
    def parsed_fields(text: str, finish_reason: str = "") -> dict[str, Any]:
        """The columns `parse_analysis` fills in, for a new row (ORM or bulk import)."""
        parsed = parse_analysis(text, finish_reason or None)
        return {
            "finish_reason": finish_reason,
            "reasoning": parsed.reasoning,
            "score": parsed.score,
            "parse_status": parsed.status.value,
            "parse_detail": parsed.detail[:200],
        }


class Claim(models.Model):
    """One issue an analysis claims, anchored to the passage of the proof it is about.

    `text` is the claim in the verifier's words; `quote` the passage as the verifier quoted
    it (often not verbatim); `source_start`/`source_end` the verifier's own index span, if
    it gave one. The anchor is where the passage really is, as W3C selectors (`start`,
    `end`; `exact`, `prefix`, `suffix`) and how it was found (`anchor_method`, with a
    similarity `anchor_score` in 0..100 for a fuzzy match). `index_span` anchors are the
    verifier's indices taken as they are, approximate.
    """

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="claims")
    order = models.PositiveSmallIntegerField()
    text = models.TextField(blank=True)
    quote = models.TextField(blank=True)
    category = models.CharField(max_length=100, blank=True)
    location = models.TextField(blank=True)
    source_start = models.PositiveIntegerField(null=True, blank=True)
    source_end = models.PositiveIntegerField(null=True, blank=True)
    start = models.PositiveIntegerField(null=True, blank=True)
    end = models.PositiveIntegerField(null=True, blank=True)
    exact = models.TextField(blank=True)
    prefix = models.CharField(max_length=64, blank=True)
    suffix = models.CharField(max_length=64, blank=True)
    anchor_method = models.CharField(
        max_length=20, choices=[(m.value, m.value.replace("_", " ")) for m in AnchorMethod]
    )
    anchor_score = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["analysis_id", "order"]
        constraints = [
            models.UniqueConstraint(fields=["analysis", "order"], name="claim_order_unique"),
            models.CheckConstraint(condition=~Q(text="", quote=""), name="claim_has_content"),
            models.CheckConstraint(
                condition=Q(anchor_method__in=[m.value for m in AnchorMethod]),
                name="claim_anchor_method_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    anchor_method=AnchorMethod.UNANCHORED, start__isnull=True, end__isnull=True
                )
                | (
                    ~Q(anchor_method=AnchorMethod.UNANCHORED)
                    & Q(start__isnull=False, end__isnull=False, start__lt=F("end"))
                ),
                name="claim_anchor_span_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    anchor_method=AnchorMethod.FUZZY,
                    anchor_score__isnull=False,  # NULL would pass a CHECK unnoticed
                    anchor_score__gte=0,
                    anchor_score__lte=100,
                )
                | (~Q(anchor_method=AnchorMethod.FUZZY) & Q(anchor_score__isnull=True)),
                name="claim_fuzzy_score_only",
            ),
            models.CheckConstraint(
                condition=Q(source_start__isnull=True, source_end__isnull=True)
                | Q(source_start__isnull=False, source_end__isnull=False),
                name="claim_source_span_whole",
            ),
        ]

    def __str__(self) -> str:
        return f"claim {self.order} of analysis {self.analysis_id} ({self.anchor_method})"


class DisagreementQuerySet(models.QuerySet["Disagreement"]):
    def open(self) -> DisagreementQuerySet:
        return self.filter(status=Disagreement.Status.OPEN)

    def resolve(self, how: str, now: Any = None) -> int:
        """Close the open ones among these, saying how (`Disagreement.Resolution`): one
        conditional UPDATE, so a disagreement already closed is left as it was. The number
        closed."""
        from django.utils import timezone

        return self.open().update(
            status=Disagreement.Status.RESOLVED,
            resolution=how,
            resolved_at=now or timezone.now(),
            updated_at=now or timezone.now(),
        )


class Disagreement(models.Model):
    """Raters of a proof (or of an analysis) who contradict each other, as a record that
    stays open until it is resolved: by adjudication, or because recomputation finds the
    raters agree now (`verification.disagreements.record_disagreements`, which has the
    rules of each kind).

    `parties` is who or what took part, each with its score: expert grades (the grader's
    username, or "imported: NAME"), the expert consensus, verifier models, reviews and
    models' meta-assessments. `gap` is the largest difference between the two sides (for
    experts among themselves, max − min). `model_names` holds every model involved (the
    proof's author, verifiers, meta-assessors) one per line, with a newline before and
    after each, so that "involves model M" is one portable `contains` on "\\nM\\n".
    """

    class Kind(models.TextChoices):
        EXPERT_VS_EXPERT = "expert_vs_expert", "Expert vs expert"
        EXPERTS_VS_VERIFIER = "experts_vs_verifier", "Experts vs verifier"
        REVIEW_VS_META = "review_vs_meta", "Review vs model meta-assessment"
        # Reserved: auto-labels do not exist yet, so nothing records this kind.
        AUTO_LABEL_VS_EXPERTS = "auto_label_vs_experts", "Auto-label vs experts"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    class Resolution(models.TextChoices):
        ADJUDICATED = "adjudicated", "Resolved by adjudication"
        NO_LONGER = "no_longer_disagrees", "No longer disagrees"

    kind = models.CharField(max_length=30, choices=Kind.choices)
    proof = models.ForeignKey(Proof, on_delete=models.CASCADE, related_name="disagreements")
    # The analysis both sides judged (review vs meta-assessment only).
    analysis = models.ForeignKey(
        Analysis, null=True, blank=True, on_delete=models.CASCADE, related_name="disagreements"
    )
    campaigns = models.ManyToManyField(
        "annotate.Campaign", blank=True, related_name="disagreements"
    )
    parties = models.JSONField(default=list)
    gap = models.FloatField()
    model_names = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolution = models.CharField(max_length=30, choices=Resolution.choices, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DisagreementQuerySet.as_manager()

    class Meta:
        ordering = ["-gap", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["proof", "kind"],
                condition=Q(status="open", analysis__isnull=True),
                name="disagreement_open_once",
            ),
            models.UniqueConstraint(
                fields=["proof", "kind", "analysis"],
                condition=Q(status="open", analysis__isnull=False),
                name="disagreement_open_once_per_analysis",
            ),
            models.CheckConstraint(
                condition=Q(
                    kind__in=[
                        "expert_vs_expert",
                        "experts_vs_verifier",
                        "review_vs_meta",
                        "auto_label_vs_experts",
                    ]
                ),
                name="disagreement_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind="review_vs_meta", analysis__isnull=False)
                | (~Q(kind="review_vs_meta") & Q(analysis__isnull=True)),
                name="disagreement_analysis_iff_review_kind",
            ),
            models.CheckConstraint(
                condition=Q(gap__gte=0.5, gap__lte=1), name="disagreement_gap_range"
            ),
            models.CheckConstraint(
                condition=Q(status="open", resolution="", resolved_at__isnull=True)
                | Q(
                    status="resolved",
                    resolution__in=["adjudicated", "no_longer_disagrees"],
                    resolved_at__isnull=False,
                ),
                name="disagreement_resolution_consistent",
            ),
        ]
        indexes = [
            models.Index(fields=["proof", "status"], name="disagreement_proof_status"),
            models.Index(fields=["status", "-gap"], name="disagreement_status_gap"),
        ]

    def __str__(self) -> str:
        where = f"analysis {self.analysis_id}" if self.analysis_id else f"proof {self.proof_id}"
        parties = ", ".join(
            f"{p.get('who')}: {p.get('score')}" for p in self.parties if isinstance(p, dict)
        )
        return f"{self.get_kind_display()} on {where}, gap {self.gap:g} ({parties})"
