"""The projection runner on a real PostgreSQL: exactly once, rebuilds, workers, lag."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest

from api.composition import RebuildFailed, Tracker, rebuild_views
from api.config import Settings
from api.demo import load_demo
from domain.application import RestorationApp
from domain.values import Provenance
from projections.runner import (
    Difference,
    catch_up,
    create_tables,
    lags,
    rebuild,
    rebuild_together,
    replay_differences,
    share_out,
    table_rows,
)
from projections import runner
from projections.base import Envelope, Projection
from projections.catalog import all_projections
from projections.timeline import Timeline
from tests.projection_support import eventually, log_of, running_worker

OPS = Provenance("ops@example.org")


def timeline_positions(url: str) -> list[int]:
    with psycopg.connect(url) as connection:
        return [row[0] for row in connection.execute("SELECT position FROM timeline ORDER BY position")]


def test_catch_up_applies_every_event_once(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    with psycopg.connect(database_url) as connection:
        create_tables(connection, Timeline())
        reached = catch_up(connection, log_of(app), Timeline(), batch_size=7)
        assert reached == app.head_position()
        assert catch_up(connection, log_of(app), Timeline()) == reached  # nothing new: no-op
    assert timeline_positions(database_url) == list(range(1, reached + 1))


def test_two_runners_at_once_never_apply_a_batch_twice(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    with psycopg.connect(database_url) as connection:
        create_tables(connection, Timeline())
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(database_url) as connection:
                catch_up(connection, log_of(app), Timeline(), batch_size=3)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert timeline_positions(database_url) == list(range(1, app.head_position() + 1))


def test_a_rebuild_gives_the_same_rows_and_swaps_them_in(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    with psycopg.connect(database_url) as connection:
        create_tables(connection, Timeline())
        catch_up(connection, log_of(app), Timeline())
        before = {t: table_rows(connection, t) for t in Timeline.tables}
        indexes_before = table_indexes(connection, "timeline")
        seen: list[tuple[int, int]] = []
        reached = rebuild(connection, log_of(app), Timeline(), batch_size=10, on_progress=lambda p, h: seen.append((p, h)))
        after = {t: table_rows(connection, t) for t in Timeline.tables}
        schemas = {row[0] for row in connection.execute("SELECT nspname FROM pg_namespace")}
        indexes_after = table_indexes(connection, "timeline")
    assert reached == app.head_position()
    assert before == after and len(after["timeline"]) == reached
    # The readers' indexes, made after the rows were loaded, are swapped in with the table.
    assert {"timeline_by_service", "timeline_by_incident"} <= indexes_before == indexes_after
    assert seen and seen[-1][0] == reached
    assert not any(s.startswith(("rebuild_", "retired_")) for s in schemas)


def table_indexes(connection: psycopg.Connection[Any], table: str) -> set[str]:
    return {row[0] for row in connection.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s", (table,))}


class KindCounts(Projection):
    """Adds up events by kind: applying a batch twice would show in the counts."""

    name = "kind_counts"
    tables = ("kind_counts",)

    def create_statements(self) -> list[str]:
        return ["CREATE TABLE IF NOT EXISTS kind_counts (kind text PRIMARY KEY, events bigint NOT NULL)"]

    def apply(self, cursor: psycopg.Cursor[Any], batch: Sequence[Envelope]) -> None:
        cursor.executemany(
            "INSERT INTO kind_counts VALUES (%s, %s) "
            "ON CONFLICT (kind) DO UPDATE SET events = kind_counts.events + excluded.events",
            list(Counter(envelope.kind for envelope in batch).items()),
        )


def test_projections_rebuilt_together_match_each_caught_up_alone(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    projections = [Timeline(), KindCounts()]
    with psycopg.connect(database_url) as connection:
        for projection in projections:
            create_tables(connection, projection)
            catch_up(connection, log_of(app), projection, batch_size=5)
        alone = {t: table_rows(connection, t) for p in projections for t in p.tables}
        reached = rebuild_together(connection, log_of(app), projections, batch_size=7)
        together = {t: table_rows(connection, t) for p in projections for t in p.tables}
    assert reached == app.head_position()
    assert together == alone
    assert sum(events for _kind, events in together["kind_counts"]) == reached


def test_views_are_shared_out_evenly_and_each_rebuilt_once() -> None:
    views = [p for p in all_projections() if p.rebuildable]
    assert share_out(views, 1) == [views]
    assert len(share_out(views, 100)) == len(views)
    for shares in range(2, len(views) + 1):
        groups = share_out(views, shares)
        assert len(groups) == shares
        assert sorted(p.name for group in groups for p in group) == sorted(p.name for p in views)
        costs = [sum(p.rebuild_cost for p in group) for group in groups]
        # Greedy, costliest first: no group exceeds the cheapest by more than one view's cost.
        assert max(costs) - min(costs) <= max(p.rebuild_cost for p in views)


def test_a_share_that_fails_stops_the_rebuild_and_leaves_the_live_views_alone(
    app: RestorationApp, database_url: str
) -> None:
    load_demo(app)
    with psycopg.connect(database_url) as connection:
        for projection in (Timeline(), KindCounts()):
            create_tables(connection, projection)
            catch_up(connection, log_of(app), projection)
        before = table_rows(connection, "timeline")
    tracker = Tracker(Settings.from_env(), database_url, app)
    # The processes filling the shares build their projections from the catalog, which has no
    # KindCounts: that share fails, as a share whose projection raises would.
    with pytest.raises(RebuildFailed, match="kind_counts"):
        rebuild_views(tracker, [Timeline(), KindCounts()], processes=2)
    with psycopg.connect(database_url) as connection:
        assert table_rows(connection, "timeline") == before
        assert connection.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rebuild_%'").fetchall() == []


def test_a_replay_reports_rows_the_live_view_should_not_have(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    with psycopg.connect(database_url) as connection:
        create_tables(connection, Timeline())
        catch_up(connection, log_of(app), Timeline())
        assert replay_differences(connection, log_of(app), Timeline()) == []
        (right,) = connection.execute("SELECT t::text FROM timeline t WHERE position = 2").fetchone()
        connection.execute("UPDATE timeline SET summary = 'tampered' WHERE position = 2")
        (wrong,) = connection.execute("SELECT t::text FROM timeline t WHERE position = 2").fetchone()
        connection.commit()
        differences = replay_differences(connection, log_of(app), Timeline())
        schemas = {row[0] for row in connection.execute("SELECT nspname FROM pg_namespace")}
    assert differences == [Difference("timeline", "live", wrong), Difference("timeline", "replay", right)]
    assert not any(s.startswith("replay_") for s in schemas)


def test_a_worker_is_woken_by_new_events(app: RestorationApp, database_url: str) -> None:
    # A long heartbeat, so only the doorbell (NOTIFY) can explain a prompt update.
    with running_worker(database_url, app, [Timeline()], heartbeat_seconds=30) as worker:
        eventually(lambda: "timeline" in worker.held, "the worker to take its lock")
        email = app.register_service(slug="email", name="Email", category="Systems", provenance=OPS)
        app.report_status(email.id, status="MAJOR_OUTAGE", provenance=OPS)
        eventually(lambda: timeline_positions(database_url) == [1, 2], "the timeline to show both events")


def test_a_worker_outlives_a_failing_projection_and_says_so(
    app: RestorationApp, database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runner, "UNEXPECTED_RETRY_SECONDS", 0.1)

    class FailsTwice(Timeline):
        failures = 0

        def apply(self, cursor: Any, batch: Any) -> None:
            if FailsTwice.failures < 2:
                FailsTwice.failures += 1
                raise RuntimeError("a fault in this projection")
            super().apply(cursor, batch)

    email = app.register_service(slug="email", name="Email", category="Systems", provenance=OPS)
    app.report_status(email.id, status="MAJOR_OUTAGE", provenance=OPS)
    with psycopg.connect(database_url) as connection:
        create_tables(connection, FailsTwice())
    with running_worker(database_url, app, [FailsTwice()], heartbeat_seconds=0.2):
        eventually(lambda: timeline_positions(database_url) == [1, 2], "the timeline to show both events")
    assert FailsTwice.failures == 2
    assert sum("a projection failed" in r.message for r in caplog.records if r.levelname == "ERROR") == 2


def test_a_second_worker_is_a_hot_standby(app: RestorationApp, database_url: str) -> None:
    with running_worker(database_url, app, [Timeline()], heartbeat_seconds=0.2) as first:
        eventually(lambda: "timeline" in first.held, "the first worker to take the lock")
        with running_worker(database_url, app, [Timeline()], heartbeat_seconds=0.2) as second:
            app.register_service(slug="email", name="Email", category="Systems", provenance=OPS)
            eventually(lambda: timeline_positions(database_url) == [1], "the first worker to apply")
            assert second.held == set()
            first.stop()
            eventually(lambda: "timeline" in second.held, "the standby to take over")
            app.register_service(slug="phones", name="Phones", category="Contact", provenance=OPS)
            eventually(lambda: timeline_positions(database_url) == [1, 2], "the standby to apply")


def test_lag_counts_events_not_yet_applied(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    head = app.head_position()
    with psycopg.connect(database_url) as connection:
        create_tables(connection, Timeline())
        (before,) = lags(connection, log_of(app), [Timeline()])
        assert (before.position, before.head, before.events) == (0, head, head)
        assert before.seconds >= 0
        catch_up(connection, log_of(app), Timeline())
        (after,) = lags(connection, log_of(app), [Timeline()])
    assert (after.events, after.seconds) == (0, 0.0)


@pytest.mark.parametrize("kind", ["UpdatePosted", "Corrected"])
def test_timeline_rows_are_readable_and_marked_public_or_not(app: RestorationApp, database_url: str, kind: str) -> None:
    load_demo(app)
    wrong = app.report_status(app.service_by_slug("telephony").id, status="MAJOR_OUTAGE", provenance=OPS)
    app.correct_event(wrong.position, changes={"status": "PARTIAL_OUTAGE"}, provenance=Provenance("l", reason="typo"))
    with psycopg.connect(database_url) as connection:
        create_tables(connection, Timeline())
        catch_up(connection, log_of(app), Timeline())
        rows = connection.execute(
            "SELECT kind, summary, public, corrects, corrected_by, audience FROM ("
            " SELECT *, data->>'audience' AS audience FROM timeline) t WHERE kind = %s", (kind,)
        ).fetchall()
    assert rows
    if kind == "UpdatePosted":
        assert {(r[2], r[5]) for r in rows} == {(True, "PUBLIC"), (False, "INTERNAL")}
    else:
        (row,) = rows
        assert row[3] == wrong.position and row[2] is True  # telephony is resident-facing
        assert "correction of version" in row[1]
