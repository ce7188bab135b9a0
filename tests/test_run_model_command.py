"""`run_model` end to end on the replay backend: Open Proof Corpus proofs imported, the
shipped recording of the judge's analyses played back as a verify run."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotate.importers import import_path
from annotate.models import Proof
from verification.models import Analysis, Claim
from workers.models import ModelOutput, ModelRun

CORPUS = Path(__file__).resolve().parent.parent / "data" / "open_proof_corpus"
RECORDING = Path(__file__).resolve().parent.parent / "data" / "recordings" / "opc_judge.jsonl"
FILES = [CORPUS / "BMOSL" / "2016_3.json", CORPUS / "USAMO" / "1997_5.json"]

pytestmark = pytest.mark.django_db


@pytest.fixture
def opc_problems() -> list[str]:
    for file in FILES:
        assert import_path(file, "opc").ok
    return ["BMOSL_2016_3", "USAMO_1997_5"]


def run_model(*args: str) -> str:
    out = io.StringIO()
    call_command("run_model", *args, "--no-progress", stdout=out)
    return out.getvalue()


def problems(ids: list[str]) -> list[str]:
    return [arg for pid in ids for arg in ("--problem", pid)]


def test_the_shipped_recording_is_what_the_generator_builds_from_the_corpus(tmp_path):
    rebuilt = tmp_path / "opc_judge.jsonl"
    call_command("build_replay_recording", output=rebuilt, stdout=io.StringIO())
    assert rebuilt.read_bytes() == RECORDING.read_bytes()
    assert len(RECORDING.read_text(encoding="utf-8").splitlines()) == 575


def test_a_replayed_verify_run_stores_parsed_analyses_with_anchored_claims(opc_problems):
    proofs = Proof.objects.filter(problem__external_id__in=opc_problems)
    imported = Analysis.objects.count()
    said = run_model(
        "--kind", "verify", *problems(opc_problems), "--backend", "replay",
        "--model", "opc-judge-replay", "--n", "1",
    )  # fmt: skip
    run = ModelRun.objects.get()
    assert f"run {run.pk} done: {proofs.count()}/{proofs.count()} samples stored" in said
    assert (run.done, run.failed) == (proofs.count(), 0)
    analyses = Analysis.objects.filter(origin="model_run")
    assert analyses.count() == proofs.count() == Analysis.objects.count() - imported
    assert set(analyses.values_list("parse_status", flat=True)) == {"ok"}
    claims = Claim.objects.filter(analysis__in=analyses)
    assert claims.exists()
    anchored = claims.exclude(anchor_method="unanchored")
    # as many claims as the judge made, most anchored even without the judge's indices
    judged = Claim.objects.exclude(analysis__in=analyses)
    assert claims.count() >= judged.count()  # (a judge's summary without issues is one too)
    assert anchored.count() >= judged.exclude(anchor_method="unanchored").count() * 0.8
    for claim in anchored[:20]:
        assert claim.exact == claim.analysis.proof.text[claim.start : claim.end]

    # a rerun of the same run adds nothing
    again = run_model("--resume", str(run.pk))
    assert "(0 new), 0 failed" in again
    assert Analysis.objects.filter(origin="model_run").count() == proofs.count()
    assert ModelOutput.objects.count() == proofs.count()


def test_samples_the_recording_does_not_have_fail_as_not_recorded(opc_problems):
    said = run_model(
        "--kind", "verify", "--problem", opc_problems[0], "--backend", "replay",
        "--model", "m", "--n", "4",
    )  # fmt: skip
    run = ModelRun.objects.get()
    assert run.done == 0 and run.failed_by_reason == {"not_recorded": run.total}
    assert "(not_recorded: " in said


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "nope"], "invalid choice: 'nope'"),
        (["--n", "0"], "n must be a whole number of at least 1"),
        (["--template", "MISSING_VAR"], "the verify template is missing $proof"),
        (["--campaign", "Nope"], "no campaign named 'Nope'"),
    ],
)
def test_a_malformed_request_is_refused_and_creates_nothing(opc_problems, tmp_path, args, message):
    if "MISSING_VAR" in args:
        template = tmp_path / "t.txt"
        template.write_text("Problem: $problem. Score it.")
        args = ["--template", str(template)]
    base = {"--kind": "verify", "--backend": "replay", "--model": "m", "--n": "1"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    target = [] if "--campaign" in base else ["--problem", opc_problems[0]]
    argv = [item for pair in base.items() for item in pair] + target
    with pytest.raises(CommandError, match=message.replace("$", r"\$").replace("(", r"\(")):
        run_model(*argv)
    assert not ModelRun.objects.exists() and not ModelOutput.objects.exists()


def test_an_unknown_run_cannot_be_resumed(db):
    with pytest.raises(CommandError, match="no model run 99"):
        run_model("--resume", "99")
