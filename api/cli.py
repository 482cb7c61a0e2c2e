"""The ``restoration`` command."""

from __future__ import annotations

import logging
import os
import signal
from contextlib import nullcontext
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from api.config import Settings

console = Console(stderr=True)

cli = typer.Typer(
    help=(
        "Restoration Tracker: the system of record for recovering from a cyber attack or a "
        "major outage.\n\nWith DATABASE_URL unset it runs its own PostgreSQL server, keeping "
        "its data in --data-dir (default ./.restoration)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="RESTORATION_DATA_DIR",
        help="Where the embedded PostgreSQL keeps its data (ignored when DATABASE_URL is set).",
        show_default=".restoration",
    ),
]


def _settings(data_dir: Path | None) -> Settings:
    settings = Settings.from_env()
    if data_dir is not None:
        settings = Settings(**{**settings.__dict__, "data_dir": data_dir})
    return settings


def _where(settings: Settings) -> str:
    if settings.database_url:
        return "the PostgreSQL server at DATABASE_URL"
    return f"embedded PostgreSQL in {settings.data_dir.resolve()}"


@cli.command()
def serve(
    demo: Annotated[bool, typer.Option("--demo", help="Load the 2022 cyber-attack scenario first.")] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        bool,
        typer.Option("--workers/--no-workers", help="Run the projection workers in this process "
                     "(use --no-workers when `restoration worker` runs separately)."),
    ] = True,
    data_dir: DataDir = None,
) -> None:
    """Run the tracker's web server until Ctrl-C."""
    import uvicorn

    from api.composition import open_tracker, projections_running
    from api.demo import load_demo
    from api.http import create_app

    _configure_logging()
    settings = _settings(data_dir)
    console.print(f"Using {_where(settings)}.")
    with open_tracker(settings) as tracker:
        if demo:
            _report_demo(load_demo(tracker.app))
        with projections_running(tracker) if workers else nullcontext():
            console.print(f"Serving on http://{host}:{port}  (Ctrl-C to stop)")
            uvicorn.run(create_app(tracker), host=host, port=port, log_level="info")
    console.print("Stopped.")


@cli.command()
def worker(data_dir: DataDir = None) -> None:
    """Keep the read models current until stopped (SIGTERM or Ctrl-C).

    Run as many as you like: each projection is processed by one worker at a time and the
    others stand by to take over.
    """
    from api.composition import open_tracker, projection_worker

    _configure_logging()
    settings = _settings(data_dir)
    console.print(f"Using {_where(settings)}.")
    with open_tracker(settings) as tracker:
        running = projection_worker(tracker)
        signal.signal(signal.SIGTERM, lambda *_: running.stop())
        console.print("Projection worker running (Ctrl-C to stop).")
        try:
            running.run()
        except KeyboardInterrupt:
            running.stop()
    console.print("Stopped.")


@cli.command()
def rebuild(
    name: Annotated[
        str | None, typer.Argument(help="The projection to rebuild; all of them if omitted.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Rebuild read models from the whole event log into fresh tables, then swap them in.

    Readers keep seeing the old tables until the swap; workers may keep running.
    """
    import psycopg
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from api.composition import event_log, open_tracker
    from projections.catalog import all_projections, projection_named
    from projections.runner import rebuild as rebuild_projection

    try:
        chosen = [projection_named(name)] if name else all_projections()
    except KeyError as error:
        raise typer.BadParameter(error.args[0], param_hint="NAME") from None
    settings = _settings(data_dir)
    with open_tracker(settings) as tracker, psycopg.connect(tracker.database_url) as connection:
        columns = (TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("events"), TimeRemainingColumn())
        with Progress(*columns, console=console) as progress:
            for projection in chosen:
                task = progress.add_task(projection.name, total=None)
                reached = rebuild_projection(
                    connection, event_log(tracker.app), projection,
                    on_progress=lambda position, head, task=task: progress.update(
                        task, completed=position, total=head),
                )
                progress.update(task, completed=reached, total=max(reached, 1))
    console.print(f"Rebuilt {', '.join(p.name for p in chosen)}.")


MOMENT_HELP = (
    "ISO-8601 with a UTC offset, e.g. 2022-07-01T12:00:00+01:00 or 2022-07-01T11:00Z; "
    "a date alone (2022-07-01) means midnight UTC."
)


def _moment(text: str | None, option: str) -> datetime | None:
    """A time given on the command line; a time without a UTC offset is ambiguous, so refused."""
    if text is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), timezone.utc)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a time: {MOMENT_HELP}", param_hint=option) from None
    if moment.tzinfo is None:
        raise typer.BadParameter(
            f"{text!r} has no UTC offset, so it could mean several moments; add one, "
            f"e.g. {text}+01:00 or {text}Z.",
            param_hint=option,
        )
    return moment


@cli.command()
def state(
    as_of: Annotated[str, typer.Option("--as-of", help=f"The moment in the world to show. {MOMENT_HELP}")],
    known_at: Annotated[
        str | None,
        typer.Option("--known-at", help="Show it as the tracker knew it then (default: as known now). "
                     + MOMENT_HELP),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Show every service as it stood at a moment: status, recovery phase, ETA and workarounds.

    With --known-at: as the tracker believed it then, without facts recorded later (back-dated ones, corrections).
    """
    import psycopg
    from rich.table import Table

    from api.composition import event_log, open_tracker
    from projections.intervals import Intervals, state_at
    from projections.runner import catch_up, create_tables

    moment, known = _moment(as_of, "--as-of"), _moment(known_at, "--known-at")
    assert moment is not None
    settings = _settings(data_dir)
    with open_tracker(settings) as tracker, psycopg.connect(tracker.database_url) as connection:
        intervals = Intervals()
        create_tables(connection, intervals)
        catch_up(connection, event_log(tracker.app), intervals)
        services = state_at(connection, moment, known)
    title = f"Services as of {moment.isoformat()}, as known " + (f"at {known.isoformat()}" if known else "now")
    if not services:
        console.print(f"{title}: no services were registered then.")
        return
    with_eta = any(s.eta_expected_at for s in services)
    table = Table(title=title, caption=f"ETAs in UTC{moment:%z}" if with_eta else None)
    table.add_column("Service")
    for column in ("Status", "Phase", "ETA"):
        table.add_column(column, no_wrap=True)
    table.add_column("Workarounds")
    for service in sorted(services, key=lambda s: s.name.lower()):
        eta = "—"
        if service.eta_expected_at is not None:
            eta = f"{service.eta_expected_at.astimezone(moment.tzinfo):%Y-%m-%d %H:%M} {service.eta_confidence}"
        channels = ", ".join(w.channel for w in service.workarounds)
        table.add_row(
            service.name, service.status, service.phase or "—", eta,
            f"{len(service.workarounds)}: {channels}" if channels else "0",
        )
    Console().print(table)


@cli.command()
def demo(data_dir: DataDir = None) -> None:
    """Load the 2022 cyber-attack scenario (does nothing if it is already loaded)."""
    from api.composition import open_tracker
    from api.demo import load_demo

    settings = _settings(data_dir)
    with open_tracker(settings) as tracker:
        _report_demo(load_demo(tracker.app))


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def _report_demo(loaded: bool) -> None:
    if loaded:
        console.print("Loaded the 2022 cyber-attack scenario.")
    else:
        console.print("The 2022 cyber-attack scenario is already loaded; nothing added.")


def main() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning:platformdirs")
    cli()
