"""While the database is away: which errors mean that, and how the API says so.

A restarted or unreachable PostgreSQL is an outage to wait out, not a bug: every endpoint
answers 503 with ``Retry-After`` (GraphQL-shaped, ``extensions.code`` DATABASE_UNAVAILABLE,
for /graphql) instead of a 500 or a hang, and recovers by itself once it is back.
"""

from __future__ import annotations

import asyncpg
import eventsourcing.persistence
import psycopg
from fastapi.responses import JSONResponse

RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"

DATABASE_AWAY: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable
    TimeoutError,  # a connection or query that did not answer in time
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, and a connection lost mid-query
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InternalClientError,  # e.g. used in the instant between the server's goodbye and the socket closing
    psycopg.OperationalError,  # the same, for psycopg, and its pool's timeouts
    eventsourcing.persistence.OperationalError,  # the write side's psycopg errors, renamed
    eventsourcing.persistence.InterfaceError,
)


class DatabaseUnavailable(Exception):
    """Raised where a request cannot go on without the database, outside GraphQL resolvers."""


def unavailable_response(message: str) -> JSONResponse:
    """503 with ``Retry-After`` and a body any GraphQL client can show."""
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": DATABASE_UNAVAILABLE}}]},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
