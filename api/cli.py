"""The ``restoration`` command."""

from __future__ import annotations

import logging
import os
import signal
from contextlib import nullcontext
from datetime import date, datetime, timezone
from enum import Enum
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
    from api.http import SERVER_OPTIONS, create_app

    _configure_logging()
    settings = _settings(data_dir)
    console.print(f"Using {_where(settings)}.")
    with open_tracker(settings) as tracker:
        if demo:
            _report_demo(load_demo(tracker.app))
        with projections_running(tracker) if workers else nullcontext(), \
                webhooks_sending(tracker) if workers else nullcontext():
            console.print(f"Serving on http://{host}:{port}  (Ctrl-C to stop)")
            uvicorn.run(create_app(tracker), host=host, port=port, log_level="info", **SERVER_OPTIONS)
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
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", min=1,
        help="Processes filling the fresh tables at once, each reading the log for its share of the views "
             "(at most one per view). More use more cores and memory; 1 reads the log once for all.",
    )] = 1,
    data_dir: DataDir = None,
) -> None:
    """Rebuild read models from the whole event log into fresh tables, then swap them in.

    Readers keep seeing the old tables until the swap; workers may keep running.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from api.composition import RebuildFailed, open_tracker, rebuild_views
    from projections.catalog import all_projections, projection_named

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
    with open_tracker(settings) as tracker:
        columns = (TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("events"), TimeRemainingColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(", ".join(p.name for p in chosen), total=None)
            try:
                reached = rebuild_views(
                    tracker, chosen, processes=jobs,
                    on_progress=lambda position, head: progress.update(task, completed=position, total=head),
                )
            except RebuildFailed as failure:
                console.print(str(failure))
                raise typer.Exit(1) from None
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


@cli.command("export-site")
def export_site(
    directory: Annotated[Path, typer.Argument(help="Where to write index.html, status.json and feed.atom "
                                              "(created if missing; files there are replaced).")],
    url: Annotated[
        str | None,
        typer.Option(help="Where the files will be published; the feed and status.json link to it "
                     "(default: RESTORATION_PUBLIC_URL)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Write the public status page, status.json and the Atom feed as files.

    For hosting outside a compromised estate: copy the directory to any static web host. The
    views they come from are brought up to date with the event log first.
    """
    import asyncio

    import psycopg

    from api.composition import event_log, open_tracker
    from api.status_site import Site, catch_up_public_views, render_from

    settings = _settings(data_dir)
    site = Site(settings.site_name, url or settings.public_url)
    with open_tracker(settings) as tracker:
        with psycopg.connect(tracker.database_url) as connection:
            position = catch_up_public_views(connection, event_log(tracker.app))
        documents = asyncio.run(render_from(tracker.database_url, site, datetime.now(timezone.utc)))
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in documents.files().items():
        partial = directory / f".{name}.partial"
        partial.write_bytes(document.body)
        partial.replace(directory / name)  # a host syncing the directory never sees half a file
    console.print(f"Wrote {', '.join(documents.files())} to {directory} (as of position {position}) for {site.url}")


@cli.command()
def demo(data_dir: DataDir = None) -> None:
    """Load the 2022 cyber-attack scenario (does nothing if it is already loaded)."""
    from api.composition import open_tracker
    from api.demo import load_demo

    settings = _settings(data_dir)
    with open_tracker(settings) as tracker:
        _report_demo(load_demo(tracker.app))


tokens = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)
cli.add_typer(tokens, name="token")


@tokens.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="viewer, operator, auditor or admin.")],
    name: Annotated[str, typer.Option(help="Who or what uses the token, e.g. 'exec-dashboard'.")],
    data_dir: DataDir = None,
) -> None:
    """Create a token and print it once; only its hash is stored."""
    import psycopg

    from api.composition import open_tracker
    from api.tokens import Role, create_token

    try:
        chosen = Role(role.lower())
    except ValueError:
        raise typer.BadParameter(f"must be one of {', '.join(r.value for r in Role)}", param_hint="--role") from None
    with open_tracker(_settings(data_dir)) as tracker, psycopg.connect(tracker.database_url) as connection:
        try:
            info, secret = create_token(connection, name=name, role=chosen)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--name") from None
    console.print(f"Created {info.role.value} token {info.id} for {info.name!r}. Store it now; it is not shown again:")
    print(secret)


@tokens.command("list")
def token_list(data_dir: DataDir = None) -> None:
    """List tokens (never their secrets)."""
    import psycopg
    from rich.table import Table

    from api.composition import open_tracker
    from api.tokens import list_tokens

    with open_tracker(_settings(data_dir)) as tracker, psycopg.connect(tracker.database_url) as connection:
        found = list_tokens(connection)
    table = Table("id", "name", "role", "created", "revoked")
    for info in found:
        table.add_row(str(info.id), info.name, info.role.value, f"{info.created_at:%Y-%m-%d %H:%M}",
                      f"{info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "")
    Console().print(table)


@tokens.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id, from `restoration token list`.")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a token; it stops working at once."""
    from uuid import UUID

    import psycopg

    from api.composition import open_tracker
    from api.tokens import revoke_token

    try:
        parsed = UUID(token_id)
    except ValueError:
        raise typer.BadParameter("must be a token id (a UUID)", param_hint="TOKEN_ID") from None
    with open_tracker(_settings(data_dir)) as tracker, psycopg.connect(tracker.database_url) as connection:
        revoked = revoke_token(connection, parsed)
    if not revoked:
        console.print(f"No live token has the id {parsed}.")
        raise typer.Exit(1)
    console.print(f"Revoked {parsed}.")


audit = typer.Typer(
    help="Auditors: verify the sealed history, publish its checkpoints, export it.",
    no_args_is_help=True,
)
cli.add_typer(audit, name="audit")


class ExportFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"


@audit.command()
def replay(data_dir: DataDir = None) -> None:
    """Rebuild every view from the event log alone, in a scratch schema, and compare it with the
    live views row by row. Exit code 0: identical; 1: differences, each printed."""
    import psycopg

    from api.composition import event_log, open_tracker
    from projections.catalog import all_projections
    from projections.runner import replay_differences

    views = [p for p in all_projections() if p.rebuildable]
    differing = 0
    with open_tracker(_settings(data_dir)) as tracker, psycopg.connect(tracker.database_url) as connection:
        for projection in views:
            differences = replay_differences(connection, event_log(tracker.app), projection)
            differing += bool(differences)
            verdict = "identical to a replay" if not differences else f"{len(differences)} rows differ"
            console.print(f"{projection.name}: {verdict}")
            for difference in differences:
                console.print(f"  {difference.table}: only in {difference.only_in}: {difference.row}", markup=False)
    if differing:
        console.print(f"{differing} of {len(views)} views differ from what their events give.")
        raise typer.Exit(1)
    console.print(f"All {len(views)} views are exactly what the event log gives.")


@audit.command()
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Where to write the private key (its public key goes beside it, + .pub).")],
) -> None:
    """Make an Ed25519 key pair for signing audit checkpoints.

    Keep the private key outside the database and point RESTORATION_SIGNING_KEY at it for the
    projection workers; give the public key to auditors.
    """
    from api.audit import generate_signing_key

    try:
        public = generate_signing_key(out)
    except FileExistsError as error:
        raise typer.BadParameter(str(error), param_hint="--out") from None
    console.print(f"Private key: {out} (readable by you only). Set RESTORATION_SIGNING_KEY={out} for the workers.")
    typer.echo(public)


@audit.command()
def checkpoints(data_dir: DataDir = None) -> None:
    """Print the checkpoints as JSON lines, for publishing outside the tracker."""
    import json

    import psycopg

    from api.composition import open_tracker
    from projections.audit_chain import AuditChain, checkpoints as all_checkpoints
    from projections.runner import create_tables

    with open_tracker(_settings(data_dir)) as tracker, psycopg.connect(tracker.database_url) as connection:
        create_tables(connection, AuditChain())
        unsigned = 0
        for checkpoint in all_checkpoints(connection):
            unsigned += checkpoint.signature is None
            typer.echo(json.dumps(checkpoint.to_json()))
    if unsigned:
        console.print(f"{unsigned} checkpoint(s) are unsigned: the sealer ran without RESTORATION_SIGNING_KEY.")


@audit.command()
def verify(
    public_key: Annotated[
        list[Path] | None,
        typer.Option("--public-key", help="An Ed25519 public key (PEM) that signs checkpoints; repeat for "
                     "rotated keys. With it, every checkpoint signature is checked too."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Recompute the hash chain from the stored events and check it against the seals.

    Exit code 0: intact up to the sealed head. 1: the first position that does not match is
    named, with why (changed, missing, reordered, inserted, checkpoint, signature).
    """
    import psycopg
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from api.composition import open_tracker
    from projections.audit_chain import AuditChain, load_public_key, verify_chain
    from projections.runner import create_tables

    try:
        keys = [load_public_key(path) for path in public_key or []]
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--public-key") from None
    with open_tracker(_settings(data_dir)) as tracker, psycopg.connect(tracker.database_url) as connection:
        create_tables(connection, AuditChain())
        columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TextColumn("positions"))
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("verify", total=None)
            report = verify_chain(
                connection, tracker.app.recorder.events_table_name, public_keys=keys,  # type: ignore[attr-defined]
                on_progress=lambda position, head: progress.update(task, completed=position, total=head),
            )
    out = Console()
    if report.problem is not None:
        out.print(f"TAMPERED at position {report.problem.position} ({report.problem.reason}): {report.problem.detail}.")
        out.print(f"The chain is intact up to position {report.verified_up_to}.")
    elif report.sealed_head == 0:
        out.print("Nothing is sealed yet.")
    else:
        out.print(f"Intact: {report.events_verified} events up to position {report.verified_up_to} match their seals"
                  + (f"; {report.checkpoints_verified} checkpoints match the chain." if report.checkpoints_verified else "."))
    if keys and report.signatures_verified:
        out.print(f"{report.signatures_verified} checkpoint signatures are valid.")
    elif not keys:
        out.print("Checkpoint signatures were not checked: give --public-key to check them.")
    if report.unsigned_checkpoints:
        out.print(f"{report.unsigned_checkpoints} checkpoints are unsigned (the sealer had no RESTORATION_SIGNING_KEY); "
                  "they prove nothing on their own.")
    if report.unsealed:
        out.print(f"{report.unsealed} events after position {report.sealed_head} are not sealed yet: the sealer is "
                  "behind (run `restoration worker`). Not evidence of tampering by itself.")
    raise typer.Exit(0 if report.intact else 1)


@audit.command()
def export(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="JSON Lines or CSV.")] = ExportFormat.jsonl,
    until: Annotated[
        str | None,
        typer.Option(help="Stop at this position, or keep only events recorded by this ISO-8601 time."),
    ] = None,
    after: Annotated[int, typer.Option(help="Start after this position (to resume an export).", min=0)] = 0,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write to this file (appended to when --after is given); stdout if omitted."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Write the whole history: positions, both times, actor, payload, hash and previous hash.

    Streams in constant memory. If it is interrupted, it says the last position written:
    run it again with --after that position and the same --out to carry on.
    """
    import sys

    import psycopg
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from api.audit import history_writer, parse_until
    from api.composition import open_tracker
    from projections.audit_chain import history

    try:
        until_position, until_time = parse_until(until) if until else (None, None)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--until") from None
    with open_tracker(_settings(data_dir)) as tracker, psycopg.connect(tracker.database_url) as connection:
        resuming = out is not None and after > 0 and out.exists() and out.stat().st_size > 0
        target = out.open("a" if resuming else "w", newline="", encoding="utf-8") if out else sys.stdout
        write = history_writer(fmt.value, target, header=not resuming)
        head = until_position or tracker.app.head_position()
        columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TextColumn("positions"),
                   TimeRemainingColumn())
        written, last = 0, after
        try:
            with Progress(*columns, console=console, disable=out is None) as progress:
                task = progress.add_task("export", total=max(head - after, 0))
                for record in history(connection, tracker.app.recorder.events_table_name,  # type: ignore[attr-defined]
                                      after=after,
                                      until_position=until_position, until_time=until_time):
                    write(record)
                    written, last = written + 1, record["position"]
                    if written % 1000 == 0:
                        progress.update(task, completed=last - after)
                progress.update(task, completed=max(head - after, 0))
        except KeyboardInterrupt:
            console.print(f"Interrupted after position {last}; resume with --after {last}.")
            raise typer.Exit(130) from None
        finally:
            if out is not None:
                target.close()
    if out is not None:
        console.print(f"Wrote {written} events (to position {last}) to {out}.")
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
