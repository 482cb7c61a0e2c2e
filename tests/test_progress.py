"""Restoration progress read model, on a real PostgreSQL, through real commands."""

from __future__ import annotations

import psycopg

from api.demo import DEMO_INCIDENT_ID, load_demo, when
from domain.application import RestorationApp
from domain.values import Phase, Provenance, Status
from projections.progress import CurvePoint, Progress, RestorationProgress, load_progress
from tests.projection_support import assert_same_rows_however_built, build, eventful_history

PAPER = Provenance("it.recovery@clarion.example", reason="Entered from the paper log")

DEMO_CURVE = [
    CurvePoint(when(17, 10), 0, 5),  # five services isolated at 10:00
    CurvePoint(when(17, 10, 30), 0, 6),
    CurvePoint(when(17, 11), 0, 7),
    CurvePoint(when(17, 12), 0, 8),
    CurvePoint(when(22, 9), 1, 8),  # online payments
    CurvePoint(when(28, 10), 2, 8),  # website
    CurvePoint(when(8, 15, month=7), 3, 8),  # direct debits
    CurvePoint(when(12, 9, month=7), 4, 8),  # email
    CurvePoint(when(14, 8, 30, month=7), 3, 8),  # email regressed
    CurvePoint(when(19, 16, month=7), 4, 8),  # email back
]


def progress(url: str, app: RestorationApp) -> Progress:
    build(url, app, RestorationProgress())
    with psycopg.connect(url) as connection:
        return load_progress(connection, DEMO_INCIDENT_ID)


def test_the_demo_curve_rises_through_the_summer_of_2022(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    seen = progress(database_url, app)
    assert (seen.total, seen.restored, seen.percent_restored) == (8, 4, 50.0)
    assert dict(seen.by_status) == {
        Status.OPERATIONAL: 4, Status.DEGRADED_PERFORMANCE: 0, Status.PARTIAL_OUTAGE: 3,
        Status.MAJOR_OUTAGE: 1, Status.UNDER_MAINTENANCE: 0,
    }
    assert seen.curve == DEMO_CURVE
    assert seen.curve[-1][1:] == (seen.restored, seen.total)
    # The same counts the Service aggregates give at each point once all eight are affected.
    services = [app.service_by_slug(slug) for slug in (
        "email", "telephony", "housing-management", "rent-by-phone", "repairs-reporting",
        "direct-debits", "website", "online-payment-portal")]
    for at, restored, _ in seen.curve[3:]:
        assert restored == sum(s.phase_at(at) is Phase.RESTORED for s in services)


def test_back_dated_and_corrected_reports_land_in_place_on_the_curve(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    progress(database_url, app)  # built up to here, so what follows lands in an existing view
    portal = app.service_by_slug("online-payment-portal").id
    regression = Provenance(PAPER.actor, reason="Card processor breach", occurred_at=when(1, 9, month=7))
    dip = app.report_status(portal, status="MAJOR_OUTAGE", phase="ISOLATED", incident_id=DEMO_INCIDENT_ID,
                            provenance=regression)
    app.report_status(portal, status="OPERATIONAL", phase="RESTORED", incident_id=DEMO_INCIDENT_ID,
                      provenance=Provenance(PAPER.actor, occurred_at=when(5, 9, month=7)))
    assert progress(database_url, app).curve == with_points(
        CurvePoint(when(1, 9, month=7), 1, 8), CurvePoint(when(5, 9, month=7), 2, 8))

    app.correct_event(dip.position, changes={"occurred_at": when(2, 9, month=7)}, provenance=PAPER)
    assert progress(database_url, app).curve == with_points(
        CurvePoint(when(2, 9, month=7), 1, 8), CurvePoint(when(5, 9, month=7), 2, 8))

    # A service first reported against the incident, back-dated, counts from then on.
    card_line = app.service_by_slug("card-payment-line").id
    app.report_status(card_line, status="DEGRADED_PERFORMANCE", phase="ASSESSING", incident_id=DEMO_INCIDENT_ID,
                      provenance=Provenance(PAPER.actor, occurred_at=when(20, 9)))
    seen = progress(database_url, app)
    assert seen.total == 9
    assert [(p.restored, p.total) for p in seen.curve if p.at >= when(20, 9)] == [
        (0, 9), (1, 9), (2, 9), (1, 9), (2, 9), (3, 9), (4, 9), (3, 9), (4, 9)]
    assert seen.curve[4] == CurvePoint(when(20, 9), 0, 9)


def with_points(*points: CurvePoint) -> list[CurvePoint]:
    return sorted([*DEMO_CURVE, *points])


def test_rows_are_the_same_however_the_view_is_built(app: RestorationApp, database_url: str) -> None:
    eventful_history(app)
    assert_same_rows_however_built(database_url, app, RestorationProgress())
    assert progress(database_url, app).total == 9


def test_an_incident_with_no_services_has_an_empty_curve(app: RestorationApp, database_url: str) -> None:
    incident = app.declare_incident(title="Quiet", kind="OTHER", severity="MINOR", provenance=PAPER)
    build(database_url, app, RestorationProgress())
    with psycopg.connect(database_url) as connection:
        seen = load_progress(connection, incident.id)
    assert (seen.total, seen.restored, seen.percent_restored, seen.curve) == (0, 0, 0.0, [])
    assert all(count == 0 for _, count in seen.by_status)
