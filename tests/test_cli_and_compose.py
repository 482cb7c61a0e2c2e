"""The command line, and the docker-compose file that runs it."""

from __future__ import annotations

import shlex
from pathlib import Path

import psycopg
import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from api.cli import cli
from projections.catalog import all_projections
from projections.runner import table_rows

ROOT = Path(__file__).resolve().parent.parent


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.output and "demo" in result.output


def test_demo_loads_once_into_the_configured_database(database_url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["demo"], env={"DATABASE_URL": database_url})
    assert first.exit_code == 0, first.output
    assert "Loaded the 2022 cyber-attack scenario" in first.output
    second = runner.invoke(cli, ["demo"], env={"DATABASE_URL": database_url})
    assert second.exit_code == 0, second.output
    assert "already loaded; nothing added" in second.output


def test_rebuild_shows_progress_and_refuses_unknown_names(database_url: str) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    assert runner.invoke(cli, ["demo"], env=env).exit_code == 0
    rebuilt = runner.invoke(cli, ["rebuild", "timeline"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "Rebuilt timeline" in rebuilt.output
    unknown = runner.invoke(cli, ["rebuild", "nope"], env=env)
    assert unknown.exit_code == 2
    assert "No projection is called 'nope'" in unknown.output


def test_rebuild_in_several_processes_gives_the_rows_of_one_pass(database_url: str) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    assert runner.invoke(cli, ["demo"], env=env).exit_code == 0
    tables = [table for p in all_projections() if p.rebuildable for table in p.tables]

    def rows() -> dict[str, list[tuple[object, ...]]]:
        with psycopg.connect(database_url) as connection:
            return {table: table_rows(connection, table) for table in tables}

    one_pass = runner.invoke(cli, ["rebuild"], env=env)
    assert one_pass.exit_code == 0, one_pass.output
    in_one_pass = rows()
    shared = runner.invoke(cli, ["rebuild", "--jobs", "3"], env=env)
    assert shared.exit_code == 0, shared.output
    assert "Rebuilt timeline" in shared.output
    assert rows() == in_one_pass
    assert in_one_pass["timeline"]  # the demo's events are in the views, not two empty rebuilds
    with psycopg.connect(database_url) as connection:
        left = connection.execute("SELECT nspname FROM pg_namespace WHERE nspname ~ '^(rebuild|retired)_'").fetchall()
    assert left == []


def test_a_bad_database_url_is_a_clear_error() -> None:
    result = CliRunner().invoke(cli, ["demo"], env={"DATABASE_URL": "mysql://somewhere/db"})
    assert result.exit_code != 0
    assert "DATABASE_URL must start with postgresql://" in str(result.exception)


def compose_commands() -> list[list[str]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands = []
    for service in compose["services"].values():
        command = service.get("command")
        if command:
            commands.append(command if isinstance(command, list) else shlex.split(command))
    return commands


def test_compose_runs_postgres_with_a_volume_and_health_check() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    postgres = compose["services"]["postgres"]
    assert postgres["volumes"] and postgres["healthcheck"]["test"]
    for name, service in compose["services"].items():
        if name != "postgres":
            assert service["environment"]["DATABASE_URL"].startswith("postgresql://")


@pytest.mark.parametrize("command", compose_commands(), ids=lambda c: " ".join(c[:2]))
def test_every_compose_command_exists_in_the_cli(command: list[str]) -> None:
    assert command[0] == "restoration"
    group = get_command(cli)
    subcommand = group.commands.get(command[1])
    assert subcommand is not None, f"compose runs 'restoration {command[1]}', which the CLI lacks"
    known = {option for param in subcommand.params for option in [*param.opts, *param.secondary_opts]}
    used = {word for word in command[2:] if word.startswith("--")}
    assert used <= known, f"unknown options {used - known}"


def test_processes_starting_together_do_not_race_on_tables(database_url: str) -> None:
    """A worker, a sender and the API often start at the same moment (docker compose up)."""
    import threading

    from api.composition import prepare_read_side

    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def prepare() -> None:
        start.wait()
        try:
            prepare_read_side(database_url)
        except BaseException as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=prepare) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
