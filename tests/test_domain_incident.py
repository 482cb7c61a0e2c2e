"""Incident rules and regulatory clocks, without a database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from domain.dependencies import DependencyGraph
from domain.errors import Conflict, InvalidTransition, NotFound, ValidationError
from domain.incident import Incident, IncidentPhase
from domain.regulation import ObligationState
from domain.values import COUNT_LIMIT, Provenance

NOW = datetime.now(timezone.utc)


def at(hours_ago: float, reason: str | None = None) -> Provenance:
    return Provenance("lead@example.org", reason=reason, occurred_at=NOW - timedelta(hours=hours_ago))


def attack() -> Incident:
    return Incident.declare(
        title="Cyber attack", kind="CYBER_ATTACK", severity="CRITICAL", provenance=at(200),
        detected_at=NOW - timedelta(hours=201),
    )


def test_declaring_checks_kind_severity_and_times() -> None:
    with pytest.raises(ValidationError, match="kind must be one of"):
        Incident.declare(title="x", kind="ALIENS", severity="CRITICAL", provenance=at(1))
    with pytest.raises(ValidationError, match="detectedAt cannot be after"):
        Incident.declare(
            title="x", kind="OTHER", severity="MINOR", provenance=at(5), detected_at=NOW - timedelta(hours=1)
        )
    incident = attack()
    assert incident.phase is IncidentPhase.OPEN


def test_the_ico_clock_runs_72_hours_from_awareness() -> None:
    incident = attack()
    incident.record_awareness(
        aware_at=NOW - timedelta(hours=100), regimes=["UK_GDPR_ART33", "RSH_NOTIFIABLE_EVENT"], provenance=at(99)
    )
    ico = incident.obligations["UK_GDPR_ART33"]
    assert ico.regulator == "ICO"
    assert ico.due_at == NOW - timedelta(hours=28)
    assert ico.state(NOW) is ObligationState.OVERDUE
    assert ico.state(NOW - timedelta(hours=30)) is ObligationState.PENDING
    rsh = incident.obligations["RSH_NOTIFIABLE_EVENT"]
    assert rsh.due_at is None  # no fixed deadline is recorded as such, never invented
    assert rsh.state(NOW) is ObligationState.PENDING


def test_lateness_is_fixed_at_the_first_filing() -> None:
    incident = attack()
    incident.record_awareness(aware_at=NOW - timedelta(hours=100), regimes=["UK_GDPR_ART33"], provenance=at(99))
    awareness_version = incident.version
    incident.record_regulator_notification(regime_code="UK_GDPR_ART33", reference="IC-1", provenance=at(10))
    assert incident.obligations["UK_GDPR_ART33"].state(NOW) is ObligationState.FILED_LATE
    # Moving the anchor later would make the filing look on time; it stays late.
    incident.correct(
        version=awareness_version,
        changes={"aware_at": NOW - timedelta(hours=20)},
        provenance=Provenance("dpo", reason="Awareness was later than first thought"),
    )
    ico = incident.obligations["UK_GDPR_ART33"]
    assert ico.anchor_at == NOW - timedelta(hours=20)
    assert ico.state(NOW) is ObligationState.FILED_LATE


def test_a_filing_in_time_is_on_time() -> None:
    incident = attack()
    incident.record_awareness(aware_at=NOW - timedelta(hours=50), regimes=["UK_GDPR_ART33"], provenance=at(49))
    incident.record_regulator_notification(regime_code="UK_GDPR_ART33", provenance=at(30))
    assert incident.obligations["UK_GDPR_ART33"].state(NOW) is ObligationState.FILED_ON_TIME


def test_not_required_is_a_decision_with_who_and_why() -> None:
    incident = attack()
    with pytest.raises(ValidationError, match="reason is required"):
        incident.record_notification_decision(regime_code="FCA_PRINCIPLE_11", required=False, provenance=at(1))
    incident.record_notification_decision(
        regime_code="FCA_PRINCIPLE_11", required=False, provenance=at(1, reason="No regulated activity affected")
    )
    fca = incident.obligations["FCA_PRINCIPLE_11"]
    assert fca.state(NOW) is ObligationState.NOT_REQUIRED
    assert (fca.decided_by, fca.decision_reason) == ("lead@example.org", "No regulated activity affected")
    with pytest.raises(ValidationError, match="Unknown regulatory regime"):
        incident.record_notification_decision(regime_code="NASA", required=True, provenance=at(1, "x"))


def test_updates_promise_the_next_one_later() -> None:
    incident = attack()
    with pytest.raises(ValidationError, match="nextUpdateBy must be after"):
        incident.post_update(audience="PUBLIC", message="Hi", provenance=at(1), next_update_by=NOW - timedelta(hours=2))
    with pytest.raises(ValidationError, match="audience must be one of PUBLIC, INTERNAL"):
        incident.post_update(audience="EVERYONE", message="Hi", provenance=at(1))
    incident.post_update(audience="PUBLIC", message="We are on it", provenance=at(1), next_update_by=NOW + timedelta(hours=4))
    assert incident.updates[-1].next_update_by == NOW + timedelta(hours=4)


def test_impact_counts_must_be_whole_and_not_negative() -> None:
    incident = attack()
    with pytest.raises(ValidationError, match="whole number"):
        incident.record_impact(residents_affected=-1, provenance=at(1))
    with pytest.raises(ValidationError, match="or both"):
        incident.record_impact(provenance=at(1))
    incident.record_impact(residents_affected=350_000, properties_affected=125_000, provenance=at(1))
    impact = incident.impact()
    assert impact is not None and impact.residents_affected == 350_000


def test_a_corrected_count_is_bounded_like_a_recorded_one() -> None:
    # Found by fuzzing: a correction's count arrives as JSON, with no GraphQL Int to bound it;
    # 10**20 was stored and then stopped every view (bigint out of range).
    incident = attack()
    incident.record_impact(residents_affected=COUNT_LIMIT, provenance=at(1))
    with pytest.raises(ValidationError, match="from 0 to 2,147,483,647"):
        incident.correct(version=incident.version, changes={"residents_affected": 10**20},
                         provenance=Provenance("lead", reason="recount"))


def test_a_closed_incident_takes_only_corrections() -> None:
    incident = attack()
    incident.record_impact(residents_affected=1000, provenance=at(5))
    impact_version = incident.version
    incident.close(provenance=at(1), summary="All services restored")
    assert incident.phase is IncidentPhase.CLOSED
    for attempt in (
        lambda: incident.post_update(audience="PUBLIC", message="x", provenance=at(0)),
        lambda: incident.record_impact(residents_affected=1, provenance=at(0)),
        lambda: incident.affect_service(service_id=uuid4(), provenance=at(0)),
        lambda: incident.close(provenance=at(0)),
    ):
        with pytest.raises(InvalidTransition, match="closed; only corrections"):
            attempt()
    incident.correct(
        version=impact_version, changes={"residents_affected": 1200}, provenance=Provenance("l", reason="recount")
    )
    impact = incident.impact()
    assert impact is not None and impact.residents_affected == 1200


def test_dependencies_refuse_cycles_and_self() -> None:
    graph = DependencyGraph.start(Provenance("ops"))
    a, b, c = uuid4(), uuid4(), uuid4()
    by = Provenance("ops")
    graph.add(service_id=a, depends_on_id=b, provenance=by)
    graph.add(service_id=b, depends_on_id=c, provenance=by)
    with pytest.raises(ValidationError, match="cycle"):
        graph.add(service_id=c, depends_on_id=a, provenance=by)
    with pytest.raises(ValidationError, match="itself"):
        graph.add(service_id=a, depends_on_id=a, provenance=by)
    with pytest.raises(Conflict):
        graph.add(service_id=a, depends_on_id=b, provenance=by)
    graph.remove(service_id=b, depends_on_id=c, provenance=by)
    graph.add(service_id=c, depends_on_id=a, provenance=by)  # no longer a cycle
    with pytest.raises(NotFound):
        graph.remove(service_id=b, depends_on_id=c, provenance=by)
    assert graph.depends_on(a) == [b]
