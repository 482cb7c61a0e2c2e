"""The composition root: the one place that builds the application and its infrastructure."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg
import psycopg

from api.background import in_background
from api.config import Settings
from api.database import database_url, eventsourcing_env
from api.tokens import ensure_table as ensure_token_table
from api.webhook_sender import run_webhook_sender
from domain.application import RestorationApp
from projections.catalog import all_projections
from projections.runner import EventLog, Worker, create_tables

WRITE_CONNECTION_WAIT_SECONDS = 0.25
"""How long a write waits for one of the write pool's connections before eventsourcing retries
it (ten tries, 0.2 s apart). Ample while the database is up (connections turn over in
milliseconds); while it is away a write fails in about 4 s instead of hanging until it returns.
eventsourcing's POSTGRES_CONNECT_TIMEOUT sets the same wait, but only in whole seconds."""
RECONNECT_GIVE_UP_SECONDS = 1.0
"""The write pool retries a lost connection with doubling pauses (1, 2, 4, 8 s …) for minutes,
so after an outage the first write could wait many seconds for the next try. Giving up after
a second lets the next write that needs a connection make a fresh one at once."""


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
        app = open_application(url, pool_size=settings.pool_size)
        prepare_read_side(url)
        try:
            yield Tracker(settings=settings, database_url=url, app=app)
        finally:
            app.close()


def open_application(url: str, *, pool_size: int) -> RestorationApp:
    """The write side, set up to fail fast while the database is away and recover as it returns."""
    app = RestorationApp(env=eventsourcing_env(url, pool_size=pool_size))
    pool = app.recorder.datastore.pool  # type: ignore[attr-defined]
    pool.timeout = WRITE_CONNECTION_WAIT_SECONDS
    pool.reconnect_timeout = RECONNECT_GIVE_UP_SECONDS
    return app


async def open_read_pool(url: str, *, size: int = 5) -> asyncpg.Pool:
    """The asyncpg pool the read path uses; it must be opened inside the serving event loop."""
    return await asyncpg.create_pool(url, min_size=1, max_size=size, timeout=5, command_timeout=10)


def prepare_read_side(url: str) -> None:
    """Create every table the API reads, so it can answer before a worker has run."""
    with psycopg.connect(url) as connection:
        for projection in all_projections():
            create_tables(connection, projection)
        ensure_token_table(connection)


def event_log(app: RestorationApp) -> EventLog:
    """The application's event table and NOTIFY channel, and its decoder, for projections."""
    recorder = app.recorder
    return EventLog(
        table=recorder.events_table_name,  # type: ignore[attr-defined]
        channel=recorder.channel_name,  # type: ignore[attr-defined]
        decode=app.mapper.to_domain_event,
    )


def projection_worker(tracker: Tracker) -> Worker:
    return Worker(tracker.database_url, event_log(tracker.app), all_projections())


@contextmanager
def projections_running(tracker: Tracker) -> Iterator[Worker]:
    """Keep every projection current in a background thread for the duration of the block."""
    worker = projection_worker(tracker)
    with in_background(worker.run, worker.stop, name="projection-worker"):
        yield worker


@contextmanager
def webhooks_sending(tracker: Tracker) -> Iterator[threading.Event]:
    """Post webhook deliveries from a background thread for the duration of the block (the
    retry schedule comes from RESTORATION_WEBHOOK_RETRY_FIRST_SECONDS / _MAX_SECONDS)."""
    stop = threading.Event()
    with in_background(lambda: run_webhook_sender(tracker.database_url, stop), stop.set, name="webhook-sender"):
        yield stop
