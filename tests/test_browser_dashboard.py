"""The operations dashboard (and the public page, once it exists) in headless Chromium.

The real app runs under uvicorn on a loopback port with its projection workers and the demo
loaded; Playwright drives Debian's ``chromium`` (its own browser download is not used).
Screenshots go to ``$RESTORATION_ARTIFACTS/browser`` (default ``.artifacts/browser``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright, expect

from api.demo import load_demo
from api.tokens import Role, create_token
from domain.application import RestorationApp
from tests.graphql_support import served_over_tcp

pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("RESTORATION_ARTIFACTS") or Path(__file__).resolve().parent.parent / ".artifacts") / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
WALL_SCREEN = {"width": 1600, "height": 1000}
LIVE_WITHIN_MS = 2000
BLOCKING_IMPACTS = {"serious", "critical"}


def chromium() -> str | None:
    """Debian's chromium (``make test`` installs it when it can), or RESTORATION_CHROMIUM."""
    return os.environ.get("RESTORATION_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Served:
    base: str
    app: RestorationApp
    viewer: str
    operator: str


@pytest.fixture
def served(app: RestorationApp, database_url: str) -> Iterator[Served]:
    load_demo(app)
    with psycopg.connect(database_url) as connection:
        _, viewer = create_token(connection, name="incident room screen", role=Role.VIEWER)
        _, operator = create_token(connection, name="incident lead", role=Role.OPERATOR)
    with served_over_tcp(app, database_url) as address:
        yield Served(base=f"http://{address}", app=app, viewer=viewer, operator=operator)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    if executable is None:
        pytest.skip("no chromium here: install Debian's chromium (make test does, as root with apt-get) "
                    "or set RESTORATION_CHROMIUM to a Chromium binary")
    # start()/stop() rather than ``async with``: the fixture may be finished in another task.
    playwright = await async_playwright().start()
    browser = await playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        await browser.close()
        await playwright.stop()


async def new_page(browser: Browser) -> tuple[Page, list[str]]:
    """A page, and the console errors and uncaught exceptions it produces (CSP reports included)."""
    page = await browser.new_page(viewport=WALL_SCREEN)
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"{message.text} ({message.location.get('url')})")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return page, problems


async def sign_in(page: Page, served: Served, token: str) -> None:
    await page.goto(f"{served.base}/dashboard")
    await page.get_by_label("API token", exact=True).fill(token)
    await page.get_by_role("button", name="Open the dashboard").click()


async def open_dashboard(browser: Browser, served: Served) -> tuple[Page, list[str]]:
    page, problems = await new_page(browser)
    await sign_in(page, served, served.viewer)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("#timeline-list li").first).to_be_visible()
    return page, problems


def row(page: Page, slug: str):  # type: ignore[no-untyped-def]
    return page.locator(f'#service-rows tr[data-slug="{slug}"]')


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def test_the_dashboard_asks_for_a_token_then_shows_the_demo(browser: Browser, served: Served) -> None:
    page, problems = await new_page(browser)
    await sign_in(page, served, "rt_not-a-real-token")
    await expect(page.get_by_role("alert")).to_contain_text("not valid")
    await expect(page.locator("#board")).to_be_hidden()
    await screenshot(page, "dashboard-sign-in-refused")

    await page.get_by_label("API token", exact=True).fill(served.viewer)
    await page.get_by_role("button", name="Open the dashboard").click()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")

    await expect(page.locator("#incident-line")).to_contain_text("Cyber attack, June 2022")
    await expect(page.locator("#service-rows tr")).to_have_count(9)
    housing = row(page, "housing-management")
    await expect(housing.locator("td.status")).to_contain_text("Partial outage")
    await expect(housing.locator("td.phase")).to_contain_text("Validating")
    # Operational itself, but held back by the housing management system: a blocked-by chain.
    await expect(row(page, "direct-debits").locator("td.blocked")).to_contain_text("Housing management system")
    await expect(row(page, "rent-by-phone").locator("td.workarounds")).to_contain_text("Standing order")
    await expect(row(page, "email").locator("td.slip")).to_contain_text("moved 3×")
    ico = page.locator('.clock[data-regime="UK_GDPR_ART33"]')
    await expect(ico).to_contain_text("ICO")
    await expect(ico).to_contain_text("Filed on time")
    await expect(page.locator(".clock")).to_have_count(5)
    await expect(page.locator("#chart svg title")).to_have_text("Restoration progress")
    await expect(page.locator("#timeline-list li").first).to_contain_text("#84")
    await screenshot(page, "dashboard-demo")

    # The token is kept for this tab only: a reload needs no new sign-in; signing out forgets it.
    assert await page.evaluate("sessionStorage.length") == 1
    await page.reload()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("#service-rows tr")).to_have_count(9)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("API token", exact=True)).to_be_visible()
    await expect(page.locator("#service-rows tr")).to_have_count(0)
    assert await page.evaluate("sessionStorage.length") == 0
    assert problems == [], problems


async def test_changes_appear_on_the_open_dashboard_without_reload(browser: Browser, served: Served) -> None:
    page, problems = await open_dashboard(browser, served)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    await page.evaluate("window.sameDocument = true")
    housing = served.app.service_by_slug("housing-management").id

    await operate(served, "mutation($i: ReportStatusInput!) { reportStatus(input: $i) { position } }",
                  {"serviceId": str(housing), "status": "OPERATIONAL", "phase": "RESTORED",
                   "note": "Validated on clean infrastructure"})
    status = row(page, "housing-management").locator("td.status")
    await expect(status).to_contain_text("Operational", timeout=LIVE_WITHIN_MS)
    # What follows from it, live too: the chain it blocked is gone, progress and timeline move.
    await expect(row(page, "direct-debits").locator("td.blocked")).to_have_text("—")
    await expect(page.locator("#summary-tiles")).to_contain_text("5 / 8")
    await expect(page.locator("#timeline-list li").first).to_contain_text("Housing management system")
    await screenshot(page, "dashboard-after-live-change")

    # A second incident whose ICO clock started 73 hours ago: it is shown, and overdue.
    declared = await operate(served, "mutation($i: DeclareIncidentInput!) { declareIncident(input: $i) { incident { id } } }",
                             {"title": "Payment partner breach", "kind": "SUPPLIER_FAILURE", "severity": "MAJOR"})
    aware_at = (datetime.now(timezone.utc) - timedelta(hours=73)).isoformat()
    await operate(served, "mutation($i: RecordAwarenessInput!) { recordAwareness(input: $i) { position } }",
                  {"incidentId": declared["declareIncident"]["incident"]["id"], "awareAt": aware_at,
                   "regimes": ["UK_GDPR_ART33"]})
    await expect(page.locator("#incident-line")).to_contain_text("Payment partner breach")
    ico = page.locator('.clock[data-regime="UK_GDPR_ART33"]')
    await expect(ico).to_contain_text("Overdue by 1 h")
    await expect(page.locator("#summary-tiles")).to_contain_text("1 overdue")
    await screenshot(page, "dashboard-overdue-clock")
    await page.get_by_label("Incident", exact=True).select_option(label="Cyber attack, June 2022 (open)")
    await expect(page.locator(".clock")).to_have_count(5)

    assert navigations == []
    assert await page.evaluate("window.sameDocument") is True
    assert problems == [], problems


async def operate(served: Served, mutation: str, variables: dict[str, Any]) -> dict[str, Any]:
    """A mutation with the operator's token, as an operator's tool would send it."""
    async with httpx.AsyncClient(base_url=served.base) as client:
        reply = await client.post("/graphql", headers={"Authorization": f"Bearer {served.operator}"},
                                  json={"query": mutation, "variables": {"i": variables}})
    body = reply.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.mark.parametrize("path", ["/dashboard", "/"])
async def test_no_serious_accessibility_violations(browser: Browser, served: Served, path: str) -> None:
    async with httpx.AsyncClient(base_url=served.base) as client:
        if (await client.get(path)).status_code == 404:
            pytest.skip(f"no page at {path} on this branch yet (the public status page, issue 7 item 1); "
                        "this check runs as soon as it exists")
    if path == "/dashboard":
        page, _ = await new_page(browser)
        await page.goto(f"{served.base}/dashboard")
        await assert_accessible(page, "dashboard-sign-in")
        page, _ = await open_dashboard(browser, served)
        await assert_accessible(page, "dashboard")
    else:
        page, _ = await new_page(browser)
        await page.goto(f"{served.base}{path}")
        await assert_accessible(page, "status-page")


async def assert_accessible(page: Page, name: str) -> None:
    """axe-core, injected into the page, finds nothing serious or critical."""
    results = await Axe().run(page)
    blocking = [v for v in results.response["violations"] if v["impact"] in BLOCKING_IMPACTS]
    await screenshot(page, name)
    assert not blocking, results.generate_report()


@pytest.mark.parametrize("path", ["/graphql", "/docs"])
async def test_the_development_tools_break_no_rule_of_their_policy(browser: Browser, served: Served, path: str) -> None:
    """GraphiQL and the API docs load their code from public CDNs (which a test machine may not
    reach: then they stop there, and that is not what is checked); nothing the page asks for
    is refused by its Content-Security-Policy, its inline script included."""
    page = await browser.new_page()
    await page.add_init_script(  # runs before the page's own scripts, outside its policy
        "window.violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.violations.push(`${e.effectiveDirective} ${e.blockedURI}`));"
    )
    await page.goto(f"{served.base}{path}")
    assert await page.evaluate("window.violations") == []
