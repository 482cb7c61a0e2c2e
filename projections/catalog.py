"""Every read model the tracker keeps, by name."""

from __future__ import annotations

from projections.base import Projection
from projections.timeline import Timeline
from projections.webhook_outbox import WebhookOutbox


def all_projections() -> list[Projection]:
    return [Timeline(), WebhookOutbox()]


def projection_named(name: str) -> Projection:
    for projection in all_projections():
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in all_projections())
    raise KeyError(f"No projection is called {name!r}; known projections: {known}.")
