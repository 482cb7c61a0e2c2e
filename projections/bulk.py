"""Writing a batch's rows in one statement: the rows travel as one array per column and are
unnested by the server, an order of magnitude faster than a statement per row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import Cursor, sql


def upsert(
    cursor: Cursor[Any],
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[Any]],
    *,
    key: Sequence[str],
) -> None:
    """Insert ``rows`` (one value per column, in order; at most one row per key), replacing
    the other columns of rows whose ``key`` exists. ``columns`` are (name, SQL type) pairs."""
    rows = list(rows)
    if not rows:
        return
    names = [name for name, _ in columns]
    others = [name for name in names if name not in key]
    on_conflict = (
        sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(name)) for name in others))
        if others else sql.SQL("DO NOTHING")
    )
    statement = sql.SQL("INSERT INTO {} ({}) SELECT * FROM unnest({}) ON CONFLICT ({}) {}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(kind)) for _, kind in columns),
        sql.SQL(", ").join(map(sql.Identifier, key)),
        on_conflict,
    )
    cursor.execute(statement, [list(values) for values in zip(*rows)])
