"""The composition root: the one place that builds the application and its infrastructure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg

from api.config import Settings
from api.database import database_url, eventsourcing_env
from domain.application import RestorationApp


@dataclass(frozen=True)
class Tracker:
    """Everything a running tracker is made of, built from configuration."""

    settings: Settings
    database_url: str
    app: RestorationApp


@contextmanager
def open_tracker(settings: Settings) -> Iterator[Tracker]:
    """Connect to (or start) PostgreSQL and build the application; close all on exit."""
    with database_url(settings.database_url, settings.data_dir) as url:
        app = RestorationApp(env=eventsourcing_env(url, pool_size=settings.pool_size))
        try:
            yield Tracker(settings=settings, database_url=url, app=app)
        finally:
            app.close()


async def open_read_pool(url: str, *, size: int = 5) -> asyncpg.Pool:
    """The asyncpg pool the read path uses; it must be opened inside the serving event loop."""
    return await asyncpg.create_pool(url, min_size=1, max_size=size, timeout=5, command_timeout=10)
