"""examples/batch-screen.html in headless Chromium, against the running function on its own
origin: it loads the batch through CORS, shows every counter and readable values, pages forward
by next_cursor (offsets only for a page number), filters, gets 304s while nothing changes and the
new numbers when something does, fits a phone, and says clearly when the batch is not found or
the session expires, taking a new token to go on."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from uuid import UUID

import pytest
from playwright.sync_api import BrowserContext, Page, Request, Response, expect

from calls_batch_get.auth import LEEWAY_SECONDS
from scripts.browser import CHROMIUM, chromium
from scripts.dev import SCREEN, screen_server
from tests.conftest import AppFactory
from tests.database import Seeder
from tests.live import end_app_sessions, serving
from tests.scenarios import (
    BIG_BATCH,
    MISSING_BATCH,
    USER_A,
    BatchSeed,
    counters,
    ordered,
    seed,
)
from tests.tokens import TokenFactory

POLL_MS = 400
# Generous: the machine is shared with other test runs.
WAIT_MS = 20_000
PAGE_SIZE = 25  # the page's own
# The screen's words for the API's values, written out here rather than derived from the page.
STATUS_LABELS = {
    "pending": "Pending", "queued": "Queued", "in_progress": "In progress",
    "completed": "Completed", "failed": "Failed", "skipped": "Skipped",
}
EXPIRED = "Your session has expired. Paste a new access token to keep watching this batch."


@dataclass(frozen=True)
class Screen:
    page_url: str
    api_url: str

    def link(self, token: str, batch_id: UUID = BIG_BATCH.id) -> str:
        fragment = urlencode(
            {"api": self.api_url, "batch_id": str(batch_id), "token": token, "poll": POLL_MS}
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


@dataclass
class Traffic:
    """The page's GETs to the API (not the CORS preflights), and their answers, in order."""

    requests: list[Request] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)

    @property
    def statuses(self) -> list[int]:
        return [response.status for response in self.responses]

    def queries(self, since: int = 0) -> list[dict[str, list[str]]]:
        return [parse_qs(urlsplit(r.url).query) for r in self.requests[since:]]

    def last_answer(self) -> dict[str, Any]:
        """The body of the last 200: what the screen shows, as polls since were 304s."""
        body: dict[str, Any] = next(r for r in reversed(self.responses) if r.status == 200).json()
        return body


def traffic_of(page: Page, api_url: str) -> Traffic:
    traffic = Traffic()

    def note_request(request: Request) -> None:
        if request.url.startswith(api_url) and request.method == "GET":
            traffic.requests.append(request)

    def note_response(response: Response) -> None:
        if response.url.startswith(api_url) and response.request.method == "GET":
            traffic.responses.append(response)

    page.on("request", note_request)
    page.on("response", note_response)
    return traffic


def pending(batch: BatchSeed) -> int:
    return sum(1 for c in batch.contacts if c["status"] == "pending")


def expect_counters(page: Page, numbers: dict[str, Any]) -> None:
    for name in ("total_contacts", "pending", "queued", "in_progress", "completed", "failed",
                 "skipped", "remaining_count"):
        expect(page.locator(f"[data-counter={name}]")).to_have_text(f"{numbers[name]:,}")
    expect(page.locator("#progress-text")).to_have_text(f"{numbers['progress_percentage']:.1f}%")


def row_ids(page: Page) -> list[str | None]:
    return [row.get_attribute("data-id") for row in page.locator("#contacts tr").all()]


def cell(page: Page, contact_id: object, name: str) -> str:
    return page.locator(f'#contacts tr[data-id="{contact_id}"] td[data-field={name}]').inner_text()


def expect_page(page: Page, contacts: list[str], number: int) -> None:
    start = (number - 1) * PAGE_SIZE
    shown = contacts[start : start + PAGE_SIZE]
    expect(page.locator("#page-info")).to_have_text(
        f"{start + 1}\u2013{start + len(shown)} of {len(contacts)}"
    )
    assert row_ids(page) == shown


def by_cursor(cursor: str) -> dict[str, list[str]]:
    return {"batch_id": [str(BIG_BATCH.id)], "contact_limit": [str(PAGE_SIZE)],
            "contact_cursor": [cursor]}


def by_offset(offset: int | None = None) -> dict[str, list[str]]:
    query = {"batch_id": [str(BIG_BATCH.id)], "contact_limit": [str(PAGE_SIZE)]}
    return query if offset is None else {**query, "contact_offset": [str(offset)]}


def asked_since(traffic: Traffic, mark: int, query: dict[str, list[str]]) -> None:
    """Every request since ``mark`` was ``query``, bar a poll of the page before that was
    already on its way."""
    after = traffic.queries(mark)
    assert query in after
    assert all(q == query or q == traffic.queries(mark - 1)[0] for q in after), after


@pytest.mark.timeout(180)
def test_the_screen_pages_forward_by_next_cursor(
    screen: Screen, browser: BrowserContext, tokens: TokenFactory
) -> None:
    page = browser.new_page()
    traffic = traffic_of(page, screen.api_url)
    page.goto(screen.link(tokens.es256(USER_A)))
    contacts = [str(c["id"]) for c in ordered(BIG_BATCH)]
    expect_page(page, contacts, 1)
    assert traffic.queries() == [by_offset()] * len(traffic.requests)

    # Next: the last answer's next_cursor, no offset; and the page's polls keep asking by it.
    cursors: list[str] = []
    for number in (2, 3):
        cursors.append(traffic.last_answer()["contact_pagination"]["next_cursor"])
        assert cursors[-1]
        mark = len(traffic.requests)
        page.click("#next")
        expect_page(page, contacts, number)
        assert traffic.last_answer()["contacts"][0]["id"] == contacts[(number - 1) * PAGE_SIZE]
        asked_since(traffic, mark, by_cursor(cursors[-1]))
    polled = len(traffic.requests)
    expect(page.locator("#poll-state")).to_contain_text("unchanged (304")
    asked_since(traffic, polled, by_cursor(cursors[-1]))

    # Previous: back by the cursor that led to page 2, then page 1 as it was first asked.
    mark = len(traffic.requests)
    page.click("#prev")
    expect_page(page, contacts, 2)
    asked_since(traffic, mark, by_cursor(cursors[0]))
    mark = len(traffic.requests)
    page.click("#prev")
    expect_page(page, contacts, 1)
    asked_since(traffic, mark, by_offset())
    expect(page.locator("#prev")).to_be_disabled()

    # A page number is a place: jumped to by offset, and walked on from by cursor again.
    expect(page.locator("#page-count")).to_have_text("of 9")
    mark = len(traffic.requests)
    page.fill("#page-number", "7")
    page.click("#jump button[type=submit]")
    expect_page(page, contacts, 7)
    asked_since(traffic, mark, by_offset(6 * PAGE_SIZE))
    for number in (8, 9):
        cursor = traffic.last_answer()["contact_pagination"]["next_cursor"]
        mark = len(traffic.requests)
        page.click("#next")
        expect_page(page, contacts, number)
        asked_since(traffic, mark, by_cursor(cursor))
    assert traffic.last_answer()["contact_pagination"]["next_cursor"] is None
    expect(page.locator("#next")).to_be_disabled()
    expect(page.locator("#page-number")).to_have_value("9")
    assert all(s in (200, 304) for s in traffic.statuses), traffic.statuses


@pytest.mark.timeout(120)
def test_the_screen_shows_every_counter_and_readable_values(
    screen: Screen, browser: BrowserContext, tokens: TokenFactory, db: Seeder
) -> None:
    first_page = ordered(BIG_BATCH)[:PAGE_SIZE]
    calls = {
        first_page[0]["id"]: ("no_answer", 0, "No answer", "0 s"),
        first_page[1]["id"]: ("callback_requested", 754, "Callback requested", "12 min 34 s"),
        # Outcome is free text: one the screen has no word for still reads as words.
        first_page[2]["id"]: ("left_message", 3725, "Left message", "1 h 2 min 5 s"),
        first_page[3]["id"]: ("answered", 3600, "Answered", "1 h"),
    }
    for contact_id, (outcome, seconds, _, _) in calls.items():
        db.conn.execute(
            "update public.campaign_contacts set outcome = %s, duration_seconds = %s"
            " where id = %s",
            (outcome, seconds, contact_id),
        )
    page = browser.new_page()
    page.goto(screen.link(tokens.es256(USER_A)))

    expect(page.locator("#campaign")).to_have_text("Big")
    expect(page).to_have_title("Big · Call batch")
    expect(page.locator("#status")).to_have_text("Processing")
    numbers = {**counters(BIG_BATCH), "pending": pending(BIG_BATCH)}
    assert numbers["pending"] > 0
    expect_counters(page, numbers)
    expect(page.locator("[data-counter=pending] + span")).to_have_text("Pending")

    for contact in first_page:
        expect(page.locator(f'tr[data-id="{contact["id"]}"] td[data-field=status]')).to_have_text(
            STATUS_LABELS[contact["status"]]
        )
        outcome, duration = calls.get(contact["id"], (None, None, "\u2014", "\u2014"))[2:]
        assert cell(page, contact["id"], "outcome") == outcome
        assert cell(page, contact["id"], "duration") == duration


@pytest.mark.timeout(180)
def test_the_screen_filters_and_polls(
    screen: Screen, browser: BrowserContext, tokens: TokenFactory, db: Seeder
) -> None:
    page = browser.new_page()
    traffic = traffic_of(page, screen.api_url)
    page.goto(screen.link(tokens.es256(USER_A)))
    contacts = [str(c["id"]) for c in ordered(BIG_BATCH)]
    expect_page(page, contacts, 1)
    assert "token=" not in page.url, "the token leaves the address bar"
    page.click("#next")
    expect_page(page, contacts, 2)

    # A cursor belongs to its filter: a new filter starts at its first page, with none.
    mark = len(traffic.requests)
    page.select_option("#status-filter", "completed")
    completed = [str(c["id"]) for c in ordered(BIG_BATCH, "completed")]
    expect_page(page, completed, 1)
    expect(page.locator("#contacts td[data-field=status]")).to_have_text(["Completed"] * 25)
    asked_since(traffic, mark, {**by_offset(), "contact_status": ["completed"]})

    # Unchanged: the polls are answered 304, and the page shows what it had.
    footer = page.locator("#poll-state")
    expect(footer).to_contain_text("unchanged (304")
    assert 304 in traffic.statuses
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
    assert traffic.statuses.count(200) >= 4  # first load, next page, filter, the change


OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const out = [...document.querySelectorAll("body *")].filter((e) => {
    const box = e.getBoundingClientRect();
    return box.width > 0 && (box.left < -0.5 || box.right > width + 0.5);
  });
  return out.map((e) => `${e.tagName}#${e.id}.${e.className}`);
}"""


@pytest.mark.timeout(120)
def test_the_screen_fits_a_phone(
    screen: Screen, browser: BrowserContext, tokens: TokenFactory
) -> None:
    page = browser.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(screen.link(tokens.es256(USER_A)))
    contacts = [str(c["id"]) for c in ordered(BIG_BATCH)]
    expect_page(page, contacts, 1)
    expect_counters(page, {**counters(BIG_BATCH), "pending": pending(BIG_BATCH)})

    scrolling = page.evaluate(
        "() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]"
    )
    assert scrolling[0] <= scrolling[1] == 390, scrolling
    # Nothing sticks out either, which an overflow: auto box would hide from the check above.
    assert page.evaluate(OVERFLOWING) == []
    # Each value still says which column it is: the phone layout puts its name beside it.
    outcome = page.locator(f'tr[data-id="{contacts[0]}"] td[data-field=outcome]')
    expect(outcome).to_be_visible()
    before = outcome.evaluate("(td) => getComputedStyle(td, '::before').content")
    assert before == '"Outcome"'
    expect(page.locator("#next")).to_be_in_viewport()


@pytest.mark.timeout(120)
def test_the_screen_says_when_the_batch_is_not_found(
    screen: Screen, browser: BrowserContext, tokens: TokenFactory
) -> None:
    page = browser.new_page()
    traffic = traffic_of(page, screen.api_url)
    page.goto(screen.link(tokens.es256(USER_A), MISSING_BATCH))
    expect(page.locator("#campaign")).to_have_text("Batch not found")
    expect(page).to_have_title("Batch not found · Call batch")
    expect(page.locator("#message")).to_have_text(
        "This batch does not exist, or belongs to another agency. Check the link."
    )
    expect(page.locator("#notice")).to_be_visible()
    # No empty counters or table under it, and no token asked for: a new one would not help.
    expect(page.locator("#progress-card")).to_be_hidden()
    expect(page.locator("#contacts-card")).to_be_hidden()
    expect(page.locator("#token-form")).to_be_hidden()
    page.wait_for_timeout(3 * POLL_MS)
    assert traffic.statuses == [404]


@pytest.mark.timeout(120)
def test_the_screen_takes_a_new_token_when_the_session_expires(
    screen: Screen, browser: BrowserContext, tokens: TokenFactory
) -> None:
    # Valid for a few more seconds (the leeway), then every poll is a 401 token_expired.
    token = tokens.es256(USER_A, exp=int(time.time()) - LEEWAY_SECONDS + 4)
    page = browser.new_page()
    traffic = traffic_of(page, screen.api_url)
    page.goto(screen.link(token))
    expect(page.locator("#campaign")).to_have_text("Big")
    expect(page.locator("#message")).to_have_text(EXPIRED)
    expect(page.locator("#notice")).to_be_visible()
    expect(page.locator("#token-input")).to_be_visible()
    assert traffic.statuses[0] == 200
    assert traffic.statuses[-1] == 401
    # The batch stays on screen under the notice: the same user will see it again.
    expect(page.locator("#progress-card")).to_be_visible()
    expect(page.locator("#campaign")).to_have_text("Big")
    # Polling stops: a refreshed token is the user's to get, not the page's to retry for.
    polls = traffic.statuses.copy()
    page.wait_for_timeout(3 * POLL_MS)
    assert traffic.statuses == polls

    fresh = tokens.es256(USER_A)
    mark = len(traffic.requests)
    page.fill("#token-input", fresh)
    page.click("#token-form button[type=submit]")
    expect(page.locator("#notice")).to_be_hidden()
    # It polls again, with the new token, and each answer is a success.
    deadline = time.monotonic() + WAIT_MS / 1000
    while len(traffic.responses) < len(polls) + 3 and time.monotonic() < deadline:
        page.wait_for_timeout(POLL_MS / 4)
    assert len(traffic.responses) >= len(polls) + 3, "polling resumed"
    assert [r.all_headers()["authorization"] for r in traffic.requests[mark:]] == [
        f"Bearer {fresh}"
    ] * len(traffic.requests[mark:])
    assert all(s in (200, 304) for s in traffic.statuses[len(polls) :]), traffic.statuses
    # The new token is kept like the first: a reload goes on with it.
    page.reload()
    expect(page.locator("#poll-state")).to_contain_text("Updated")
    expect(page.locator("#notice")).to_be_hidden()
    assert traffic.requests[-1].all_headers()["authorization"] == f"Bearer {fresh}"


@pytest.mark.timeout(120)
def test_a_session_expired_before_the_first_answer_asks_for_a_token(
    screen: Screen, browser: BrowserContext, tokens: TokenFactory
) -> None:
    page = browser.new_page()
    page.goto(screen.link(tokens.es256(USER_A, exp=int(time.time()) - LEEWAY_SECONDS - 60)))
    expect(page.locator("#campaign")).to_have_text("Session expired")
    expect(page.locator("#message")).to_have_text(EXPIRED)
    expect(page.locator("#progress-card")).to_be_hidden()
    page.fill("#token-input", tokens.es256(USER_A))
    page.keyboard.press("Enter")
    expect(page.locator("#campaign")).to_have_text("Big")
    expect(page.locator("#progress-card")).to_be_visible()
    expect(page.locator("#notice")).to_be_hidden()
