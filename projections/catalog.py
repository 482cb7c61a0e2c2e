"""Every read model the tracker keeps, by name."""

from __future__ import annotations

from projections.base import Projection
from projections.intervals import Intervals
from projections.timeline import Timeline


def all_projections() -> list[Projection]:
    return [Timeline(), Intervals()]


def projection_named(name: str) -> Projection:
    for projection in all_projections():
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in all_projections())
    raise KeyError(f"No projection is called {name!r}; known projections: {known}.")
