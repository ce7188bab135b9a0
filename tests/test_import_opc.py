"""Importing the Open Proof Corpus judged sample: problems, proofs, judge analyses, claims."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotate.importers import import_path, import_stream
from annotate.importers.opc import JUDGE_MODEL, PROMPT_VERSION
from annotate.models import Problem, Proof
from verification.models import Analysis, Claim

CORPUS = Path(__file__).resolve().parent.parent / "data" / "open_proof_corpus"
FILE = CORPUS / "BMOSL" / "2016_3.json"

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, int, int, int]:
    return (
        Problem.objects.count(),
        Proof.objects.count(),
        Analysis.objects.count(),
        Claim.objects.count(),
    )


def test_a_file_imports_problem_proofs_analyses_and_anchored_claims():
    data = json.loads(FILE.read_text())
    result = import_path(FILE, "opc")
    assert result.ok, result.errors
    issues = sum(len(a["llm_judgment"]["result"]["issues"]) for a in data["attempts"])
    assert _counts() == (1, len(data["attempts"]), len(data["attempts"]), issues)

    problem = Problem.objects.get()
    assert problem.external_id == "BMOSL_2016_3"
    assert problem.statement == data["problem"]
    assert problem.reference_solution.startswith("Solution. From the condition")
    assert problem.guidelines.startswith("**Correctness** (1 point)")
    assert (problem.source, problem.level) == ("Balkan MO Shortlist 2016", "high_school")

    attempt = data["attempts"][0]
    proof = Proof.objects.get(text=attempt["solution"])
    assert proof.generator_model == "gemini/gemini-pro-2.5"
    analysis = proof.analyses.get()
    assert (analysis.model, analysis.prompt_version) == (JUDGE_MODEL, PROMPT_VERSION)
    assert analysis.parse_status == "no_score" and analysis.score is None  # the judge gives none
    assert analysis.text.startswith("**Summary.** The proof introduces")
    assert "**Issues claimed (4):**" in analysis.text

    claims = list(analysis.claims.all())
    first = attempt["llm_judgment"]["result"]["issues"][0]
    assert [c.order for c in claims] == [1, 2, 3, 4]
    assert claims[0].text == first["description"]
    assert claims[0].category == "Overgeneralization"
    assert (claims[0].source_start, claims[0].source_end) == (221, 505)
    assert claims[0].anchor_method in ("exact", "fuzzy")
    assert claims[0].exact == proof.text[claims[0].start : claims[0].end]
    assert claims[0].exact.startswith("This implies that for any fixed")


def test_re_importing_adds_nothing():
    assert import_path(FILE, "opc").ok
    before = _counts()
    again = import_path(FILE, "opc")
    assert again.ok
    assert _counts() == before
    assert again.counts["claims"] == {"created": 0, "existing": before[3]}
    assert again.counts["proofs"]["created"] == 0


def test_a_folder_imports_as_one_transaction_and_a_bad_file_writes_nothing(tmp_path):
    for name in ("2016_3.json", "2016_5.json"):
        shutil.copy(CORPUS / "BMOSL" / name, tmp_path / name)
    (tmp_path / "2017_1.json").write_text(json.dumps({"problem_id": "X", "attempts": []}))
    result = import_path(tmp_path, "opc")
    assert not result.ok
    assert result.errors == ["2017_1.json: file: problem: required"]
    assert _counts() == (0, 0, 0, 0)

    (tmp_path / "2017_1.json").unlink()
    assert import_path(tmp_path, "opc").ok
    assert Problem.objects.count() == 2


def test_bad_json_and_bad_fields_are_reported_clearly():
    result = import_stream(io.BytesIO(b"{not json"), size=9, fmt="opc", source_name="x.json")
    assert not result.ok and result.errors[0].startswith("file: not valid JSON")
    data = json.loads(FILE.read_text())
    data["attempts"][1]["solution"] = 7
    raw = json.dumps(data).encode()
    result = import_stream(io.BytesIO(raw), size=len(raw), fmt="opc", source_name="2016_3.json")
    assert result.errors == ["file: attempts[1].solution: must be a string, got a number"]
    assert _counts() == (0, 0, 0, 0)


def test_the_command_imports_a_file_and_a_folder(tmp_path):
    out = io.StringIO()
    call_command("import_data", str(FILE), "--format", "opc", "--no-progress", stdout=out)
    assert "claims: 20 created, 0 already present" in out.getvalue()
    shutil.copy(
        CORPUS / "USAMO" / sorted(p.name for p in (CORPUS / "USAMO").glob("*.json"))[0], tmp_path
    )
    out = io.StringIO()
    call_command("import_data", str(tmp_path), "--format", "opc", "--no-progress", stdout=out)
    assert "problems: 1 created" in out.getvalue()
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_data", str(tmp_path), "--format", "native", "--no-progress")
