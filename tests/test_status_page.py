"""The public face: status page, status.json, Atom feed and static export, on the demo."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import psycopg
import pytest
from typer.testing import CliRunner

from api.cli import cli
from api.composition import event_log, open_read_pool, prepare_read_side
from api.database import create_database, drop_database, eventsourcing_env, with_database
from api.demo import DEMO_INCIDENT_ID, load_demo
from api.listener import Doorbell
from api.status_page import PublicDocuments
from api.status_site import Site, catch_up_public_views
from domain.application import RestorationApp
from tests.graphql_support import caught_up, running_api

STATUSES = {"operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"}
RESIDENT_FACING = {"telephony", "rent-by-phone", "online-payment-portal", "card-payment-line", "direct-debits",
                   "website", "repairs-reporting"}


class Outline(HTMLParser):
    """The parts of a page that accessibility and the no-JavaScript promise depend on."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    return parser


@pytest.fixture
def demo(app: RestorationApp) -> RestorationApp:
    load_demo(app)
    return app


async def test_the_page_tells_residents_what_works_what_to_do_and_when(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        await caught_up(api)
        reply = await api.client.get("/")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    html = reply.text
    assert len(reply.content) < 60_000
    page = outline(html)
    # Complete without JavaScript, and allowed none.
    assert not page.all("script") and "<script" not in html
    policy = reply.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "unsafe-inline" not in policy
    assert reply.headers["x-content-type-options"] == "nosniff" and reply.headers["referrer-policy"] == "no-referrer"
    # Landmarks, one h1, the language.
    assert page.all("html")[0]["lang"] == "en-GB"
    assert page.all("header") and page.all("main") and page.all("footer") and len(page.all("h1")) == 1
    # Every resident-facing service, and only those, its status in words.
    shown = {attrs["id"].removeprefix("service-") for attrs in page.all("div") if attrs.get("class") == "service"}
    assert shown == RESIDENT_FACING
    assert "Not working" in html and "Partly working" in html and "Working normally" in html
    # What to do instead, with phone numbers and web addresses as links.
    assert {"Standing order", "Card payment phone line", "Emergency repairs line"} <= set(page.text)
    hrefs = {attrs["href"] for attrs in page.all("a")}
    assert {"tel:+442079460123", "tel:+442079460456", "https://www.clarionhg.com/pay"} <= hrefs
    # When it is expected back, and how often that date has moved.
    assert "Fri 5 Aug 2022, 17:00 BST" in html
    assert "This date has moved 3 times; it is 35 days later than first said." in html
    assert "On Mon 20 Jun 2022, 12:00 BST we said Fri 1 Jul 2022, 17:00 BST" in html
    assert "This date has passed" in html  # the demo's dates are long gone
    # The latest public updates, with times (internal ones never).
    assert "Wed 3 Aug 2022, 17:00 BST" in html and "Services are returning gradually." in html
    assert "Board briefed" not in html
    # The progress chart: inline SVG with a text alternative, and its data as a table.
    svg = page.all("svg")[0]
    assert svg["role"] == "img" and page.all("title") and page.all("desc")
    assert {page_id for page_id in (svg["aria-labelledby"] or "").split()} == {
        attrs["id"] for attrs in page.all("title") + page.all("desc") if attrs.get("id")
    }
    assert "4 of 8 affected systems and services are restored (50%)" in html
    assert len(page.all("tr")) >= 10 + 1 + 7 + 1  # every curve point, headers, every service


QUERY_STATUS = """mutation($input: ReportStatusInput!) { reportStatus(input: $input) { position } }"""
POST_UPDATE = """mutation($input: PostUpdateInput!) { postUpdate(input: $input) { position } }"""


async def test_the_page_is_rendered_once_per_change_and_revalidates(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        await caught_up(api)
        documents = api.http_app.state.public_documents
        first = await api.client.get("/", headers={"accept-encoding": "identity"})
        etag = first.headers["etag"]
        assert "max-age" in first.headers["cache-control"] and "public" in first.headers["cache-control"]
        for _ in range(20):
            assert (await api.client.get("/", headers={"if-none-match": etag, "accept-encoding": "identity"})).status_code == 304
        assert documents.renders == 1  # served from memory: no re-render, no read of the views

        zipped = await api.client.get("/", headers={"accept-encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["etag"] != etag
        assert zipped.content == first.content  # httpx has decompressed it
        assert (await api.client.get("/", headers={"if-none-match": zipped.headers["etag"]})).status_code == 304

        # An internal update changes the views but not the page: same bytes, same ETag.
        await api.ok(POST_UPDATE, {"input": {"incidentId": str(DEMO_INCIDENT_ID), "audience": "INTERNAL",
                                             "message": "Exec call at 9."}})
        unchanged = await api.client.get("/", headers={"if-none-match": etag, "accept-encoding": "identity"})
        assert unchanged.status_code == 304

        # A status change shows on the very next request.
        telephony = str(demo.service_by_slug("telephony").id)
        await api.ok(QUERY_STATUS, {"input": {"serviceId": telephony, "status": "OPERATIONAL", "phase": "RESTORED",
                                              "publicNote": "Phones are back."}})
        after = await api.client.get("/", headers={"if-none-match": etag, "accept-encoding": "identity"})
        assert after.status_code == 200 and after.headers["etag"] != etag
        telephony_section = after.text.split('id="service-telephony"')[1].split('class="service"')[0]
        assert "Working normally" in telephony_section and "Partly working" not in telephony_section
        summary = (await api.client.get("/status.json")).json()
        assert {c["name"]: c["status"] for c in summary["components"]}["Phone lines and contact centre"] == "operational"


async def test_status_json_reads_like_a_status_page_summary(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        await caught_up(api)
        reply = await api.client.get("/status.json")
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["access-control-allow-origin"] == "*" and reply.headers["etag"]
    summary = reply.json()
    assert set(summary) == {"page", "status", "components", "incidents", "scheduled_maintenances"}
    assert set(summary["page"]) >= {"id", "name", "url", "time_zone", "updated_at"}
    assert summary["page"]["time_zone"] == "Europe/London"
    assert summary["status"] == {"indicator": "critical", "description": "Major System Outage"}
    components = {c["name"]: c for c in summary["components"]}
    assert len(components) == len(RESIDENT_FACING) and "Email" not in components
    for component in components.values():
        assert set(component) >= {"id", "name", "status", "description", "updated_at", "position", "showcase",
                                  "group_id", "only_show_if_degraded"}
        assert component["status"] in STATUSES and component["group_id"] is None
    assert components["Paying rent by phone"]["status"] == "major_outage"
    assert components["Phone lines and contact centre"]["status"] == "partial_outage"
    [incident] = summary["incidents"]
    assert set(incident) >= {"id", "name", "status", "impact", "created_at", "updated_at", "shortlink", "incident_updates"}
    assert (incident["name"], incident["status"], incident["impact"]) == ("Cyber attack, June 2022", "identified", "critical")
    updates = incident["incident_updates"]
    assert len(updates) == 9  # the public ones only
    assert set(updates[0]) >= {"id", "status", "body", "created_at", "display_at"}
    assert updates[0]["body"].startswith("Services are returning gradually")
    assert updates[0]["display_at"] == "2022-08-03T17:00:00+01:00"  # when it was said, in the page's zone
    assert summary["scheduled_maintenances"] == []


async def test_the_feed_is_valid_atom_of_public_updates(demo: RestorationApp, database_url: str) -> None:
    async with running_api(demo, database_url) as api:
        await caught_up(api)
        reply = await api.client.get("/feed.atom")
    assert reply.headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(reply.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title and feed.feed.id.startswith("urn:uuid:") and feed.feed.updated
    assert len(feed.entries) == 9
    ids = {entry.id for entry in feed.entries}
    assert len(ids) == 9
    latest = feed.entries[0]
    assert latest.content[0].value.startswith("Services are returning gradually")
    assert latest.published.startswith("2022-08-03T17:00:00") and latest.link.endswith("#update-84")
    assert "Board briefed" not in reply.text


def test_export_site_writes_the_page_status_json_and_feed(demo: RestorationApp, database_url: str, tmp_path: Path) -> None:
    target = tmp_path / "site"
    result = CliRunner().invoke(cli, ["export-site", str(target), "--url", "https://status.example.org/"],
                                env={"DATABASE_URL": database_url, "RESTORATION_SITE_NAME": "Clarion: service status"})
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in target.iterdir()) == ["feed.atom", "index.html", "status.json"]
    html = (target / "index.html").read_text()
    assert "Paying rent by phone" in html and "<script" not in html
    assert 'href="feed.atom"' in html and 'href="status.json"' in html  # relative: works wherever it is hosted
    summary = json.loads((target / "status.json").read_text())
    assert summary["page"]["name"] == "Clarion: service status"
    assert summary["page"]["url"] == "https://status.example.org/"
    feed = feedparser.parse((target / "feed.atom").read_bytes())
    assert not feed.bozo and feed.feed.links[0].href == "https://status.example.org/feed.atom"


async def test_the_last_page_is_served_when_the_database_is_gone(server_url: str) -> None:
    name = f"rt_test_{uuid.uuid4().hex[:12]}"
    create_database(server_url, name)
    url = with_database(server_url, name)
    app = RestorationApp(env=eventsourcing_env(url, pool_size=1))
    try:
        load_demo(app)
        prepare_read_side(url)
        with psycopg.connect(url) as connection:
            catch_up_public_views(connection, event_log(app))
        pool = await open_read_pool(url)
        documents, bell = PublicDocuments(Site("Status", "https://status.example.org/")), Doorbell()
        try:
            shown = await documents.current(pool, bell)
            drop_database(server_url, name)  # terminates every connection to it
            bell.ring()  # as when the views move: the next request reads them again
            assert await documents.current(pool, bell) is shown
        finally:
            pool.terminate()
    finally:
        app.close()
    assert documents.renders == 1


async def test_the_page_says_when_an_expected_date_passes_without_a_change(demo: RestorationApp, database_url: str) -> None:
    prepare_read_side(database_url)
    with psycopg.connect(database_url) as connection:
        catch_up_public_views(connection, event_log(demo))
    now = datetime(2022, 8, 4, 12, tzinfo=timezone.utc)  # the phones are expected back on 5 August
    documents, bell = PublicDocuments(Site("Status", "https://status.example.org/"), clock=lambda: now), Doorbell()
    pool = await open_read_pool(database_url)
    try:
        before = (await documents.current(pool, bell)).page.body.decode()
        now = datetime(2022, 8, 5, 16, 1, tzinfo=timezone.utc)  # nothing recorded, the bell never rang
        after = (await documents.current(pool, bell)).page.body.decode()
    finally:
        await pool.close()

    def telephony(html: str) -> str:
        return html.split('id="service-telephony"')[1].split('class="service"')[0]

    assert "This date has passed" not in telephony(before)
    assert "This date has passed" in telephony(after)
    assert documents.renders == 2
