"""Prompt templates: shipped texts, hash versions, variables checked before use."""

from __future__ import annotations

import pytest

from verification.parsing import ParseStatus, parse_analysis
from workers.prompts import (
    Kind,
    PromptError,
    PromptTemplate,
    default_template,
    split_generation,
)

PROBLEM = "Show that $n^2 \\ge 0$ for every integer $n$."
PROOF = "Squares of reals are non-negative, and $\\$5$ is money."


@pytest.mark.parametrize("kind", list(Kind))
def test_every_shipped_template_puts_the_problem_first_and_asks_for_a_box(kind):
    template = default_template(kind)
    values = {"problem": PROBLEM, "proof": PROOF, "analysis": "It is fine. \\boxed{1}"}
    text = template.render(**values)
    assert text.startswith("## Problem\n\n" + PROBLEM)
    assert "\\boxed{1}, \\boxed{0.5} or \\boxed{0}" in text


def test_verify_and_meta_verify_prompts_share_the_problem_and_proof_prefix():
    verify = default_template(Kind.VERIFY).render(problem=PROBLEM, proof=PROOF)
    meta = default_template(Kind.META_VERIFY).render(problem=PROBLEM, proof=PROOF, analysis="A")
    shared = len(f"## Problem\n\n{PROBLEM}\n\n## Proof")
    assert verify[:shared] == meta[:shared]
    assert PROOF in verify[: shared + len(PROOF) + 30]
    assert PROOF in meta[: shared + len(PROOF) + 40]


def test_values_are_inserted_verbatim_dollars_and_all():
    text = default_template(Kind.VERIFY).render(problem=PROBLEM, proof=PROOF)
    assert PROOF in text and "$n^2 \\ge 0$" in text


def test_the_version_is_the_kind_and_the_content_hash():
    a = PromptTemplate("verify", "$problem\n$proof\nScore it.")
    b = PromptTemplate("verify", "$problem\n$proof\nScore it!")
    assert a.version.startswith("verify-") and len(a.version) == len("verify-") + 12
    assert a.version != b.version
    assert a.version == PromptTemplate("verify", "$problem\n$proof\nScore it.").version


def test_a_template_missing_a_variable_its_kind_needs_is_refused():
    with pytest.raises(PromptError, match=r"missing \$proof"):
        PromptTemplate("verify", "$problem only")


def test_a_template_using_a_variable_its_kind_does_not_provide_is_refused():
    with pytest.raises(PromptError, match=r"uses \$analysis"):
        PromptTemplate("verify", "$problem $proof $analysis")


def test_a_stray_dollar_and_an_unknown_kind_are_refused():
    with pytest.raises(PromptError, match="stray"):
        PromptTemplate("verify", "$problem $proof costs $5")
    with pytest.raises(PromptError, match="unknown template kind"):
        default_template("summarise")


def test_rendering_without_a_value_is_a_clear_error():
    with pytest.raises(PromptError, match=r"no value for \$proof"):
        default_template(Kind.VERIFY).render(problem=PROBLEM)


def test_a_generation_splits_into_proof_and_self_evaluation_with_a_readable_self_score():
    text = (
        "<think>try induction</think>## Proof\n\nBy squares.\n\n"
        "## Self-evaluation\n\nNo gaps. \\boxed{1}"
    )
    parsed = split_generation(text)
    assert parsed.proof == "By squares."
    assert parsed.self_evaluation == "No gaps. \\boxed{1}"
    read = parse_analysis(parsed.self_evaluation)
    assert read.status == ParseStatus.OK and str(read.score) == "1"


def test_a_generation_without_a_self_evaluation_keeps_the_whole_proof():
    assert split_generation("Just a proof.") == split_generation("## Proof\nJust a proof.")
    assert split_generation("Just a proof.").self_evaluation == ""
