"""A synthetic restoration history that keeps every domain rule, generated in chunks.

Used by the crash test and the projection benchmark: incident after incident, each with its
services, back-dated facts, regressions, ETAs, workarounds, dependencies, public and internal
updates, impact, regulators, corrections and closure. Facts are decided on aggregates in
memory and returned as events, so thousands of them can be saved with one ``app.save``.
The same seed gives the same story (ids and timestamps apart).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from random import Random
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.dependencies import DependencyGraph
from domain.incident import Incident, IncidentKind
from domain.regulation import REGIMES
from domain.service import Service
from domain.values import Audience, Confidence, Phase, Provenance, Severity, Status

START = datetime(2016, 1, 4, 9, 0, tzinfo=timezone.utc)
STEPS_PER_INCIDENT = 80
SERVICES_PER_INCIDENT = 5
CATEGORIES = ("Systems", "Contact", "Payments", "Repairs", "Housing")
IT = "it.recovery@example.org"
LEAD = "incident.lead@example.org"
COMMS = "communications@example.org"
DPO = "data.protection@example.org"
PHASES = list(Phase)


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


class Workload:
    """The next ``events(n)`` of an endless, rule-abiding recovery story."""

    def __init__(self, seed: int = 0) -> None:
        self.random = Random(seed)
        self.clock = START
        self.graph: DependencyGraph | None = None
        self.service_ids: list[UUID] = []
        self.edges: list[tuple[UUID, UUID]] = []
        self.incidents = 0

    def events(self, at_least: int) -> list[object]:
        """At least ``at_least`` new events (whole incidents, so usually a few more)."""
        events: list[object] = []
        if self.graph is None:
            self.graph = DependencyGraph.start(Provenance(IT, occurred_at=self.clock))
            events.extend(self.graph.collect_events())
        while len(events) < at_least:
            events.extend(_Episode(self).play())
        return events


class _Episode:
    """One incident and the services it affects, told step by step in world time."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.random = workload.random
        self.number = workload.incidents
        workload.incidents += 1
        self.now = workload.clock
        self.events: list[object] = []
        self.workarounds: dict[UUID, list[str]] = {}

    def keep(self, aggregate: Aggregate) -> None:
        self.events.extend(aggregate.collect_events())

    def play(self) -> list[object]:
        r = self.random
        self.incident = Incident.declare(
            title=f"Incident {self.number}",
            kind=r.choice(list(IncidentKind)),
            severity=r.choice(list(Severity)),
            summary="Systems taken offline while we investigate.",
            detected_at=self.now - minutes(r.randint(0, 180)),
            provenance=Provenance(LEAD, reason="Alerts from monitoring", occurred_at=self.now),
        )
        self.keep(self.incident)
        self.services = [self._register(i) for i in range(SERVICES_PER_INCIDENT)]
        self._depend()
        actions: list[tuple[int, Callable[[], None]]] = [
            (30, self._report), (10, self._backdated_report), (12, self._eta), (3, self._clear_eta),
            (6, self._publish_workaround), (3, self._withdraw_workaround), (8, self._update),
            (3, self._impact), (2, self._awareness), (3, self._notify_regulator), (2, self._decide),
            (10, self._correct_service), (5, self._correct_incident),
        ]
        weights = [w for w, _ in actions]
        for _ in range(STEPS_PER_INCIDENT):
            self.now += minutes(r.randint(2, 30))
            r.choices(actions, weights)[0][1]()
        if r.random() < 0.8:
            self.now += minutes(r.randint(60, 600))
            self.incident.close(provenance=Provenance(LEAD, occurred_at=self.now), summary="Restored.")
            self.keep(self.incident)
            self._correct_incident()  # corrections are allowed after closure
        self.workload.clock = self.now + minutes(r.randint(60, 480))
        self.workload.service_ids.extend(s.id for s in self.services)
        return self.events

    # ---- services -----------------------------------------------------------------------

    def _register(self, index: int) -> Service:
        r = self.random
        service = Service.register(
            slug=f"svc-{self.number}-{index}",
            name=f"Service {self.number}.{index}",
            category=r.choice(CATEGORIES),
            resident_facing=r.random() < 0.5,
            tier=r.randint(1, 4),
            owner=IT,
            description="A service the residents or staff rely on.",
            provenance=Provenance(IT, occurred_at=self.now - timedelta(days=r.randint(1, 300))),
        )
        self.keep(service)
        return service

    def _depend(self) -> None:
        """New services depend on older ones (never the reverse), so no cycle can form."""
        r = self.random
        graph = self.workload.graph
        assert graph is not None
        older = list(self.workload.service_ids[-50:])
        for service in self.services:
            for depends_on in r.sample(older, min(len(older), r.randint(0, 2))):
                graph.add(service_id=service.id, depends_on_id=depends_on,
                          provenance=Provenance(IT, occurred_at=self.now))
                self.workload.edges.append((service.id, depends_on))
            older.append(service.id)
        if self.workload.edges and r.random() < 0.3:
            dependent, depends_on = self.workload.edges.pop(r.randrange(len(self.workload.edges)))
            graph.remove(service_id=dependent, depends_on_id=depends_on,
                         provenance=Provenance(IT, reason="Re-architected", occurred_at=self.now))
        self.keep(graph)

    def _status_at(self, service: Service, at: datetime, reason: str | None) -> None:
        r = self.random
        previous = service.phase_at(at)
        if previous is None:
            phase = r.choice(PHASES[:3])
        elif reason is None:
            phase = r.choice(PHASES[previous.rank:])
        else:
            phase = r.choice(PHASES)
        if not self.incident.closed_at and not self.incident.affects(service.id):
            self.incident.affect_service(service_id=service.id, provenance=Provenance(IT, occurred_at=at))
            self.keep(self.incident)
        service.report_status(
            status=r.choice(list(Status)),
            phase=phase if r.random() < 0.8 else None,
            note=r.choice([None, "Engineers on site.", "Waiting for the supplier."]),
            public_note=r.choice([None, "We are working on it."]),
            incident_id=None if self.incident.closed_at else self.incident.id,
            provenance=Provenance(IT, reason=reason, occurred_at=at),
        )
        self.keep(service)

    def _report(self) -> None:
        regression = "Went down again" if self.random.random() < 0.05 else None
        self._status_at(self.random.choice(self.services), self.now, regression)

    def _backdated_report(self) -> None:
        at = self.now - minutes(self.random.randint(10, 3000))
        self._status_at(self.random.choice(self.services), at, "Reported late by the field team")

    def _eta(self) -> None:
        r = self.random
        service = r.choice(self.services)
        given = self.now - minutes(r.choice([0, 0, 0, r.randint(1, 600)]))
        if service.phase_at(given) is Phase.RESTORED:
            return self._report()
        service.set_eta(
            expected_at=given + timedelta(hours=r.randint(1, 240)),
            confidence=r.choice(list(Confidence)),
            provenance=Provenance(LEAD, reason="Supplier estimate", occurred_at=given),
        )
        self.keep(service)

    def _clear_eta(self) -> None:
        service = self.random.choice(self.services)
        if service.eta is None:
            return self._eta()
        service.clear_eta(provenance=Provenance(LEAD, reason="No longer reliable", occurred_at=self.now))
        self.keep(service)

    def _publish_workaround(self) -> None:
        r = self.random
        service = r.choice(self.services)
        published = self.workarounds.setdefault(service.id, [])
        key = f"w{len(published)}"
        service.publish_workaround(
            workaround_id=key,
            channel=r.choice(["Standing order", "Web form", "Card payment line"]),
            instructions="Use this while the service is down.",
            contact=r.choice([None, "020 7946 0123"]),
            audience=r.choice([None, "All residents"]),
            provenance=Provenance(COMMS, occurred_at=self.now),
        )
        published.append(key)
        self.keep(service)

    def _withdraw_workaround(self) -> None:
        r = self.random
        service = r.choice(self.services)
        active = [w.id for w in service.active_workarounds]
        if not active:
            return self._publish_workaround()
        service.withdraw_workaround(workaround_id=r.choice(active), provenance=Provenance(COMMS, occurred_at=self.now))
        self.keep(service)

    def _correct_service(self) -> None:
        r = self.random
        service = r.choice(self.services)
        etas = [e for e in service.eta_revisions if e.expected_at is not None]
        choices: list[tuple[int, dict[str, object]]] = [
            (1, {"name": f"{service.name} (renamed)", "resident_facing": not service.resident_facing}),
        ]
        for report in service.reports[-5:]:
            choices.append((report.version, r.choice([
                {"status": r.choice(list(Status))},
                {"occurred_at": report.occurred_at - minutes(r.randint(1, 240))},
                {"note": "Corrected note."},
            ])))
        for eta in etas[-3:]:
            choices.append((eta.version, {"confidence": r.choice(list(Confidence)),
                                          "expected_at": eta.expected_at + timedelta(hours=r.randint(1, 48))}))
        for workaround in list(service.workarounds.values())[-2:]:
            choices.append((workaround.published_version, {"channel": "Corrected channel"}))
        version, changes = r.choice(choices)
        service.correct(version=version, changes=changes,
                        provenance=Provenance(LEAD, reason="Recorded wrongly", occurred_at=self.now))
        self.keep(service)

    # ---- the incident -------------------------------------------------------------------

    def _update(self) -> None:
        if self.incident.closed_at:
            return
        r = self.random
        audience = r.choice(list(Audience))
        self.incident.post_update(
            audience=audience,
            message=f"{audience.value.title()} update {len(self.incident.updates) + 1}: work continues.",
            service_ids=[s.id for s in r.sample(self.services, r.randint(0, 3))],
            next_update_by=r.choice([None, self.now + timedelta(hours=r.randint(1, 72))]),
            provenance=Provenance(COMMS, occurred_at=self.now),
        )
        self.keep(self.incident)

    def _impact(self) -> None:
        r = self.random
        self.incident.record_impact(
            residents_affected=r.randint(0, 350_000),
            properties_affected=r.choice([None, r.randint(0, 125_000)]),
            service_id=r.choice([None, r.choice(self.services).id]),
            provenance=Provenance(LEAD, occurred_at=self.now),
        )
        self.keep(self.incident)

    def _awareness(self) -> None:
        r = self.random
        self.incident.record_awareness(
            aware_at=self.now - minutes(r.randint(0, 2000)),
            regimes=r.sample(list(REGIMES), r.randint(1, 3)),
            provenance=Provenance(DPO, reason="Evidence of data access", occurred_at=self.now),
        )
        self.keep(self.incident)

    def _notify_regulator(self) -> None:
        r = self.random
        undecided = [code for code, o in self.incident.obligations.items() if not o.not_required]
        self.incident.record_regulator_notification(
            regime_code=r.choice(undecided or list(REGIMES)),
            reference=r.choice([None, f"REF-{self.number}-{r.randint(1, 9999)}"]),
            provenance=Provenance(DPO, occurred_at=self.now - minutes(r.randint(0, 120))),
        )
        self.keep(self.incident)

    def _decide(self) -> None:
        r = self.random
        code = r.choice(list(REGIMES))
        obligation = self.incident.obligations.get(code)
        required = obligation is not None and obligation.filed_at is not None or r.random() < 0.5
        self.incident.record_notification_decision(
            regime_code=code, required=required,
            provenance=Provenance(DPO, reason="Legal advice", occurred_at=self.now),
        )
        self.keep(self.incident)

    def _correct_incident(self) -> None:
        r = self.random
        incident = self.incident
        choices: list[tuple[int, dict[str, object]]] = [(1, {"severity": r.choice(list(Severity))})]
        choices += [(u.version, {"message": "Corrected: work continues."}) for u in incident.updates[-3:]]
        choices += [(i.version, {"residents_affected": r.randint(0, 350_000)}) for i in incident.impacts[-2:]]
        choices += [(a.version, {"aware_at": a.aware_at - minutes(r.randint(1, 600))}) for a in incident.awareness[-2:]]
        choices += [(v, {"reference": f"REF-{self.number}-corrected"}) for v in list(incident.notification_versions)[-2:]]
        version, changes = r.choice(choices)
        incident.correct(version=version, changes=changes,
                         provenance=Provenance(LEAD, reason="Recorded wrongly", occurred_at=self.now))
        self.keep(incident)
