"""The grading page in Chromium: keyboard-only grading, anchored issues, autosave outages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from annotate import grading
from annotate.models import CampaignItem, Draft, Grade, Proof, Skip
from annotate.work import queue
from tests.browser import run_orm

pytestmark = pytest.mark.browser

PASSAGE = "multiplying both sides"
PROOF_TEXT = """**Claim.** For every integer $n \\ge 1$ we have $n^2 \\ge n$.

*Proof.* Since $n \\ge 1$, {passage} by $n$ gives $n^2 \\ge n$.
This completes the argument.

1. The base case holds.
2. The step is obvious (variant {k}).
"""


@pytest.fixture
def three_items(campaign, proof) -> list[CampaignItem]:
    """The campaign's single item replaced by three proofs that all quote PASSAGE."""
    campaign.items.all().delete()
    items = []
    for k in range(3):
        text = PROOF_TEXT.format(passage=PASSAGE, k=k)
        p = Proof.objects.create(problem=proof.problem, text=text, generator_model="model-x")
        items.append(CampaignItem.objects.create(campaign=campaign, proof=p))
    return items


def select_in_proof(page, start_text: str, end_text: str | None = None) -> None:
    """Select from the start of `start_text` to the end of `end_text` (or of the math
    element that follows it) in the rendered proof, with a DOM Range, as a mouse would."""
    page.evaluate(
        """([startText, endText]) => {
          const root = document.getElementById('proof-text');
          const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
          let node, range = document.createRange(), started = false;
          while ((node = walker.nextNode())) {
            if (!started && node.data.includes(startText)) {
              range.setStart(node, node.data.indexOf(startText));
              started = true;
              if (!endText) {
                range.setEnd(node, node.data.indexOf(startText) + startText.length);
                break;
              }
            }
            if (started && endText && node.data.includes(endText)) {
              // end after the math element following endText
              const math = node.nextSibling;
              range.setEndAfter(math);
              break;
            }
          }
          const sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
        }""",
        [start_text, end_text],
    )


def wait_rendered(page) -> None:
    page.wait_for_function(
        "[...document.querySelectorAll('#proof-text .math')].every(e => e.dataset.rendered)"
    )


def open_claimed(browser, campaign, grader):
    """Claim the next item for `grader` (before Playwright starts), log in and open it."""
    claimed = queue.claim_next_item(campaign, grader)
    page = browser.page
    browser.login(grader)
    browser.goto(f"/campaigns/{claimed.campaign_id}/grade/{claimed.pk}/")
    wait_rendered(page)
    return page, claimed


def test_grader_grades_three_proofs_with_the_keyboard_and_anchors_an_issue(
    browser, three_items, expert
):
    campaign_id = three_items[0].campaign_id
    page = browser.page
    browser.login(expert)
    browser.goto(f"/campaigns/{campaign_id}/grade/")

    with page.expect_navigation():
        page.keyboard.press("n")  # Start grading
    wait_rendered(page)
    assert page.locator("#proof-text [data-lineno]").count() >= 4  # line numbers in the margin
    assert page.locator("#proof-text .katex").count() > 0

    # Help overlay: ? opens it, Esc closes it.
    page.keyboard.press("?")
    assert page.locator("#help-dialog").is_visible()
    page.keyboard.press("Escape")
    page.locator("#help-dialog").wait_for(state="hidden")  # Chromium closes it in a task

    # A selection that ends in a formula maps back to the TeX source with its delimiters.
    select_in_proof(page, "by ", "gives ")
    page.keyboard.press("i")
    assert page.locator("#issue-quote").get_attribute("data-source") == "by $n$ gives $n^2 \\ge n$"
    assert page.locator("#issue-quote .katex").count() == 2  # shown typeset, not as source
    page.keyboard.press("Escape")
    page.locator("#issue-dialog").wait_for(state="hidden")

    # The issue: select a passage, i, type a note, Tab to severity, arrow to fatal, Ctrl+Enter.
    select_in_proof(page, PASSAGE)
    page.keyboard.press("i")
    assert page.locator("#issue-dialog").is_visible()
    assert page.locator("#issue-quote").get_attribute("data-source") == PASSAGE
    page.keyboard.type("Why may we multiply? Needs n > 0.")
    # The note holds what was typed (if not: where the keys went, for the failure message).
    typed = page.evaluate(
        "[document.getElementById('issue-note').value, document.activeElement.id,"
        " document.activeElement.tagName, document.querySelector('dialog[open]')?.id]"
    )
    assert typed[0] == "Why may we multiply? Needs n > 0.", typed
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Control+Enter")
    page.locator("#issue-dialog").wait_for(state="hidden")
    assert page.locator("#issue-list li.fatal").count() == 1
    assert page.locator("mark.issue.fatal").inner_text() == PASSAGE

    page.keyboard.press("c")
    page.keyboard.type("The key inequality is asserted, not proved.")
    page.keyboard.press("Escape")
    page.keyboard.press("0")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    # Submit moved on to the next proof; the committed one is a link away.
    second_url = page.url.split("?")[0]
    assert page.locator("#committed-link").is_visible()
    assert page.locator("input[name=submission_key]").count() == 1  # a new proof to grade
    with page.expect_navigation():
        page.locator("#committed-link a").click()
    first_url = page.url
    assert first_url.split("?")[0] != second_url

    # The committed grade: the issue is highlighted where it was anchored, read-only.
    wait_rendered(page)
    mark = page.locator("mark.issue")
    assert mark.count() == 1
    assert mark.inner_text() == PASSAGE
    assert "fatal" in mark.get_attribute("class")
    assert page.locator("input[name=score][value='0']").is_checked()
    assert page.locator("#committed-state").inner_text().startswith("Committed grade — version 1")

    # n from the committed proof: the proof claimed next. 5 (= 0.5) then Enter, 1 then
    # Ctrl+Enter, each submission opening the next proof by itself.
    with page.expect_navigation():
        page.keyboard.press("n")
    assert page.url.split("?")[0] == second_url
    for key, submit in (("5", "Enter"), ("1", "Control+Enter")):
        wait_rendered(page)
        page.keyboard.press(key)
        with page.expect_navigation():
            page.keyboard.press(submit)
        assert page.locator("#committed-link").is_visible()

    assert page.locator("#nothing-left").is_visible()  # all three graded
    with page.expect_navigation():
        page.locator("#committed-link a").click()
    assert page.locator("#others").count() == 1  # committed: others revealed
    browser.assert_clean()

    grades = run_orm(
        lambda: list(
            Grade.objects.filter(grader=expert).order_by("created_at").prefetch_related("issues")
        )
    )
    assert [g.score for g in grades] == [Decimal("0"), Decimal("0.5"), Decimal("1")]
    issue = list(grades[0].issues.all())[0]
    text = run_orm(lambda: grades[0].proof.text)
    assert issue.quote == PASSAGE
    assert (issue.start, issue.end) == (text.index(PASSAGE), text.index(PASSAGE) + len(PASSAGE))
    assert issue.severity == "fatal" and issue.note == "Why may we multiply? Needs n > 0."
    assert grades[0].comment == "The key inequality is asserted, not proved."


def test_autosave_survives_a_network_outage(browser, three_items, expert):
    item = three_items[0]
    page, _ = open_claimed(browser, item.campaign, expert)

    page.route("**/draft/", lambda route: route.abort("internetdisconnected"))
    page.keyboard.press("5")
    page.keyboard.press("c")
    page.keyboard.type("Written while offline")
    page.keyboard.press("Escape")
    page.wait_for_function(
        "document.getElementById('draft-status').textContent.includes('Offline')"
    )
    # Active time runs while the page is visible and in use (here: just typed in).
    page.wait_for_function("+document.getElementById('active-seconds').value >= 2")
    assert run_orm(lambda: Draft.objects.count()) == 0

    page.unroute("**/draft/")  # the connection returns; the retry saves the draft
    page.wait_for_function(
        "document.getElementById('draft-status').textContent.includes('Draft saved')",
        timeout=20_000,
    )
    browser.log.clear()  # the aborted requests were the point of this test

    page.reload()
    wait_rendered(page)
    assert page.locator("#comment").input_value() == "Written while offline"
    assert page.locator("input[name=score][value='0.5']").is_checked()
    browser.assert_clean()
    draft = run_orm(lambda: Draft.objects.get(expert=expert))
    assert (draft.content["comment"], draft.content["score"]) == ("Written while offline", "0.5")
    assert draft.active_seconds >= 2


def test_grader_skips_with_a_reason_by_keyboard(browser, three_items, expert):
    page, claimed = open_claimed(browser, three_items[0].campaign, expert)
    page.keyboard.press("s")
    assert page.locator("#skip-dialog").is_visible()
    page.keyboard.press("ArrowDown")  # from "Outside my expertise" to "Too long"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.rstrip("/").split("/")[-1] != str(claimed.pk)  # the next proof
    browser.assert_clean()
    skip = run_orm(lambda: Skip.objects.get(grader=expert))
    assert (skip.item_id, skip.reason) == (claimed.pk, "too_long")


# LaTeX's own delimiters, display blocks with \tag, \\[2mm] and an ordered list, as in the
# DeepSeekMath-V2 proofs: the rendered text differs from the source in every one of them.
REAL_PROOF = r"""Denote \(c=f(0)\in\mathbb Z\). Then (1) and (2) become

\[
f(2x)+2c=f\bigl(f(x)\bigr),\qquad c+2f(y)=f\bigl(f(y)\bigr). \tag{1'}
\]

Factor \(2\):

\[
\begin{aligned}
2\bigl[f(x)+f(y)-f(x+y)-c\bigr]&=0,\\[2mm]
f(x)+f(y)&=f(x+y)+c.
\end{aligned}
\]

Since \(2\neq0\) the bracket must be zero. Hence

1. the base case holds, and
2. the step is obvious.
"""


def select_between(page, start_text: str, end_text: str) -> None:
    """Select from the start of `start_text` to the end of `end_text` in the proof."""
    page.evaluate(
        """([a, b]) => {
          const walker = document.createTreeWalker(
            document.getElementById('proof-text'), NodeFilter.SHOW_TEXT);
          let node, range = document.createRange(), started = false;
          while ((node = walker.nextNode())) {
            if (!started && node.data.includes(a)) {
              range.setStart(node, node.data.indexOf(a));
              started = true;
            }
            if (started && node.data.includes(b)) {
              range.setEnd(node, node.data.indexOf(b) + b.length);
              break;
            }
          }
          getSelection().removeAllRanges();
          getSelection().addRange(range);
        }""",
        [start_text, end_text],
    )


def test_issues_anchor_to_the_source_through_latex_delimiters_and_lists(
    browser, campaign, proof, expert
):
    campaign.items.all().delete()
    real = Proof.objects.create(problem=proof.problem, text=REAL_PROOF)
    item = CampaignItem.objects.create(campaign=campaign, proof=real)
    queue.claim_next_item(campaign, expert)
    page = browser.page
    browser.login(expert)
    browser.goto(f"/campaigns/{campaign.pk}/grade/{item.pk}/")
    wait_rendered(page)

    def source_between(a: str, b: str) -> str:
        start = REAL_PROOF.index(a)
        return REAL_PROOF[start : REAL_PROOF.index(b, start) + len(b)]

    cases = [
        ("Denote", "become"),  # inline \( \) math inside a sentence
        ("Factor", "Hence"),  # across two display blocks, \tag and \\[2mm]
        ("base case", "obvious"),  # across list items (the "2." is not rendered text)
    ]
    for a, b in cases:
        select_between(page, a, b)
        page.keyboard.press("i")
        assert page.locator("#issue-quote").get_attribute("data-source") == source_between(a, b)
        assert not page.locator("#issue-anchor-warning").is_visible()
        page.keyboard.type(f"about {a}")
        page.keyboard.press("Control+Enter")
        page.locator("#issue-dialog").wait_for(state="hidden")
    page.wait_for_function(
        "document.getElementById('draft-status').textContent.includes('Draft saved')",
        timeout=20_000,
    )
    page.reload()
    wait_rendered(page)
    for k in range(len(cases)):
        assert page.locator(f"mark.issue[data-issue='{k}']").count() >= 1
    first = page.locator("mark.issue[data-issue='0']").all_inner_texts()
    assert first[0].startswith("Denote") and "become" in first[-1]
    browser.assert_clean()

    draft = run_orm(lambda: Draft.objects.get(expert=expert))
    for issue, (a, b) in zip(draft.content["issues"], cases, strict=True):
        assert REAL_PROOF[issue["start"] : issue["end"]] == issue["quote"] == source_between(a, b)


def test_leaving_the_page_saves_the_draft_at_once(browser, three_items, expert):
    """No waiting for the autosave delay: pagehide sends the draft with a beacon."""
    page, _ = open_claimed(browser, three_items[0].campaign, expert)
    page.keyboard.press("1")
    page.keyboard.press("c")
    page.keyboard.type("Typed just before leaving")
    browser.goto("/")  # well within the 3 s autosave delay

    def saved_comment() -> str | None:
        draft = Draft.objects.filter(expert=expert).first()
        return draft.content["comment"] if draft else None

    for _ in range(50):  # the beacon is asynchronous: poll for up to 5 s
        if run_orm(saved_comment) == "Typed just before leaving":
            break
        page.wait_for_timeout(100)
    assert run_orm(saved_comment) == "Typed just before leaving"
    browser.assert_clean()


def test_an_issue_is_anchored_by_typing_words_of_the_passage(browser, three_items, expert):
    """No mouse, no caret browsing: i with nothing selected, then type the passage."""
    page, _ = open_claimed(browser, three_items[0].campaign, expert)

    page.keyboard.press("i")
    assert page.locator("#issue-quote").inner_text().startswith("No passage selected")
    assert page.locator("#issue-passage").evaluate("el => el === document.activeElement")
    page.keyboard.type("words that are nowhere")
    page.keyboard.press("Enter")
    assert page.locator("#issue-passage-missing").is_visible()  # refused, dialog still open
    assert page.locator("#issue-dialog").is_visible()

    # Words as the proof shows them, the formula typed as TeX: "n^2 \ge n" is $n^2 \ge n$.
    page.locator("#issue-passage").fill("")
    page.keyboard.type("gives n^2 \\ge n")
    page.keyboard.press("Tab")
    page.keyboard.type("Only for n >= 1.")
    page.keyboard.press("Control+Enter")
    page.locator("#issue-dialog").wait_for(state="hidden")
    assert page.locator("#issue-list li").count() == 1
    assert page.locator("mark.issue").count() >= 1

    page.keyboard.press("1")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    browser.assert_clean()
    grade = run_orm(lambda: Grade.objects.prefetch_related("issues").get(grader=expert))
    issue = run_orm(lambda: grade.issues.get())
    text = run_orm(lambda: grade.proof.text)
    quote = "gives $n^2 \\ge n$"
    assert (issue.start, issue.end, issue.quote) == (
        text.index(quote),
        text.index(quote) + len(quote),
        quote,
    )
    assert issue.note == "Only for n >= 1."


def test_leaving_a_changed_edit_unsaved_asks_first(browser, three_items, expert):
    """Edits of a committed grade are saved explicitly; leaving with changes asks."""
    item = queue.claim_next_item(three_items[0].campaign, expert)
    grading.submit_grade(
        item, expert, score="1", comment="", issues=[], active_seconds=5,
        submission_key="00000000-0000-4000-8000-000000000001",
    )  # fmt: skip
    page = browser.page
    browser.login(expert)
    path = f"/campaigns/{item.campaign_id}/grade/{item.pk}/"
    browser.goto(path)
    asked: list[str] = []

    def on_dialog(dialog) -> None:
        asked.append(dialog.type)
        dialog.dismiss()  # stay on the page

    page.on("dialog", on_dialog)
    browser.goto("/")  # nothing changed: leaves without asking
    assert asked == []
    browser.goto(path + "?edit=1")  # the edit form, opened on purpose (e, or the link)
    page.keyboard.press("0")  # a change, not saved
    page.keyboard.press("n")
    for _ in range(50):  # the prompt comes asynchronously: wait up to 5 s for it
        if asked:
            break
        page.wait_for_timeout(100)
    assert asked == ["beforeunload"]
    assert page.url.endswith(path + "?edit=1")  # still here, the change still on screen
    assert page.locator("input[name=score][value='0']").is_checked()
    assert run_orm(lambda: Grade.objects.get(grader=expert).score) == Decimal("1")
    browser.assert_clean()


def test_a_dialog_opened_again_at_once_keeps_its_focus(browser, three_items, expert):
    """Esc then i straight away: the first close's late event must not blur the new field.

    Nothing is selected, so the dialog focuses its Passage field each time."""
    page, _ = open_claimed(browser, three_items[0].campaign, expert)
    page.keyboard.press("i")
    assert page.locator("#issue-passage").evaluate("el => el === document.activeElement")
    focused = page.evaluate(
        """() => new Promise((resolve) => {
          document.getElementById("issue-dialog").close();  // its close event is queued
          document.body.dispatchEvent(new KeyboardEvent("keydown", { key: "i", bubbles: true }));
          setTimeout(() => resolve(document.activeElement.id), 50);
        })"""
    )
    assert focused == "issue-passage"
    page.keyboard.type("kept")
    assert page.locator("#issue-passage").input_value() == "kept"
    browser.assert_clean()


# --- submit advances; drafts survive reloads, other tabs and signed-out sessions -----------


def draft_comment(grader) -> str | None:
    draft = Draft.objects.filter(expert=grader).first()
    return draft.content["comment"] if draft else None


def wait_for_server(page, read, expected, seconds: float = 10) -> object:
    """Poll the database (through `run_orm`) until `read()` gives `expected`."""
    value = None
    for _ in range(int(seconds * 10)):
        value = run_orm(read)
        if value == expected:
            break
        page.wait_for_timeout(100)
    return value


def test_submit_opens_the_next_proof_and_the_next_keys_leave_the_committed_grade_alone(
    browser, three_items, expert
):
    page, first = open_claimed(browser, three_items[0].campaign, expert)
    page.keyboard.press("5")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(f"?committed={first.pk}")  # the next proof, a link back
    assert page.locator("#committed-link").is_visible()
    # Back, then 1 and Enter: the committed proof is drawn afresh, read-only; nothing written.
    page.go_back()
    page.locator("#committed-state").wait_for()
    wait_rendered(page)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)  # a submission, had there been one, would have started
    page.go_forward()
    page.locator("#committed-link").wait_for()
    wait_rendered(page)
    page.keyboard.press("1")  # meant for this proof, and it goes to this proof
    with page.expect_navigation():
        page.keyboard.press("Enter")

    def first_grade() -> tuple:
        g = Grade.objects.get(grader=expert, proof_id=first.proof_id)
        return g.score, g.version, g.history.count()

    assert run_orm(first_grade) == (Decimal("0.5"), 1, 1)

    # Back on the committed proof: read-only; 1 and Enter do nothing until e opens the edit.
    browser.goto(f"/campaigns/{first.campaign_id}/grade/{first.pk}/")
    wait_rendered(page)
    assert "Committed grade — version 1" in page.locator("#committed-state").inner_text()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)  # a navigation, had there been one, would have started
    assert page.url.endswith(f"/grade/{first.pk}/")
    assert page.locator("input[name=score][value='0.5']").is_checked()
    assert "Press e to edit" in page.locator("#draft-status").inner_text()
    with page.expect_navigation():
        page.keyboard.press("e")
    assert "Editing the committed grade" in page.locator("#committed-state").inner_text()
    with page.expect_navigation():
        page.keyboard.press("Enter")  # nothing changed: nothing written
    assert "Nothing changed; the grade stays at version 1" in page.locator(".messages").inner_text()
    assert run_orm(first_grade) == (Decimal("0.5"), 1, 1)
    browser.assert_clean()


def test_text_typed_just_before_a_reload_is_there_after_it_and_on_the_server(
    browser, three_items, expert
):
    item = queue.claim_next_item(three_items[0].campaign, expert)
    grading.save_draft(item, expert, score="1", comment="Old draft.", issues=[], active_seconds=3)
    page = browser.page
    browser.login(expert)
    browser.goto(f"/campaigns/{item.campaign_id}/grade/{item.pk}/")
    wait_rendered(page)

    flushes: list[str] = []

    def lose_the_first_flush(route) -> None:
        # The flush at unload is lost (network gone, or it lands after the next page drew):
        # what was typed must still survive.
        if not flushes:
            flushes.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/draft/", lose_the_first_flush)
    page.keyboard.press("c")  # the caret goes to the end: the new words follow the old
    page.keyboard.type(" Then typed and reloaded at once.")
    page.reload()  # well within the 3 s autosave delay
    wait_rendered(page)
    typed = "Old draft. Then typed and reloaded at once."
    assert page.locator("#comment").input_value() == typed
    assert wait_for_server(page, lambda: draft_comment(expert), typed) == typed
    assert flushes  # the lost flush really happened
    browser.log.clear()  # the aborted flush was the point
    page.reload()
    wait_rendered(page)
    assert page.locator("#comment").input_value() == typed
    browser.assert_clean()


def test_a_second_tab_on_the_same_proof_is_warned_and_overwrites_nothing(
    browser, three_items, expert
):
    page, claimed = open_claimed(browser, three_items[0].campaign, expert)
    other = page.context.new_page()
    other.goto(browser.url(f"/campaigns/{claimed.campaign_id}/grade/{claimed.pk}/"))
    wait_rendered(other)
    other.locator("#other-tab").wait_for(state="visible")
    page.locator("#other-tab").wait_for(state="visible")

    page.keyboard.press("c")
    page.keyboard.type("From the first tab")
    page.wait_for_function(
        "document.getElementById('draft-status').textContent.includes('Draft saved')"
    )
    other.keyboard.press("c")
    other.keyboard.type("From the second tab")
    other.wait_for_function(
        "document.getElementById('draft-status').textContent.includes('another tab')"
    )
    status = other.locator("#draft-status").inner_text()
    assert "You changed this draft in another tab" in status
    assert "someone else" not in status.lower()
    assert run_orm(lambda: draft_comment(expert)) == "From the first tab"
    # The refused draft stays with its own tab: reloading the first tab does not bring it.
    page.reload()
    wait_rendered(page)
    assert page.locator("#comment").input_value() == "From the first tab"
    assert run_orm(lambda: draft_comment(expert)) == "From the first tab"
    other.close()
    browser.log.clear()  # the other tab's refused draft (409) was the point


def test_an_expired_session_keeps_the_draft_and_sends_it_after_login(browser, three_items, expert):
    from tests.conftest import PASSWORD

    page, claimed = open_claimed(browser, three_items[0].campaign, expert)
    page.context.clear_cookies(name="sessionid")  # the session expires
    page.keyboard.press("c")
    page.keyboard.type("Typed after the session ended")
    page.locator("#signed-out").wait_for(state="visible", timeout=20_000)
    status = page.locator("#draft-status")
    assert "Signed out — your draft is kept in this browser" in status.inner_text()
    assert status.locator("form, input").count() == 0  # no login page swapped into it
    assert run_orm(lambda: draft_comment(expert)) is None

    with page.expect_navigation():
        page.locator("#signed-out a").click()
    page.fill("input[name=username]", expert.get_username())
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form.login button[type=submit]")
    assert page.url.endswith(f"/grade/{claimed.pk}/")  # back on the proof
    wait_rendered(page)
    typed = "Typed after the session ended"
    assert page.locator("#comment").input_value() == typed
    assert wait_for_server(page, lambda: draft_comment(expert), typed) == typed
    browser.assert_clean()


def test_issue_quotes_in_the_sidebar_show_typeset_math_not_source(browser, three_items, expert):
    """A quote is a slice of the source: the sidebar shows it rendered, also when it was cut
    inside a formula, and never shows TeX delimiters or Markdown asterisks."""
    item = queue.claim_next_item(three_items[0].campaign, expert)
    text = item.proof.text
    whole, cut = "**Claim.** For every integer $n \\ge 1$", "1$, multiplying both sides"
    grading.save_draft(
        item,
        expert,
        score=None,
        comment="",
        active_seconds=0,
        issues=[
            {"start": text.index(q), "end": text.index(q) + len(q), "quote": q, "note": "n",
             "severity": "minor"}
            for q in (whole, cut)
        ],
    )  # fmt: skip
    page = browser.page
    browser.login(expert)
    browser.goto(f"/campaigns/{item.campaign_id}/grade/{item.pk}/")
    wait_rendered(page)
    quotes = page.locator("#issue-list .quote")
    assert quotes.count() == 2
    page.wait_for_function(
        "[...document.querySelectorAll('#issue-list .quote .math')].every(e => e.dataset.rendered)"
    )
    assert quotes.nth(0).locator(".katex").count() == 1
    assert quotes.nth(1).locator(".katex").count() == 1  # the "1" of the cut formula
    for k in range(2):
        visible = quotes.nth(k).evaluate(
            "el => { const c = el.cloneNode(true);"
            " c.querySelectorAll('.katex-mathml').forEach(m => m.remove()); return c.textContent; }"
        )
        assert "$" not in visible and "*" not in visible and "\\" not in visible, visible
    assert quotes.nth(0).inner_text().startswith("“Claim. For every integer")
    assert "multiplying both sides" in quotes.nth(1).inner_text()
    browser.assert_clean()
