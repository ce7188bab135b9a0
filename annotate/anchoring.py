"""Anchoring a quoted passage to the proof source it is about.

One engine for every place that turns "this passage" into offsets in a proof: a grader's
issues (`annotate.issues.parse_issues`, for the grading page and the API), the issues of
imported grades (`annotate.importers.records.check_issue_anchor`) and verifiers' claims
(`verification.claims.anchor_claims`, for model runs and imported analyses). The result
follows the W3C Web Annotation selectors: a text-position selector (`start`, `end`) and a
text-quote selector (`exact`, `prefix`, `suffix`), plus how the anchor was found.

Quotes written by people are exact: `anchor_exact` applies step 1 alone to them (a
grader's issue, an imported expert's issue), so one quote lands on one span whichever way
it arrives, and a quote not in the proof verbatim is refused rather than guessed. Quotes
written by verifier models are not exact. The Open Proof Corpus judge (see
`data/open_proof_corpus/NOTICE.md`) rewrites `$x$` as `\\(x\\)`, joins lines, curls quotes,
drops Markdown emphasis and elides with "…", while its indices land near the passage. So
`Document.anchor` tries, in order, and records which one found it:

1. `exact`: the quote occurs verbatim; the occurrence nearest the index hint wins
   (`Document.exact`; `Document.anchor` first strips the quotation marks a verifier wraps
   a quote in, `anchor_exact` takes a person's quote as written).
2. `fuzzy`: the quote is matched on a normalised view of both texts (no whitespace, no math
   delimiters or backslashes, no braces, no Markdown emphasis, straight quotes, one kind of
   dash, lower case), mapped back to the source. A quote elided with "…" is matched piece
   by piece, in order, and the anchor runs from the first piece to the last. A piece not
   found verbatim in the normalised view is aligned with rapidfuzz's
   `partial_ratio_alignment` (a maintained C++ matcher), first in a window around the hint
   (where a similarity of 60 suffices: the judge paraphrases the passage its indices point
   at), then in the whole text (where 80 is needed); `score` is the (length-weighted)
   similarity in 0..100, 100 for a normalised verbatim match.
3. `index_span`: no matcher found the quote (a paraphrase) but the source gave a usable
   index span: that span, marked approximate.
4. `unanchored`: nothing to go on; the claim is about the proof as a whole or its passage
   is unknown.

`Document` prepares a text once for many quotes (an importer anchors every claim of a proof
against one `Document`); `anchor_quote` is the one-shot form.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from enum import StrEnum

from rapidfuzz import fuzz

CONTEXT_CHARS = 32  # prefix / suffix kept around an anchor, as for grade issues
MIN_FUZZY_SCORE = 80.0  # below this a fuzzy alignment is taken as "not found"...
MIN_SCORE_NEAR_HINT = 60.0  # ...unless it lies where the source's indices point
MIN_PIECE_CHARS = 6  # normalised characters a piece needs to be matched on its own
WINDOW_SLACK = 400  # normalised characters searched either side of the hinted span

# LaTeX commands and their Unicode rendering: the judge writes `Γ` for `\\Gamma`, `≤` for `\\le`.
_GREEK = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma "
    "tau upsilon phi chi psi omega"
).split()
_SYMBOLS: dict[str, str] = {
    **dict(zip(_GREEK, "αβγδεζηθικλμνξπρστυφχψω", strict=True)),
    **dict(zip((name.capitalize() for name in _GREEK), "ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΠΡΣΤΥΦΧΨΩ", strict=True)),
    "varepsilon": "ε", "varphi": "φ", "vartheta": "θ", "varrho": "ρ",
    "le": "≤", "leq": "≤", "leqslant": "≤", "ge": "≥", "geq": "≥", "geqslant": "≥",
    "ne": "≠", "neq": "≠", "cdot": "·", "times": "×", "in": "∈", "notin": "∉",
    "subset": "⊂", "subseteq": "⊆", "cup": "∪", "cap": "∩", "infty": "∞", "to": "→",
    "rightarrow": "→", "Rightarrow": "⇒", "implies": "⇒", "iff": "⇔", "Leftrightarrow": "⇔",
    "equiv": "≡", "approx": "≈", "sum": "∑", "prod": "∏", "sqrt": "√", "angle": "∠",
    "circ": "∘", "pm": "±", "mid": "|", "ldots": "...", "cdots": "...", "dots": "...",
    "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈", "rceil": "⌉", "perp": "⊥", "parallel": "∥",
    "dfrac": "frac", "tfrac": "frac", "emptyset": "∅", "varnothing": "∅",
}
# Commands whose name carries no content (their argument, if any, is kept) or that only
# size or space a formula; `\\( \\) \\[ \\]` and spacing like `\\,` go too, with any
# number of backslashes, as JSON-escaped quotes carry two.
_SILENT = frozenset(
    "left right big bigl bigr Big Bigl Bigr bigg biggl biggr Bigg displaystyle textstyle "
    "text textrm textbf textit mathrm mathbf mathit mathcal operatorname quad qquad".split()
)
_BLACKBOARD = {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "Q": "ℚ", "C": "ℂ"}
_COMMAND = re.compile(r"\\+(?:mathbb\s*\{?\s*([A-Z])\s*\}?|([A-Za-z]+)|[^A-Za-z])")
_DROPPED_CHARS = frozenset(" \t\n\r\f\v\u00a0\u2003\u2009\u202f$\\{}*`#\"'“”„‘’«»")
_CHAR_MAP = {
    "–": "-", "—": "-", "−": "-", "‐": "-", "‑": "-", "…": "...",
    "≦": "≤", "≧": "≥", "⋅": "·", "∙": "·",
}
_ELLIPSIS = re.compile(r"…|\.{3,}|\[\s*(?:…|\.{3})\s*\]")
_WRAPPING_QUOTES = "\"'“”‘’«» \n\t"


class AnchorMethod(StrEnum):
    EXACT = "exact"
    FUZZY = "fuzzy"
    INDEX_SPAN = "index_span"
    UNANCHORED = "unanchored"


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where a quote sits in a text. `start`/`end` are None only when unanchored."""

    method: AnchorMethod
    start: int | None = None
    end: int | None = None
    exact: str = ""
    prefix: str = ""
    suffix: str = ""
    score: float | None = None  # similarity 0..100, for fuzzy anchors only

    @property
    def found(self) -> bool:
        """Found by a matcher (exact or fuzzy), not guessed from indices."""
        return self.method in (AnchorMethod.EXACT, AnchorMethod.FUZZY)

    def overlaps(self, start: int, end: int) -> bool:
        if self.start is None or self.end is None:
            return False
        return self.start < end and start < self.end


@dataclass(frozen=True, slots=True)
class _Normalised:
    text: str
    starts: list[int]  # starts[i]: where normalised character i comes from in the source
    ends: list[int]  # ends[i]: where the source of normalised character i ends


def normalise(text: str) -> _Normalised:
    """The matching view of `text`, with where each of its characters comes from."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []

    def emit(value: str, start: int, end: int) -> None:
        for char in value:
            chars.append(char)
            starts.append(start)
            ends.append(end)

    def plain(lo: int, hi: int) -> None:
        for index in range(lo, hi):
            char = text[index]
            if char not in _DROPPED_CHARS:
                emit(_CHAR_MAP.get(char, char).lower(), index, index + 1)

    done = 0
    for match in _COMMAND.finditer(text):
        plain(done, match.start())
        done = match.end()
        letter, name = match.group(1), match.group(2)
        if letter:
            emit(_BLACKBOARD.get(letter, letter.lower()), match.start(), match.end())
        elif name and name not in _SILENT:
            emit(_SYMBOLS.get(name, name).lower(), match.start(), match.end())
    plain(done, len(text))
    return _Normalised("".join(chars), starts, ends)


def _nearest(haystack: str, needle: str, near: int, start: int = 0) -> int | None:
    """Start of the occurrence of `needle` at or after `start` closest to `near`, or None."""
    best: int | None = None
    at = haystack.find(needle, start)
    while at != -1:
        if best is not None and at - near > abs(best - near):
            break  # occurrences only get further away
        if best is None or abs(at - near) < abs(best - near):
            best = at
        at = haystack.find(needle, at + 1)
    return best


def clean_quote(quote: str) -> str:
    """The quote without the quotation marks and blank space a verifier wraps it in."""
    return quote.strip(_WRAPPING_QUOTES)


class Document:
    """A source text prepared for anchoring many quotes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._normalised: _Normalised | None = None

    @property
    def normalised(self) -> _Normalised:
        if self._normalised is None:
            self._normalised = normalise(self.text)
        return self._normalised

    def anchor(
        self, quote: str, *, start_hint: int | None = None, end_hint: int | None = None
    ) -> Anchor:
        """Anchor `quote`, guided by an approximate span [`start_hint`, `end_hint`)."""
        hint = self._valid_span(start_hint, end_hint)
        quote = clean_quote(quote)
        if quote:
            exact = self.exact(quote, near=hint[0] if hint else 0)
            if exact is not None:
                return exact
            found = self._fuzzy(quote, hint)
            if found is not None:
                return self._anchor(AnchorMethod.FUZZY, *found)
        if hint is not None:
            return self._anchor(AnchorMethod.INDEX_SPAN, hint[0], hint[1], None)
        return Anchor(AnchorMethod.UNANCHORED)

    def exact(self, quote: str, *, near: int = 0) -> Anchor | None:
        """Step 1: the verbatim occurrence of `quote` nearest `near`, or None."""
        at = _nearest(self.text, quote, near)
        return None if at is None else self._anchor(AnchorMethod.EXACT, at, at + len(quote), None)

    def span(self, start: int, end: int, method: AnchorMethod, score: float | None) -> Anchor:
        """An anchor for a span already known (e.g. a grader's selection)."""
        return self._anchor(method, start, end, score)

    # -- internals -------------------------------------------------------------------------
    def _valid_span(self, start: int | None, end: int | None) -> tuple[int, int] | None:
        if start is None or end is None:
            return None
        start, end = max(0, start), min(end, len(self.text))
        return (start, end) if start < end else None

    def _anchor(self, method: AnchorMethod, start: int, end: int, score: float | None) -> Anchor:
        return Anchor(
            method=method,
            start=start,
            end=end,
            exact=self.text[start:end],
            prefix=self.text[max(0, start - CONTEXT_CHARS) : start],
            suffix=self.text[end : end + CONTEXT_CHARS],
            score=None if score is None else round(score, 1),
        )

    def _to_normalised(self, index: int) -> int:
        return bisect.bisect_left(self.normalised.starts, index)

    def _fuzzy(self, quote: str, hint: tuple[int, int] | None) -> tuple[int, int, float] | None:
        """(start, end, score) in the source of the normalised / fuzzy match, or None."""
        norm = self.normalised
        if not norm.text:
            return None
        if hint is not None:
            near: tuple[int, int] | None = (
                self._to_normalised(hint[0]),
                self._to_normalised(hint[1]),
            )
        else:
            near = None
        whole = normalise(quote).text
        found = self._piece(whole, near, 0) if len(whole) >= MIN_PIECE_CHARS else None
        if found is None or found[2] < 100.0:
            pieces = [p for p in (normalise(s).text for s in _ELLIPSIS.split(quote)) if p]
            if len(pieces) > 1:
                by_pieces = self._pieces(pieces, near)
                if by_pieces is not None and (found is None or by_pieces[2] > found[2]):
                    found = by_pieces
        if found is None:
            return None
        start, end, score = found
        return norm.starts[start], norm.ends[end - 1], score

    def _pieces(
        self, pieces: list[str], near: tuple[int, int] | None
    ) -> tuple[int, int, float] | None:
        """Match the pieces of an elided quote in order; the span runs first to last."""
        usable = [p for p in pieces if len(p) >= MIN_PIECE_CHARS]
        if not usable:
            return None
        hinted = near is not None
        spans: list[tuple[int, int, float]] = []
        weighted = 0.0
        after = 0
        for piece in usable:
            found = self._piece(piece, near, after)
            if found is None:
                continue  # a piece the verifier rewrote beyond recognition; keep the others
            spans.append(found)
            weighted += len(piece) * found[2]
            after = found[1]
            near = (found[1], found[1] + len(piece))  # the next piece follows this one
        if not spans:
            return None
        length = sum(len(p) for p in usable)
        if spans[-1][1] - spans[0][0] > 4 * length + 2 * WINDOW_SLACK:
            return None  # pieces scattered over the proof: not one passage
        # Pieces not found count as zero similarity, so a quote matched by one fragment of
        # many scores low and is rejected.
        score = weighted / length
        if score < (MIN_SCORE_NEAR_HINT if hinted else MIN_FUZZY_SCORE):
            return None
        return spans[0][0], spans[-1][1], score

    def _piece(
        self, piece: str, near: tuple[int, int] | None, after: int
    ) -> tuple[int, int, float] | None:
        """(start, end, score) of `piece` in the normalised text at or after `after`.

        Near the hinted span [`near`] a weaker alignment is accepted than elsewhere: a
        verifier's paraphrase of the passage its indices point at is still that passage.
        """
        text = self.normalised.text
        at = _nearest(text, piece, near[0] if near else 0, after)
        if at is not None:
            return at, at + len(piece), 100.0
        windows: list[tuple[int, int, float]] = []
        if near is not None:
            lo = max(after, near[0] - len(piece) - WINDOW_SLACK)
            hi = min(len(text), near[1] + len(piece) + WINDOW_SLACK)
            if lo < hi:
                windows.append((lo, hi, MIN_SCORE_NEAR_HINT))
        windows.append((after, len(text), MIN_FUZZY_SCORE))
        for lo, hi, cutoff in windows:
            found = fuzz.partial_ratio_alignment(piece, text[lo:hi], score_cutoff=cutoff)
            if found is not None:
                return lo + found.dest_start, lo + found.dest_end, found.score
        return None


def anchor_quote(
    text: str, quote: str, *, start_hint: int | None = None, end_hint: int | None = None
) -> Anchor:
    """Anchor one quote in `text` (see the module docstring for the order of attempts)."""
    return Document(text).anchor(quote, start_hint=start_hint, end_hint=end_hint)


def anchor_exact(
    text: str, quote: str, *, start: int | None = None, end: int | None = None
) -> Anchor | None:
    """Anchor a quote written by a person, which must occur in `text` verbatim (step 1 only).

    - Offsets that select `quote`, or offsets without a quote: that span.
    - Otherwise the occurrence of `quote` nearest `start` (nearest the beginning without
      offsets): offsets drift when a proof is re-rendered, the quoted words do not.
    - Neither offsets nor a quote: unanchored (an issue about the proof as a whole).
    - None: the quote is not in the text.

    The quote is taken as written (no `clean_quote`: a person's selection may well begin
    with a quotation mark). Callers check that the offsets lie inside the text, each with
    its own message.
    """
    document = Document(text)
    if start is not None and end is not None and (not quote or text[start:end] == quote):
        return document.span(start, end, AnchorMethod.EXACT, None)
    if quote:
        return document.exact(quote, near=start or 0)
    return Anchor(AnchorMethod.UNANCHORED)
