"""Proof of life in a real browser: log in, open a proof, see KaTeX typeset it."""

from __future__ import annotations

import pytest

from annotate.models import Campaign, CampaignItem, Proof
from tests.browser import run_orm

pytestmark = pytest.mark.browser

DISPLAY = "$$\\int_0^1 x^2\\,dx = \\frac13$$"
PROOF_TEXT = f"""**Claim.** The area under $y = x^2$ on \\([0,1]\\) is one third.

Indeed

{DISPLAY}

and since \\(x^2 \\le x\\) there, the area is at most $\\tfrac12$. Hence $a<b$ & *done*.
"""


@pytest.fixture
def math_item(campaign, problem) -> CampaignItem:
    proof = Proof.objects.create(problem=problem, text=PROOF_TEXT, generator_model="model-x")
    return CampaignItem.objects.create(campaign=campaign, proof=proof)


def item_path(item: CampaignItem) -> str:
    return f"/campaigns/{item.campaign_id}/items/{item.pk}/"


def test_static_assets_are_served(browser):
    for path in [
        "/static/vendor/katex/katex.min.js",
        "/static/vendor/katex/katex.min.css",
        "/static/vendor/katex/fonts/KaTeX_Main-Regular.woff2",
        "/static/vendor/htmx.min.js",
        "/static/js/math.js",
    ]:
        response = browser.page.request.get(browser.url(path))
        assert response.status == 200, path
        assert len(response.body()) > 100, path


def test_expert_logs_in_and_sees_the_proof_typeset(browser, math_item, expert):
    # The order matters: `math_item` (ORM) is set up before `browser` starts Playwright.
    page = browser.page

    browser.login(expert)
    assert page.locator("h1").inner_text() == "Campaigns"
    browser.goto(item_path(math_item))
    page.wait_for_function(
        "document.querySelectorAll('.math').length > 0 &&"
        " [...document.querySelectorAll('.math')].every(e => e.dataset.rendered)"
    )
    page.evaluate("document.fonts.ready")

    proof = page.locator("#proof-text")
    visible = proof.inner_text()
    assert "$" not in visible
    assert "\\(" not in visible and "\\[" not in visible
    assert "Claim." in visible and "done" in visible
    assert proof.locator(".katex").count() == 6
    assert proof.locator(".katex-display").count() == 1
    assert proof.locator(".katex-error").count() == 0
    assert (
        "\\int_0^1 x^2\\,dx = \\frac13" in proof.locator(".katex-display annotation").text_content()
    )
    # KaTeX's own fonts came from our server and are in use.
    assert page.evaluate("document.fonts.check('16px KaTeX_Main')")
    fonts = [url for status, url in browser.log.responses if "/katex/fonts/" in url]
    assert fonts and all(status == 200 for status, url in browser.log.responses
                         if "/katex/fonts/" in url)  # fmt: skip
    assert all(url.startswith(browser.base_url) for _, url in browser.log.responses)
    browser.assert_clean()


HOSTILE_PROOF = (
    '<img src=x onerror="document.title=\'pwned\'"> Then $x"onmouseover="1$ ok.\n\n'
    "See $\\href{javascript:document.title='pwned'}{here}$ and "
    "\\(\\url{javascript:alert(1)}\\)."
)


def test_problem_statement_is_typeset_and_hostile_text_stays_text(browser, campaign, expert):
    # The ORM is used from a worker thread, as it must be once Playwright runs.
    item = run_orm(lambda: campaign.items.select_related("proof").get())
    run_orm(lambda: Proof.objects.filter(pk=item.proof_id).update(text=HOSTILE_PROOF))
    browser.login(expert)
    browser.goto(item_path(item))
    page = browser.page
    page.wait_for_selector(".statement .katex")
    page.wait_for_function("[...document.querySelectorAll('.math')].every(e => e.dataset.rendered)")

    proof = page.locator("#proof-text")
    assert page.title() != "pwned"
    assert proof.locator("img").count() == 0
    assert "<img src=x" in proof.inner_text()
    # KaTeX runs with trust off: \\href and \\url make no link.
    assert proof.locator("a").count() == 0
    assert proof.locator(".katex").count() == 3
    browser.assert_clean()


def test_outsider_cannot_open_the_item(browser, campaign, outsider):
    item_id = run_orm(lambda: campaign.items.get().pk)
    browser.login(outsider)
    response = browser.goto(f"/campaigns/{campaign.pk}/items/{item_id}/")
    assert response.status == 404
    browser.log.clear()  # the 404 (and Chromium's console line about it) was the point
    browser.assert_clean()


def test_logout_button_ends_the_session(browser, campaign, expert):
    browser.login(expert)
    page = browser.page
    with page.expect_navigation():
        page.click("form[action='/logout/'] button")
    assert page.url.endswith("/login/")
    browser.goto(f"/campaigns/{campaign.pk}/")
    assert "/login/" in page.url
    assert run_orm(lambda: Campaign.objects.count()) == 1
    browser.assert_clean()


LONG_PROOF = "\n\n".join(
    f"**Step {i}.** Since $a_{{{i}}} \\le \\frac{{{i}}}{{{i} + 1}}$ and $b_{{{i}}}^2 \\ge 0$, "
    f"we get \\(\\sum_{{k \\le {i}}} a_k b_k \\le {i}\\) as claimed."
    for i in range(1, 151)
)
# Records, on the page's own terms, the moment math.js says the screen is typeset: how many
# formulas are typeset by then, and whether any formula on screen is still raw TeX.
FIRST_PAINT_PROBE = """
(() => {
  const seen = (window.__firstPaint = {});
  new MutationObserver((_, observer) => {
    if (!document.documentElement.dataset.math) return;
    observer.disconnect();
    const all = [...document.querySelectorAll("#proof-text .math")];
    const onScreen = all.filter((el) => {
      const r = el.getBoundingClientRect();
      return r.bottom > 0 && r.top < innerHeight;
    });
    seen.total = all.length;
    seen.typeset = all.filter((el) => el.dataset.rendered).length;
    seen.onScreen = onScreen.length;
    seen.onScreenRaw = onScreen.filter((el) => !el.querySelector(".katex")).length;
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-math"] });
})();
"""


def test_a_long_proof_is_typeset_on_screen_first_then_entirely(browser, campaign, problem, expert):
    proof = Proof.objects.create(problem=problem, text=LONG_PROOF, generator_model="model-x")
    item = CampaignItem.objects.create(campaign=campaign, proof=proof)
    browser.login(expert)
    page = browser.page
    page.add_init_script(FIRST_PAINT_PROBE)
    browser.goto(item_path(item))
    page.wait_for_function("document.documentElement.dataset.math === 'all'")

    first = page.evaluate("window.__firstPaint")
    assert first["total"] == 450
    # Nothing on screen was ever shown as raw TeX, and the rest was left for later.
    assert first["onScreen"] > 0 and first["onScreenRaw"] == 0
    assert first["typeset"] < first["total"]
    # ... and later came: every formula is typeset, the last one included.
    assert page.locator("#proof-text .math:not([data-rendered])").count() == 0
    assert page.locator("#proof-text .katex").count() == 450
    assert page.locator("#proof-text .katex-error").count() == 0
    last = page.locator("#proof-text p").last
    last.scroll_into_view_if_needed()
    assert "\\sum_{k \\le 150} a_k b_k \\le 150" in last.locator("annotation").last.text_content()
    assert "$" not in last.inner_text()
    browser.assert_clean()
