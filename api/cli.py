"""The ``restoration`` command."""

from __future__ import annotations

import logging
import os
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
    data_dir: DataDir = None,
) -> None:
    """Run the tracker's web server (GraphQL, status page, health) until Ctrl-C."""
    import uvicorn

    from api.composition import open_tracker
    from api.demo import load_demo
    from api.http import create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = _settings(data_dir)
    console.print(f"Using {_where(settings)}.")
    with open_tracker(settings) as tracker:
        if demo:
            _report_demo(load_demo(tracker.app))
        console.print(f"Serving on http://{host}:{port}  (Ctrl-C to stop)")
        uvicorn.run(create_app(tracker), host=host, port=port, log_level="info")
    console.print("Stopped.")


@cli.command()
def demo(data_dir: DataDir = None) -> None:
    """Load the 2022 cyber-attack scenario (does nothing if it is already loaded)."""
    from api.composition import open_tracker
    from api.demo import load_demo

    settings = _settings(data_dir)
    with open_tracker(settings) as tracker:
        _report_demo(load_demo(tracker.app))


def _report_demo(loaded: bool) -> None:
    if loaded:
        console.print("Loaded the 2022 cyber-attack scenario.")
    else:
        console.print("The 2022 cyber-attack scenario is already loaded; nothing added.")


def main() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning:platformdirs")
    cli()
