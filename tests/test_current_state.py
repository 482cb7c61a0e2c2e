"""The current-state views (services, incidents) built from real events by the projection runner."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from api.demo import DEMO_INCIDENT_ID, load_demo, when
from domain.application import RestorationApp
from domain.values import Provenance
from projections.base import Projection
from projections.incidents import IncidentRow, IncidentsView, load_incidents, load_updates
from projections.runner import LIVE_SCHEMA, catch_up, create_tables, rebuild, table_rows
from projections.services import ServiceRow, ServicesView, blocked_by_map, load_services
from tests.projection_support import log_of

OPS = Provenance("ops@example.org")
LEAD = Provenance("lead@example.org", reason="entered wrongly")
VIEWS: list[Projection] = [ServicesView(), IncidentsView()]
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def catch_up_views(app: RestorationApp, url: str, *, schema: str = LIVE_SCHEMA, batch_size: int = 1000) -> None:
    with psycopg.connect(url) as connection:
        for view in VIEWS:
            create_tables(connection, view, schema)
            catch_up(connection, log_of(app), view, schema=schema, batch_size=batch_size)


def services(app: RestorationApp, url: str) -> dict[str, ServiceRow]:
    catch_up_views(app, url)
    with psycopg.connect(url) as connection:
        return {row.slug: row for row in load_services(connection)}


def demo_incident(app: RestorationApp, url: str) -> IncidentRow:
    catch_up_views(app, url)
    with psycopg.connect(url) as connection:
        (incident,) = load_incidents(connection, [DEMO_INCIDENT_ID])
    return incident


def test_the_demo_shows_where_each_service_stands(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    rows = services(app, database_url)
    blocked = blocked_by_map(rows.values())

    telephony = rows["telephony"]
    assert (telephony.status, telephony.phase) == ("PARTIAL_OUTAGE", "RESTORING")
    assert telephony.status_since == when(6, 14, month=7)
    assert telephony.eta is not None
    assert (telephony.eta.expected_at, telephony.eta.confidence) == (when(5, 17, month=8), "LOW")
    assert telephony.eta.set_at == when(21, 15, month=7)
    assert [e.expected_at for e in telephony.eta_history] == [
        when(1, 17, month=7), when(8, 17, month=7), when(22, 17, month=7), when(5, 17, month=8)]
    assert telephony.eta_slip_seconds == timedelta(days=35).total_seconds()
    # Down since 17 June, counted up to its latest fact (the ETA revised on 21 July).
    assert telephony.downtime_until == when(21, 15, month=7)
    assert telephony.downtime_seconds == (when(21, 15, month=7) - when(17, 10)).total_seconds()
    assert [w.channel for w in telephony.workarounds] == ["Emergency repairs line"]

    rent = rows["rent-by-phone"]
    assert [w.id for w in rent.workarounds] == ["standing-order", "online-portal", "card-line"]
    assert rent.workarounds[2].contact == "020 7946 0123"
    assert rent.depends_on == (rows["telephony"].id, rows["housing-management"].id)
    assert blocked[rent.id] == [rows["telephony"].id, rows["housing-management"].id]
    assert blocked[rows["online-payment-portal"].id] == []  # the website is back

    email = rows["email"]  # restored, regressed on 14 July, restored again on 19 July
    assert (email.status, email.phase, email.eta, email.eta_slip_seconds) == ("OPERATIONAL", "RESTORED", None, None)
    assert email.status_since == when(19, 16, month=7)
    assert len(email.eta_history) == 4
    first_outage = when(12, 9, month=7) - when(17, 10)
    regression = when(19, 16, month=7) - when(14, 8, 30, month=7)
    assert email.downtime_seconds == (first_outage + regression).total_seconds()
    assert email.downtime_seconds_at(NOW) == email.downtime_seconds  # no longer accruing
    assert telephony.downtime_seconds_at(when(22, 15, month=7)) == telephony.downtime_seconds + 86_400


def test_the_demo_incident_shows_its_figures_and_updates(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    incident = demo_incident(app, database_url)
    assert (incident.title, incident.kind, incident.severity, incident.phase) == (
        "Cyber attack, June 2022", "CYBER_ATTACK", "CRITICAL", "OPEN")
    assert (incident.detected_at, incident.declared_at, incident.aware_at, incident.closed_at) == (
        when(17, 7, 40), when(17, 9, 15), when(18, 16, 30), None)
    assert (incident.residents_affected, incident.properties_affected) == (350_000, 125_000)
    with psycopg.connect(database_url) as connection:
        affected = {row.slug for row in load_services(connection, incident.service_ids)}
        public = load_updates(connection, DEMO_INCIDENT_ID, public_only=True)
        everything = load_updates(connection, DEMO_INCIDENT_ID, public_only=False)
    assert len(affected) == 8 and "card-payment-line" not in affected  # the partner's line kept working
    assert len(public) == 9 and len(everything) == 10
    assert public[0].occurred_at == when(3, 17, month=8)  # latest first
    assert public[0].next_update_by == when(10, 17, month=8)
    assert {u.audience for u in everything} - {u.audience for u in public} == {"INTERNAL"}


def test_an_unreported_service_is_operational_and_blocking_is_transitive(
    app: RestorationApp, database_url: str
) -> None:
    a, b, c = (app.register_service(slug=s, name=s, category="Systems", provenance=OPS).id for s in "abc")
    app.add_dependency(a, depends_on_id=b, provenance=OPS)
    app.add_dependency(b, depends_on_id=c, provenance=OPS)
    rows = services(app, database_url)
    assert (rows["a"].status, rows["a"].phase, rows["a"].status_since) == ("OPERATIONAL", None, None)
    assert (rows["a"].downtime_seconds, rows["a"].eta_history, rows["a"].workarounds) == (0, (), ())
    assert blocked_by_map(rows.values()) == {a: [], b: [], c: []}

    app.report_status(c, status="MAJOR_OUTAGE", phase="ISOLATED", provenance=OPS)
    assert blocked_by_map(services(app, database_url).values()) == {a: [c], b: [c], c: []}
    app.remove_dependency(b, depends_on_id=c, provenance=OPS)
    rows = services(app, database_url)
    assert rows["b"].depends_on == () and blocked_by_map(rows.values())[a] == []


def test_a_back_dated_report_does_not_become_current(app: RestorationApp, database_url: str) -> None:
    email = app.register_service(slug="email", name="Email", category="Systems", provenance=OPS).id
    newer = NOW - timedelta(hours=1)
    app.report_status(email, status="MAJOR_OUTAGE", phase="ISOLATED", provenance=at(newer))
    assert services(app, database_url)["email"].status == "MAJOR_OUTAGE"
    app.report_status(email, status="DEGRADED_PERFORMANCE", provenance=at(NOW - timedelta(hours=3)))
    row = services(app, database_url)["email"]
    assert (row.status, row.status_since) == ("MAJOR_OUTAGE", newer)
    # Written on paper during the outage: degraded from 3 hours ago, then down, up to the latest fact.
    assert row.downtime_seconds == timedelta(hours=2).total_seconds()


@pytest.mark.parametrize("slug", ["email", "telephony"])
def test_a_new_outage_measures_slip_from_its_own_first_eta(app: RestorationApp, database_url: str, slug: str) -> None:
    load_demo(app)
    service = app.service_by_slug(slug).id
    if slug == "telephony":  # restored while calls still partly fail: regressing still starts a new outage
        app.report_status(service, phase="RESTORED", provenance=at(NOW - timedelta(hours=1)))
    app.report_status(service, status="MAJOR_OUTAGE", phase="ISOLATED", provenance=Provenance("o", reason="again"))
    for days in (2, 5):
        app.set_eta(service, expected_at=NOW + timedelta(days=days), confidence="LOW",
                    provenance=Provenance("o", reason="estimate"))
    row = services(app, database_url)[slug]
    assert row.eta is not None and row.eta.expected_at == NOW + timedelta(days=5)
    assert row.eta_slip_seconds == timedelta(days=3).total_seconds()


def test_corrections_change_the_services_view(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    telephony = app.service_by_slug("telephony").id
    before = services(app, database_url)["telephony"]
    wrong = app.report_status(telephony, status="MAJOR_OUTAGE", provenance=OPS)
    eta = app.set_eta(telephony, expected_at=NOW + timedelta(days=30), confidence="LOW",
                      provenance=Provenance("o", reason="estimate"))
    impact = app.record_impact(DEMO_INCIDENT_ID, residents_affected=9_000, service_id=telephony, provenance=OPS)
    intranet = app.register_service(slug="intranet", name="Intarnet", category="Systems", provenance=OPS)
    assert services(app, database_url)["telephony"].status_since != before.status_since

    app.correct_event(wrong.position, changes={"status": "PARTIAL_OUTAGE"}, provenance=LEAD)
    app.correct_event(eta.position, changes={"expected_at": NOW + timedelta(days=40), "confidence": "HIGH"},
                      provenance=LEAD)
    last = app.correct_event(impact.position, changes={"residents_affected": 12_000}, provenance=LEAD)
    app.correct_event(intranet.position, changes={"name": "Intranet"}, provenance=LEAD)
    rows = services(app, database_url)
    row = rows["telephony"]
    # The corrected report continues the PARTIAL_OUTAGE run that began on 6 July.
    assert (row.status, row.status_since) == ("PARTIAL_OUTAGE", before.status_since)
    assert row.eta is not None and (row.eta.expected_at, row.eta.confidence) == (NOW + timedelta(days=40), "HIGH")
    assert row.eta_history[-1].expected_at == NOW + timedelta(days=40)
    assert row.eta_slip_seconds == (NOW + timedelta(days=40) - when(1, 17, month=7)) // timedelta(seconds=1)
    assert row.residents_affected == 12_000
    assert row.last_changed_position == last.position
    assert rows["intranet"].name == "Intranet"


def test_corrections_change_the_incident_view(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    update = app.post_update(DEMO_INCIDENT_ID, audience="PUBLIC", message="Phones back by Fridya.", provenance=OPS)
    impact = app.record_impact(DEMO_INCIDENT_ID, residents_affected=340_000, properties_affected=125_000,
                               provenance=OPS)
    demo_incident(app, database_url)  # the facts are in the view before they are corrected
    app.correct_event(update.position, changes={"message": "Phones back by Friday."}, provenance=LEAD)
    app.correct_event(impact.position, changes={"residents_affected": 345_000}, provenance=LEAD)
    incident = demo_incident(app, database_url)
    assert (incident.residents_affected, incident.properties_affected) == (345_000, 125_000)
    with psycopg.connect(database_url) as connection:
        latest = load_updates(connection, DEMO_INCIDENT_ID)[0]
    assert (latest.position, latest.message) == (update.position, "Phones back by Friday.")
    app.close_incident(DEMO_INCIDENT_ID, summary="All services restored.", provenance=OPS)
    closed = demo_incident(app, database_url)
    assert (closed.phase, closed.summary, closed.last_changed_position) == (
        "CLOSED", "All services restored.", app.head_position())


def test_the_views_agree_with_the_aggregates(app: RestorationApp, database_url: str) -> None:
    eventful_history(app)
    rows = services(app, database_url)
    graph = app.dependency_graph()
    incident = app.incident(DEMO_INCIDENT_ID)
    for row in rows.values():
        service = app.service(row.id)
        assert (row.name, row.status, row.phase) == (service.name, service.status, service.phase)
        assert (row.eta and row.eta.expected_at) == (service.eta and service.eta.expected_at)
        assert [w.id for w in row.workarounds] == [w.id for w in service.active_workarounds]
        assert list(row.depends_on) == graph.depends_on(row.id)
        impact = incident.impact(str(row.id))
        assert row.residents_affected == (impact and impact.residents_affected)
    view = demo_incident(app, database_url)
    assert (view.summary, view.aware_at, view.closed_at) == (incident.summary, incident.aware_at, incident.closed_at)
    assert (view.residents_affected, view.properties_affected) == (
        incident.impact().residents_affected, incident.impact().properties_affected)  # type: ignore[union-attr]


def test_a_rebuild_gives_exactly_the_same_rows(app: RestorationApp, database_url: str) -> None:
    eventful_history(app)
    catch_up_views(app, database_url, batch_size=7)
    with psycopg.connect(database_url) as connection:
        for view in VIEWS:
            before = {t: table_rows(connection, t) for t in view.tables}
            rebuild(connection, log_of(app), view)
            assert {t: table_rows(connection, t) for t in view.tables} == before
            assert all(before.values())


def test_batch_boundaries_do_not_change_the_rows(app: RestorationApp, database_url: str) -> None:
    eventful_history(app)
    sizes = (1, 7, 1000)
    for size in sizes:
        catch_up_views(app, database_url, schema=f"batches_of_{size}", batch_size=size)
    with psycopg.connect(database_url) as connection:
        for view in VIEWS:
            for table in view.tables:
                one, seven, thousand = (table_rows(connection, table, f"batches_of_{s}") for s in sizes)
                assert one == seven == thousand and one


def eventful_history(app: RestorationApp) -> None:
    """The demo, then facts of every kind the views fold, back-dated ones and corrections included."""
    load_demo(app)
    telephony, rent = app.service_by_slug("telephony").id, app.service_by_slug("rent-by-phone").id
    housing = app.service_by_slug("housing-management").id
    app.withdraw_workaround(rent, workaround_id="card-line", provenance=OPS)
    app.clear_eta(rent, provenance=OPS)
    app.remove_dependency(rent, depends_on_id=housing, provenance=OPS)
    app.report_status(housing, status="OPERATIONAL", phase="RESTORED", provenance=at(NOW - timedelta(days=2)))
    app.report_status(housing, status="MAJOR_OUTAGE", provenance=at(NOW - timedelta(days=3)))  # from paper notes
    wrong = app.report_status(telephony, status="MAJOR_OUTAGE", provenance=OPS)
    app.correct_event(wrong.position, changes={"status": "DEGRADED_PERFORMANCE"}, provenance=LEAD)
    impact = app.record_impact(DEMO_INCIDENT_ID, residents_affected=90_000, service_id=telephony, provenance=OPS)
    app.correct_event(impact.position, changes={"residents_affected": 95_000}, provenance=LEAD)
    update = app.post_update(DEMO_INCIDENT_ID, audience="PUBLIC", message="Phones soon.", provenance=OPS)
    app.correct_event(update.position, changes={"next_update_by": NOW + timedelta(days=1)}, provenance=LEAD)
    app.close_incident(DEMO_INCIDENT_ID, provenance=OPS)


def at(moment: datetime) -> Provenance:
    return Provenance("ops@example.org", occurred_at=moment)
