"""Verifier analyses (model-written evaluations of proofs).

For now analyses arrive only through the importer and are stored raw: the text exactly as
the model wrote it, with the model and prompt that produced it. Parsing the score and
running models belong to the model-runs work.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from annotate.models import Proof


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
    import_source = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["proof_id", "id"]
        verbose_name_plural = "analyses"
        constraints = [
            models.UniqueConstraint(
                fields=["proof", "model", "prompt_version", "text_hash"],
                condition=Q(origin="imported"),
                name="imported_analysis_unique",
            ),
            models.CheckConstraint(condition=~Q(text=""), name="analysis_text_set"),
        ]

    def __str__(self) -> str:
        return f"analysis {self.pk} of proof {self.proof_id} by {self.model or 'unknown model'}"
