"""Splitting an analysis into the issues it claims, and anchoring each to the proof.

Where the source gives structure, it is used as it is (the Open Proof Corpus judge's
`issues` list: `split_structured`). Otherwise `split_text` reads the analysis's answer (the
text after any `</think>`): numbered or bulleted items if there are any, else paragraphs,
leaving out the paragraph that only states the score; an item's quote is its blockquote
(`> ...`) or a double-quoted passage. `anchor_claims` then anchors every
claim's quote in the proof with `annotate.anchoring`, guided by the source's indices.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from annotate.anchoring import Document
from verification.models import Analysis, Claim

# "1." "2)" "(3)" "Issue 4:" or a bullet, at the start of a line.
_ITEM = re.compile(
    r"^[ \t]*(?:\d{1,3}[.)]|\(\d{1,3}\)|(?:issue|claim|error|problem)\s+\d{1,3}\s*[:.]|[-*•])"
    r"[ \t]+",
    re.IGNORECASE | re.MULTILINE,
)
_ITEM_END = re.compile(r"\n[ \t]*\n(?=\S)")
_QUOTED = re.compile(r"[“\"]([^“”\"]{12,}?)[”\"]")
_BLOCKQUOTE = re.compile(r"^[ \t]*>[ \t]?(.*\S)[ \t]*$", re.MULTILINE)
_SCORE_ONLY = re.compile(r"\\boxed\s*\{")
MAX_SCORE_LINE = 200  # a paragraph with a box and no more than this is the score statement


@dataclass(frozen=True, slots=True)
class ClaimDraft:
    """A claim before it is anchored and stored."""

    text: str
    quote: str = ""
    category: str = ""
    location: str = ""
    start_hint: int | None = None
    end_hint: int | None = None


def split_structured(issues: Iterable[Mapping[str, Any]]) -> list[ClaimDraft]:
    """Claims from a list of issues (`description`, `text`, `category`, `location`,
    `start_index`, `end_index`), in their order; issues with neither words nor quote go."""
    drafts = []
    for issue in issues:
        hints = [issue.get("start_index"), issue.get("end_index")]
        if not all(isinstance(h, int) and not isinstance(h, bool) and h >= 0 for h in hints):
            hints = [None, None]
        draft = ClaimDraft(
            text=_text(issue.get("description")),
            quote=_text(issue.get("text")),
            category=_text(issue.get("category"))[:100],
            location=_text(issue.get("location")),
            start_hint=hints[0],
            end_hint=hints[1],
        )
        if draft.text or draft.quote:
            drafts.append(draft)
    return drafts


def split_text(answer: str) -> list[ClaimDraft]:
    """Claims from free text: its numbered or bulleted items, else its paragraphs."""
    starts = [match.start() for match in _ITEM.finditer(answer)]
    if starts:
        pieces = [answer[a:b] for a, b in zip(starts, [*starts[1:], len(answer)], strict=True)]
        # An item ends at a blank line followed by unindented text (the score line, say).
        pieces = [_ITEM_END.split(_ITEM.sub("", piece, count=1), maxsplit=1)[0] for piece in pieces]
    else:
        pieces = re.split(r"\n[ \t]*\n", answer)
    drafts = []
    for piece in pieces:
        text = " ".join(piece.split())
        if not text or (_SCORE_ONLY.search(text) and len(text) <= MAX_SCORE_LINE):
            continue
        # A Markdown blockquote is the passage quoted (the OPC rendering writes them so),
        # else the first long enough "double-quoted" stretch.
        block = " ".join(_BLOCKQUOTE.findall(piece))
        quoted = _QUOTED.search(text)
        drafts.append(ClaimDraft(text=text, quote=block or (quoted.group(1) if quoted else "")))
    return drafts


def anchor_claims(analysis: Analysis, drafts: list[ClaimDraft], proof_text: str) -> list[Claim]:
    """Unsaved `Claim`s of `analysis`, numbered from 1, each anchored in `proof_text`."""
    document = Document(proof_text)
    claims = []
    for order, draft in enumerate(drafts, start=1):
        anchor = document.anchor(draft.quote, start_hint=draft.start_hint, end_hint=draft.end_hint)
        claims.append(
            Claim(
                analysis=analysis,
                order=order,
                text=draft.text,
                quote=draft.quote,
                category=draft.category,
                location=draft.location,
                source_start=draft.start_hint,
                source_end=draft.end_hint,
                start=anchor.start,
                end=anchor.end,
                exact=anchor.exact,
                prefix=anchor.prefix,
                suffix=anchor.suffix,
                anchor_method=anchor.method.value,
                anchor_score=anchor.score,
            )
        )
    return claims


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
