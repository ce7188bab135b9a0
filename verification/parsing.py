"""Reading a verifier's score out of its raw output.

A verifier (DeepSeekMath-V2 recipe) writes its reasoning, optionally inside
`<think>...</think>`, then its evaluation, ending with the score in `\\boxed{...}` on the
scale 0 / 0.5 / 1. `parse_analysis` is the one place that reads it; it never raises, so an
analysis that cannot be read is still stored and shown with the reason.

The rules, in order:

1. Reasoning: everything before the LAST `</think>` (a leading `<think>` dropped). Only the
   text after it, the answer, is searched for the score; a box inside the reasoning only
   is a draft, not a verdict (status `no_score`). An opening `<think>` never closed means
   the output stopped while reasoning (`truncated`).
2. `finish_reason == "length"` (the sampler hit its token limit) or a `\\boxed{` whose
   braces never close: `truncated`, whatever boxes came before.
3. Boxes are read with nested braces (`\\boxed{\\frac{1}{2}}`), with or without a space
   after `\\boxed`; their content is read as a score when it is one of 0, 0.5, 1 written as
   a decimal (`1.0`, `.5`), a fraction (`1/2`), or `\\frac`/`\\tfrac`/`\\dfrac` with or
   without braces (`\\frac12`), possibly wrapped in `$`, `\\text{}` or `\\mathbf{}`.
4. The LAST box decides. If it is not a score on the scale (`\\boxed{0.7}`, or a quoted
   final answer `\\boxed{2024}` after which the verifier never scored), `no_score`.
5. "Several conflicting": another box in the answer also holds a score on the scale but a
   DIFFERENT one (the verifier changed its mind, or boxed a score twice): `conflicting`,
   no score is taken. Boxes that hold no score value (math quoted from the proof) never
   conflict, and repeating the same score is fine.
6. Otherwise `ok` with that score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from django.db import models

SCORES = {Fraction(0): Decimal("0"), Fraction(1, 2): Decimal("0.5"), Fraction(1): Decimal("1")}
THINK_END = "</think>"
THINK_START = "<think>"

_BOX = re.compile(r"\\boxed\s*\{")
_WRAPPER = re.compile(r"^\\(?:text|textbf|mathrm|mathbf|mbox|displaystyle)\s*\{(.*)\}$", re.S)
_FRAC = re.compile(r"^\\[dt]?frac\s*(?:\{\s*(\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))$")
_SLASH = re.compile(r"^(\d+)\s*/\s*(\d+)$")
_DECIMAL = re.compile(r"^(?:\d+(?:\.\d*)?|\.\d+)$")


class ParseStatus(models.TextChoices):
    OK = "ok", "Score read"
    NO_SCORE = "no_score", "No score"
    CONFLICTING = "conflicting", "Several conflicting scores"
    TRUNCATED = "truncated", "Truncated output"


@dataclass(frozen=True, slots=True)
class ParsedAnalysis:
    status: ParseStatus
    score: Decimal | None = None
    reasoning: str = ""  # text before the last </think>, without the tags
    answer: str = ""  # what the score is read from
    boxes: tuple[str, ...] = field(default_factory=tuple)  # contents of the answer's boxes
    detail: str = ""  # why, in words, when the status is not ok


def parse_analysis(text: str, finish_reason: str | None = None) -> ParsedAnalysis:
    """Read reasoning, score and parse status from a verifier's raw output (never raises)."""
    reasoning, answer, closed = _split_reasoning(text)
    boxes, unclosed = _boxes(answer)

    def result(
        status: ParseStatus, detail: str = "", score: Decimal | None = None
    ) -> ParsedAnalysis:
        return ParsedAnalysis(status, score, reasoning, answer, tuple(boxes), detail)

    if finish_reason == "length":
        return result(ParseStatus.TRUNCATED, detail="stopped at the token limit")
    if not closed:
        return result(ParseStatus.TRUNCATED, detail="<think> never closed")
    if unclosed:
        return result(ParseStatus.TRUNCATED, detail="a \\boxed{ never closed")
    if not boxes:
        detail = "a box in the reasoning only" if _BOX.search(reasoning) else "no \\boxed{}"
        return result(ParseStatus.NO_SCORE, detail=detail)
    score = score_value(boxes[-1])
    if score is None:
        return result(ParseStatus.NO_SCORE, f"the last box is not 0, 0.5 or 1: {boxes[-1]!r}")
    others = {value for value in map(score_value, boxes[:-1]) if value is not None}
    if others - {score}:
        values = ", ".join(str(v) for v in sorted(others | {score}))
        return result(ParseStatus.CONFLICTING, f"boxes give different scores: {values}")
    return result(ParseStatus.OK, score=score)


def _split_reasoning(text: str) -> tuple[str, str, bool]:
    """(reasoning, answer, closed): `closed` is False for a <think> never closed."""
    at = text.rfind(THINK_END)
    if at == -1:
        opened = text.find(THINK_START)
        if opened != -1:
            return text[opened + len(THINK_START) :].strip(), "", False
        return "", text, True
    reasoning = text[:at]
    opened = reasoning.find(THINK_START)
    if opened != -1:
        reasoning = reasoning[opened + len(THINK_START) :]
    return reasoning.strip(), text[at + len(THINK_END) :], True


def _boxes(text: str) -> tuple[list[str], bool]:
    """Contents of every `\\boxed{...}` in `text` (nested braces kept); True if one is unclosed."""
    contents: list[str] = []
    for match in _BOX.finditer(text):
        depth, at = 1, match.end()
        while at < len(text) and depth:
            if text[at] == "\\" and at + 1 < len(text) and text[at + 1] in "{}":
                at += 2  # an escaped brace \{ \} is content, not structure
                continue
            depth += {"{": 1, "}": -1}.get(text[at], 0)
            at += 1
        if depth:
            return contents, True
        contents.append(text[match.end() : at - 1])
    return contents, False


def score_value(content: str) -> Decimal | None:
    """The score a box holds (0, 0.5 or 1), or None if it holds anything else."""
    value = content.strip().strip("$").strip()
    while (wrapped := _WRAPPER.match(value)) is not None:
        value = wrapped.group(1).strip()
    value = value.replace(" ", "").replace("{,}", ".")
    number: Fraction | None = None
    if (frac := _FRAC.match(value)) is not None:
        numerator, denominator = frac.group(1) or frac.group(2), frac.group(3) or frac.group(4)
        number = Fraction(int(numerator), int(denominator)) if int(denominator) else None
    elif (slash := _SLASH.match(value)) is not None:
        denominator = int(slash.group(2))
        number = Fraction(int(slash.group(1)), denominator) if denominator else None
    elif _DECIMAL.match(value):
        number = Fraction(value)
    return SCORES.get(number) if number is not None else None
