"""Splitting an analysis into the issues it claims, and anchoring each to the proof.

Where the source gives structure, it is used as it is (the Open Proof Corpus judge's
`issues` list: `split_structured`). Otherwise `split_text` reads the analysis's answer (the
text after any `</think>`): numbered or bulleted items if there are any, else paragraphs,
leaving out the paragraph that only states the score; an item's quote is its blockquote
(`> ...`) or a double-quoted passage. `anchor_claims` then anchors every
claim's quote in the proof with `annotate.anchoring`, guided by the source's indices.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from django.db import transaction
from django.db.models import F, Max

from annotate.anchoring import WINDOW_SLACK, Anchor, AnchorMethod, Document
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


# -- a reviewer's corrections: merging and splitting claims ---------------------------------

log = logging.getLogger(__name__)


class ClaimEditRefused(ValueError):
    """A merge or split the analysis does not allow; nothing was written."""


def merge_claims(analysis: Analysis, claim_ids: Iterable[int], by: Any) -> Claim:
    """Merge two or more claims of `analysis` into one, where the first of them stands.

    The merged claim's text is theirs in order, one paragraph each; its quote is their
    quotes joined with " … ". Its passage (`_merged_anchor`) runs from the first of their
    passages to the last. Refused (`ClaimEditRefused`, nothing written) when a review of
    the analysis is committed (its verdicts name these claims), for fewer than two claims
    or a claim of another analysis.
    """
    ids = list(dict.fromkeys(claim_ids))
    if len(ids) < 2:
        raise ClaimEditRefused("Choose at least two claims to merge.")
    with transaction.atomic():
        analysis = _lock_for_edit(analysis)
        claims = list(analysis.claims.filter(pk__in=ids).order_by("order"))
        if len(claims) != len(ids):
            raise ClaimEditRefused("Every claim to merge must be a claim of this analysis.")
        first, rest = claims[0], claims[1:]
        hints = [
            (c.source_start, c.source_end)
            for c in claims
            if c.source_start is not None and c.source_end is not None
        ]
        draft = ClaimDraft(
            text="\n\n".join(c.text.strip() for c in claims if c.text.strip()),
            quote=" … ".join(c.quote.strip() for c in claims if c.quote.strip()),
            category=", ".join(dict.fromkeys(c.category for c in claims if c.category))[:100],
            location="; ".join(dict.fromkeys(c.location for c in claims if c.location)),
            start_hint=min(s for s, _ in hints) if hints else None,
            end_hint=max(e for _, e in hints) if hints else None,
        )
        merged = anchor_claims(analysis, [draft], analysis.proof.text)[0]
        anchor = _merged_anchor(claims, Document(analysis.proof.text))
        Claim.objects.filter(pk__in=[c.pk for c in rest]).delete()
        _copy_anchored(merged, first)
        if anchor is not None:
            _copy_anchor(anchor, first)
        first.source_start, first.source_end = draft.start_hint, draft.end_hint
        first.save()
        _renumber(analysis, {})
    log.info("claims %s of analysis %s merged into %s by %s", ids, analysis.pk, first.pk, by)
    first.refresh_from_db()
    return first


# How sure an anchor is, least sure last: a merged claim is as sure as its least sure part.
_METHOD_RANK = [AnchorMethod.EXACT, AnchorMethod.FUZZY, AnchorMethod.INDEX_SPAN]


def _merged_anchor(claims: list[Claim], document: Document) -> Anchor | None:
    """The span from the first anchored passage of `claims` to the last, found as surely as
    the least sure of them; approximate (`index_span`) when a claim has no passage or the
    passages lie far apart (the span then holds text none of them is about). None when no
    claim has a passage: the joined quote is anchored as a new one."""
    placed = [c for c in claims if c.start is not None and c.end is not None]
    if not placed:
        return None
    start = min(c.start for c in placed if c.start is not None)
    end = max(c.end for c in placed if c.end is not None)
    method = max((AnchorMethod(c.anchor_method) for c in placed), key=_METHOD_RANK.index)
    quoted = sum((c.end or 0) - (c.start or 0) for c in placed)
    if len(placed) < len(claims) or end - start > quoted + 2 * WINDOW_SLACK:
        method = AnchorMethod.INDEX_SPAN
    scores = [c.anchor_score if c.anchor_method == AnchorMethod.FUZZY else 100.0 for c in placed]
    score = min(s for s in scores if s is not None) if method == AnchorMethod.FUZZY else None
    return document.span(start, end, method, score)


def split_claim(
    claim: Claim,
    *,
    at: int | None = None,
    parts: list[Mapping[str, Any]] | None = None,
    by: Any,
) -> list[Claim]:
    """Split a claim in two or more, in its place; returns the claims it became, in order.

    Either `at`, a character offset into the claim's text: the text before and after it,
    each a claim whose quote is the passage it quotes (a `> ` blockquote or a
    "double-quoted" stretch, as `split_text` reads them) or else the claim's own quote; or
    `parts`, each `{"text": ..., "quote": ...}`. Every part is anchored anew in the proof,
    near the claim's own anchor. Refused (`ClaimEditRefused`, nothing written) when a review
    of the analysis is committed, or for a part with neither text nor quote.
    """
    if (at is None) == (parts is None):
        raise ClaimEditRefused("Say where to split the claim, or give its parts.")
    if at is not None:
        if isinstance(at, bool) or not isinstance(at, int):
            raise ClaimEditRefused("The split point must be a character offset.")
        text = claim.text
        before, after = text[:at].strip(), text[at:].strip()
        if not 0 < at < len(text) or not before or not after:
            raise ClaimEditRefused("Split the claim's text between two non-blank parts.")
        parts = [{"text": before}, {"text": after}]
    drafts = _split_drafts(claim, parts or [])
    with transaction.atomic():
        analysis = _lock_for_edit(claim.analysis)
        try:
            claim = analysis.claims.get(pk=claim.pk)
        except Claim.DoesNotExist:
            raise ClaimEditRefused("This claim is no longer part of the analysis.") from None
        anchored = anchor_claims(analysis, drafts, analysis.proof.text)
        _copy_anchored(anchored[0], claim)
        claim.save()
        # The new parts are stored above every order in use, then placed just after the
        # claim when all are renumbered 1, 2, ...
        top = _max_order(analysis)
        created = []
        for k, part in enumerate(anchored[1:], start=1):
            part.order = top + k
            part.save()
            created.append(part)
        _renumber(analysis, {part.pk: (claim.order, k) for k, part in enumerate(created, 1)})
    log.info("claim %s of analysis %s split in %d by %s", claim.pk, analysis.pk, len(drafts), by)
    return list(Claim.objects.filter(pk__in=[claim.pk, *(c.pk for c in created)]).order_by("order"))


def _split_drafts(claim: Claim, parts: list[Mapping[str, Any]]) -> list[ClaimDraft]:
    if not isinstance(parts, list) or len(parts) < 2:
        raise ClaimEditRefused("A claim splits into at least two parts.")
    # Every part keeps the claim's category and location, and is looked for near its anchor.
    near = (claim.start, claim.end) if claim.start is not None else (None, None)
    if near[0] is None and claim.source_start is not None:
        near = (claim.source_start, claim.source_end)
    like = ClaimDraft("", "", claim.category, claim.location, *near)
    drafts = []
    for n, part in enumerate(parts, start=1):
        if not isinstance(part, Mapping):
            raise ClaimEditRefused(f"Part {n} must be an object with text and quote.")
        text = _text(part.get("text"))
        quote = _text(part.get("quote")) if "quote" in part else _quote_in(text) or claim.quote
        if not text and not quote:
            raise ClaimEditRefused(f"Part {n} has neither text nor quote.")
        drafts.append(replace(like, text=text, quote=quote))
    return drafts


def _quote_in(text: str) -> str:
    block = " ".join(_BLOCKQUOTE.findall(text))
    quoted = _QUOTED.search(" ".join(text.split()))
    return block or (quoted.group(1) if quoted else "")


def _lock_for_edit(analysis: Analysis) -> Analysis:
    """The analysis, locked, after checking that no committed work names its claims: a
    review of it, or a grade that accepted or dismissed one of them as a suggestion."""
    from annotate.models import ClaimDecision, GradeIssue, Review

    locked = Analysis.objects.select_for_update().select_related("proof").get(pk=analysis.pk)
    if Review.objects.filter(analysis=locked).exists():
        raise ClaimEditRefused(
            "A review of this analysis is committed: its claims can no longer be merged or split."
        )
    decided = ClaimDecision.objects.filter(claim__analysis=locked).exists()
    if decided or GradeIssue.objects.filter(claim__analysis=locked).exists():
        raise ClaimEditRefused(
            "A grader accepted or dismissed a claim of this analysis in a committed grade: its "
            "claims can no longer be merged or split."
        )
    return locked


_ANCHOR_FIELDS = (
    "text", "quote", "category", "location", "start", "end", "exact", "prefix", "suffix",
    "anchor_method", "anchor_score",
)  # fmt: skip


def _copy_anchor(anchor: Anchor, target: Claim) -> None:
    target.start, target.end = anchor.start, anchor.end
    target.exact, target.prefix, target.suffix = anchor.exact, anchor.prefix, anchor.suffix
    target.anchor_method, target.anchor_score = anchor.method.value, anchor.score


def _copy_anchored(source: Claim, target: Claim) -> None:
    for name in _ANCHOR_FIELDS:
        setattr(target, name, getattr(source, name))


def _renumber(analysis: Analysis, inserted: dict[int, tuple[int, int]]) -> None:
    """Number the analysis's claims 1, 2, ... in their order; `inserted` places a new claim
    (by id) after the claim of order `anchor`, k-th of those: `{id: (anchor, k)}`."""
    claims = list(analysis.claims.order_by("order"))

    def position(claim: Claim) -> tuple[int, int]:
        return inserted.get(claim.pk, (claim.order, 0))

    claims.sort(key=position)
    # Through orders above every one in use: no intermediate state may break the (analysis,
    # order) unique constraint, which the database checks row by row.
    Claim.objects.filter(analysis=analysis).update(order=F("order") + _max_order(analysis))
    for number, claim in enumerate(claims, start=1):
        Claim.objects.filter(pk=claim.pk).update(order=number)


def _max_order(analysis: Analysis) -> int:
    return analysis.claims.aggregate(top=Max("order"))["top"] or 0
