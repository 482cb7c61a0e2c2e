"""What the public sees: the status page, ``status.json`` and the Atom feed.

All three are rendered together from one snapshot of three read models (services, incidents,
progress), read in one transaction, so they always agree with each other. Rendering is a pure
function of the snapshot, the site's name and address, and the moment it is rendered at (only
to say that an expected date has passed); the HTTP cache and the static export both use it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5
from zoneinfo import ZoneInfo

import asyncpg
import psycopg
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from api.sql import fetch_progress
from api.status_chart import Chart, progress_chart
from domain.values import Audience, Phase, Status
from projections import incidents as incidents_view
from projections import progress as progress_view
from projections import services as services_view
from projections.runner import EventLog, catch_up

LONDON = ZoneInfo("Europe/London")
PUBLIC_VIEWS = (services_view.ServicesView(), incidents_view.IncidentsView(), progress_view.RestorationProgress())
"""The read models the public documents are made from; their positions are the documents' version."""
UPDATES_ON_PAGE = 10
UPDATES_IN_FEED = 50
TEMPLATES = Path(__file__).with_name("templates")
STYLE = (TEMPLATES / "status.css").read_text(encoding="utf-8").strip()
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src '{STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
"""No script at all; the one inline style sheet is allowed by its hash."""


@dataclass(frozen=True)
class Site:
    name: str
    url: str
    """Where the page is published, absolute (feed and status.json links are made from it)."""

    def link(self, path: str = "") -> str:
        return self.url.rstrip("/") + "/" + path


@dataclass(frozen=True)
class StatusWords:
    label: str
    """The status in plain words."""
    symbol: str
    """A shape beside the words, so colour is never the only signal."""
    statuspage: str
    """The component status in the common status-page summary format."""
    severity: int


STATUS_WORDS = {
    Status.OPERATIONAL: StatusWords("Working normally", "✓", "operational", 0),
    Status.UNDER_MAINTENANCE: StatusWords("Down for planned work", "■", "under_maintenance", 1),
    Status.DEGRADED_PERFORMANCE: StatusWords("Working, with delays", "▲", "degraded_performance", 2),
    Status.PARTIAL_OUTAGE: StatusWords("Partly working", "▲", "partial_outage", 3),
    Status.MAJOR_OUTAGE: StatusWords("Not working", "✕", "major_outage", 4),
}
PHASE_WORDS = {
    Phase.ISOLATED: "switched off to keep it safe",
    Phase.ASSESSING: "being checked",
    Phase.RESTORING: "being restored",
    Phase.VALIDATING: "being tested before it reopens",
    Phase.RESTORED: "restored",
}
CONFIDENCE_WORDS = {
    "LOW": "a first estimate that may change",
    "MEDIUM": "a fairly firm estimate",
    "HIGH": "a firm date",
}
PAGE_INDICATORS = {
    # worst component status -> (indicator, description), as status-page widgets expect them
    0: ("none", "All Systems Operational"),
    1: ("maintenance", "Service Under Maintenance"),
    2: ("minor", "Minor Service Outage"),
    3: ("major", "Partial System Outage"),
    4: ("critical", "Major System Outage"),
}


# ---- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    version: tuple[int, ...]
    services: list[services_view.ServiceRow]
    """Every service (chains of dependencies run through internal ones too)."""
    incidents: list[incidents_view.IncidentRow]
    updates: list[incidents_view.UpdateRow]
    """Public updates, latest first."""
    progress: dict[UUID, progress_view.Progress]
    """Of each open incident."""


VERSION_SQL = "SELECT " + ", ".join(f"(SELECT position FROM {view.tracking_table})" for view in PUBLIC_VIEWS)


async def read_version(connection: asyncpg.Connection) -> tuple[int, ...]:
    """How far each public read model has got: if none moved, nothing public changed."""
    return tuple(await connection.fetchrow(VERSION_SQL))


def catch_up_public_views(connection: psycopg.Connection[Any], log: EventLog) -> int:
    """Apply every event the public views have not applied yet; the position they all reached."""
    return min(catch_up(connection, log, view) for view in PUBLIC_VIEWS)


async def read_snapshot(connection: asyncpg.Connection) -> Snapshot:
    """Everything the public documents show, as of one moment of the database."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        version = await read_version(connection)
        services = [
            services_view.service_from_record(r)
            for r in await connection.fetch(f"{services_view.SELECT_SERVICES} ORDER BY name, slug")
        ]
        incidents = [
            incidents_view.incident_from_record(r)
            for r in await connection.fetch(f"{incidents_view.SELECT_INCIDENTS} ORDER BY declared_at DESC, id")
        ]
        updates = [
            incidents_view.update_from_record(r)
            for r in await connection.fetch(
                f"{incidents_view.SELECT_UPDATES} WHERE audience = $1 ORDER BY occurred_at DESC, position DESC "
                "LIMIT $2", Audience.PUBLIC.value, UPDATES_IN_FEED,
            )
        ]
        progress = {}
        for incident in incidents:
            if incident.closed_at is None:
                progress[incident.id] = await fetch_progress(connection, incident.id)
    return Snapshot(version, services, incidents, updates, progress)


# ---- what the page says ----------------------------------------------------------------------


@dataclass(frozen=True)
class EtaShown:
    expected_at: datetime
    confidence: str | None
    reason: str | None
    passed: bool
    earlier: list[services_view.Eta]
    """The dates given before it for this outage, oldest first."""
    moves: int
    """How many times the expected date has changed."""
    slip: str | None
    """How far it has moved from the first date given, in words."""


@dataclass(frozen=True)
class ServiceShown:
    slug: str
    name: str
    description: str | None
    status: StatusWords
    status_class: str
    phase: str | None
    since: datetime | None
    eta: EtaShown | None
    workarounds: tuple[services_view.Workaround, ...]
    waiting_on: list[tuple[str, str]]
    """(slug, name) of the services on this page it needs back first."""
    affected: bool
    """Not working normally, or still being recovered."""


@dataclass(frozen=True)
class IncidentShown:
    row: incidents_view.IncidentRow
    next_update_by: datetime | None
    progress: progress_view.Progress | None
    chart: Chart | None


def dates_given(history: Sequence[services_view.Eta]) -> list[services_view.Eta]:
    """The expected dates given since the ETA was last cleared (a cleared ETA starts afresh)."""
    run: list[services_view.Eta] = []
    for eta in history:
        run = run + [eta] if eta.expected_at is not None else []
    return run


def moves(dates: Sequence[services_view.Eta]) -> int:
    return sum(1 for before, after in zip(dates, dates[1:]) if after.expected_at != before.expected_at)


def duration_words(seconds: int) -> str:
    days, hours = abs(seconds) // 86400, abs(seconds) % 86400 // 3600
    if days:
        return f"{days} day{'s' * (days != 1)}"
    return f"{hours} hour{'s' * (hours != 1)}" if hours else "less than an hour"


def _eta_shown(row: services_view.ServiceRow, now: datetime) -> EtaShown | None:
    eta = row.eta
    if eta is None or eta.expected_at is None:
        return None
    given = dates_given(row.eta_history)
    slip = None
    if row.eta_slip_seconds:
        slip = f"{duration_words(row.eta_slip_seconds)} {'later' if row.eta_slip_seconds > 0 else 'earlier'} than first said"
    return EtaShown(
        expected_at=eta.expected_at,
        confidence=CONFIDENCE_WORDS.get(eta.confidence or ""),
        reason=eta.reason,
        passed=eta.expected_at <= now,
        earlier=given[:-1],
        moves=moves(given),
        slip=slip,
    )


def _services_shown(snapshot: Snapshot, now: datetime) -> list[ServiceShown]:
    """Resident-facing services, the least working first."""
    public = {row.id: row for row in snapshot.services if row.resident_facing}
    blocked = services_view.blocked_by_map(snapshot.services)
    shown = [
        ServiceShown(
            slug=row.slug,
            name=row.name,
            description=row.description,
            status=STATUS_WORDS[Status(row.status)],
            status_class=row.status.lower().replace("_", "-"),
            phase=PHASE_WORDS[Phase(row.phase)] if row.phase else None,
            since=row.status_since,
            eta=_eta_shown(row, now),
            workarounds=row.workarounds,
            waiting_on=[(public[d].slug, public[d].name) for d in blocked[row.id] if d in public],
            affected=row.status != Status.OPERATIONAL or row.phase not in (None, Phase.RESTORED),
        )
        for row in public.values()
    ]
    return sorted(shown, key=lambda s: (-s.status.severity, not s.affected, s.name.lower()))


def _updated_at(snapshot: Snapshot) -> datetime | None:
    """When the latest fact the page shows took effect."""
    moments: list[datetime] = [u.occurred_at for u in snapshot.updates]
    for row in snapshot.services:
        if row.resident_facing:
            moments += [m for m in (row.status_since, row.eta and row.eta.set_at) if m is not None]
            moments += [w.published_at for w in row.workarounds]
    for incident in snapshot.incidents:
        moments += [m for m in (incident.declared_at, incident.closed_at) if m is not None]
    return max(moments, default=None)


def _incidents_shown(snapshot: Snapshot, updated_at: datetime | None) -> list[IncidentShown]:
    shown = []
    for incident in snapshot.incidents:
        if incident.closed_at is not None:
            continue
        latest = next((u for u in snapshot.updates if u.incident_id == incident.id), None)
        progress = snapshot.progress.get(incident.id)
        chart = None
        if progress is not None:
            chart = progress_chart(progress.curve, updated_at or incident.declared_at, short_day)
        shown.append(IncidentShown(incident, latest.next_update_by if latest else None, progress, chart))
    return shown


def changes_at(snapshot: Snapshot, now: datetime) -> datetime | None:
    """The next moment at which time alone changes what the page says (an expected date passing)."""
    moments = [row.eta.expected_at for row in snapshot.services
               if row.resident_facing and row.eta and row.eta.expected_at and row.eta.expected_at > now]
    return min(moments, default=None)


# ---- words and links -------------------------------------------------------------------------


def local(moment: datetime) -> datetime:
    return moment.astimezone(LONDON)


def when(moment: datetime) -> str:
    """e.g. 'Wed 3 Aug 2022, 18:00 BST'."""
    at = local(moment)
    return f"{at:%a} {at.day} {at:%b %Y}, {at:%H:%M} {at.tzname()}"


def day(moment: datetime) -> str:
    """e.g. 'Fri 12 Aug 2022'."""
    at = local(moment)
    return f"{at:%a} {at.day} {at:%b %Y}"


def short_day(moment: datetime) -> str:
    at = local(moment)
    return f"{at.day} {at:%b}"


LINKABLE = re.compile(
    r"(?P<url>https?://[^\s<>\"']+[^\s<>\"'.,;:!?)])"
    r"|(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    r"|(?P<phone>(?<![\w+])(?:\+44 ?|0)\d(?: ?\d){8,9}(?!\d))"
)
"""Web addresses, email addresses and UK phone numbers in free text."""


def linked(text: str | None) -> Markup:
    """``text``, escaped, with its web and email addresses and phone numbers as links."""
    if not text:
        return Markup("")
    out, last = [], 0
    for match in LINKABLE.finditer(text):
        out.append(escape(text[last:match.start()]))
        found = match.group()
        if match.group("url"):
            href = found
        elif match.group("email"):
            href = f"mailto:{found}"
        else:
            digits = re.sub(r"\D", "", found)
            href = "tel:+44" + (digits[2:] if found.startswith("+") else digits[1:])
        out.append(Markup('<a href="{}">{}</a>').format(href, found))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


# ---- the three documents ---------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    body: bytes
    media_type: str
    etag: str
    """A strong validator of ``body``, quoted as the ETag header wants it."""
    gzipped: bytes
    gzip_etag: str
    """The validator of ``gzipped``: each encoding of a document is a representation of its own."""

    @classmethod
    def of(cls, body: bytes, media_type: str) -> Document:
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()[:18]).decode()
        return cls(body, media_type, f'"{digest}"', gzip.compress(body, compresslevel=9, mtime=0), f'"{digest}-gz"')


@dataclass(frozen=True)
class Documents:
    page: Document
    summary: Document
    feed: Document
    changes_at: datetime | None
    """Render again at this moment even if nothing is recorded meanwhile."""

    def files(self) -> dict[str, Document]:
        """By the file names they are published under, side by side."""
        return {"index.html": self.page, "status.json": self.summary, "feed.atom": self.feed}


_templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters.update(when=when, day=day, linked=linked, iso=lambda m: m.isoformat())


def render_site(snapshot: Snapshot, site: Site, now: datetime) -> Documents:
    updated_at = _updated_at(snapshot)
    services = _services_shown(snapshot, now)
    incidents = _incidents_shown(snapshot, updated_at)
    titles = {incident.id: incident.title for incident in snapshot.incidents}
    page = _templates.get_template("status.html.j2").render(
        site=site,
        style=Markup(STYLE),
        csp=CONTENT_SECURITY_POLICY,
        updated_at=updated_at,
        services=services,
        affected=[s for s in services if s.affected],
        incidents=incidents,
        updates=snapshot.updates[:UPDATES_ON_PAGE],
        incident_titles=titles if len(titles) > 1 else {},
        status_words=STATUS_WORDS,
    )
    return Documents(
        page=Document.of(page.encode(), "text/html; charset=utf-8"),
        summary=Document.of(_summary_json(snapshot, site, services, updated_at), "application/json"),
        feed=Document.of(_atom(snapshot, site, updated_at), "application/atom+xml; charset=utf-8"),
        changes_at=changes_at(snapshot, now),
    )


async def render_from(url: str, site: Site, now: datetime) -> Documents:
    """Read the views at ``url`` once and render (for the static export)."""
    connection = await asyncpg.connect(url)
    try:
        snapshot = await read_snapshot(connection)
    finally:
        await connection.close()
    return render_site(snapshot, site, now)


def _time(moment: datetime | None) -> str | None:
    return local(moment).isoformat() if moment is not None else None


def _summary_json(
    snapshot: Snapshot, site: Site, services: list[ServiceShown], updated_at: datetime | None
) -> bytes:
    """The page in the shape of the widely used status-page summary (``/api/v2/summary.json``)."""
    page_id = hashlib.sha256(site.url.encode()).hexdigest()[:12]
    rows = {row.slug: row for row in snapshot.services}
    worst = max((s.status.severity for s in services), default=0)
    indicator, description = PAGE_INDICATORS[worst]
    components = []
    for position, shown in enumerate(services, start=1):
        row = rows[shown.slug]
        changed = [m for m in (row.status_since, row.eta and row.eta.set_at) if m is not None]
        changed += [w.published_at for w in row.workarounds]
        components.append({
            "id": str(row.id),
            "name": row.name,
            "status": shown.status.statuspage,
            "description": row.description,
            "updated_at": _time(max(changed, default=updated_at)),
            "position": position,
            "showcase": True,
            "group_id": None,
            "only_show_if_degraded": False,
            "group": False,
            "page_id": page_id,
        })
    incidents = []
    for incident in snapshot.incidents:
        if incident.closed_at is not None:
            continue  # the summary lists unresolved incidents only
        progress = snapshot.progress.get(incident.id)
        status = "monitoring" if progress and progress.total and progress.restored == progress.total else "identified"
        updates = [u for u in snapshot.updates if u.incident_id == incident.id]
        incidents.append({
            "id": str(incident.id),
            "name": incident.title,
            "status": status,
            "impact": incident.severity.lower(),
            "created_at": _time(incident.declared_at),
            "updated_at": _time(max([incident.declared_at, *(u.occurred_at for u in updates)])),
            "started_at": _time(incident.detected_at),
            "monitoring_at": None,
            "resolved_at": None,
            "shortlink": site.link(f"#incident-{incident.id}"),
            "page_id": page_id,
            "incident_updates": [
                {
                    "id": str(update.position),
                    "incident_id": str(incident.id),
                    "status": status if n == 0 else "identified",
                    "body": update.message,
                    "created_at": _time(update.recorded_at),
                    "updated_at": _time(update.recorded_at),
                    "display_at": _time(update.occurred_at),
                }
                for n, update in enumerate(updates)
            ],
        })
    summary = {
        "page": {
            "id": page_id,
            "name": site.name,
            "url": site.url,
            "time_zone": LONDON.key,
            "updated_at": _time(updated_at),
        },
        "status": {"indicator": indicator, "description": description},
        "components": components,
        "incidents": incidents,
        "scheduled_maintenances": [],
    }
    return json.dumps(summary, ensure_ascii=False, indent=1).encode()


ATOM = "http://www.w3.org/2005/Atom"


def _atom(snapshot: Snapshot, site: Site, updated_at: datetime | None) -> bytes:
    """Public updates, latest first, as an Atom 1.0 feed (RFC 4287)."""
    titles = {incident.id: incident.title for incident in snapshot.incidents}
    feed = ET.Element("feed", {"xmlns": ATOM, "xml:lang": "en-GB"})
    _text(feed, "id", f"urn:uuid:{uuid5(NAMESPACE_URL, site.link('feed.atom'))}")
    _text(feed, "title", f"{site.name}: updates")
    _text(feed, "subtitle", "Public updates on services and their restoration.")
    latest = max([u.recorded_at for u in snapshot.updates] + ([updated_at] if updated_at else []), default=None)
    _text(feed, "updated", _time(latest) or "1970-01-01T00:00:00+00:00")
    ET.SubElement(feed, "link", {"rel": "self", "type": "application/atom+xml", "href": site.link("feed.atom")})
    ET.SubElement(feed, "link", {"rel": "alternate", "type": "text/html", "href": site.link()})
    _text(ET.SubElement(feed, "author"), "name", site.name)
    for update in snapshot.updates:
        entry = ET.SubElement(feed, "entry")
        _text(entry, "id", f"urn:uuid:{uuid5(update.incident_id, f'update/{update.position}')}")
        _text(entry, "title", f"{titles.get(update.incident_id, 'Update')}: update of {when(update.occurred_at)}")
        _text(entry, "published", _time(update.occurred_at))
        _text(entry, "updated", _time(max(update.recorded_at, update.occurred_at)))
        ET.SubElement(entry, "link", {"rel": "alternate", "type": "text/html",
                                      "href": site.link(f"#update-{update.position}")})
        _text(entry, "content", update.message, type="text")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _text(parent: ET.Element, tag: str, text: str | None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element

