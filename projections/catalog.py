"""Every read model the tracker keeps, by name."""

from __future__ import annotations

from projections.audit_chain import AuditChain
from projections.base import Projection
from projections.cadence import CommunicationCadence
from projections.incidents import IncidentsView
from projections.intervals import Intervals
from projections.obligations import Obligations
from projections.progress import RestorationProgress
from projections.services import ServicesView
from projections.timeline import Timeline
from projections.webhook_outbox import WebhookOutbox


def all_projections() -> list[Projection]:
    return [
        Timeline(),
        ServicesView(),
        IncidentsView(),
        Obligations(),
        RestorationProgress(),
        CommunicationCadence(),
        Intervals(),
        AuditChain.from_env(),
        WebhookOutbox(),
    ]


def projection_named(name: str) -> Projection:
    for projection in all_projections():
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in all_projections())
    raise KeyError(f"No projection is called {name!r}; known projections: {known}.")
