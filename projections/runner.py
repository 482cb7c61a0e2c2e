"""Running projections: exactly once, woken by NOTIFY, one runner per projection at a time.

- Each batch of events is applied and the projection's tracking position advanced in one
  transaction; the position row is locked and checked first, so a batch that another runner
  already applied is rolled back instead of applied twice.
- A worker holds a PostgreSQL advisory lock per projection; a second worker is a hot standby
  that takes over when the first one's session ends.
- NOTIFY is only a doorbell: the worker always reads the log by position, and also on a
  heartbeat, so a lost notification delays nothing for long. Lost connections are retried
  with back-off, so a PostgreSQL restart needs no manual action.
- A rebuild fills fresh tables in a scratch schema and swaps them in atomically.
- A replay fills a scratch schema the same way and compares it with the live view, row for
  row, without touching the live tables: the check that the view is what its events say.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import Connection, Cursor, sql

from projections.base import Envelope, Projection

log = logging.getLogger(__name__)

LIVE_SCHEMA = "public"
BATCH_SIZE = 1000
REBUILD_BATCH_SIZE = 20_000
"""No reader sees a rebuild's tables, so it takes bigger batches: fewer statements and state
reads per event, and a row a batch both adds and supersedes is written once. Measured over
100,719 events: batches of 10,000 took a fifth less server time than batches of 1,000, and
batches of 20,000 another 15-20% less again, making one view's rebuild 5-9% faster; all eight
at once gain nothing more, and peak at 137 MB instead of 99 MB."""
VIEWS_CHANNEL = "restoration_views"
"""NOTIFY channel announcing, on commit, that projections reached a position; the payload is
``names:position``, e.g. ``timeline,services:1042``. Readers take it as a doorbell only."""
STOP_CHECK_SECONDS = 0.25


@dataclass(frozen=True)
class EventLog:
    """Where the events are stored, and how a stored event becomes a domain event."""

    table: str
    channel: str
    decode: Callable[[StoredEvent], Any]

    def head(self, cursor: Cursor[Any]) -> int:
        cursor.execute(sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
            sql.Identifier(LIVE_SCHEMA, self.table)))
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    def read(self, cursor: Cursor[Any], after: int, limit: int, until: int | None = None) -> list[Envelope]:
        """Events with positions after ``after`` (and up to ``until``), in order."""
        query = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
            "WHERE notification_id > %s AND notification_id <= %s ORDER BY notification_id LIMIT %s"
        ).format(sql.Identifier(LIVE_SCHEMA, self.table))
        # Binary results: the state bytes arrive as they are, not hex-encoded and decoded again.
        cursor.execute(query, (after, until if until is not None else 2**62, limit), binary=True)
        stored = [(row[0], StoredEvent(row[1], row[2], row[3], bytes(row[4]))) for row in cursor.fetchall()]
        return [Envelope(position, self.decode(event), event) for position, event in stored]


def lock_key(projection: Projection, purpose: str = "projection") -> int:
    """A stable 64-bit advisory lock key for the projection (and purpose)."""
    digest = hashlib.sha256(f"restoration-{purpose}:{projection.name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _use_schema(cursor: Cursor[Any], schema: str) -> None:
    cursor.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(sql.Identifier(schema)))


def create_tables(
    connection: Connection[Any], projection: Projection, schema: str = LIVE_SCHEMA, *, reader_indexes: bool = True
) -> None:
    """Create the projection's tables, its indexes (readers' too unless ``reader_indexes`` is
    False) and tracking row in ``schema`` if they are missing."""
    with connection.transaction(), connection.cursor() as cursor:
        # Serialise DDL: concurrent CREATE TABLE IF NOT EXISTS can still collide. Not the
        # worker's lock: the active worker holds that for as long as it runs.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(projection, "ddl"),))
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        _use_schema(cursor, schema)
        for statement in projection.create_statements():
            cursor.execute(statement)
        for statement in projection.reader_index_statements() if reader_indexes else ():
            cursor.execute(statement)
        cursor.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (singleton boolean PRIMARY KEY DEFAULT true "
                "CHECK (singleton), position bigint NOT NULL, updated_at timestamptz NOT NULL)"
            ).format(sql.Identifier(projection.tracking_table))
        )
        cursor.execute(
            sql.SQL("INSERT INTO {} VALUES (true, 0, now()) ON CONFLICT DO NOTHING").format(
                sql.Identifier(projection.tracking_table)
            )
        )


Target = tuple[Projection, str]
"""A projection and the schema whose tables it fills."""


def _apply_next_batch(
    cursor: Cursor[Any], log_: EventLog, targets: Sequence[Target], *, until: int | None, batch_size: int
) -> tuple[int, int]:
    """In the caller's transaction: read the next batch once and apply it to each target from
    that target's own position. Returns the lowest position the targets have reached and how
    many events were read: fewer than ``batch_size`` means they have caught up.

    Each tracking row is locked before it is read, so a batch another runner already applied
    is seen as applied (or waited for) instead of being applied twice. The runner's own
    statements are shared by all targets: with one statement each per target, a batch of one
    event waited on some sixty round trips besides the views' own nineteen.
    """
    positions = _lock_positions(cursor, targets)
    start = min(positions)
    batch = log_.read(cursor, start, batch_size, until)
    if not batch:
        return start, 0
    schema_in_use = None
    applied = []
    for (projection, schema), position in zip(targets, positions):
        unapplied = batch if position == start else [e for e in batch if e.position > position]
        if not unapplied:
            continue
        if schema != schema_in_use:
            _use_schema(cursor, schema)
            schema_in_use = schema
        projection.apply(cursor, unapplied)
        applied.append((projection, schema))
    reached = batch[-1].position
    # Every position advanced, and one doorbell rung (readers re-read whatever moved), in one statement.
    cursor.execute(
        sql.SQL("WITH {} SELECT pg_notify(%s, %s)").format(sql.SQL(", ").join(
            sql.SQL("{} AS (UPDATE {} SET position = %s, updated_at = now())").format(
                sql.Identifier(f"advance_{n}"), sql.Identifier(schema, projection.tracking_table))
            for n, (projection, schema) in enumerate(applied)
        )),
        [*(reached for _ in applied), VIEWS_CHANNEL, f"{','.join(p.name for p, _ in applied)}:{reached}"],
    )
    return min(max(position, reached) for position in positions), len(batch)


def _lock_positions(cursor: Cursor[Any], targets: Sequence[Target]) -> list[int]:
    """Each target's tracking position, its row locked until the transaction ends: in one
    statement, locking in the targets' order (scalar subqueries run left to right)."""
    cursor.execute(sql.SQL("SELECT {}").format(sql.SQL(", ").join(
        sql.SQL("(SELECT position FROM {} FOR UPDATE)").format(sql.Identifier(schema, projection.tracking_table))
        for projection, schema in targets
    )))
    row = cursor.fetchone()
    assert row is not None
    for (projection, schema), position in zip(targets, row):
        if position is None:
            raise RuntimeError(f"projection {projection.name} has no tracking row in {schema}")
    return [int(position) for position in row]


def catch_up(
    connection: Connection[Any],
    log_: EventLog,
    projection: Projection,
    *,
    schema: str = LIVE_SCHEMA,
    until: int | None = None,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Apply every event not yet applied (up to ``until``); returns the position reached."""
    return _catch_up(connection, log_, [(projection, schema)], until=until, batch_size=batch_size,
                     on_progress=on_progress)


def _catch_up(
    connection: Connection[Any],
    log_: EventLog,
    targets: Sequence[Target],
    *,
    until: int | None,
    batch_size: int,
    on_progress: Callable[[int], None] | None,
) -> int:
    """Catch every target up, one transaction per batch; the lowest position reached.

    A batch shorter than ``batch_size`` was the end of the log when it was read; what is
    committed later rings the doorbell for the next call.
    """
    while True:
        with connection.transaction(), connection.cursor() as cursor:
            reached, read = _apply_next_batch(cursor, log_, targets, until=until, batch_size=batch_size)
        if read and on_progress is not None:
            on_progress(reached)
        if read < batch_size:
            return reached


def tracked_position(connection: Connection[Any], projection: Projection, schema: str = LIVE_SCHEMA) -> int:
    with connection.transaction(), connection.cursor() as cursor:
        _use_schema(cursor, schema)
        cursor.execute(sql.SQL("SELECT position FROM {}").format(sql.Identifier(projection.tracking_table)))
        row = cursor.fetchone()
        return int(row[0]) if row else 0


BULK_COLLECTION_THRESHOLD = 100_000


@contextmanager
def collecting_less_often() -> Iterator[None]:
    """Let the garbage collector wait for 100,000 new objects instead of 700 between scans.

    A rebuild keeps a batch of 20,000 decoded events and the rows they make alive at once,
    millions of objects in all, nearly all freed by reference counting; scanning them every
    700 allocations cost a fifth of a rebuild's time in this process (measured: 111 -> 94 µs
    per event over the eight views). Process-wide while it lasts, which only delays scans.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(BULK_COLLECTION_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def rebuild(
    connection: Connection[Any],
    log_: EventLog,
    projection: Projection,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    batch_size: int = REBUILD_BATCH_SIZE,
) -> int:
    """Rebuild from position 0 into fresh tables, then swap them in atomically.

    Readers see the old tables until the swap commits and the new ones after; never a
    half-built view. A worker running meanwhile keeps the live tables current and carries
    on from the rebuilt tables' position after the swap. Returns the position reached.
    """
    return rebuild_together(connection, log_, [projection], on_progress=on_progress, batch_size=batch_size)


def rebuild_together(
    connection: Connection[Any],
    log_: EventLog,
    projections: Sequence[Projection],
    *,
    on_progress: Callable[[int, int], None] | None = None,
    batch_size: int = REBUILD_BATCH_SIZE,
) -> int:
    """:func:`rebuild` several projections in one pass over the log, swapped in together.

    Each batch of events is read and decoded once for all of them: that is about a third of
    the time a rebuild of the timeline alone takes, paid once instead of once per projection.
    The three steps (:func:`start_rebuild`, :func:`fill_rebuild`, :func:`finish_rebuild`) can
    also be taken apart, to fill the fresh tables in several processes at once.
    """
    head = start_rebuild(connection, log_, projections)
    fill_rebuild(connection, log_, projections, batch_size=batch_size,
                 on_progress=(lambda p: on_progress(p, max(head, p))) if on_progress else None)
    return finish_rebuild(connection, log_, projections, batch_size=batch_size)


def _rebuild_targets(projections: Sequence[Projection]) -> list[Target]:
    """Each projection with the scratch schema a rebuild fills."""
    return [(projection, f"rebuild_{projection.name}") for projection in projections]


def start_rebuild(connection: Connection[Any], log_: EventLog, projections: Sequence[Projection]) -> int:
    """Empty fresh tables for each projection, without the readers' indexes; the log's head."""
    for projection in projections:
        if not projection.rebuildable:
            raise ValueError(f"{projection.name} is a dispatcher, not a view: it cannot be rebuilt.")
    for projection, schema in _rebuild_targets(projections):
        _drop_schema(connection, schema)
        create_tables(connection, projection, schema, reader_indexes=False)
        create_tables(connection, projection, LIVE_SCHEMA)
    with connection.cursor() as cursor:
        head = log_.head(cursor)
    connection.commit()
    return head


def fill_rebuild(
    connection: Connection[Any],
    log_: EventLog,
    projections: Sequence[Projection],
    *,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = REBUILD_BATCH_SIZE,
) -> int:
    """Load the fresh tables :func:`start_rebuild` made, in one pass over the log; the
    position reached. Any process may do this for any of the projections being rebuilt."""
    with collecting_less_often():
        return _catch_up(connection, log_, _rebuild_targets(projections), until=None,
                         batch_size=batch_size, on_progress=on_progress)


def rebuild_reached(connection: Connection[Any], projections: Sequence[Projection]) -> int:
    """The lowest position the fresh tables have been filled to, for showing progress."""
    return min(tracked_position(connection, projection, schema) for projection, schema in _rebuild_targets(projections))


def share_out(projections: Sequence[Projection], shares: int) -> list[list[Projection]]:
    """``projections`` in at most ``shares`` groups of about equal :attr:`~Projection.rebuild_cost`
    (the costliest first, each to the cheapest group so far), each in catalog order."""
    groups: list[list[Projection]] = [[] for _ in range(max(1, min(shares, len(projections))))]
    for projection in sorted(projections, key=lambda p: -p.rebuild_cost):
        min(groups, key=lambda group: sum(p.rebuild_cost for p in group)).append(projection)
    order = {id(projection): n for n, projection in enumerate(projections)}
    return [sorted(group, key=lambda p: order[id(p)]) for group in groups]


def abandon_rebuild(connection: Connection[Any], projections: Sequence[Projection]) -> None:
    """Drop the fresh tables of a rebuild that will not be finished."""
    for _projection, schema in _rebuild_targets(projections):
        _drop_schema(connection, schema)


def finish_rebuild(
    connection: Connection[Any], log_: EventLog, projections: Sequence[Projection], *, batch_size: int = REBUILD_BATCH_SIZE
) -> int:
    """Index the filled tables for readers, apply what the log gained meanwhile, and swap
    them all in, in one transaction; the position the projections reached."""
    scratch = _rebuild_targets(projections)
    for projection, schema in scratch:  # the readers' indexes, built over the loaded rows
        create_tables(connection, projection, schema)
    with connection.transaction(), connection.cursor() as cursor:
        for projection in projections:
            for table in (*projection.tables, projection.tracking_table):
                cursor.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                    sql.Identifier(LIVE_SCHEMA, table)))
        while _apply_next_batch(cursor, log_, scratch, until=None, batch_size=batch_size)[1] == batch_size:
            pass
        for projection, schema in scratch:
            retired = f"retired_{projection.name}"
            cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(retired)))
            for table in (*projection.tables, projection.tracking_table):
                cursor.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                    sql.Identifier(LIVE_SCHEMA, table), sql.Identifier(retired)))
                cursor.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                    sql.Identifier(schema, table), sql.Identifier(LIVE_SCHEMA)))
            cursor.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(retired)))
            cursor.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return min(tracked_position(connection, projection) for projection in projections)


@dataclass(frozen=True)
class Lag:
    projection: str
    position: int
    head: int
    events: int
    seconds: float
    """How long ago the oldest event it has not yet applied was recorded (0 when current)."""


def lags(connection: Connection[Any], log_: EventLog, projections: Iterable[Projection]) -> list[Lag]:
    with connection.cursor() as cursor:
        head = log_.head(cursor)
    result = []
    for projection in projections:
        try:
            position = tracked_position(connection, projection)
        except psycopg.errors.UndefinedTable:
            connection.rollback()
            position = 0
        seconds = 0.0
        if position < head:
            with connection.cursor() as cursor:
                pending = log_.read(cursor, position, 1)
            if pending:
                age = datetime.now(timezone.utc) - pending[0].recorded_at
                seconds = max(age.total_seconds(), 0.0)
        result.append(Lag(projection.name, position, head, head - position, seconds))
    connection.commit()
    return result


UNEXPECTED_RETRY_SECONDS = 5.0


class Worker:
    """Keeps projections current until stopped; survives database restarts and faults."""

    def __init__(
        self,
        url: str,
        log_: EventLog,
        projections: Sequence[Projection],
        *,
        heartbeat_seconds: float = 1.0,
        max_backoff_seconds: float = 1.0,
        batch_size: int = BATCH_SIZE,
        retry_on: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.url = url
        self.log = log_
        self.projections = list(projections)
        self.heartbeat_seconds = heartbeat_seconds
        self.max_backoff_seconds = max_backoff_seconds
        """Short, so the views catch up within a second or so of the database's return."""
        self.batch_size = batch_size
        self.retry_on = (psycopg.OperationalError, *retry_on)
        """Failures that are waited out and retried, like a lost database (e.g. a broker's)."""
        self.stopping = threading.Event()
        self.held: set[str] = set()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        backoff = 0.2
        while not self.stopping.is_set():
            try:
                self._serve()
                backoff = 0.2
            except self.retry_on as error:
                log.warning("projection worker failed (%s); retrying in %.1fs", error, backoff)
                self.held.clear()
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
            except Exception:
                # A fault in a projection, not in the database: its batch was rolled back, so
                # nothing is lost, but no view moves past that event until the fault is gone.
                # Keep trying (the cause may be transient) and say so loudly, rather than let
                # the thread die and leave every later write reporting VIEWS_LAGGING.
                log.exception("a projection failed; the views wait at the event that failed; "
                              "retrying in %.0fs", UNEXPECTED_RETRY_SECONDS)
                self.held.clear()
                self.stopping.wait(UNEXPECTED_RETRY_SECONDS)

    def _serve(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as control, psycopg.connect(self.url) as work:
            control.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.log.channel)))
            for projection in self.projections:
                create_tables(work, projection)
            self.held.clear()
            while not self.stopping.is_set():
                self._take_free_locks(control)
                held = [(p, LIVE_SCHEMA) for p in self.projections if p.name in self.held]
                if held:
                    # One pass for all: each batch is read and decoded once, and the views it
                    # changes commit together (a projection further behind catches up first).
                    _catch_up(work, self.log, held, until=None, batch_size=self.batch_size, on_progress=None)
                self._wait_for_doorbell(control)

    def _take_free_locks(self, control: Connection[Any]) -> None:
        for projection in self.projections:
            if projection.name not in self.held:
                row = control.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(projection),)).fetchone()
                if row and row[0]:
                    log.info("projection %s: this worker is now the active one", projection.name)
                    self.held.add(projection.name)

    def _wait_for_doorbell(self, control: Connection[Any]) -> None:
        """Return when new events are announced, at the heartbeat, or when stopping."""
        deadline = time.monotonic() + self.heartbeat_seconds
        while not self.stopping.is_set() and time.monotonic() < deadline:
            for _ in control.notifies(timeout=STOP_CHECK_SECONDS, stop_after=1):
                return
        control.execute("SELECT 1")  # heartbeat: a dead connection raises here


def table_rows(connection: Connection[Any], table: str, schema: str = LIVE_SCHEMA) -> list[tuple[Any, ...]]:
    """Every row of a table, in a stable order: for comparing a view with a rebuild."""
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT * FROM {} AS t ORDER BY t::text").format(sql.Identifier(schema, table)))
        rows = cursor.fetchall()
    connection.commit()
    return rows


@dataclass(frozen=True)
class Difference:
    """A row the live view and a replay from position 0 do not share."""

    table: str
    only_in: Literal["live", "replay"]
    row: str
    """The row as PostgreSQL writes it, e.g. ``(1,email,t)``."""


def replay_differences(
    connection: Connection[Any],
    log_: EventLog,
    projection: Projection,
    *,
    batch_size: int = REBUILD_BATCH_SIZE,
    limit: int = 100,
) -> list[Difference]:
    """Replay the projection from position 0 into a scratch schema and compare every table
    with the live one, row for row; no differences means the live view is exactly what its
    events give. At most ``limit`` differences per table and side.

    The replay stops at the live view's position. The live tracking row is locked while the
    last events are replayed and the rows compared, so a running worker pauses for that long
    instead of making the comparison see a half-applied position; readers are not blocked.
    """
    scratch = f"replay_{projection.name}"
    _drop_schema(connection, scratch)
    try:
        create_tables(connection, projection, scratch)
        create_tables(connection, projection, LIVE_SCHEMA)
        with collecting_less_often():
            catch_up(connection, log_, projection, schema=scratch, batch_size=batch_size,
                     until=tracked_position(connection, projection))
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute(sql.SQL("SELECT position FROM {} FOR UPDATE").format(
                sql.Identifier(LIVE_SCHEMA, projection.tracking_table)))
            row = cursor.fetchone()
            live_position = int(row[0]) if row else 0
            catch_up(connection, log_, projection, schema=scratch, batch_size=batch_size, until=live_position)
            return [
                difference
                for table in projection.tables
                for difference in _table_differences(cursor, table, scratch, limit)
            ]
    finally:
        _drop_schema(connection, scratch)


def _table_differences(cursor: Cursor[Any], table: str, scratch: str, limit: int) -> list[Difference]:
    """Rows of one side missing from the other, as a multiset (a duplicate row counts).

    Rows are compared by their text form, which every column type has (``json`` or
    ``point`` have no equality operator), and which is the same for the same values.
    """
    live, replay = sql.Identifier(LIVE_SCHEMA, table), sql.Identifier(scratch, table)
    found = []
    for only_in, this, other in (("live", live, replay), ("replay", replay, live)):
        cursor.execute(
            sql.SQL(
                "SELECT r FROM (SELECT t::text AS r FROM {} AS t EXCEPT ALL SELECT t::text FROM {} AS t) d "
                "ORDER BY r LIMIT %s"
            ).format(this, other),
            (limit,),
        )
        found += [Difference(table, only_in, r) for (r,) in cursor.fetchall()]  # type: ignore[arg-type]
    return found


def _drop_schema(connection: Connection[Any], schema: str) -> None:
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
