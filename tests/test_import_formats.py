"""Choosing the wrong import format gives one error that names the file's real format."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command

from annotate.importers import FORMATS, import_path
from annotate.importers.sniff import NAMES, looks_like
from annotate.models import ImportJob
from tests.import_support import (
    DATA,
    DEEPSEEK,
    PROOFBENCH_CSV,
    native_line,
    row_counts,
    write_jsonl,
)
from workers import tasks

pytestmark = pytest.mark.django_db

OPC_FILE = DATA / "open_proof_corpus" / "USAMO" / "1997_5.json"
EMPTY = dict.fromkeys(("problems", "proofs", "grades", "issues", "analyses", "campaign_items"), 0)


@pytest.fixture
def native_file(tmp_path):
    return write_jsonl(tmp_path, [native_line("NT-1"), native_line("NT-2")])


SHIPPED = {
    "deepseek": DEEPSEEK / "IMO2025.jsonl",
    "proofbench": PROOFBENCH_CSV,
    "opc": OPC_FILE,
}


def file_of(fmt: str, native_file):
    return native_file if fmt == "native" else SHIPPED[fmt]


@pytest.mark.parametrize(
    "real, chosen",
    [
        ("deepseek", "native"),
        ("deepseek", "proofbench"),
        ("deepseek", "opc"),
        ("proofbench", "native"),
        ("proofbench", "deepseek"),
        ("opc", "native"),
        ("opc", "deepseek"),
        ("native", "deepseek"),
        ("native", "proofbench"),
        ("native", "opc"),
    ],
)
def test_a_file_of_another_format_gets_one_error_naming_it(native_file, real, chosen):
    result = import_path(file_of(real, native_file), chosen)
    assert not result.ok
    assert result.error_lines() == [result.errors[0]]
    assert f"this file looks like {NAMES[real]} (" in result.errors[0]
    assert f"Choose the format {FORMATS[real]!r} (import_data --format {real})" in result.errors[0]
    assert row_counts() == EMPTY


def test_deepseek_problem_inputs_look_like_deepseek():
    assert looks_like((DEEPSEEK / "IMO2025.json").read_bytes())[0] == "deepseek"


@pytest.mark.parametrize("head", [b"", b"not a known format\n", b'{"problm": {}}\n', b"a,b\n"])
def test_a_file_like_no_format_is_left_to_the_parser(head):
    assert looks_like(head) is None


def test_a_native_file_with_errors_still_gets_its_line_errors(tmp_path):
    path = write_jsonl(tmp_path, [native_line("NT-1"), {"problem": {"external_id": "x"}, "x": 1}])
    result = import_path(path, "native")
    assert result.errors == ["line 2: x: unknown key (allowed: analyses, grades, problem, proof)"]


def test_the_command_prints_the_one_error(capsys):
    with pytest.raises(CommandError, match="not imported, nothing was written"):
        call_command("import_data", "--format", "native", str(PROOFBENCH_CSV), "--no-progress")
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "looks like IMO-ProofBench CSV (its first line" in err


def test_an_upload_of_another_format_fails_its_job_with_the_one_error(
    campaign, owner, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    job = ImportJob(
        campaign=campaign, uploaded_by=owner, format="proofbench", original_name="p.jsonl"
    )
    job.file.save("p.jsonl", ContentFile((DEEPSEEK / "IMO2025.jsonl").read_bytes()), save=True)
    assert tasks.run_import_job(job.pk) == "failed"
    job.refresh_from_db()
    assert len(job.errors) == 1 and "looks like DeepSeekMath-V2 (" in job.errors[0]
