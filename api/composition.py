"""The composition root: the one place that builds the application and its infrastructure."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import threading
from collections.abc import Callable, Iterator, Sequence
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
from projections.base import Projection
from projections.catalog import all_projections, projection_named
from projections.runner import (
    EventLog,
    Worker,
    abandon_rebuild,
    create_tables,
    fill_rebuild,
    finish_rebuild,
    rebuild_reached,
    rebuild_together,
    share_out,
    start_rebuild,
)

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


class RebuildFailed(RuntimeError):
    """A process filling a share of a rebuild's tables failed; nothing was swapped in."""


Progress = Callable[[int, int], None]
"""Called with the position reached and the log's head, as a rebuild goes."""
PROGRESS_SECONDS = 0.5


def rebuild_views(
    tracker: Tracker, projections: Sequence[Projection], *, processes: int = 1, on_progress: Progress | None = None
) -> int:
    """Rebuild ``projections`` from the log into fresh tables and swap them in together; the
    position reached. With ``processes`` above 1, that many processes fill the fresh tables at
    once, each reading the log itself for its share of the views: the whole takes about as long
    as the costliest share instead of the sum, given as many free cores."""
    log = event_log(tracker.app)
    shares = share_out(projections, processes)
    with psycopg.connect(tracker.database_url) as connection:
        if len(shares) == 1:  # one pass here: each event read and decoded once for all the views
            return rebuild_together(connection, log, projections, on_progress=on_progress)
        head = start_rebuild(connection, log, projections)
        try:
            _fill_in_processes(tracker.database_url, shares, lambda: _report(connection, projections, head, on_progress))
        except RebuildFailed:
            abandon_rebuild(connection, projections)
            raise
        return finish_rebuild(connection, log, projections)


def _report(connection: psycopg.Connection, projections: Sequence[Projection], head: int,
            on_progress: Progress | None) -> None:
    if on_progress is not None:
        reached = rebuild_reached(connection, projections)
        on_progress(reached, max(head, reached))


def _fill_in_processes(url: str, shares: list[list[Projection]], report: Callable[[], None]) -> None:
    """Run :func:`_fill_share` for each share in a process of its own until all are done;
    if one fails, stop the others and say which."""
    spawn = multiprocessing.get_context("spawn")  # a fork would copy this process's pools and threads
    fillers = [
        spawn.Process(target=_fill_share, args=(url, [p.name for p in share]), name=",".join(p.name for p in share))
        for share in shares
    ]
    for filler in fillers:
        filler.start()
    try:
        while running := [filler for filler in fillers if filler.is_alive()]:
            report()
            multiprocessing.connection.wait([filler.sentinel for filler in running], timeout=PROGRESS_SECONDS)
            if any(filler.exitcode not in (None, 0) for filler in fillers):
                break
        failed = [filler for filler in fillers if filler.exitcode not in (None, 0)]
        if failed:
            names = "; ".join(f"{filler.name} (exit code {filler.exitcode})" for filler in failed)
            raise RebuildFailed(f"Rebuilding {names} failed (its error is above); the live views are unchanged.")
        report()
    finally:
        for filler in fillers:
            filler.terminate()
            filler.join()


def _fill_share(url: str, names: list[str]) -> None:
    """In a process of its own: fill the fresh tables of the projections ``names``."""
    # Only to decode events. The store's tables exist: two processes creating them at once collide.
    app = RestorationApp(env={**eventsourcing_env(url, pool_size=1), "CREATE_TABLE": "n"})
    try:
        with psycopg.connect(url) as connection:
            fill_rebuild(connection, event_log(app), [projection_named(name) for name in names])
    finally:
        app.close()


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
