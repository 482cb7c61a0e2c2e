"""Which services depend on which: one graph, so a cycle can be refused atomically."""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, NotFound, ValidationError
from domain.values import Provenance, utc_now


class DependencyGraph(Aggregate):
    """The single graph of service dependencies.

    Edges are facts about the dependent service, but whether a new edge closes a cycle
    depends on every other edge; keeping them in one aggregate makes that check and the
    write one atomic step (a concurrent edge raises a version conflict and is retried).
    """

    ID = uuid5(NAMESPACE_URL, "https://restoration-tracker/dependency-graph")

    @staticmethod
    def create_id() -> UUID:
        return DependencyGraph.ID

    @classmethod
    def start(cls, provenance: Provenance) -> DependencyGraph:
        by = provenance.checked(utc_now())
        return cls(actor=by.actor, reason=by.reason, occurred_at=by.occurred_at)

    @event("Started")
    def __init__(self, *, actor: str, reason: str | None, occurred_at: datetime) -> None:
        self.edges: dict[str, list[str]] = {}

    def depends_on(self, service_id: UUID) -> list[UUID]:
        return [UUID(d) for d in self.edges.get(str(service_id), [])]

    def _path_exists(self, start: str, goal: str) -> bool:
        seen: set[str] = set()
        frontier = [start]
        while frontier:
            node = frontier.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                frontier.extend(self.edges.get(node, []))
        return False

    def add(self, *, service_id: UUID, depends_on_id: UUID, provenance: Provenance) -> None:
        by = provenance.checked(utc_now())
        if service_id == depends_on_id:
            raise ValidationError("A service cannot depend on itself.")
        if str(depends_on_id) in self.edges.get(str(service_id), []):
            raise Conflict("That dependency is already recorded.")
        if self._path_exists(str(depends_on_id), str(service_id)):
            raise ValidationError(
                "That dependency would create a cycle: the other service already depends, "
                "directly or through others, on this one."
            )
        self._dependency_added(
            service_id=service_id,
            depends_on_id=depends_on_id,
            actor=by.actor,
            reason=by.reason,
            occurred_at=by.occurred_at,
        )

    @event("DependencyAdded")
    def _dependency_added(
        self,
        service_id: UUID,
        depends_on_id: UUID,
        actor: str,
        reason: str | None,
        occurred_at: datetime,
    ) -> None:
        self.edges.setdefault(str(service_id), []).append(str(depends_on_id))

    def remove(self, *, service_id: UUID, depends_on_id: UUID, provenance: Provenance) -> None:
        by = provenance.checked(utc_now())
        if str(depends_on_id) not in self.edges.get(str(service_id), []):
            raise NotFound("That dependency is not recorded, so it cannot be removed.")
        self._dependency_removed(
            service_id=service_id,
            depends_on_id=depends_on_id,
            actor=by.actor,
            reason=by.reason,
            occurred_at=by.occurred_at,
        )

    @event("DependencyRemoved")
    def _dependency_removed(
        self,
        service_id: UUID,
        depends_on_id: UUID,
        actor: str,
        reason: str | None,
        occurred_at: datetime,
    ) -> None:
        self.edges[str(service_id)].remove(str(depends_on_id))
