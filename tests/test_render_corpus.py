"""Every shipped document rendered by the real renderer and typeset by the real math.js in
Chromium (bench/render_corpus.py holds the check; docs/benchmarks.md its full figures).

The curated documents (DeepSeekMath-V2, ProofBench) must show no KaTeX error and no raw TeX.
The model-written Open Proof Corpus proofs may fail only where their source is itself broken;
each such document is listed below with the reason it was accepted, so a new failure fails.
"""

# ruff: noqa: E501  (the allow-list below is a table: one document and its reason a line)

from __future__ import annotations

import pytest

from annotate.models import CampaignItem, Proof
from bench.render_corpus import check, collect_documents, group_of
from tests.browser import chromium_or_skip, run_orm

pytestmark = pytest.mark.browser

# Reviewed: Open Proof Corpus documents whose remaining KaTeX errors or raw TeX come from
# their source (run `bench/render_corpus.py --only opc/` to see each failure and snippet).
BROKEN_SOURCE: dict[str, str] = {
    "opc/BMOSL/2016_8/4:deepseek/r1_0528": "math delimiters nested or unclosed in the source",
    "opc/BMOSL/2016_9/3:gemini/gemini-pro-2.5": "prose inside \\boxed{…} with its own $…$: delimiters nested in the source",
    "opc/BMOSL/2017_13/2:openai/o3": "math written without delimiters (`;=;` for `\\;=\\;`): lone \\left / \\right in text",
    "opc/BMOSL/2017_14/1:gemini/gemini-pro-2.5": "stray `}` in many formulas, and `$` delimiters left unbalanced by them",
    "opc/BMOSL/2017_14/4:deepseek/r1_0528": "math delimiters nested or unclosed in the source",
    "opc/BMOSL/2017_2/0:qwen/qwen3_235b_a22b": "prose with its own $…$ inside \\boxed{…} (invalid in LaTeX too)",
    "opc/BMOSL/2017_4/2:openai/o3": "math written without delimiters: \\tfrac and \\left with their arguments cut off",
    "opc/BMOSL/2017_8/1:gemini/gemini-pro-2.5": "`$` delimiters unbalanced in the source (an odd `$` early on), so math and text swap",
    "opc/BMOSL/2018_8/4:gemini/gemini-pro-2.5": "a stray `}` in the source formula",
    "opc/BMOSL/2019_12/3:deepseek/r1_0528": "a doubled \\right in the source (`\\right \\right).`)",
    "opc/BMOSL/2019_19/2:gemini/gemini-pro-2.5": "math delimiters nested or unclosed in the source",
    "opc/BMOSL/2019_3/2:openai/o4-mini--high": "a stray backslash ending the source formula",
    "opc/BMOSL/2019_8/1:gemini/gemini-pro-2.5": "a stray `}` in the source formula",
    "opc/BMOSL/2020_11/3:xai/grok-3-mini-high": "math written without delimiters: lone \\left / \\right in text",
    "opc/BMOSL/2020_8/1:openai/o4-mini--high": "uses \\Mat, a macro the source never defines",
    "opc/BMOSL/2020_8/2:gemini/gemini-pro-2.5": "uses \\concat, a macro the source never defines",
    "opc/BMOSL/2021_12/3:deepseek/r1_0528": "a stray `}` in the source formula",
    "opc/BMOSL/2021_18/2:deepseek/r1_0528": "an unpaired \\right) in the source",
    "opc/USAMO/1997_5/1:gemini/gemini-pro-2.5": "math written without delimiters: lone \\left / \\right in text",
    "opc/USAMO/2001_3/1:gemini/gemini-pro-2.5": "unbalanced \\( … \\) delimiters in the source (`2A+C=\\pi\\), so`)",
    "opc/USAMO/2002_1/4:openai/o4-mini--high": "uses \\idx, a macro the source never defines",
    "opc/USAMO/2002_6/2:xai/grok-3-mini-high": "a stray backslash ending the source formula",
    "opc/USAMO/2007_3/4:openai/o4-mini--high": "uses \\U, a macro the source never defines",
    "opc/USAMO/2008_1/3:gemini/gemini-pro-2.5": "an unclosed `{` in the source formula; a stray `}` in the source formula",
    "opc/USAMO/2008_5/1:openai/o3": "unbalanced delimiters in the source formula",
    "opc/USAMO/2008_6/0:openai/o3": "math delimiters nested or unclosed in the source",
    "opc/USAMO/2008_6/1:gemini/gemini-pro-2.5": "prose with its own \\(…\\) inside \\boxed{…} (invalid in LaTeX too)",
    "opc/USAMO/2008_6/2:openai/o4-mini--high": "uses \\diag and \\rank, macros the source never defines",
    "opc/USAMO/2009_6/4:openai/o4-mini--high": "uses \\Den, a macro the source never defines",
    "opc/USAMO/2011_1/3:openai/o4-mini--high": "uses \\cyc, a macro the source never defines",
    "opc/USAMO/2011_6/4:gemini/gemini-pro-2.5": "math written without delimiters: lone \\left / \\right in text",
    "opc/USAMO/2013_5/1:openai/o3": "uses \\G, a macro the source never defines",
    "opc/USAMO/2015_3/1:openai/o3": "uses \\K, a macro the source never defines",
    "opc/USAMO/2016_5/3:gemini/gemini-pro-2.5": "a stray `}` in the source formula",
    "opc/USAMO/2017_2/1:openai/o4-mini--high": "uses \\inv, a macro the source never defines",
    "opc/USAMO/2017_2/2:gemini/gemini-pro-2.5": "prose with its own \\(…\\) inside \\boxed{…} (invalid in LaTeX too)",
    "opc/USAMO/2017_2/4:qwen/qwen3_235b_a22b": "math delimiters nested or unclosed in the source",
    "opc/USAMO/2017_5/0:gemini/gemini-pro-2.5": "`_` inside \\text{…} in the source",
    "opc/USAMO/2017_5/1:openai/o4-mini--high": "uses \\dens, a macro the source never defines",
    "opc/USAMO/2019_6/problem": "`$$…\\$\\$`: a display formula closed by escaped dollars, so the delimiters do not pair",
    "opc/USAMO/2020_6/problem": "uses \\T, a macro the source never defines",
    "opc/USAMO/2020_6/0:openai/o3": "`\\bigllbrace`, a typo in the source",
}


@pytest.fixture(scope="module")
def report():
    chromium = chromium_or_skip()
    return check(collect_documents(), chromium=str(chromium))


def test_curated_documents_typeset_without_error_or_raw_tex(report):
    curated = [str(f) for f in report.failures if group_of(f.doc_id) == "curated"]
    assert curated == []


def test_every_remaining_failure_is_a_reviewed_broken_source(report):
    new = sorted({f.doc_id for f in report.failures} - BROKEN_SOURCE.keys())
    assert new == [], "new rendering failures:\n" + "\n".join(
        str(f) for f in report.failures if f.doc_id in new
    )


def test_the_page_warning_links_every_formula_that_failed(report):
    assert report.documents >= 834
    assert report.warning_problems == []


def test_the_grading_page_warns_about_a_formula_it_cannot_typeset(
    browser, campaign, problem, expert
):
    # `\frac{1}` lacks an argument; `\rule` asks for a page millions of pixels tall.
    text = "Fine $x^2$.\n\nBroken $\\frac{1}$ here.\n\nHuge $\\rule{100000em}{100000em}$ end."
    item = run_orm(
        lambda: CampaignItem.objects.create(
            campaign=campaign, proof=Proof.objects.create(problem=problem, text=text)
        )
    )
    browser.login(expert)
    browser.goto(f"/campaigns/{item.campaign_id}/items/{item.pk}/")
    page = browser.page
    page.wait_for_function("document.documentElement.getAttribute('data-math') === 'all'")
    warning = page.locator("#math-problems")
    assert warning.is_visible()
    assert "1 formula could not be typeset" in warning.inner_text()
    failed = page.locator("#proof-text .math-failed")
    assert failed.count() == 1 and failed.inner_text() == "\\frac{1}"
    assert warning.locator("a").get_attribute("href") == "#" + failed.get_attribute("id")
    assert page.evaluate("document.documentElement.scrollHeight") < 5000
    browser.assert_clean()


def test_the_allow_list_names_only_documents_that_still_fail(report):
    # A document fixed by a renderer change leaves the list, so the list stays reviewed.
    assert sorted(BROKEN_SOURCE.keys() - {f.doc_id for f in report.failures}) == []
