"""Regulatory obligations read model, on a real PostgreSQL, through real commands."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import UUID

import psycopg

from api.demo import DEMO_INCIDENT_ID, load_demo, when
from domain.application import RestorationApp
from domain.incident import Incident
from domain.regulation import ObligationState
from domain.values import Provenance
from projections.obligations import ObligationRow, Obligations, load_obligations
from tests.projection_support import assert_same_rows_however_built, build, eventful_history, position_of

DPO = Provenance("dpo@example.org")
NOW = datetime.now(timezone.utc)


def obligations(url: str, app: RestorationApp, incident_id: UUID, now: datetime = NOW) -> dict[str, ObligationRow]:
    build(url, app, Obligations())
    with psycopg.connect(url) as connection:
        return {row.regime: row for row in load_obligations(connection, incident_id, now=now)}


def assert_agrees_with_the_aggregate(app: RestorationApp, incident_id: UUID, rows: dict[str, ObligationRow]) -> None:
    """The view folds the same events with the same rules as the Incident aggregate."""
    kept = app.incident(incident_id).obligations
    assert rows.keys() == kept.keys()
    for regime, row in rows.items():
        expected = kept[regime]
        assert (row.anchor_at, row.due_at, row.filed_at, row.reference, row.filed_late, row.not_required,
                row.decided_by, row.decision_reason, row.state) == (
            expected.anchor_at, expected.due_at, expected.filed_at, expected.reference, expected.filed_late,
            expected.not_required, expected.decided_by, expected.decision_reason, expected.state(NOW))


def incident_aware_at(app: RestorationApp, aware_at: datetime, regimes: list[str]) -> UUID:
    incident = app.declare_incident(title="Data breach", kind="CYBER_ATTACK", severity="MAJOR",
                                    provenance=Provenance("lead@example.org", occurred_at=aware_at))
    app.record_awareness(incident.id, aware_at=aware_at, regimes=regimes, provenance=DPO)
    return incident.id


def test_the_demo_shows_the_ico_filed_on_time_and_four_regulators_plus_law_enforcement(
    app: RestorationApp, database_url: str
) -> None:
    load_demo(app)
    rows = obligations(database_url, app, DEMO_INCIDENT_ID)
    assert {row.regulator for row in rows.values()} == {
        "ICO", "Regulator of Social Housing", "Housing Ombudsman", "FCA", "Action Fraud / National Crime Agency",
    }
    ico = rows["UK_GDPR_ART33"]
    assert (ico.anchor_at, ico.due_at, ico.filed_at) == (when(18, 16, 30), when(21, 16, 30), when(20, 11, 5))
    assert (ico.reference, ico.filed_late, ico.state) == ("ICO/IC-178223-L9Q2", False, ObligationState.FILED_ON_TIME)
    assert "72 hours" in ico.regime_title
    assert {r.regime: r.due_at for r in rows.values() if r.regime != "UK_GDPR_ART33"} == dict.fromkeys(
        ["LAW_ENFORCEMENT", "RSH_NOTIFIABLE_EVENT", "HOUSING_OMBUDSMAN", "FCA_PRINCIPLE_11"], None
    )  # no fixed period: none is invented
    assert {r.state for r in rows.values()} == {ObligationState.FILED_ON_TIME}
    assert_agrees_with_the_aggregate(app, DEMO_INCIDENT_ID, rows)


def test_a_late_filing_stays_late_after_the_anchor_is_corrected(app: RestorationApp, database_url: str) -> None:
    incident_id = incident_aware_at(app, NOW - timedelta(days=5), ["UK_GDPR_ART33"])
    filed_at = NOW - timedelta(days=1)
    app.record_regulator_notification(incident_id, regime="UK_GDPR_ART33", reference="ICO/1",
                                      provenance=Provenance("dpo@example.org", occurred_at=filed_at))
    assert obligations(database_url, app, incident_id)["UK_GDPR_ART33"].state is ObligationState.FILED_LATE

    # Awareness was really 2 days ago: the filing would have been in time, but lateness was
    # fixed when it was filed. Anchor and due time move; the breach stays.
    fix = Provenance("dpo@example.org", reason="Awareness time mis-keyed")
    later_awareness = NOW - timedelta(days=2)
    app.correct_event(position_of(app, Incident.AwarenessRecorded, incident_id),
                      changes={"aware_at": later_awareness}, provenance=fix)
    ico = obligations(database_url, app, incident_id)["UK_GDPR_ART33"]
    assert (ico.anchor_at, ico.due_at) == (later_awareness, later_awareness + timedelta(hours=72))
    assert ico.filed_at == filed_at and ico.filed_late is True
    assert ico.state is ObligationState.FILED_LATE

    app.correct_event(position_of(app, Incident.RegulatorNotified, incident_id),
                      changes={"reference": "ICO/IC-2"}, provenance=fix)
    rows = obligations(database_url, app, incident_id)
    assert rows["UK_GDPR_ART33"].reference == "ICO/IC-2"
    assert rows["UK_GDPR_ART33"].position == app.head_position()
    assert_agrees_with_the_aggregate(app, incident_id, rows)


def test_an_unfiled_obligation_is_pending_until_it_is_due_then_overdue(app: RestorationApp, database_url: str) -> None:
    aware_at = NOW - timedelta(days=1)
    incident_id = incident_aware_at(app, aware_at, ["UK_GDPR_ART33", "RSH_NOTIFIABLE_EVENT"])
    due = aware_at + timedelta(hours=72)
    before = obligations(database_url, app, incident_id, now=due - timedelta(seconds=1))
    after = obligations(database_url, app, incident_id, now=due + timedelta(seconds=1))
    assert before["UK_GDPR_ART33"].state is ObligationState.PENDING
    assert after["UK_GDPR_ART33"].state is ObligationState.OVERDUE
    # The state is the clock's, not the stored row's: reading again earlier is PENDING again.
    assert obligations(database_url, app, incident_id, now=NOW)["UK_GDPR_ART33"].state is ObligationState.PENDING
    # With no fixed period a clock is never overdue.
    no_period = after["RSH_NOTIFIABLE_EVENT"]
    assert no_period.state is ObligationState.PENDING and no_period.due_at is None


def test_not_required_is_a_decision_with_who_and_why(app: RestorationApp, database_url: str) -> None:
    incident_id = incident_aware_at(app, NOW - timedelta(days=10), ["UK_GDPR_ART33"])
    app.record_notification_decision(
        incident_id, regime="UK_GDPR_ART33", required=False,
        provenance=Provenance("dpo@example.org", reason="Only encrypted data"),
    )
    app.record_notification_decision(
        incident_id, regime="FCA_PRINCIPLE_11", required=False,
        provenance=Provenance("compliance@example.org", reason="No regulated activity affected"),
    )
    rows = obligations(database_url, app, incident_id)
    assert {(r.regime, r.state, r.decided_by, r.decision_reason) for r in rows.values()} == {
        ("UK_GDPR_ART33", ObligationState.NOT_REQUIRED, "dpo@example.org", "Only encrypted data"),
        ("FCA_PRINCIPLE_11", ObligationState.NOT_REQUIRED, "compliance@example.org", "No regulated activity affected"),
    }
    assert_agrees_with_the_aggregate(app, incident_id, rows)


def test_rows_are_the_same_however_the_view_is_built(app: RestorationApp, database_url: str) -> None:
    eventful_history(app)
    assert_same_rows_however_built(database_url, app, Obligations())
    rows = obligations(database_url, app, DEMO_INCIDENT_ID)
    assert rows["HOUSING_OMBUDSMAN"].reference == "HO-2022-0071"
    assert rows["UK_GDPR_ART33"].anchor_at == when(18, 9)
    assert_agrees_with_the_aggregate(app, DEMO_INCIDENT_ID, rows)
