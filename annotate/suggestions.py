"""Model pre-annotations while grading: a verifier's claims shown as suggestions.

On the grading page of a campaign that is not blind (in a blind one, once the grader's
grade is committed: `annotate.work.visibility.can_see_others`), the proof's verifier
analyses appear beside it with their anchored claims (`verification.models.Claim`). The
grader accepts a claim into the grade (it becomes one of its issues, anchored where the
claim is, with the claim and its analysis as its origin: `GradeIssue.claim`/`analysis`)
or dismisses it. Each decision is a human verdict on the claim (`ClaimDecision`), so a
grading pass also yields meta-verification data.

The decisions travel with the grade's form as `suggestions`, a list of
`{"claim": id, "decision": "accepted" | "dismissed"}`, and an accepted claim's issue
carries `"claim": id`. A draft keeps both in its JSON; commit and edit write the rows.

Blind rules: in a blind campaign a draft or a first submission may carry no decision and
no issue from a claim at all, whatever the claim ids: the answer is the same refusal for
any of them, so that posting ids cannot tell whether the proof has analyses. An edit of a
committed grade (the grader may see the analyses by then) is checked against the proof's
claims as usual.

Cost: nothing is read when the form carries no decision (autosave of a grade without
suggestions makes no query here); the page reads the analyses only when the proof has some
(`others_for` counts them already).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from annotate.inputs import InputError
from annotate.issues import IssueInput
from annotate.models import CampaignItem, ClaimDecision, Draft, Grade

MAX_DECISIONS = 500
BLIND_REFUSAL = (
    "This campaign is blind: model suggestions are shown only once your grade is committed."
)
# How the page names the way a claim's passage was found (the review page's words).
ANCHOR_WORDS = {
    "exact": ("exact", "quoted exactly"),
    "index_span": ("approximate", "approximate: the verifier's own position"),
    "unanchored": ("unanchored", "not located in the proof"),
}


@dataclass(frozen=True)
class DecisionInput:
    claim_id: int
    decision: str


def parse_decisions(raw: Any) -> list[DecisionInput]:
    """The form's `suggestions` (a list, or its JSON text), checked for shape only."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise InputError("suggestions", "The suggestions field is not valid JSON.") from None
    if not isinstance(raw, list):
        raise InputError("suggestions", "Suggestions must be a list.")
    if len(raw) > MAX_DECISIONS:
        raise InputError("suggestions", f"At most {MAX_DECISIONS} decisions per grade.")
    seen: dict[int, DecisionInput] = {}
    for i, entry in enumerate(raw):
        where = f"suggestions[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"claim", "decision"}:
            raise InputError(where, "Each decision is an object with claim and decision.")
        claim = entry["claim"]
        if isinstance(claim, bool) or not isinstance(claim, int):
            raise InputError(f"{where}.claim", "A claim is named by its id.")
        if entry["decision"] not in ClaimDecision.Decision.values:
            raise InputError(f"{where}.decision", "A decision is accepted or dismissed.")
        if claim in seen:
            raise InputError(f"{where}.claim", "This claim has two decisions.")
        seen[claim] = DecisionInput(claim, entry["decision"])
    return sorted(seen.values(), key=lambda d: d.claim_id)


def decisions_json(decisions: list[DecisionInput]) -> list[dict[str, Any]]:
    return [{"claim": d.claim_id, "decision": d.decision} for d in decisions]


def involved(decisions: list[DecisionInput], issues: list[IssueInput]) -> bool:
    return bool(decisions) or any(i.claim_id is not None for i in issues)


def check(
    item: CampaignItem, decisions: list[DecisionInput], issues: list[IssueInput]
) -> list[IssueInput]:
    """Check the decisions and the issues from claims against the proof's claims; the
    issues with each one's analysis filled in. One query, none without decisions.

    Every claim named must be a claim of an analysis of this proof; an issue from a claim
    needs that claim accepted, and an accepted claim its issue (at most one)."""
    if not involved(decisions, issues):
        return issues
    from verification.models import Claim

    named = {d.claim_id for d in decisions} | {i.claim_id for i in issues if i.claim_id}
    analysis_of = dict(
        Claim.objects.filter(pk__in=named, analysis__proof_id=item.proof_id).values_list(
            "pk", "analysis_id"
        )
    )
    unknown = sorted(named - set(analysis_of))
    if unknown:
        raise InputError(
            "suggestions", f"Claim {unknown[0]} is not a claim of this proof's analyses."
        )
    accepted = {d.claim_id for d in decisions if d.decision == ClaimDecision.Decision.ACCEPTED}
    from_claims = [i.claim_id for i in issues if i.claim_id is not None]
    if len(from_claims) != len(set(from_claims)):
        raise InputError("issues", "A suggestion is accepted as one issue, not several.")
    if set(from_claims) != accepted:
        raise InputError(
            "suggestions",
            "An accepted suggestion is one of the grade's issues, and an issue from a "
            "suggestion needs it accepted.",
        )
    return [
        i if i.claim_id is None else replace(i, analysis_id=analysis_of[i.claim_id]) for i in issues
    ]


def refuse_if_blind(
    item: CampaignItem, decisions: list[DecisionInput], issues: list[IssueInput]
) -> None:
    """Before commit in a blind campaign, any suggestion at all is refused alike."""
    if item.campaign.blind and involved(decisions, issues):
        raise InputError("suggestions", BLIND_REFUSAL)


def write_decisions(grade: Grade, decisions: list[DecisionInput]) -> None:
    """Make the grade's decision rows these; a decision that stays keeps its time."""
    stored = {d.claim_id: d for d in grade.claim_decisions.all()} if grade.pk else {}
    wanted = {d.claim_id: d.decision for d in decisions}
    gone = [d.pk for cid, d in stored.items() if wanted.get(cid) != d.decision]
    if gone:
        ClaimDecision.objects.filter(pk__in=gone).delete()
    now = timezone.now()
    new = [
        ClaimDecision(grade=grade, claim_id=cid, decision=decision, decided_at=now)
        for cid, decision in wanted.items()
        if cid not in stored or stored[cid].decision != decision
    ]
    if new:
        ClaimDecision.objects.bulk_create(new)


def stored_decisions(grade: Grade) -> list[DecisionInput]:
    return [
        DecisionInput(claim_id, decision)
        for claim_id, decision in grade.claim_decisions.order_by("claim_id").values_list(
            "claim_id", "decision"
        )
    ]


def posted_decisions(raw: Any) -> list[DecisionInput] | None:
    """The decisions a refused form carried, to show them again; None when it carried none
    that can be read (then the page shows the stored ones)."""
    if raw is None:
        return None
    try:
        return parse_decisions(raw)
    except InputError:
        return None


def draft_decisions(draft: Draft) -> list[dict[str, Any]]:
    entries = (draft.content or {}).get("suggestions") or []
    return [e for e in entries if isinstance(e, dict)]


# -- what the page and the API show ----------------------------------------------------------


def for_item(
    item: CampaignItem,
    others: dict[str, Any] | None,
    *,
    own_grade: Grade | None,
    draft: Draft | None,
    posted: list[DecisionInput] | None = None,
) -> dict[str, Any] | None:
    """The claims of the proof's analyses, grouped by analysis, and the grader's decisions
    so far; None when the grader may not see them (`others` is None: the blind rules) or
    no analysis claims anything (`others_for` counted them: then no query at all). One
    query otherwise, with a committed grade's decisions in it.

    `posted`: the decisions of a refused submit, shown again in place of the draft's or the
    committed grade's (they include those made since the last autosave); only those about
    this proof's claims.

    Model text is handed on raw: templates render it with the sanitising `markdown`
    filters; the API returns it as data.
    """
    if others is None or not others["model"].get("claims"):
        return None
    from verification.models import Claim

    claims = Claim.objects.filter(analysis__proof_id=item.proof_id).select_related("analysis")
    if own_grade is not None:
        claims = claims.annotate(
            decision=Subquery(
                ClaimDecision.objects.filter(grade=own_grade, claim=OuterRef("pk")).values(
                    "decision"
                )[:1]
            )
        )
    rows: dict[int, dict[str, Any]] = {}
    decisions = []
    number = 0
    for claim in claims.order_by("analysis_id", "order"):
        analysis = claim.analysis
        if analysis.pk not in rows:
            rows[analysis.pk] = {
                "id": analysis.pk,
                "model": analysis.model,
                "score": None if analysis.score is None else format(analysis.score.normalize()),
                "parse_status": analysis.parse_status,
                "claims": [],
            }
        number += 1
        css, words = _anchor_words(claim)
        rows[analysis.pk]["claims"].append(
            {
                "id": claim.pk,
                "number": number,
                "text": claim.text,
                # The page puts its own quotation marks around it.
                "quote": claim.quote.strip().strip('"“”'),
                "category": claim.category,
                "location": claim.location,
                "start": claim.start,
                "end": claim.end,
                "exact": claim.exact,
                "anchor_class": css,
                "anchor_words": words,
            }
        )
        decision = getattr(claim, "decision", None)  # annotated with a committed grade
        if decision:
            decisions.append({"claim": claim.pk, "decision": decision})
    if posted is not None:
        decisions = [{"claim": d.claim_id, "decision": d.decision} for d in posted]
    elif own_grade is None and draft is not None:
        decisions = draft_decisions(draft)
    if posted is not None or own_grade is None:
        shown = {c["id"] for row in rows.values() for c in row["claims"]}
        decisions = [d for d in decisions if d.get("claim") in shown]
    return {
        "analyses": list(rows.values()),
        "decisions": decisions,
        "count": number,
        # Analyses of the proof that claim nothing (they have no suggestion to make).
        "silent": others["model"]["analyses"] - len(rows),
    }


def _anchor_words(claim: Any) -> tuple[str, str]:
    if claim.anchor_method == "fuzzy":
        if (claim.anchor_score or 0) >= 100:
            return "exact", "quoted (reformatted)"
        return "approximate", f"approximate match ({claim.anchor_score:g}%)"
    return ANCHOR_WORDS.get(claim.anchor_method, ("unanchored", "not located in the proof"))


def page_anchors(suggestions: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the page's script needs (static/js/suggestions.js): each claim's anchor and
    the words an accepted claim's issue starts with, and the decisions so far."""
    if suggestions is None:
        return None
    claims = [
        {
            "id": c["id"],
            "number": c["number"],
            "start": c["start"],
            "end": c["end"],
            "exact": c["exact"],
            "note": _note(c),
        }
        for a in suggestions["analyses"]
        for c in a["claims"]
    ]
    return {"claims": claims, "decisions": suggestions["decisions"]}


def _note(claim: dict[str, Any]) -> str:
    """An accepted claim's issue note: the claim in the verifier's words, short enough
    for an issue."""
    from annotate.inputs import MAX_NOTE_CHARS

    text = " ".join((claim["text"] or claim["quote"]).split())
    return text if len(text) <= MAX_NOTE_CHARS else text[: MAX_NOTE_CHARS - 1] + "…"
