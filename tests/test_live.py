"""Live progress: a grade committed in one browser moves the owner's numbers in another.

pytest-django's `live_server` speaks WSGI only, so these tests serve the project's ASGI
application (HTTP, static files and the production websocket stack of proofdesk/asgi.py)
with Daphne in a background thread, sharing the test database like `live_server` does.
Twisted's reactor can run once per process, so the server starts on first use and serves
every test of the session.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from annotate import grading
from annotate.models import CampaignItem, Grade
from annotate.work import queue
from proofdesk.asgi import application
from tests.browser import CHROMIUM_ARGS, TIMEOUT_MS, BrowserLog, _attach, chromium_or_skip, run_orm
from tests.conftest import PASSWORD
from tests.test_websocket import ORIGIN, TIMEOUT, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

_server: dict[str, str] = {}
_server_lock = threading.Lock()


def asgi_server_url() -> str:
    """Start Daphne serving proofdesk's ASGI application (once), return its base URL."""
    with _server_lock:
        if "url" in _server:
            return _server["url"]
        from channels.routing import ProtocolTypeRouter
        from daphne.server import Server  # installs Twisted's asyncio reactor
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        served = ProtocolTypeRouter(
            {
                "http": ASGIStaticFilesHandler(application.application_mapping["http"]),
                "websocket": application.application_mapping["websocket"],
            }
        )
        server = Server(
            served,
            endpoints=["tcp:port=0:interface=127.0.0.1"],
            signal_handlers=False,
            verbosity=0,
        )
        threading.Thread(target=server.run, name="daphne", daemon=True).start()
        deadline = time.monotonic() + 10
        while not server.listening_addresses:
            if time.monotonic() > deadline:
                raise RuntimeError("Daphne did not start listening within 10 s")
            time.sleep(0.02)
        host, port = server.listening_addresses[0]
        _server["url"] = f"http://{host}:{port}"
        return _server["url"]


class People:
    """One Chromium, one isolated browser context (cookies, storage) per person."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.log = BrowserLog()
        self._playwright = None
        self._browser = None

    def page_for(self, user):
        """A logged-in page for `user`. Starts Chromium on first use: from then on the ORM
        is off limits in the test's thread (see tests/browser.py), so fixtures come first."""
        if self._browser is None:
            from playwright.sync_api import sync_playwright

            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=str(chromium_or_skip()), headless=True, args=CHROMIUM_ARGS
            )
        context = self._browser.new_context(service_workers="block")
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        _attach(page, self.log)
        page.goto(self.base_url + "/login/")
        page.fill("input[name=username]", user.get_username())
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation(wait_until="load"):
            page.click("form.login button[type=submit]")
        assert "/login/" not in page.url, f"login as {user.get_username()} failed"
        return page

    def close(self) -> None:
        try:
            if self._browser is not None:
                self._browser.close()
        finally:
            if self._playwright is not None:
                self._playwright.stop()
            self._browser = self._playwright = None


@pytest.fixture
def people(transactional_db) -> Iterator[People]:
    chromium_or_skip()
    crowd = People(asgi_server_url())
    try:
        yield crowd
    finally:
        crowd.close()


@pytest.mark.browser
def test_a_grade_in_one_browser_moves_the_owners_numbers_in_another(
    people, campaign, owner, expert
):
    progress_path = reverse("grading_progress", args=[campaign.pk])
    owner_page = people.page_for(owner)
    frames: list[str] = []
    owner_page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f)))
    owner_page.goto(people.base_url + progress_path, wait_until="load")
    owner_page.wait_for_selector("[data-live-status][data-state=live]")
    bar = owner_page.locator("#campaign-bar")
    assert "0 of 2 grades (0 %)" in bar.inner_text()
    # A marker that a reload would wipe: the numbers must move without one.
    owner_page.evaluate("window.__notReloaded = true")

    grader_page = people.page_for(expert)
    grader_page.goto(people.base_url + reverse("campaign_detail", args=[campaign.pk]))
    with grader_page.expect_navigation(wait_until="load"):
        grader_page.click("button:has-text('Start grading')")
    grader_page.locator("label.score-button", has=grader_page.locator("input[value='1']")).click()
    with grader_page.expect_navigation(wait_until="load"):
        grader_page.click("#submit-button")
    assert run_orm(lambda: Grade.objects.filter(grader=expert).count()) == 1

    owner_page.wait_for_function(
        "document.querySelector('#campaign-bar').innerText.includes('1 of 2 grades (50 %)')"
    )
    assert owner_page.evaluate("window.__notReloaded") is True
    assert "emmy_expert" in owner_page.locator("#graders").inner_text()
    assert "1" in owner_page.locator("#item-counts").inner_text()
    assert frames, "the owner's page received no websocket frame"
    for frame in frames:
        assert "score" not in json.loads(frame)
    problems = people.log.problems()
    assert not problems, "the browsers saw problems:\n" + "\n".join(problems)


@pytest.mark.browser
def test_a_skip_shows_up_live_on_the_owners_campaign_page(people, campaign, owner, expert):
    owner_page = people.page_for(owner)
    owner_page.goto(people.base_url + reverse("campaign_detail", args=[campaign.pk]))
    owner_page.wait_for_selector("[data-live-status][data-state=live]")
    item = run_orm(lambda: queue.claim_next_item(campaign, expert))
    run_orm(lambda: queue.skip_item(item, expert, "too_long", "forty pages"))
    # The items table gains the skip count without a reload.
    owner_page.wait_for_function(
        "[...document.querySelectorAll('#items tbody td')].some(td => td.innerText === '1')"
    )
    assert not people.log.problems()


def test_a_real_submission_sends_counts_and_never_a_score(campaign, owner, expert):
    cookie = session_cookie(owner)
    item = queue.claim_next_item(campaign, expert)

    def submit() -> None:
        grading.submit_grade(
            CampaignItem.objects.select_related("campaign", "proof").get(pk=item.pk),
            expert,
            score="0.5",
            comment="Zebra-comment",
            issues=[],
            active_seconds=30,
            submission_key=uuid.uuid4(),
        )

    async def scenario():
        ws = WebsocketCommunicator(
            application, f"/ws/campaigns/{campaign.pk}/", headers=[ORIGIN, cookie]
        )
        assert (await ws.connect(timeout=TIMEOUT))[0]
        try:
            await database_sync_to_async(submit)()
            return await ws.receive_json_from(timeout=TIMEOUT)
        finally:
            await ws.disconnect()

    frame = async_to_sync(scenario)()
    assert frame == {"type": "progress", "item": item.pk, "committed": 1, "overlap": 2}
