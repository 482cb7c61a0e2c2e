"""Communication cadence read model, on a real PostgreSQL, through real commands."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import psycopg

from api.demo import DEMO_INCIDENT_ID, SERVICES, load_demo, when
from domain.application import RestorationApp
from domain.incident import Incident
from domain.service import Service
from domain.values import Provenance, Status
from projections.cadence import Cadence, CommunicationCadence, load_cadence
from tests.projection_support import assert_same_rows_however_built, build, eventful_history, position_of

COMMS = Provenance("communications@clarion.example")
IT = "it.recovery@clarion.example"
AFTER_LAST_UPDATE = when(5, 9, month=8)


def cadence(url: str, app: RestorationApp, now: datetime = AFTER_LAST_UPDATE) -> Cadence:
    build(url, app, CommunicationCadence())
    with psycopg.connect(url) as connection:
        return load_cadence(connection, DEMO_INCIDENT_ID, now)


def down_without_eta(seen: Cadence) -> dict[str, tuple[datetime, datetime]]:
    """slug -> (down since, without an ETA since), for the demo's services."""
    slugs = {Service.create_id(slug): slug for slug, *_ in SERVICES}
    return {slugs[s.service_id]: (s.down_since, s.without_eta_since) for s in seen.down_without_eta}


def test_the_demo_promised_its_next_update_by_10_august(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    before = cadence(database_url, app, now=AFTER_LAST_UPDATE)
    assert (before.last_public_update_at, before.next_update_by) == (when(3, 17, month=8), when(10, 17, month=8))
    assert (before.overdue, before.overdue_by) == (False, None)
    late = cadence(database_url, app, now=when(11, 17, month=8))
    assert (late.overdue, late.overdue_by) == (True, timedelta(days=1))

    # Housing management has been down since the attack and was never given a date.
    assert down_without_eta(before) == {"housing-management": (when(17, 10), when(17, 10))}
    (silent,) = before.down_without_eta
    assert silent.status is Status.PARTIAL_OUTAGE and silent.down_for == AFTER_LAST_UPDATE - when(17, 10)
    # The Service aggregates agree: every affected service that is down has an ETA but this one.
    for service_id in app.incident(DEMO_INCIDENT_ID).affected_service_ids:
        service = app.service(UUID(service_id))
        listed = service.id == silent.service_id
        assert listed == (service.status is not Status.OPERATIONAL and service.eta is None)


def test_a_service_shows_from_when_its_eta_lapsed_until_it_is_back(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    telephony, rent_by_phone = Service.create_id("telephony"), Service.create_id("rent-by-phone")
    cadence(database_url, app)
    app.clear_eta(telephony, provenance=Provenance(IT, occurred_at=when(6, 9, month=8)))
    # Restored but still degraded: no ETA is in force for a restored service.
    app.report_status(rent_by_phone, phase="RESTORED", status="DEGRADED_PERFORMANCE",
                      provenance=Provenance(IT, occurred_at=when(7, 9, month=8)))
    assert down_without_eta(cadence(database_url, app)) == {
        "housing-management": (when(17, 10), when(17, 10)),
        "telephony": (when(17, 10), when(6, 9, month=8)),
        "rent-by-phone": (when(17, 10), when(7, 9, month=8)),
    }

    app.report_status(telephony, status="OPERATIONAL", provenance=Provenance(IT, occurred_at=when(8, 9, month=8)))
    assert "telephony" not in down_without_eta(cadence(database_url, app))
    app.report_status(telephony, status="MAJOR_OUTAGE", provenance=Provenance(IT, occurred_at=when(9, 9, month=8)))
    assert down_without_eta(cadence(database_url, app))["telephony"] == (when(9, 9, month=8), when(9, 9, month=8))
    # Found on paper afterwards: it went down again at noon on the 8th, not on the 9th.
    app.report_status(telephony, status="PARTIAL_OUTAGE", provenance=Provenance(IT, occurred_at=when(8, 12, month=8)))
    assert down_without_eta(cadence(database_url, app))["telephony"] == (when(8, 12, month=8), when(8, 12, month=8))


def test_only_the_latest_public_update_sets_the_promise(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    fix = Provenance("communications@clarion.example", reason="Promised the wrong day")
    app.correct_event(position_of(app, Incident.UpdatePosted, DEMO_INCIDENT_ID, nth=-1),
                      changes={"next_update_by": when(12, 17, month=8)}, provenance=fix)
    app.post_update(DEMO_INCIDENT_ID, audience="INTERNAL", message="Board briefed.",
                    provenance=Provenance(COMMS.actor, occurred_at=when(4, 9, month=8)))
    old = app.post_update(DEMO_INCIDENT_ID, audience="PUBLIC", message="Found in the drafts folder.",
                          next_update_by=when(20, 17, month=8),
                          provenance=Provenance(COMMS.actor, occurred_at=when(2, 9, month=8)))
    app.correct_event(old.position, changes={"next_update_by": when(21, 17, month=8)}, provenance=fix)
    seen = cadence(database_url, app, now=when(11, 17, month=8))
    assert (seen.last_public_update_at, seen.next_update_by, seen.overdue) == (
        when(3, 17, month=8), when(12, 17, month=8), False)

    app.close_incident(DEMO_INCIDENT_ID, provenance=COMMS)
    closed = cadence(database_url, app, now=when(1, 9, month=9))
    assert closed.closed_at is not None and (closed.overdue, closed.overdue_by) == (False, None)


def test_rows_are_the_same_however_the_view_is_built(app: RestorationApp, database_url: str) -> None:
    eventful_history(app)
    assert_same_rows_however_built(database_url, app, CommunicationCadence())
    seen = cadence(database_url, app, now=when(10, 9, month=8))
    assert (seen.last_public_update_at, seen.next_update_by) == (when(4, 17, month=8), when(11, 17, month=8))
    assert set(down_without_eta(seen)) == {"housing-management", "telephony"}
