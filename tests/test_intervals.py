"""Bitemporal intervals: the state of every service at any moment, as known at any moment."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from typer.testing import CliRunner

from api.cli import cli
from api.demo import BST, load_demo, when
from domain.application import Recorded, RestorationApp
from domain.values import Provenance, Status
from projections.intervals import STATE_AT_SQL, Intervals, ServiceStateAt, state_at, state_at_parameters
from projections.runner import BATCH_SIZE, LIVE_SCHEMA, catch_up, create_tables, rebuild, table_rows
from tests.projection_support import log_of

OPS = "ops@example.org"


def on(day: int, hour: int = 9, month: int = 6) -> datetime:
    return datetime(2022, month, day, hour, tzinfo=timezone.utc)


def by(occurred_at: datetime, reason: str | None = None) -> Provenance:
    return Provenance(OPS, reason=reason, occurred_at=occurred_at)


def refresh(url: str, app: RestorationApp, *, schema: str = LIVE_SCHEMA, batch_size: int = BATCH_SIZE) -> None:
    with psycopg.connect(url) as connection:
        create_tables(connection, Intervals(), schema)
        catch_up(connection, log_of(app), Intervals(), schema=schema, batch_size=batch_size)


def states(url: str, as_of: datetime, known_at: datetime | None = None) -> dict[str, ServiceStateAt]:
    with psycopg.connect(url) as connection:
        return {s.slug: s for s in state_at(connection, as_of, known_at)}


def register(app: RestorationApp, slug: str, name: str | None = None) -> Recorded:
    return app.register_service(slug=slug, name=name or slug.title(), category="Systems", provenance=by(on(1)))


def test_a_fact_recorded_later_changes_the_past_but_not_what_was_known_before_it(
    app: RestorationApp, database_url: str
) -> None:
    before_anything = datetime.now(timezone.utc)
    email = register(app, "email").id
    app.report_status(email, status="MAJOR_OUTAGE", phase="ISOLATED", provenance=by(on(17, 10)))
    app.report_status(email, status="PARTIAL_OUTAGE", provenance=by(on(17, 14)))
    before_paper = datetime.now(timezone.utc)
    # Written on paper during the attack, entered afterwards.
    app.report_status(email, status="DEGRADED_PERFORMANCE", provenance=by(on(17, 8)))
    app.report_status(email, status="UNDER_MAINTENANCE", provenance=by(on(17, 12)))
    # Two reports for the same instant: the later one (back to partial) wins.
    app.report_status(email, status="MAJOR_OUTAGE", provenance=by(on(17, 16)))
    app.report_status(email, status="PARTIAL_OUTAGE", provenance=by(on(17, 16)))
    refresh(database_url, app)

    moments = [on(17, hour) for hour in (7, 9, 11, 13, 15)]

    def timeline(known_at: datetime | None) -> list[tuple[str, str | None]]:
        return [(s.status, s.phase) for s in (states(database_url, m, known_at)["email"] for m in moments)]

    assert timeline(None) == [
        ("OPERATIONAL", None), ("DEGRADED_PERFORMANCE", None), ("MAJOR_OUTAGE", "ISOLATED"),
        ("UNDER_MAINTENANCE", "ISOLATED"), ("PARTIAL_OUTAGE", "ISOLATED"),
    ]
    assert timeline(before_paper) == [
        ("OPERATIONAL", None), ("OPERATIONAL", None), ("MAJOR_OUTAGE", "ISOLATED"),
        ("MAJOR_OUTAGE", "ISOLATED"), ("PARTIAL_OUTAGE", "ISOLATED"),
    ]
    assert [states(database_url, on(17, h))["email"].status_since for h in (11, 13, 17)] == [
        on(17, 10), on(17, 12), on(17, 14)]
    service = app.service(email)
    assert [s for s, _ in timeline(None)] == [service.status_at(m) or Status.OPERATIONAL for m in moments]
    assert states(database_url, on(17, 9), known_at=before_anything) == {}
    assert states(database_url, on(1, 8)) == {}  # registered at 09:00 that day


def test_a_correction_replaces_the_fact_and_what_was_believed_before_it_stays_readable(
    app: RestorationApp, database_url: str
) -> None:
    registered = register(app, "email", "Email")
    email = registered.id
    wrong = app.report_status(email, status="MAJOR_OUTAGE", phase="ISOLATED", provenance=by(on(17, 10)))
    overstated = app.report_status(email, status="MAJOR_OUTAGE", phase="ASSESSING", provenance=by(on(18, 9)))
    app.publish_workaround(email, workaround_id="web", channel="Web form", instructions="Use the form.",
                           provenance=by(on(17, 12)))
    published = app.head_position()
    before = datetime.now(timezone.utc)
    fix = Provenance("lead@example.org", reason="Misread the paper log")
    app.correct_event(
        wrong.position or 0, changes={"status": "PARTIAL_OUTAGE", "occurred_at": on(17, 11)}, provenance=fix
    )
    app.correct_event(overstated.position or 0, changes={"status": None}, provenance=fix)
    app.correct_event(registered.position or 0, changes={"name": "Staff email"}, provenance=fix)
    app.correct_event(published, changes={"channel": "Repairs web form"}, provenance=fix)
    refresh(database_url, app)

    def seen(moment: datetime, known_at: datetime | None = None) -> tuple[Any, ...]:
        s = states(database_url, moment, known_at)["email"]
        return s.name, s.status, s.phase, [w.channel for w in s.workarounds]

    assert seen(on(17, 10)) == ("Staff email", "OPERATIONAL", None, [])
    assert seen(on(17, 10), before) == ("Email", "MAJOR_OUTAGE", "ISOLATED", [])
    assert seen(on(17, 13)) == ("Staff email", "PARTIAL_OUTAGE", "ISOLATED", ["Repairs web form"])
    assert seen(on(17, 13), before) == ("Email", "MAJOR_OUTAGE", "ISOLATED", ["Web form"])
    assert seen(on(18, 10)) == ("Staff email", "PARTIAL_OUTAGE", "ASSESSING", ["Repairs web form"])
    assert seen(on(18, 10), before) == ("Email", "MAJOR_OUTAGE", "ASSESSING", ["Web form"])


def test_eta_and_workarounds_in_force_at_a_moment(app: RestorationApp, database_url: str) -> None:
    phones = register(app, "phones").id
    app.report_status(phones, status="MAJOR_OUTAGE", phase="ISOLATED", provenance=by(on(17, 10)))
    app.set_eta(phones, expected_at=on(24, 17), confidence="LOW", provenance=by(on(17, 12), "First guess"))
    app.publish_workaround(phones, workaround_id="card", channel="Card payment line", instructions="Call it.",
                           contact="020 7946 0123", provenance=by(on(17, 13)))
    app.publish_workaround(phones, workaround_id="web", channel="Web form", instructions="Use the form.",
                           provenance=by(on(17, 14)))
    app.set_eta(phones, expected_at=on(1, 17, month=7), confidence="MEDIUM", provenance=by(on(20, 9), "Carrier"))
    app.withdraw_workaround(phones, workaround_id="web", provenance=by(on(19, 9)))
    # Published, then withdrawn with a time before its publication: it was never in force.
    app.publish_workaround(phones, workaround_id="sms", channel="SMS", instructions="Text us.",
                           provenance=by(on(20, 12)))
    app.withdraw_workaround(phones, workaround_id="sms", provenance=by(on(20, 11)))
    app.report_status(phones, phase="RESTORING", provenance=by(on(21, 9)))
    app.clear_eta(phones, provenance=by(on(22, 9)))
    app.set_eta(phones, expected_at=on(25, 17), confidence="HIGH", provenance=by(on(23, 9), "Cut-over booked"))
    app.report_status(phones, status="OPERATIONAL", phase="RESTORED", provenance=by(on(25, 12)))
    refresh(database_url, app)

    def seen(moment: datetime) -> tuple[Any, ...]:
        s = states(database_url, moment)["phones"]
        return s.eta_expected_at, s.eta_confidence, [(w.id, w.channel, w.published_at) for w in s.workarounds]

    assert seen(on(17, 11)) == (None, None, [])
    assert seen(on(18)) == (
        on(24, 17), "LOW", [("card", "Card payment line", on(17, 13)), ("web", "Web form", on(17, 14))])
    assert seen(on(20, 13)) == (on(1, 17, month=7), "MEDIUM", [("card", "Card payment line", on(17, 13))])
    assert seen(on(22, 10))[:2] == (None, None)  # cleared
    assert seen(on(24))[:2] == (on(25, 17), "HIGH")
    assert seen(on(26))[:2] == (None, None)  # restored: an ETA no longer applies
    (card,) = states(database_url, on(26))["phones"].workarounds
    assert (card.contact, card.instructions, card.audience) == ("020 7946 0123", "Call it.", "Everyone")


def test_intervals_are_half_open_to_the_microsecond_in_both_times(app: RestorationApp, database_url: str) -> None:
    """The index keeps times as float seconds, which cannot tell neighbouring microseconds
    apart; the answer must still be exact at every bound."""
    change = on(17, 10).replace(second=59, microsecond=999_999)
    phones = register(app, "phones").id
    app.report_status(phones, status="MAJOR_OUTAGE", provenance=by(on(17, 9)))
    app.report_status(phones, status="OPERATIONAL", provenance=by(change))
    refresh(database_url, app)
    with psycopg.connect(database_url) as connection:
        (recorded,) = connection.execute(
            "SELECT recorded_from FROM service_intervals WHERE attribute = 'status' AND recorded_to IS NULL "
            "ORDER BY valid_from DESC LIMIT 1").fetchone()
    tick = timedelta(microseconds=1)

    def status(as_of: datetime, known_at: datetime | None = None) -> str | None:
        found = states(database_url, as_of, known_at).get("phones")
        return found.status if found else None

    assert status(change - tick) == "MAJOR_OUTAGE"
    assert status(change) == "OPERATIONAL"
    assert status(change, known_at=recorded - tick) == "MAJOR_OUTAGE"
    assert status(change, known_at=recorded) == "OPERATIONAL"


def test_the_moment_query_can_use_the_bitemporal_index(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    refresh(database_url, app)
    with psycopg.connect(database_url) as connection:
        connection.execute("SET enable_seqscan = off")  # a table this small would be scanned
        plan = connection.execute(f"EXPLAIN {STATE_AT_SQL}", state_at_parameters(on(20), None)).fetchall()
    assert "service_intervals_bitemporal_box" in "\n".join(line for (line,) in plan)


def test_the_demo_on_1_july_and_3_august_2022(app: RestorationApp, database_url: str) -> None:
    before_loading = datetime.now(timezone.utc)
    load_demo(app)
    refresh(database_url, app)

    july = states(database_url, when(1, 12, month=7))
    phones = july["telephony"]
    assert (phones.status, phones.phase, phones.eta_expected_at, phones.eta_confidence) == (
        "MAJOR_OUTAGE", "ASSESSING", when(8, 17, month=7), "LOW")
    assert [w.channel for w in phones.workarounds] == ["Emergency repairs line"]
    assert (july["email"].phase, july["email"].eta_expected_at) == ("RESTORING", when(15, 17, month=7))
    assert [w.channel for w in july["rent-by-phone"].workarounds] == [
        "Standing order", "Online payment portal", "Card payment phone line"]

    august = states(database_url, when(3, 12, month=8))
    assert (august["telephony"].status, august["telephony"].phase, august["telephony"].eta_expected_at) == (
        "PARTIAL_OUTAGE", "RESTORING", when(5, 17, month=8))
    assert (august["email"].status, august["email"].phase, august["email"].eta_expected_at) == (
        "OPERATIONAL", "RESTORED", None)
    assert august["rent-by-phone"].eta_expected_at == when(12, 17, month=8)
    assert len(july) == len(august) == 9

    for moment in (when(17, 11), when(20, 12), when(14, 9, month=7), when(3, 12, month=8)):
        for slug, seen in states(database_url, moment).items():
            service = app.service_by_slug(slug)
            expected = (service.status_at(moment) or Status.OPERATIONAL, service.phase_at(moment))
            assert (seen.status, seen.phase) == expected
    for slug, seen in states(database_url, datetime.now(BST)).items():
        service = app.service_by_slug(slug)
        eta = service.eta
        assert (seen.status, seen.phase) == (service.status, service.phase)
        assert seen.eta_expected_at == (eta.expected_at if eta else None)
        assert [w.id for w in seen.workarounds] == [w.id for w in service.active_workarounds]
    assert states(database_url, when(1, 12, month=7), known_at=before_loading) == {}
    assert states(database_url, when(31, 23, month=3)) == {}


def add_back_dated_facts_and_corrections(app: RestorationApp) -> None:
    phones = app.service_by_slug("telephony").id
    wrong = app.report_status(phones, status="MAJOR_OUTAGE", phase="RESTORING", provenance=by(when(30, 8)))
    app.correct_event(wrong.position or 0, changes={"status": "DEGRADED_PERFORMANCE", "occurred_at": when(28, 8)},
                      provenance=Provenance("lead", reason="wrong day"))
    email = app.service_by_slug("email").id
    app.report_status(email, status="PARTIAL_OUTAGE", provenance=by(when(21, 9)))
    sms = app.register_service(slug="sms", name="SMS", category="Contact", provenance=by(when(18, 9)))
    app.correct_event(sms.position or 0, changes={"name": "Text messages"},
                      provenance=Provenance("lead", reason="clearer"))
    rent = app.service_by_slug("rent-by-phone").id
    app.withdraw_workaround(rent, workaround_id="card-line", provenance=by(when(20, 9)))


def test_rebuilds_and_batch_sizes_give_identical_rows(app: RestorationApp, database_url: str) -> None:
    load_demo(app)
    add_back_dated_facts_and_corrections(app)
    for schema, size in ((LIVE_SCHEMA, BATCH_SIZE), ("by_one", 1), ("by_seven", 7)):
        refresh(database_url, app, schema=schema, batch_size=size)
    with psycopg.connect(database_url) as connection:
        rows = {
            schema: {table: table_rows(connection, table, schema) for table in Intervals.tables}
            for schema in (LIVE_SCHEMA, "by_one", "by_seven")
        }
        rebuild(connection, log_of(app), Intervals(), batch_size=13)
        rebuilt = {table: table_rows(connection, table) for table in Intervals.tables}
        closed = connection.execute(
            "SELECT count(*) FROM service_intervals WHERE recorded_to IS NOT NULL").fetchone()
    assert rows[LIVE_SCHEMA] == rows["by_one"] == rows["by_seven"] == rebuilt
    assert closed and closed[0] > 0


def test_state_command_prints_every_service_at_a_moment(database_url: str) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": database_url, "COLUMNS": "200"}
    assert runner.invoke(cli, ["demo"], env=env).exit_code == 0
    result = runner.invoke(cli, ["state", "--as-of", "2022-07-01T12:00:00+01:00"], env=env)
    assert result.exit_code == 0, result.output
    phones = next(line for line in result.output.splitlines() if "Phone lines and contact centre" in line)
    for shown in ("MAJOR_OUTAGE", "ASSESSING", "2022-07-08 17:00 LOW", "1: Emergency repairs line"):
        assert shown in phones
    assert sum("│" in line for line in result.output.splitlines()) == 9
    nothing_yet = runner.invoke(cli, ["state", "--as-of", "2022-07-01", "--known-at", "2022-07-01"], env=env)
    assert nothing_yet.exit_code == 0, nothing_yet.output
    assert "no services were registered then" in nothing_yet.output


def test_state_command_refuses_a_time_without_a_utc_offset() -> None:
    result = CliRunner().invoke(cli, ["state", "--as-of", "2022-07-01T12:00"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "has no UTC offset" in result.output
    garbage = CliRunner().invoke(cli, ["state", "--as-of", "first of July"], env={"COLUMNS": "200"})
    assert garbage.exit_code == 2 and "is not a time" in garbage.output
