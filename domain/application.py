"""The write side: one application that takes commands and saves aggregates.

Persistence is chosen by the environment the composition root passes in (PostgreSQL in
production and in tests of the application, in-memory for pure domain tests); nothing here
knows which.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, LRUCache
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.dependencies import DependencyGraph
from domain.errors import Conflict, DomainError, InvalidTransition, NotFound
from domain.incident import Incident, IncidentKind
from domain.service import Service
from domain.values import Audience, Confidence, Phase, Provenance, Severity, Status

A = TypeVar("A", bound=Aggregate)

MAX_ATTEMPTS = 10
"""How often a command is re-decided after losing a write race before it is a CONFLICT."""

KEPT_AFTER_SAVING = 10_000
"""How many aggregates, as this process last saved them, are kept to decide the next command on."""

_trusted_unread: ContextVar[UUID | None] = ContextVar("trusted_unread", default=None)
"""The aggregate this command may take as this process last saved it, without reading it."""


@dataclass(frozen=True)
class Recorded:
    """What a command changed, and the position of its last event in the global log."""

    id: UUID
    position: int | None


class RestorationApp(Application[UUID]):
    name = "Restoration"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Each entry is handed to one command at a time (taken out, put back once saved), so
        # no copy is needed and a command that fails leaves nothing half-changed behind.
        self._as_saved: LRUCache[UUID, Aggregate] = LRUCache(maxsize=KEPT_AFTER_SAVING)

    # ---- reading aggregates ---------------------------------------------------------------

    def _get(self, cls: type[A], aggregate_id: UUID, label: str) -> A:
        try:
            if aggregate_id == _trusted_unread.get():
                aggregate = self._take_as_saved(aggregate_id)
            else:
                aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"No {label} has the id {aggregate_id}.") from None
        if not isinstance(aggregate, cls):
            raise NotFound(f"No {label} has the id {aggregate_id}.")
        return aggregate

    def service(self, service_id: UUID) -> Service:
        return self._get(Service, service_id, "service")

    def service_by_slug(self, slug: str) -> Service:
        try:
            return self.service(Service.create_id(slug))
        except NotFound:
            raise NotFound(f"No service has the slug {slug!r}.") from None

    def incident(self, incident_id: UUID) -> Incident:
        return self._get(Incident, incident_id, "incident")

    def dependency_graph(self, starting: Provenance | None = None) -> DependencyGraph:
        """The graph; a new (unsaved) one started by ``starting`` if none is recorded yet."""
        try:
            return self._get(DependencyGraph, DependencyGraph.ID, "dependency graph")
        except NotFound:
            return DependencyGraph.start(starting or Provenance("restoration-tracker"))

    def head_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def _take_as_saved(self, aggregate_id: UUID) -> Aggregate:
        try:
            return self._as_saved.get(aggregate_id, evict=True)
        except KeyError:
            return self.repository.get(aggregate_id)

    # ---- saving ---------------------------------------------------------------------------

    def _create(self, aggregate: Aggregate, duplicate: str) -> Recorded:
        try:
            recordings = self.save(aggregate)
        except IntegrityError:
            raise Conflict(duplicate) from None
        self._keep_as_saved([aggregate])
        return Recorded(aggregate.id, _last_position(recordings))

    def _change(self, subject_id: UUID, decide: Callable[[], Sequence[Aggregate]]) -> Recorded:
        """Decide and save; on a version conflict, decide again on fresh state.

        Re-deciding (not re-saving) is what makes a retry safe: the rules are checked
        against the state that actually won the race, so no update is lost or misapplied.
        """
        recorded = self._change_as_saved(subject_id, decide)
        if recorded is not None:
            return recorded
        for attempt in range(1, MAX_ATTEMPTS + 1):
            aggregates = decide()
            try:
                recordings = self.save(*aggregates)
            except IntegrityError:
                time.sleep(random.uniform(0, 0.002 * 2**attempt))
                continue
            self._keep_as_saved(aggregates)
            return Recorded(subject_id, _last_position(recordings))
        raise Conflict(
            f"Too many simultaneous changes: gave up after {MAX_ATTEMPTS} attempts. "
            "Nothing was recorded; try again."
        )

    def _change_as_saved(self, subject_id: UUID, decide: Callable[[], Sequence[Aggregate]]) -> Recorded | None:
        """Decide on the subject as this process last saved it, without reading it; None when
        that decides nothing that may stand, and the command must be decided on fresh state.

        Another process may have changed the subject since. What is decided on a stale copy
        cannot be stored: the new event's version clashes, and the save fails. A refusal, or
        a decision to record nothing, is not guarded that way, so neither stands from here.
        """
        token = _trusted_unread.set(subject_id)
        try:
            aggregates = decide()
        except DomainError:
            return None
        finally:
            _trusted_unread.reset(token)
        if not any(aggregate.pending_events for aggregate in aggregates):
            return None
        try:
            recordings = self.save(*aggregates)
        except IntegrityError:
            return None
        self._keep_as_saved(aggregates)
        return Recorded(subject_id, _last_position(recordings))

    def _keep_as_saved(self, aggregates: Sequence[Aggregate]) -> None:
        for aggregate in aggregates:
            self._as_saved.put(aggregate.id, aggregate)

    # ---- services -------------------------------------------------------------------------

    def register_service(
        self,
        *,
        slug: str,
        name: str,
        category: str,
        provenance: Provenance,
        description: str | None = None,
        resident_facing: bool = False,
        tier: int | None = None,
        owner: str | None = None,
    ) -> Recorded:
        service = Service.register(
            slug=slug,
            name=name,
            category=category,
            provenance=provenance,
            description=description,
            resident_facing=resident_facing,
            tier=tier,
            owner=owner,
        )
        return self._create(service, f"A service with the slug {service.slug!r} already exists.")

    def report_status(
        self,
        service_id: UUID,
        *,
        provenance: Provenance,
        status: Status | str | None = None,
        phase: Phase | str | None = None,
        note: str | None = None,
        public_note: str | None = None,
        incident_id: UUID | None = None,
    ) -> Recorded:
        def decide() -> list[Aggregate]:
            service = self.service(service_id)
            changed: list[Aggregate] = []
            if incident_id is not None:
                incident = self.incident(incident_id)
                incident.check_open()
                if not incident.affects(service_id):
                    incident.affect_service(service_id=service_id, provenance=provenance)
                    changed.append(incident)
            service.report_status(
                provenance=provenance,
                status=status,
                phase=phase,
                note=note,
                public_note=public_note,
                incident_id=incident_id,
            )
            return [*changed, service]

        return self._change(service_id, decide)

    def set_eta(
        self,
        service_id: UUID,
        *,
        expected_at: datetime,
        confidence: Confidence | str,
        provenance: Provenance,
    ) -> Recorded:
        def decide() -> list[Aggregate]:
            service = self.service(service_id)
            service.set_eta(expected_at=expected_at, confidence=confidence, provenance=provenance)
            return [service]

        return self._change(service_id, decide)

    def clear_eta(self, service_id: UUID, *, provenance: Provenance) -> Recorded:
        def decide() -> list[Aggregate]:
            service = self.service(service_id)
            service.clear_eta(provenance=provenance)
            return [service]

        return self._change(service_id, decide)

    def publish_workaround(
        self,
        service_id: UUID,
        *,
        channel: str,
        instructions: str,
        provenance: Provenance,
        contact: str | None = None,
        audience: str | None = None,
        workaround_id: str | None = None,
    ) -> Recorded:
        """Returns the position; the new workaround's id is ``workaround_id`` or a new one."""
        chosen_id = workaround_id or str(uuid4())

        def decide() -> list[Aggregate]:
            service = self.service(service_id)
            service.publish_workaround(
                workaround_id=chosen_id,
                channel=channel,
                instructions=instructions,
                contact=contact,
                audience=audience,
                provenance=provenance,
            )
            return [service]

        return self._change(service_id, decide)

    def withdraw_workaround(
        self, service_id: UUID, *, workaround_id: str, provenance: Provenance
    ) -> Recorded:
        def decide() -> list[Aggregate]:
            service = self.service(service_id)
            service.withdraw_workaround(workaround_id=workaround_id, provenance=provenance)
            return [service]

        return self._change(service_id, decide)

    def add_dependency(
        self, service_id: UUID, *, depends_on_id: UUID, provenance: Provenance
    ) -> Recorded:
        def decide() -> list[Aggregate]:
            self.service(service_id)
            self.service(depends_on_id)
            graph = self.dependency_graph(starting=provenance)
            graph.add(service_id=service_id, depends_on_id=depends_on_id, provenance=provenance)
            return [graph]

        return self._change(service_id, decide)

    def remove_dependency(
        self, service_id: UUID, *, depends_on_id: UUID, provenance: Provenance
    ) -> Recorded:
        def decide() -> list[Aggregate]:
            graph = self.dependency_graph()
            graph.remove(service_id=service_id, depends_on_id=depends_on_id, provenance=provenance)
            return [graph]

        return self._change(service_id, decide)

    # ---- incidents ------------------------------------------------------------------------

    def declare_incident(
        self,
        *,
        title: str,
        kind: IncidentKind | str,
        severity: Severity | str,
        provenance: Provenance,
        summary: str | None = None,
        detected_at: datetime | None = None,
        incident_id: UUID | None = None,
    ) -> Recorded:
        incident = Incident.declare(
            title=title,
            kind=kind,
            severity=severity,
            provenance=provenance,
            summary=summary,
            detected_at=detected_at,
            incident_id=incident_id,
        )
        return self._create(incident, f"An incident with the id {incident.id} already exists.")

    def _change_incident(self, incident_id: UUID, command: Callable[[Incident], None]) -> Recorded:
        def decide() -> list[Aggregate]:
            incident = self.incident(incident_id)
            command(incident)
            return [incident]

        return self._change(incident_id, decide)

    def affect_service(
        self, incident_id: UUID, *, service_id: UUID, provenance: Provenance
    ) -> Recorded:
        self.service(service_id)
        return self._change_incident(
            incident_id, lambda i: i.affect_service(service_id=service_id, provenance=provenance)
        )

    def post_update(
        self,
        incident_id: UUID,
        *,
        audience: Audience | str,
        message: str,
        provenance: Provenance,
        service_ids: list[UUID] | None = None,
        next_update_by: datetime | None = None,
    ) -> Recorded:
        for service_id in service_ids or []:
            self.service(service_id)
        return self._change_incident(
            incident_id,
            lambda i: i.post_update(
                audience=audience,
                message=message,
                provenance=provenance,
                service_ids=service_ids,
                next_update_by=next_update_by,
            ),
        )

    def record_impact(
        self,
        incident_id: UUID,
        *,
        provenance: Provenance,
        residents_affected: int | None = None,
        properties_affected: int | None = None,
        service_id: UUID | None = None,
    ) -> Recorded:
        if service_id is not None:
            self.service(service_id)
        return self._change_incident(
            incident_id,
            lambda i: i.record_impact(
                provenance=provenance,
                residents_affected=residents_affected,
                properties_affected=properties_affected,
                service_id=service_id,
            ),
        )

    def record_awareness(
        self,
        incident_id: UUID,
        *,
        aware_at: datetime,
        regimes: list[str],
        provenance: Provenance,
    ) -> Recorded:
        return self._change_incident(
            incident_id,
            lambda i: i.record_awareness(aware_at=aware_at, regimes=regimes, provenance=provenance),
        )

    def record_regulator_notification(
        self,
        incident_id: UUID,
        *,
        regime: str,
        provenance: Provenance,
        reference: str | None = None,
    ) -> Recorded:
        return self._change_incident(
            incident_id,
            lambda i: i.record_regulator_notification(
                regime_code=regime, reference=reference, provenance=provenance
            ),
        )

    def record_notification_decision(
        self, incident_id: UUID, *, regime: str, required: bool, provenance: Provenance
    ) -> Recorded:
        return self._change_incident(
            incident_id,
            lambda i: i.record_notification_decision(
                regime_code=regime, required=required, provenance=provenance
            ),
        )

    def close_incident(
        self, incident_id: UUID, *, provenance: Provenance, summary: str | None = None
    ) -> Recorded:
        return self._change_incident(
            incident_id, lambda i: i.close(provenance=provenance, summary=summary)
        )

    # ---- corrections ----------------------------------------------------------------------

    def correct_event(
        self, position: int, *, changes: dict[str, Any], provenance: Provenance
    ) -> Recorded:
        """Correct the fact at ``position`` in the global log with a new event."""
        found = self.recorder.select_notifications(start=position, limit=1, stop=position)
        if not found:
            raise NotFound(f"No event is recorded at position {position}.")
        originator_id = UUID(str(found[0].originator_id))
        version = found[0].originator_version

        def decide() -> list[Aggregate]:
            try:
                aggregate = self.repository.get(originator_id)
            except AggregateNotFoundError:
                raise NotFound(f"No event is recorded at position {position}.") from None
            if not isinstance(aggregate, (Service, Incident)):
                raise InvalidTransition(
                    f"The event at position {position} cannot be corrected; "
                    "record the opposite fact instead (e.g. remove the dependency)."
                )
            aggregate.correct(version=version, changes=changes, provenance=provenance)
            return [aggregate]

        return self._change(originator_id, decide)


def _last_position(recordings: Sequence[Any]) -> int | None:
    positions = [r.notification.id for r in recordings]
    return max(positions) if positions else None
