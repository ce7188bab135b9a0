"""Real-browser fixtures: Debian's Chromium driven by Playwright against a live server.

Use the `browser` fixture (registered in conftest) in a test marked `@pytest.mark.browser`:

    @pytest.mark.browser
    def test_it_grades_with_the_keyboard(browser, campaign, expert):
        browser.login(expert)
        browser.goto(f"/campaigns/{campaign.pk}/grade/")
        ...
        assert run_orm(lambda: Grade.objects.count()) == 1
        browser.assert_clean()

The app is served by pytest-django's `live_server` (a threaded server in this process that
shares the test database and serves static files), so every test using it runs with
`transactional_db`. Chromium starts on the first use of `browser.page` (or `goto`, `login`).
From then on an event loop runs in the main thread and Django refuses ORM calls there:
create data in fixtures or before the first browser step, and read or write the database
afterwards through `run_orm()`, which runs the query in a worker thread.

`browser.log` records failed requests, 4xx/5xx responses, console errors and uncaught
exceptions; `browser.assert_clean()` fails listing them, `browser.log.clear()` forgets them
after a step that was meant to fail.

Chromium is the distribution's `/usr/bin/chromium` (never `playwright install`): missing,
the test skips outside CI and fails in CI, where `.ci/run` installs it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connections

CHROMIUM = Path(os.environ.get("PROOFDESK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 15_000  # the longest any single browser step may take on a loaded CI machine


def run_orm[T](query: Callable[[], T]) -> T:
    """Run `query` in a worker thread (the ORM is off limits while Playwright runs)."""
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["value"] = query()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


@dataclass
class BrowserLog:
    """Everything that went wrong in the page, kept so a test can assert there was nothing."""

    failed_requests: list[str] = field(default_factory=list)
    error_responses: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    responses: list[tuple[int, str]] = field(default_factory=list)

    def clear(self) -> None:
        """Forget what was seen so far (after a step that was meant to fail)."""
        for entries in (self.failed_requests, self.error_responses, self.console_errors):
            entries.clear()
        self.page_errors.clear()

    def problems(self) -> list[str]:
        return self.failed_requests + self.error_responses + self.console_errors + self.page_errors


class Browser:
    """One page in a fresh Chromium profile, started on first use.

    Starting lazily lets a test request `browser` in any order among fixtures that write
    to the database: Playwright (and its event loop) starts only in the test body.
    """

    def __init__(self, base_url: str, profile_dir: Path, chromium: Path) -> None:
        self.base_url = base_url
        self.log = BrowserLog()
        self._profile_dir = profile_dir
        self._chromium = chromium
        self._playwright = None
        self._context = None
        self._page = None

    @property
    def page(self):  # playwright.sync_api.Page (typed loosely: playwright is a test extra)
        if self._page is None:
            from playwright.sync_api import sync_playwright

            self._playwright = sync_playwright().start()
            self._context = self._playwright.chromium.launch_persistent_context(
                str(self._profile_dir),
                executable_path=str(self._chromium),
                headless=True,
                args=CHROMIUM_ARGS,
                service_workers="block",
            )
            self._context.set_default_timeout(TIMEOUT_MS)
            page = self._context.pages[0] if self._context.pages else self._context.new_page()
            _attach(page, self.log)
            self._page = page
        return self._page

    def close(self) -> None:
        try:
            if self._context is not None:
                self._context.close()
        finally:
            # Stopping Playwright stops its event loop, which would otherwise keep the ORM
            # locked out of the main thread for the rest of the session.
            if self._playwright is not None:
                self._playwright.stop()
            self._page = self._context = self._playwright = None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def goto(self, path: str):
        """Open `path` on the live server and wait until the page and its assets loaded."""
        return self.page.goto(self.url(path), wait_until="load")

    def login(self, user, password: str | None = None) -> None:
        """Log `user` in through the login form, as a person would."""
        from tests.conftest import PASSWORD

        self.goto("/login/")
        self.page.fill("input[name=username]", user.get_username())
        self.page.fill("input[name=password]", password or PASSWORD)
        with self.page.expect_navigation(wait_until="load"):
            self.page.click("form.login button[type=submit]")
        if urlsplit(self.page.url).path == "/login/":
            raise AssertionError(f"login as {user.get_username()} failed: still on the form")

    def assert_clean(self) -> None:
        """No failed request, no 4xx/5xx response, no console error, no uncaught exception."""
        problems = self.log.problems()
        assert not problems, "the browser saw problems:\n" + "\n".join(problems)


def _attach(page, log: BrowserLog) -> None:
    def on_request_failed(request) -> None:
        # Chromium fetches the favicon on its own and aborts that fetch when the page
        # navigates on at once (a submit, a live refresh): not the page's request.
        if request.failure == "net::ERR_ABORTED" and "favicon" in request.url:
            return
        log.failed_requests.append(
            f"request failed: {request.method} {request.url} ({request.failure})"
        )

    def on_response(response) -> None:
        log.responses.append((response.status, response.url))
        if response.status >= 400:
            log.error_responses.append(f"HTTP {response.status}: {response.url}")

    def on_console(message) -> None:
        if message.type == "error":
            log.console_errors.append(f"console error: {message.text} at {message.location}")

    page.on("requestfailed", on_request_failed)
    page.on("response", on_response)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: log.page_errors.append(f"uncaught: {exc}"))


def chromium_or_skip() -> Path:
    if not os.access(CHROMIUM, os.X_OK):
        from tests.conftest import require_service

        require_service("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
def browser(live_server, tmp_path) -> Iterator[Browser]:
    """A fresh Chromium profile with one page, logged out, pointed at the live server."""
    session = Browser(live_server.url, tmp_path / "chromium-profile", chromium_or_skip())
    try:
        yield session
    finally:
        session.close()
