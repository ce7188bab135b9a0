"""A proof with a verifier's analysis and its claims, for the tests of model suggestions
while grading (annotate/suggestions.py)."""

from __future__ import annotations

from annotate.models import Proof
from verification.claims import ClaimDraft, anchor_claims
from verification.models import Analysis, Claim

# In the analysis's words only: their absence from a page, a body or a frame means the
# analysis did not leak.
CLAIM_ONE = "ZEBRA the step multiplying both sides is not justified"
CLAIM_TWO = "QUAGGA the conclusion is asserted <script>alert('x')</script> without proof"
ANALYSIS_TEXT = f"1. {CLAIM_ONE}\n2. {CLAIM_TWO}\n\nOverall: \\boxed{{0}}"
SECRETS = ("ZEBRA", "QUAGGA", "verifier-under-test", "suggestion-anchors")


def add_analysis(proof: Proof, passage: str) -> tuple[Analysis, list[Claim]]:
    """An analysis scoring 0 with two claims: the first anchored exactly on `passage` of
    the proof, the second about a passage the proof does not contain (unanchored)."""
    analysis = Analysis.objects.create(
        proof=proof,
        text=ANALYSIS_TEXT,
        text_hash="a" * 64,
        model="verifier-under-test",
        **Analysis.parsed_fields(ANALYSIS_TEXT),
    )
    drafts = [
        ClaimDraft(text=CLAIM_ONE, quote=passage),
        ClaimDraft(text=CLAIM_TWO, quote="words that are nowhere in the proof at all"),
    ]
    claims = Claim.objects.bulk_create(anchor_claims(analysis, drafts, proof.text))
    return analysis, claims
