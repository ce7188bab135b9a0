"""Prompt templates of the three model-run kinds, versioned by content hash.

The shipped templates are `workers/prompt_templates/<kind>.txt` (written for this
project); a run may carry an edited copy, stored with the run and named by its hash in
every output. Templates use `$name` placeholders (`string.Template`; `$$` is a dollar
sign): `$problem` for generate, `$problem` and `$proof` for verify, and those and
`$analysis` for meta-verify. The problem and the proof come first in every template, so
the engine's prefix cache is shared by the n samples of one prompt and by the
meta-verification of one proof's analyses.

A template that leaves out a variable its kind needs, or uses one its kind does not
provide, is refused (`PromptError`) before a run is created.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from pathlib import Path

from django.db import models

TEMPLATE_DIR = Path(__file__).resolve().parent / "prompt_templates"


class Kind(models.TextChoices):
    GENERATE = "generate", "Generate proofs"
    VERIFY = "verify", "Verify proofs"
    META_VERIFY = "meta_verify", "Meta-verify analyses"


VARIABLES: dict[str, tuple[str, ...]] = {
    Kind.GENERATE: ("problem",),
    Kind.VERIFY: ("problem", "proof"),
    Kind.META_VERIFY: ("problem", "proof", "analysis"),
}


class PromptError(ValueError):
    """A template that cannot be used for its kind, or values missing when rendering."""


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    kind: str
    text: str

    def __post_init__(self) -> None:
        if self.kind not in VARIABLES:
            raise PromptError(f"unknown template kind {self.kind!r}")
        template = string.Template(self.text)
        if not template.is_valid():
            raise PromptError(f"the {self.kind} template has a stray $ (write $$ for a dollar)")
        used = set(template.get_identifiers())
        needed = set(VARIABLES[self.kind])
        if unknown := used - needed:
            raise PromptError(
                f"the {self.kind} template uses ${', $'.join(sorted(unknown))}, which a "
                f"{self.kind} run does not provide (it provides ${', $'.join(sorted(needed))})"
            )
        if missing := needed - used:
            raise PromptError(f"the {self.kind} template is missing ${', $'.join(sorted(missing))}")

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def version(self) -> str:
        """What every output names its prompt by: kind and the first 12 hex of the hash."""
        return f"{self.kind}-{self.content_hash[:12]}"

    def render(self, **values: str) -> str:
        missing = [name for name in VARIABLES[self.kind] if name not in values]
        if missing:
            raise PromptError(f"no value for ${', $'.join(missing)} in the {self.kind} prompt")
        return string.Template(self.text).substitute(values)

    def messages(self, **values: str) -> list[dict[str, str]]:
        """The rendered prompt as one user message (the chat form every backend takes)."""
        return [{"role": "user", "content": self.render(**values)}]


def default_template(kind: str) -> PromptTemplate:
    if kind not in VARIABLES:
        raise PromptError(f"unknown template kind {kind!r}")
    return PromptTemplate(kind, (TEMPLATE_DIR / f"{kind}.txt").read_text(encoding="utf-8"))


@dataclass(frozen=True, slots=True)
class ParsedGeneration:
    proof: str
    self_evaluation: str


def split_generation(text: str) -> ParsedGeneration:
    """The generator's proof and its self-evaluation (the part from the last
    "## Self-evaluation" heading on; none if the heading is missing), leaving out any
    reasoning before `</think>`. The self-score is
    read from the self-evaluation with `verification.parsing.parse_analysis`."""
    heading = "## Self-evaluation"
    text = text[text.rfind("</think>") + len("</think>") :] if "</think>" in text else text
    at = text.rfind(heading)
    if at == -1:
        return ParsedGeneration(proof=_strip_proof_heading(text), self_evaluation="")
    return ParsedGeneration(
        proof=_strip_proof_heading(text[:at]), self_evaluation=text[at + len(heading) :].strip()
    )


def _strip_proof_heading(text: str) -> str:
    text = text.strip()
    return text.removeprefix("## Proof").strip()
