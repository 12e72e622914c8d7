"""examples/batch-screen.html in headless Chromium, against the running function on its own
origin: it loads the batch through CORS, shows the counters, pages, filters, gets 304s while
nothing changes and the new numbers when something does, and says when the session expires."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import BrowserContext, Page, Response, expect

from calls_batch_get.auth import LEEWAY_SECONDS
from scripts.browser import CHROMIUM, chromium
from scripts.dev import SCREEN, screen_server
from tests.conftest import AppFactory
from tests.database import Seeder
from tests.live import end_app_sessions, serving
from tests.scenarios import BIG_BATCH, USER_A, counters, ordered, seed
from tests.tokens import TokenFactory

POLL_MS = 400
# Generous: the machine is shared with other test runs.
WAIT_MS = 20_000


@dataclass(frozen=True)
class Screen:
    page_url: str
    api_url: str

    def link(self, token: str) -> str:
        fragment = urlencode(
            {"api": self.api_url, "batch_id": str(BIG_BATCH.id), "token": token, "poll": POLL_MS}
        )
        return f"{self.page_url}#{fragment}"


@pytest.fixture
def screen(
    db: Seeder, database_url: str, function_url: str, make_app: AppFactory
) -> Iterator[Screen]:
    """The function on the direct store over the scenarios' data, and the page on another
    origin (another port), as ./run.sh serves them."""
    seed(db.conn)
    app = make_app(DATABASE_URL=function_url).application
    with serving(app) as api_url, screen_server(0) as files:
        yield Screen(f"http://127.0.0.1:{files.server_address[1]}/{SCREEN}", f"{api_url}/")
    end_app_sessions(database_url)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: .ci/run installs Debian's chromium"
    with chromium(tmp_path / "profile") as context:
        context.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)
        yield context


def statuses_from(page: Page, api_url: str) -> list[int]:
    seen: list[int] = []

    def note(response: Response) -> None:
        if response.url.startswith(api_url) and response.request.method == "GET":
            seen.append(response.status)

    page.on("response", note)
    return seen


def expect_counters(page: Page, numbers: dict[str, object]) -> None:
    for name in ("total_contacts", "queued", "in_progress", "completed", "failed", "skipped",
                 "remaining_count"):
        expect(page.locator(f"[data-counter={name}]")).to_have_text(f"{numbers[name]:,}")
    expect(page.locator("#progress-text")).to_have_text(f"{numbers['progress_percentage']:.1f}%")


def row_ids(page: Page) -> list[str | None]:
    return [row.get_attribute("data-id") for row in page.locator("#contacts tr").all()]


@pytest.mark.timeout(180)
def test_the_screen_shows_pages_filters_and_polls(
    screen: Screen, browser: BrowserContext, tokens: TokenFactory, db: Seeder
) -> None:
    page = browser.new_page()
    statuses = statuses_from(page, screen.api_url)
    page.goto(screen.link(tokens.es256(USER_A)))

    expect(page.locator("#campaign")).to_have_text("Big")
    expect(page.locator("#status")).to_have_text("processing")
    expect_counters(page, counters(BIG_BATCH))
    contacts = [str(c["id"]) for c in ordered(BIG_BATCH)]
    expect(page.locator("#page-info")).to_have_text(f"1\u201325 of {len(contacts)}")
    assert row_ids(page) == contacts[:25]
    assert "token=" not in page.url, "the token leaves the address bar"

    page.click("#next")
    expect(page.locator("#page-info")).to_have_text(f"26\u201350 of {len(contacts)}")
    assert row_ids(page) == contacts[25:50]

    page.select_option("#status-filter", "completed")
    completed = [str(c["id"]) for c in ordered(BIG_BATCH, "completed")]
    expect(page.locator("#page-info")).to_have_text(f"1\u201325 of {len(completed)}")
    assert row_ids(page) == completed[:25]
    expect(page.locator("#contacts td.status")).to_have_text(["completed"] * 25)

    # Unchanged: the polls are answered 304, and the page shows what it had.
    footer = page.locator("#poll-state")
    expect(footer).to_contain_text("unchanged (304")
    assert 304 in statuses
    assert row_ids(page) == completed[:25]

    # Changed: the next poll gets a 200 with the new numbers.
    queued = next(c for c in ordered(BIG_BATCH) if c["status"] == "queued")
    db.conn.execute(
        "update public.campaign_contacts set status = 'completed' where id = %s", (queued["id"],)
    )
    before = counters(BIG_BATCH)
    expect(page.locator("[data-counter=completed]")).to_have_text(f"{before['completed'] + 1:,}")
    expect(page.locator("[data-counter=queued]")).to_have_text(f"{before['queued'] - 1:,}")
    expect(page.locator("#page-info")).to_have_text(f"1\u201325 of {len(completed) + 1}")
    assert statuses.count(200) >= 4  # first load, next page, filter, the change



@pytest.mark.timeout(120)
def test_the_screen_says_when_the_session_expires(
    screen: Screen, browser: BrowserContext, tokens: TokenFactory
) -> None:
    # Valid for a few more seconds (the leeway), then every poll is a 401 token_expired.
    token = tokens.es256(USER_A, exp=int(time.time()) - LEEWAY_SECONDS + 4)
    page = browser.new_page()
    statuses = statuses_from(page, screen.api_url)
    page.goto(screen.link(token))
    expect(page.locator("#campaign")).to_have_text("Big")
    expect(page.locator("#message")).to_have_text(
        "Your session has expired. Sign in again to keep watching this batch."
    )
    expect(page.locator("#message")).to_be_visible()
    assert statuses[0] == 200
    assert statuses[-1] == 401
    # Polling stops: a refreshed token is the user's to get, not the page's to retry for.
    polls = statuses.copy()
    page.wait_for_timeout(3 * POLL_MS)
    assert statuses == polls
