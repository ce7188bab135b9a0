"""Anchoring benchmark (issue 8): the Open Proof Corpus judge's claims anchored in their proofs.

    .venv/bin/python bench/anchor_corpus.py            # all 575 analyses, 2,054 claims
    .venv/bin/python bench/anchor_corpus.py --quick    # the BMOSL half only

Reads `data/open_proof_corpus/*/*.json` directly (no database) and anchors every claimed
issue with `annotate.anchoring.Document`, exactly as the `opc` importer does, guided by the
judge's `start_index`/`end_index`. Goals (on the full corpus): at least 95 % of the claims
that have a quote found by a matcher (exact or fuzzy, not by falling back to the index
span), and at least 95 % of those anchored claims that have an index span overlapping it.

Prints the split by method and
`RESULT claims=… quoted=… anchored_ratio=… overlap_ratio=… exact=… fuzzy=… index_span=…
unanchored=… seconds=…`; exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotate.anchoring import AnchorMethod, Document  # noqa: E402

CORPUS = ROOT / "data" / "open_proof_corpus"
GOAL = 0.95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the BMOSL files")
    parser.add_argument("--show-misses", type=int, default=0, metavar="N", help="print N misses")
    args = parser.parse_args()
    files = sorted((CORPUS / "BMOSL").glob("*.json") if args.quick else CORPUS.glob("*/*.json"))
    methods: Counter[str] = Counter()
    claims = quoted = anchored = with_span = overlapping = 0
    misses: list[tuple[str, str]] = []
    started = time.perf_counter()
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        for attempt in data["attempts"]:
            document = Document(attempt["solution"])
            for issue in attempt["llm_judgment"]["result"]["issues"]:
                claims += 1
                start, end = issue.get("start_index"), issue.get("end_index")
                anchor = document.anchor(issue.get("text") or "", start_hint=start, end_hint=end)
                methods[anchor.method] += 1
                if not issue.get("text"):
                    continue
                quoted += 1
                if not anchor.found:
                    misses.append((path.name, issue["text"]))
                    continue
                anchored += 1
                if start is not None and end is not None:
                    with_span += 1
                    overlapping += anchor.overlaps(start, end)
    seconds = time.perf_counter() - started
    anchored_ratio = anchored / quoted if quoted else 0.0
    overlap_ratio = overlapping / with_span if with_span else 0.0
    print(f"{len(files)} files, {claims} claims, {quoted} with a quote, {seconds:.1f} s")
    for method in AnchorMethod:
        print(f"  {method.value:<11} {methods[method]:>5}")
    print(f"  anchored by a matcher: {anchored}/{quoted} = {anchored_ratio:.4f} (goal {GOAL})")
    print(f"  overlapping the judge's span: {overlapping}/{with_span} = {overlap_ratio:.4f}")
    for name, text in misses[: args.show_misses]:
        print(f"  miss {name}: {text[:120]!r}")
    print(
        f"RESULT claims={claims} quoted={quoted} anchored_ratio={anchored_ratio:.4f} "
        f"overlap_ratio={overlap_ratio:.4f} exact={methods[AnchorMethod.EXACT]} "
        f"fuzzy={methods[AnchorMethod.FUZZY]} index_span={methods[AnchorMethod.INDEX_SPAN]} "
        f"unanchored={methods[AnchorMethod.UNANCHORED]} seconds={seconds:.2f}"
    )
    return 0 if anchored_ratio >= GOAL and overlap_ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
