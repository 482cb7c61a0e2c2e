"""The ``restoration`` command."""

from __future__ import annotations

import logging
import os
import signal
from contextlib import nullcontext
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
        typer.Option("--workers/--no-workers", help="Run the projection workers and the webhook sender "
                     "in this process (use --no-workers when `restoration worker` and "
                     "`restoration webhooks send` run separately)."),
    ] = True,
    data_dir: DataDir = None,
) -> None:
    """Run the tracker's web server until Ctrl-C."""
    import uvicorn

    from api.composition import open_tracker, projections_running, webhooks_sending
    from api.demo import load_demo
    from api.http import create_app

    _configure_logging()
    settings = _settings(data_dir)
    console.print(f"Using {_where(settings)}.")
    with open_tracker(settings) as tracker:
        if demo:
            _report_demo(load_demo(tracker.app))
        with projections_running(tracker) if workers else nullcontext(), \
                webhooks_sending(tracker) if workers else nullcontext():
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
        chosen = [projection_named(name)] if name else [p for p in all_projections() if p.rebuildable]
    except KeyError as error:
        raise typer.BadParameter(error.args[0], param_hint="NAME") from None
    if not all(p.rebuildable for p in chosen):
        raise typer.BadParameter(
            f"{name} is a dispatcher (its rows are requests already sent), not a view; it is never rebuilt.",
            param_hint="NAME",
        )
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


@cli.command()
def demo(data_dir: DataDir = None) -> None:
    """Load the 2022 cyber-attack scenario (does nothing if it is already loaded)."""
    from api.composition import open_tracker
    from api.demo import load_demo

    settings = _settings(data_dir)
    with open_tracker(settings) as tracker:
        _report_demo(load_demo(tracker.app))


webhooks_cli = typer.Typer(help="Webhooks: send the deliveries, list the endpoints.", no_args_is_help=True)
cli.add_typer(webhooks_cli, name="webhooks")


@webhooks_cli.command("send")
def webhooks_send(
    first_retry_seconds: Annotated[float, typer.Option(
        envvar="RESTORATION_WEBHOOK_RETRY_FIRST_SECONDS", help="Delay before the first retry.")] = 5.0,
    max_retry_seconds: Annotated[float, typer.Option(
        envvar="RESTORATION_WEBHOOK_RETRY_MAX_SECONDS", help="Longest delay between retries.")] = 86400.0,
    data_dir: DataDir = None,
) -> None:
    """Post webhook deliveries until stopped (SIGTERM or Ctrl-C).

    Run several: one sends, the others stand by to take over. Retries back off exponentially,
    with jitter, up to --max-retry-seconds apart, and never give up while the endpoint exists.
    """
    import asyncio

    from api.composition import open_tracker
    from api.webhook_sender import RetrySchedule, WebhookSender

    _configure_logging()
    settings = _settings(data_dir)
    console.print(f"Using {_where(settings)}.")
    with open_tracker(settings) as tracker:
        sender = WebhookSender(
            tracker.database_url,
            schedule=RetrySchedule(first_seconds=first_retry_seconds, max_seconds=max_retry_seconds),
        )

        def stop(*_: object) -> None:
            if sender.stopping.is_set():
                raise KeyboardInterrupt  # asked twice: stop now, requests in flight are sent again later
            sender.stop()

        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, stop)
        console.print("Webhook sender running (Ctrl-C to stop).")
        try:
            asyncio.run(sender.run())
        except KeyboardInterrupt:
            console.print("Stopped at once.")
            return
    console.print("Stopped.")


@webhooks_cli.command("list")
def webhooks_list(data_dir: DataDir = None) -> None:
    """Every webhook endpoint with its delivery statistics."""
    import psycopg

    from api.composition import open_tracker
    from api.webhooks import list_webhooks

    settings = _settings(data_dir)
    with open_tracker(settings) as tracker, psycopg.connect(tracker.database_url) as connection:
        endpoints = list_webhooks(connection)
    if not endpoints:
        typer.echo("No webhook endpoints.")
    for e in endpoints:
        typer.echo(f"{e.id}  {e.url}")
        typer.echo(f"    delivered {e.delivered}, failed attempts {e.failed}, pending {e.pending}, "
                   f"last status {e.last_status or '-'}"
                   + (f", DISABLED: {e.disabled_reason}" if e.disabled_at else ""))


relay_cli = typer.Typer(help="Relay every event to a message broker, for large fan-out.", no_args_is_help=True)
cli.add_typer(relay_cli, name="relay")


@relay_cli.command("nats")
def relay_nats(
    nats_url: Annotated[str, typer.Option(envvar="NATS_URL", help="The NATS server.")] = "nats://127.0.0.1:4222",
    stream: Annotated[str, typer.Option(help="JetStream stream (created if missing).")] = "RESTORATION_EVENTS",
    subject_prefix: Annotated[str, typer.Option(help="Events go to PREFIX.<kind>.")] = "restoration.events",
    data_dir: DataDir = None,
) -> None:
    """Publish every event to NATS JetStream until stopped (SIGTERM or Ctrl-C).

    Each message's id is the event's position, so JetStream drops a repeat; the relay's own
    position is tracked, so a restart resumes where it stopped. Run several: one relays, the
    others stand by.
    """
    from api.composition import event_log, open_tracker
    from api.relay import NatsRelayRunner

    _configure_logging()
    settings = _settings(data_dir)
    console.print(f"Using {_where(settings)}; relaying to {nats_url} ({stream}, {subject_prefix}.<kind>).")
    with open_tracker(settings) as tracker:
        runner = NatsRelayRunner(tracker.database_url, event_log(tracker.app), nats_url=nats_url,
                                 stream=stream, subject_prefix=subject_prefix)
        signal.signal(signal.SIGTERM, lambda *_: runner.stop())
        try:
            runner.run()
        except KeyboardInterrupt:
            runner.stop()
    console.print("Stopped.")


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per webhook request


def _report_demo(loaded: bool) -> None:
    if loaded:
        console.print("Loaded the 2022 cyber-attack scenario.")
    else:
        console.print("The 2022 cyber-attack scenario is already loaded; nothing added.")


def main() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning:platformdirs")
    cli()
