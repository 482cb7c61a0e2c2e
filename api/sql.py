"""The read models' SQL, written for psycopg, adapted for asyncpg (the API's driver)."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from projections import progress as progress_view


def asyncpg_sql(query: str) -> str:
    """The read models' queries use psycopg's ``%s``; asyncpg numbers its parameters."""
    parts = query.split("%s")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


def asyncpg_named(query: str, parameters: dict[str, Any]) -> tuple[str, list[Any]]:
    """A query with psycopg's ``%(name)s`` parameters, numbered for asyncpg, and its arguments."""
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", query)))
    for n, name in enumerate(names, start=1):
        query = query.replace(f"%({name})s", f"${n}")
    return query, [parameters[name] for name in names]


async def fetch_progress(connection: Any, incident_id: UUID) -> progress_view.Progress:
    """An incident's progress through asyncpg (a pool or a connection)."""
    members = await connection.fetch(asyncpg_sql(progress_view.SELECT_MEMBERS), incident_id)
    curve = await connection.fetch(asyncpg_sql(progress_view.SELECT_CURVE), incident_id)
    return progress_view.progress_from_rows(incident_id, [tuple(m) for m in members], map(tuple, curve))
