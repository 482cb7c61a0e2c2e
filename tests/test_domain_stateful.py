"""The Service and Incident rules against a model of them, by Hypothesis's stateful testing.

Random sequences of commands go through the application (in-memory persistence, so each
aggregate is rebuilt from its stored events every time). A small model, written from the
documented rules rather than from the code, predicts for each command whether it is refused,
and with which error, and what the aggregates then say; after every step the two must agree.

Times are whole minutes from the machine's start, so the five-minute clock-skew tolerance is
never a matter of milliseconds (a run of one machine takes well under a minute).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.application import RestorationApp
from domain.errors import Conflict, DomainError, InvalidTransition, NotFound, ValidationError
from domain.regulation import REGIMES, ObligationState
from domain.values import COUNT_LIMIT, Confidence, Phase, Provenance, Status, utc_now

REGISTERED_AT = -5000
DECLARED_AT = -4000

minutes = st.one_of(st.integers(min_value=-60, max_value=10), st.integers(min_value=-4100, max_value=10))
"""When a fact happened: often in the last hour, so facts interleave; more than 5 minutes
ahead is refused, and before the declaration an incident cannot close."""


@dataclass(frozen=True)
class Text:
    value: str | None
    verdict: str  # "ok", "blank" (taken as absent), "bad" (refused)


NO_TEXT = Text(None, "blank")


def texts(limit: int) -> st.SearchStrategy[Text]:
    """Mostly acceptable text, so commands get past it to the rules behind."""
    fine = [Text("Phones are down", "ok"), Text("  spaced  ", "ok"), Text("x" * limit, "ok"), Text("tab\there", "ok")]
    poor = [NO_TEXT, Text("   ", "blank"), Text("x" * (limit + 1), "bad"), Text("a\x00b", "bad")]
    return st.one_of(st.sampled_from(fine), st.sampled_from(fine), st.sampled_from(poor))


@dataclass(frozen=True)
class Report:
    at: int
    version: int
    status: Status | None
    phase: Phase | None


@dataclass(frozen=True)
class EtaRevision:
    at: int
    version: int
    expected: int | None
    confidence: Confidence | None


@dataclass
class ServiceModel:
    version: int = 1
    kinds: dict[int, str] = field(default_factory=lambda: {1: "Registered"})
    reports: list[Report] = field(default_factory=list)
    etas: list[EtaRevision] = field(default_factory=list)
    workarounds: dict[str, bool] = field(default_factory=dict)
    """key -> withdrawn"""

    def _latest(self, attribute: str, until: int | None = None) -> Any:
        ordered = sorted(self.reports, key=lambda r: (r.at, r.version))
        values = [getattr(r, attribute) for r in ordered if until is None or r.at <= until]
        return next((v for v in reversed(values) if v is not None), None)

    def phase(self, at: int | None = None) -> Phase | None:
        return self._latest("phase", at)

    def status(self) -> Status:
        return self._latest("status") or Status.OPERATIONAL

    def eta(self, at: int | None = None) -> EtaRevision | None:
        """The latest ETA given by ``at``, unless it was cleared or the service was restored."""
        given = [e for e in self.etas if at is None or e.at <= at]
        latest = max(given, key=lambda e: (e.at, e.version), default=None)
        if latest is None or latest.expected is None or self.phase(at) is Phase.RESTORED:
            return None
        return latest

    def record(self, kind: str) -> int:
        self.version += 1
        self.kinds[self.version] = kind
        return self.version


@dataclass
class IncidentModel:
    version: int = 1
    closed: bool = False
    impacts: dict[int, tuple[int, int | None]] = field(default_factory=dict)
    """version -> (at, residents)"""
    updates: int = 0
    filed: set[str] = field(default_factory=set)
    not_required: set[str] = field(default_factory=set)


def provenance_refusal(at: int, reason: Text) -> type[DomainError] | None:
    """Every command's first check: the reason's text, then when the fact happened."""
    return ValidationError if reason.verdict == "bad" or at > 5 else None


class Restoration(RuleBasedStateMachine):
    """The application, the clock, and checking a command against the model's prediction."""

    def __init__(self) -> None:
        super().__init__()
        self.app = RestorationApp(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.start = utc_now()

    def when(self, minute: int) -> datetime:
        return self.start + timedelta(minutes=minute)

    def by(self, at: int, reason: Text) -> Provenance:
        return Provenance("ops@example.org", reason=reason.value, occurred_at=self.when(at))

    def expect(self, refusal: type[DomainError] | None, command: Any) -> bool:
        """Run ``command``; check it was refused with ``refusal``, or accepted if None."""
        if refusal is None:
            command()
            return True
        with pytest.raises(DomainError) as raised:
            command()
        assert type(raised.value) is refusal, raised.value
        return False

    def position(self, aggregate_id: Any, version: int) -> int:
        """Where the fact recorded at ``version`` of the aggregate is in the log."""
        [position] = [
            n.id for n in self.app.recorder.select_notifications(start=1, limit=10_000)
            if n.originator_id == aggregate_id and n.originator_version == version
        ]
        return position


class ServiceRules(Restoration):
    """Reports of status and phase, ETAs, workarounds and corrections of one service."""

    def __init__(self) -> None:
        super().__init__()
        self.service = ServiceModel()

    @initialize(recovery=st.lists(st.sampled_from(Phase), unique=True).map(lambda ps: sorted(ps, key=lambda p: p.rank)))
    def register(self, recovery: list[Phase]) -> None:
        """A service somewhere along its recovery: random reports rarely line phases up."""
        self.service_id = self.app.register_service(
            slug="email", name="Email", category="Systems", provenance=self.by(REGISTERED_AT, NO_TEXT)
        ).id
        for minute, phase in enumerate(recovery, start=-120):
            self.report_status(Status.MAJOR_OUTAGE, phase, minute, NO_TEXT, NO_TEXT)

    @rule(status=st.none() | st.sampled_from(Status), phase=st.none() | st.sampled_from(Phase), at=minutes,
          reason=texts(10_000), note=texts(10_000))
    def report_status(self, status: Status | None, phase: Phase | None, at: int, reason: Text, note: Text) -> None:
        model = self.service
        previous = model.phase(at)
        refusal = provenance_refusal(at, reason)
        if refusal is None and status is None and phase is None:
            refusal = ValidationError
        if refusal is None and phase is not None:
            never_affected = previous is None and phase.rank > Phase.RESTORING.rank
            unexplained_regression = previous is not None and phase.rank < previous.rank and reason.verdict != "ok"
            if never_affected or unexplained_regression:
                refusal = InvalidTransition
        if refusal is None and note.verdict == "bad":
            refusal = ValidationError
        if self.expect(refusal, lambda: self.app.report_status(
            self.service_id, status=status, phase=phase, note=note.value, provenance=self.by(at, reason)
        )):
            model.reports.append(Report(at, model.record("StatusReported"), status, phase))

    @staticmethod
    def just_after(facts: list[Any]) -> int:
        """A minute after the latest of ``facts``: random times rarely line facts up."""
        return min(max((f.at for f in facts), default=-60) + 1, 5)

    @rule(data=st.data(), ahead=st.sampled_from([-1, 0, 1]) | st.integers(min_value=-60, max_value=3000),
          reason=texts(10_000), confidence=st.sampled_from(Confidence))
    def set_eta(self, data: st.DataObject, ahead: int, reason: Text, confidence: Confidence) -> None:
        model = self.service
        at = data.draw(st.one_of(st.just(self.just_after(model.reports)), minutes), label="at")
        expected = at + ahead
        refusal = provenance_refusal(at, reason)
        if refusal is None and (reason.verdict != "ok" or expected <= at):
            refusal = ValidationError
        if refusal is None and model.phase(at) is Phase.RESTORED:
            refusal = InvalidTransition
        if self.expect(refusal, lambda: self.app.set_eta(
            self.service_id, expected_at=self.when(expected), confidence=confidence, provenance=self.by(at, reason)
        )):
            model.etas.append(EtaRevision(at, model.record("EtaSet"), expected, confidence))

    @rule(data=st.data())
    def clear_eta(self, data: st.DataObject) -> None:
        model = self.service
        at = data.draw(st.one_of(st.just(self.just_after(model.etas)), minutes), label="at")
        refusal = provenance_refusal(at, NO_TEXT)
        if refusal is None and model.eta(at) is None:
            refusal = InvalidTransition
        if self.expect(refusal, lambda: self.app.clear_eta(self.service_id, provenance=self.by(at, NO_TEXT))):
            model.etas.append(EtaRevision(at, model.record("EtaCleared"), None, None))

    @rule(key=st.sampled_from(["standing-order", "card-line", "portal"]), channel=texts(200),
          instructions=texts(10_000), at=minutes)
    def publish_workaround(self, key: str, channel: Text, instructions: Text, at: int) -> None:
        model = self.service
        refusal = provenance_refusal(at, NO_TEXT)
        if refusal is None and key in model.workarounds:
            refusal = Conflict
        if refusal is None and (channel.verdict != "ok" or instructions.verdict != "ok"):
            refusal = ValidationError
        if self.expect(refusal, lambda: self.app.publish_workaround(
            self.service_id, workaround_id=key, provenance=self.by(at, NO_TEXT),
            channel=channel.value, instructions=instructions.value,  # type: ignore[arg-type]
        )):
            model.workarounds[key] = False
            model.record("WorkaroundPublished")

    @rule(data=st.data(), at=minutes)
    def withdraw_workaround(self, data: st.DataObject, at: int) -> None:
        model = self.service
        keys = st.sampled_from(["standing-order", "card-line", "portal", "never-published"])
        if model.workarounds:
            keys = st.sampled_from(sorted(model.workarounds)) | keys
        key = data.draw(keys, label="key")
        refusal = provenance_refusal(at, NO_TEXT)
        if refusal is None and key not in model.workarounds:
            refusal = NotFound
        if refusal is None and model.workarounds[key]:
            refusal = InvalidTransition
        if self.expect(refusal, lambda: self.app.withdraw_workaround(
            self.service_id, workaround_id=key, provenance=self.by(at, NO_TEXT)
        )):
            model.workarounds[key] = True
            model.record("WorkaroundWithdrawn")

    @rule(data=st.data(), status=st.sampled_from(Status), reason=texts(10_000))
    def correct_a_status(self, data: st.DataObject, status: Status, reason: Text) -> None:
        """Only a status report has a status to correct; correcting it elsewhere is refused."""
        model = self.service
        versions = st.sampled_from(sorted(model.kinds))
        if model.reports:
            versions = st.sampled_from([r.version for r in model.reports]) | versions
        version = data.draw(versions, label="version")
        kind = model.kinds[version]
        refusal = provenance_refusal(0, reason) or (ValidationError if reason.verdict != "ok" else None)
        if refusal is None and kind in ("EtaCleared", "WorkaroundWithdrawn", "Corrected"):
            refusal = InvalidTransition
        if refusal is None and kind != "StatusReported":
            refusal = ValidationError  # "status" is not a field of that fact
        position = self.position(self.service_id, version)
        if self.expect(refusal, lambda: self.app.correct_event(
            position, changes={"status": status.value}, provenance=self.by(0, reason)
        )):
            model.reports = [
                Report(r.at, r.version, status, r.phase) if r.version == version else r for r in model.reports
            ]
            model.record("Corrected")

    @invariant()
    def the_service_agrees_with_the_model(self) -> None:
        service, model = self.app.service(self.service_id), self.service
        assert service.version == model.version
        assert (service.status, service.phase) == (model.status(), model.phase())
        eta, expected = service.eta, model.eta()
        if expected is None or expected.expected is None:
            assert eta is None
        else:
            assert eta is not None
            assert (eta.expected_at, eta.confidence) == (self.when(expected.expected), expected.confidence)
        active = {key for key, withdrawn in model.workarounds.items() if not withdrawn}
        assert {w.id for w in service.active_workarounds} == active


class IncidentRules(Restoration):
    """Updates, impact, regulators and closing of one incident, and corrections after it."""

    def __init__(self) -> None:
        super().__init__()
        self.incident = IncidentModel()

    @initialize()
    def declare(self) -> None:
        self.incident_id = self.app.declare_incident(
            title="Cyber attack", kind="CYBER_ATTACK", severity="CRITICAL",
            provenance=self.by(DECLARED_AT, NO_TEXT),
        ).id

    def open_refusal(self) -> type[DomainError] | None:
        return InvalidTransition if self.incident.closed else None

    @rule(message=texts(10_000), promised=st.none() | st.integers(min_value=-100, max_value=600), at=minutes)
    def post_update(self, message: Text, promised: int | None, at: int) -> None:
        refusal = self.open_refusal() or provenance_refusal(at, NO_TEXT)
        if refusal is None and ((promised is not None and promised <= at) or message.verdict != "ok"):
            refusal = ValidationError
        if self.expect(refusal, lambda: self.app.post_update(
            self.incident_id, audience="PUBLIC", message=message.value,  # type: ignore[arg-type]
            next_update_by=None if promised is None else self.when(promised),
            provenance=self.by(at, NO_TEXT),
        )):
            self.incident.updates += 1
            self.incident.version += 1

    counts = st.none() | st.integers(min_value=-1, max_value=1000) | st.sampled_from([COUNT_LIMIT, COUNT_LIMIT + 1])

    @staticmethod
    def count_ok(value: int | None) -> bool:
        return value is None or 0 <= value <= COUNT_LIMIT

    @rule(residents=counts, properties=counts, at=minutes)
    def record_impact(self, residents: int | None, properties: int | None, at: int) -> None:
        refusal = self.open_refusal() or provenance_refusal(at, NO_TEXT)
        if refusal is None and (not self.count_ok(residents) or not self.count_ok(properties)
                                or (residents is None and properties is None)):
            refusal = ValidationError
        if self.expect(refusal, lambda: self.app.record_impact(
            self.incident_id, residents_affected=residents, properties_affected=properties,
            provenance=self.by(at, NO_TEXT),
        )):
            self.incident.version += 1
            self.incident.impacts[self.incident.version] = (at, residents)

    @precondition(lambda self: self.incident.impacts)
    @rule(data=st.data(), residents=counts, reason=texts(10_000))
    def correct_an_impact(self, data: st.DataObject, residents: int | None, reason: Text) -> None:
        """Allowed on a closed incident too: corrections are the one fact it still takes."""
        version = data.draw(st.sampled_from(sorted(self.incident.impacts)), label="version")
        refusal = ValidationError if reason.verdict != "ok" or not self.count_ok(residents) else None
        position = self.position(self.incident_id, version)
        if self.expect(refusal, lambda: self.app.correct_event(
            position, changes={"residents_affected": residents}, provenance=self.by(0, reason)
        )):
            self.incident.impacts[version] = (self.incident.impacts[version][0], residents)
            self.incident.version += 1

    @rule(regime=st.sampled_from(sorted(REGIMES)), at=minutes)
    def notify_regulator(self, regime: str, at: int) -> None:
        refusal = self.open_refusal() or provenance_refusal(at, NO_TEXT)
        if self.expect(refusal, lambda: self.app.record_regulator_notification(
            self.incident_id, regime=regime, provenance=self.by(at, NO_TEXT)
        )):
            self.incident.filed.add(regime)
            self.incident.not_required.discard(regime)
            self.incident.version += 1

    @rule(regime=st.sampled_from(sorted(REGIMES)), required=st.booleans(), reason=texts(10_000))
    def decide_on_notifying(self, regime: str, required: bool, reason: Text) -> None:
        refusal = self.open_refusal() or provenance_refusal(0, reason)
        if refusal is None and reason.verdict != "ok":
            refusal = ValidationError
        if refusal is None and not required and regime in self.incident.filed:
            refusal = InvalidTransition
        if self.expect(refusal, lambda: self.app.record_notification_decision(
            self.incident_id, regime=regime, required=required, provenance=self.by(0, reason)
        )):
            if required:
                self.incident.not_required.discard(regime)
            elif regime not in self.incident.filed:
                self.incident.not_required.add(regime)
            self.incident.version += 1

    @precondition(lambda self: self.incident.version > 3)  # else most runs would close at once
    @rule(at=minutes)
    def close(self, at: int) -> None:
        refusal = self.open_refusal() or provenance_refusal(at, NO_TEXT)
        if refusal is None and at < DECLARED_AT:
            refusal = ValidationError
        if self.expect(refusal, lambda: self.app.close_incident(self.incident_id, provenance=self.by(at, NO_TEXT))):
            self.incident.closed = True
            self.incident.version += 1

    @invariant()
    def the_incident_agrees_with_the_model(self) -> None:
        incident, model = self.app.incident(self.incident_id), self.incident
        assert incident.version == model.version
        assert (incident.closed_at is not None) == model.closed
        assert len(incident.updates) == model.updates
        latest = max(model.impacts.items(), key=lambda item: (item[1][0], item[0]), default=None)
        impact = incident.impact()
        assert (impact.residents_affected if impact else None) == (latest[1][1] if latest else None)
        states = {code: obligation.state(utc_now()) for code, obligation in incident.obligations.items()}
        filed = {ObligationState.FILED_ON_TIME, ObligationState.FILED_LATE}
        assert {code for code, state in states.items() if state in filed} == model.filed
        assert {code for code, state in states.items() if state is ObligationState.NOT_REQUIRED} == model.not_required


SETTINGS = settings(
    max_examples=30, stateful_step_count=25, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestServiceRules = ServiceRules.TestCase
TestServiceRules.settings = SETTINGS
TestIncidentRules = IncidentRules.TestCase
TestIncidentRules.settings = SETTINGS
