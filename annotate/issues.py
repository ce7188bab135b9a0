"""Issues an expert marks in a proof: validated against the proof source and anchored.

An issue is `{"start", "end", "quote", "note", "severity"}`: a W3C text-position selector
(offsets into the proof *source*) and a text-quote selector (the quoted passage, with a
little `prefix`/`suffix` context recomputed here, never taken from the client). The grading
page and the API go through `parse_issues`; it anchors by `annotate.anchoring.anchor_exact`,
as the importers do for the issues of imported grades, so one quote lands on one span
whichever way it arrives.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from annotate.anchoring import anchor_exact
from annotate.inputs import MAX_NOTE_CHARS, InputError, refuse_unstorable
from annotate.models import Grade, GradeIssue

MAX_ISSUES = 200
ISSUE_KEYS = {"start", "end", "quote", "note", "severity", "prefix", "suffix", "claim"}


@dataclass(frozen=True)
class IssueInput:
    """An issue anchored to the proof source (W3C text-position + text-quote selectors).

    `start`/`end` are None for an issue about the proof as a whole. `prefix`/`suffix` are
    computed from the proof text by `parse_issues`; they are never taken from the client.
    `claim_id` is the verifier's claim the issue was accepted from (annotate/suggestions.py
    checks it and fills in `analysis_id`).
    """

    start: int | None
    end: int | None
    quote: str
    note: str
    severity: str
    prefix: str = ""
    suffix: str = ""
    claim_id: int | None = None
    analysis_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _offset(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(field, "Offsets must be whole numbers.")
    return value


def parse_issues(raw: Any, proof_text: str) -> list[IssueInput]:
    """Validate issues against the proof source and anchor them.

    Each issue is `{"start", "end", "quote", "note", "severity"}`. Anchoring follows the W3C
    Web Annotation selectors: when both offsets and a quote are given and the offsets do not
    select the quote, the quote wins and is re-found at its occurrence nearest to `start`
    (rendering may shift offsets; the quoted words do not move). A quote alone is located
    the same way; offsets alone take their quote from the text. Neither: a general issue.
    `prefix` and `suffix` are recomputed here from the text. (The rules are
    `annotate.anchoring.anchor_exact`'s.)
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError("issues", "Issues must be a list.")
    if len(raw) > MAX_ISSUES:
        raise InputError("issues", f"At most {MAX_ISSUES} issues per grade.")
    parsed: list[IssueInput] = []
    for i, item in enumerate(raw):
        where = f"issues[{i}]"
        if not isinstance(item, dict):
            raise InputError(where, "Each issue must be an object.")
        unknown = set(item) - ISSUE_KEYS
        if unknown:
            raise InputError(where, f"Unknown keys: {', '.join(sorted(map(str, unknown)))}.")
        start = _offset(item.get("start"), f"{where}.start")
        end = _offset(item.get("end"), f"{where}.end")
        quote = item.get("quote") or ""
        note = item.get("note") or ""
        severity = item.get("severity") or GradeIssue.Severity.MINOR
        if not isinstance(quote, str):
            raise InputError(f"{where}.quote", "The quote must be text.")
        if not isinstance(note, str):
            raise InputError(f"{where}.note", "The note must be text.")
        if len(note) > MAX_NOTE_CHARS:
            raise InputError(
                f"{where}.note", f"The note is longer than {MAX_NOTE_CHARS} characters."
            )
        refuse_unstorable(note, f"{where}.note", "The issue's note")
        refuse_unstorable(quote, f"{where}.quote", "The issue's quote")
        if severity not in GradeIssue.Severity.values:
            raise InputError(f"{where}.severity", "Severity must be 'fatal' or 'minor'.")
        if (start is None) != (end is None):
            raise InputError(f"{where}.start", "Give both start and end, or neither.")
        if start is not None and end is not None and not 0 <= start < end <= len(proof_text):
            raise InputError(f"{where}.start", f"The span {start}–{end} is outside the proof text.")
        claim = item.get("claim")
        if claim is not None and (isinstance(claim, bool) or not isinstance(claim, int)):
            raise InputError(f"{where}.claim", "A claim is named by its id.")
        anchor = anchor_exact(proof_text, quote, start=start, end=end)
        if anchor is None:
            raise InputError(f"{where}.quote", "The quoted passage is not in the proof.")
        parsed.append(
            IssueInput(
                anchor.start,
                anchor.end,
                anchor.exact,
                note,
                severity,
                anchor.prefix,
                anchor.suffix,
                claim_id=claim,
            )
        )
    return parsed


def issue_rows(grade: Grade, issues: list[IssueInput]) -> list[GradeIssue]:
    return [GradeIssue(grade=grade, **issue.as_dict()) for issue in issues]


def issue_snapshot(issues: list[IssueInput] | list[GradeIssue]) -> list[dict[str, Any]]:
    """Issues as JSON (drafts, history, the API); an issue accepted from a verifier's
    claim also names the claim."""
    return [
        {
            "start": i.start,
            "end": i.end,
            "quote": i.quote,
            "prefix": i.prefix,
            "suffix": i.suffix,
            "note": i.note,
            "severity": i.severity,
            **({} if i.claim_id is None else {"claim": i.claim_id}),
        }
        for i in issues
    ]
