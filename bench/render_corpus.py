#!/usr/bin/env python
"""Every shipped document, rendered and typeset in Chromium: KaTeX errors and raw TeX (issue 7).

Reads the documents an expert reads from data/ (see data/NOTICE.md and
data/open_proof_corpus/NOTICE.md), without a database:

- `curated`: the 84 DeepSeekMath-V2 proofs with their problem statement, reference solution
  and guidelines (data/deepseek_math_v2/*.jsonl, the files `load_demo` imports), and the 60
  IMO-ProofBench problems with solution and guidelines (data/imobench/proofbench_v2.csv);
- `opc`: the 575 model proofs of the Open Proof Corpus sample, and its 115 problems with
  their reference solutions (data/open_proof_corpus).

Each text goes through the real renderer (`annotate.rendering.render_markdown`); many
documents share one page that loads the real KaTeX and `static/js/math.js` in Debian's
Chromium. When math.js marks `<html data-math="all">`, the page counts per document the
formulas math.js could not typeset (`.math-failed`) and the raw TeX left visible outside
typeset math (`\\command`, `\\begin{`, `$$`), and checks that the page's warning lists every
failed formula. Each failure is printed with its document id and source snippet, then

    RESULT documents=… katex_errors=… raw_tex=… katex_errors_curated=… raw_tex_curated=…

    .venv/bin/python bench/render_corpus.py [--quick] [--only ID-PREFIX]

`--quick` checks the curated documents and every fifth OPC proof (under a minute).
tests/test_render_corpus.py runs the same check in CI against a reviewed allow-list.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
STATIC = ROOT / "static"
CHROMIUM = os.environ.get("PROOFDESK_CHROMIUM", "/usr/bin/chromium")
DEEPSEEK_FILES = (
    "IMO2025.jsonl",
    "CMO2024.jsonl",
    "Putnam2024.jsonl",
    "IMO-ProofBench-Basic.jsonl",
    "IMO-ProofBench-Advanced.jsonl",
)
BATCH = 60  # documents per page: few page loads, yet a page that typesets in a second or two


@dataclass
class Document:
    id: str
    group: str  # "curated" or "opc"
    texts: list[tuple[str, str]]  # (label, Markdown + LaTeX source)


@dataclass
class Failure:
    doc_id: str
    kind: str  # "katex" or "raw"
    snippet: str

    def __str__(self) -> str:
        return f"{self.doc_id}: {self.kind}: {self.snippet}"


@dataclass
class Report:
    documents: int = 0
    failures: list[Failure] = field(default_factory=list)
    warning_problems: list[str] = field(default_factory=list)

    def count(self, kind: str, group: str | None = None) -> int:
        return sum(
            1
            for f in self.failures
            if f.kind == kind and (group is None or group_of(f.doc_id) == group)
        )

    def result_line(self) -> str:
        return (
            f"RESULT documents={self.documents} katex_errors={self.count('katex')}"
            f" raw_tex={self.count('raw')} katex_errors_curated={self.count('katex', 'curated')}"
            f" raw_tex_curated={self.count('raw', 'curated')}"
        )


def group_of(doc_id: str) -> str:
    return "opc" if doc_id.startswith("opc/") else "curated"


def _nonempty(pairs: Iterable[tuple[str, str | None]]) -> list[tuple[str, str]]:
    return [(label, text) for label, text in pairs if text and text.strip()]


def _deepseek() -> Iterator[Document]:
    for name in DEEPSEEK_FILES:
        path = DATA / "deepseek_math_v2" / name
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            data = json.loads(line)
            prediction = data["model_prediction"]
            if isinstance(prediction, str):  # as the importer reads it
                prediction = ast.literal_eval(prediction)
            yield Document(
                f"deepseek/{name}:{number}:{data['problem_idx']}",
                "curated",
                _nonempty(
                    [
                        ("statement", data.get("question_original") or data.get("question")),
                        ("reference solution", data.get("solution")),
                        ("guidelines", data.get("grading guidelines")),
                        ("proof", prediction.get("proof")),
                    ]
                ),  # fmt: skip
            )


def _proofbench() -> Iterator[Document]:
    with (DATA / "imobench" / "proofbench_v2.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            yield Document(
                f"proofbench/{row['Problem ID'].strip()}",
                "curated",
                _nonempty(
                    [
                        ("statement", row["Problem"]),
                        ("reference solution", row["Solution"]),
                        ("guidelines", row["Grading guidelines"]),
                    ]
                ),  # fmt: skip
            )


def _open_proof_corpus() -> Iterator[Document]:
    for path in sorted((DATA / "open_proof_corpus").glob("*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        name = f"opc/{path.parent.name}/{path.stem}"
        references = [s.get("solution") for s in data.get("solutions") or []]
        yield Document(
            f"{name}/problem",
            "opc",
            _nonempty([("statement", data.get("problem"))])
            + _nonempty(("reference solution", s) for s in references),
        )
        for index, attempt in enumerate(data.get("attempts") or []):
            yield Document(
                f"{name}/{index}:{attempt.get('model_id', '')}",
                "opc",
                _nonempty([("proof", attempt.get("solution"))]),
            )


def collect_documents() -> list[Document]:
    """Every shipped document an expert reads, curated first."""
    return [*_deepseek(), *_proofbench(), *_open_proof_corpus()]


def quick_selection(documents: list[Document]) -> list[Document]:
    """The curated documents and every fifth OPC document."""
    opc = [d for d in documents if d.group == "opc"]
    return [d for d in documents if d.group == "curated"] + opc[::5]


# --- The page --------------------------------------------------------------------------

# Counted in the page, once math.js is done: per document, the formulas it could not
# typeset and the raw TeX commands in the text outside typeset math; and whether the
# warning at the top of the page links to every formula that failed.
_SCAN_JS = r"""
() => {
  const RAW = /\\[A-Za-z]+|\\begin\{|\$\$/g;
  const out = [];
  for (const doc of document.querySelectorAll("section[data-doc]")) {
    const failed = Array.from(doc.querySelectorAll(".math-failed")).map(
      (el) => (el.getAttribute("data-tex") || el.textContent) + "  [" + el.title + "]");
    const raw = [];
    // Typeset math is skipped whole (rejecting an element skips its subtree).
    const walker = document.createTreeWalker(doc, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT, {
      acceptNode: (n) => n.nodeType === 1
        ? (n.matches(".katex, .math-failed") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_SKIP)
        : NodeFilter.FILTER_ACCEPT,
    });
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const text = n.textContent;
      for (const m of text.matchAll(RAW)) {
        raw.push(text.slice(Math.max(0, m.index - 60), m.index + m[0].length + 60));
      }
    }
    out.push({ id: doc.getAttribute("data-doc"), failed, raw });
  }
  const warning = document.getElementById("math-problems");
  const targets = warning && !warning.hidden
    ? Array.from(warning.querySelectorAll("a[href^='#']"))
        .map((a) => a.getAttribute("href").slice(1))
    : [];
  const failedIds = Array.from(document.querySelectorAll(".math-failed")).map((el) => el.id);
  return { docs: out, warningTargets: targets, failedIds,
           warningText: warning && !warning.hidden ? warning.textContent : "" };
}
"""


def page_html(documents: list[Document]) -> str:
    """One page holding `documents`, as the app's pages hold them (base.html's assets)."""
    from annotate.rendering import render_markdown

    sections = []
    for doc in documents:
        parts = "".join(
            f'<h3>{escape(label)}</h3><div class="rendered">{render_markdown(text)}</div>'
            for label, text in doc.texts
        )
        sections.append(
            f'<section data-doc="{escape(doc.id)}"><h2>{escape(doc.id)}</h2>{parts}</section>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<link rel="stylesheet" href="static/vendor/katex/katex.min.css">'
        '<link rel="stylesheet" href="static/css/proofdesk.css">'
        '<script defer src="static/vendor/katex/katex.min.js"></script>'
        '<script defer src="static/js/math.js"></script>'
        # Laid out, a thousand typeset formulas cost Chromium tens of seconds; the check
        # reads text and classes only, so the documents are never displayed.
        "<style>section[data-doc] { display: none; }</style></head><body>"
        '<div id="math-problems" class="math-problems" hidden></div>'
        + "".join(sections)
        + "</body></html>"
    )


def check(documents: list[Document], *, chromium: str = CHROMIUM, batch: int = BATCH) -> Report:
    """Render, typeset and scan `documents` in Chromium; the failures, per document."""
    from playwright.sync_api import sync_playwright

    report = Report(documents=len(documents))
    pages = [page_html(documents[i : i + batch]) for i in range(0, len(documents), batch)]
    with tempfile.TemporaryDirectory(prefix="proofdesk-corpus-") as tmp:
        (Path(tmp) / "static").symlink_to(STATIC)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium,
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--allow-file-access-from-files",
                ],
            )
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
                for number, html in enumerate(pages):
                    path = Path(tmp) / f"batch{number}.html"
                    path.write_text(html, encoding="utf-8")
                    page.goto(path.as_uri(), wait_until="load")
                    # What printing does: typeset every formula now, rather than in the
                    # idle slices a grader's page uses (minutes for a thousand formulas).
                    page.evaluate("window.proofdeskRenderAllMath()")
                    page.wait_for_function(
                        "document.documentElement.getAttribute('data-math') === 'all'",
                        timeout=120_000,
                    )
                    _collect(report, page.evaluate(_SCAN_JS), number)
                report.warning_problems += errors
            finally:
                browser.close()
    return report


def _collect(report: Report, scan: dict, batch: int) -> None:
    for doc in scan["docs"]:
        report.failures += [Failure(doc["id"], "katex", _one_line(t)) for t in doc["failed"]]
        report.failures += [Failure(doc["id"], "raw", _one_line(t)) for t in doc["raw"]]
    failed, targets = scan["failedIds"], scan["warningTargets"]
    if failed and sorted(failed) != sorted(targets):
        report.warning_problems.append(
            f"batch {batch}: the warning links to {len(targets)} of {len(failed)} failed formulas"
        )
    if failed and str(len(failed)) not in scan["warningText"]:
        report.warning_problems.append(
            f"batch {batch}: the warning does not give the count: {scan['warningText']!r}"
        )


def _one_line(text: str, width: int = 160) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="curated + every fifth OPC document")
    ap.add_argument("--only", default="", help="only documents whose id starts with this")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    sys.path.insert(0, str(ROOT))
    documents = collect_documents()
    if args.quick:
        documents = quick_selection(documents)
    if args.only:
        documents = [d for d in documents if d.id.startswith(args.only)]
    started = time.monotonic()
    report = check(documents)
    for failure in report.failures:
        print(failure)
    for problem in report.warning_problems:
        print("WARNING:", problem)
    print(f"checked {report.documents} documents in {time.monotonic() - started:.1f} s")
    print(report.result_line())
    return 1 if report.warning_problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
