"""Bearer API tokens: created on the command line, shown once, stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

import psycopg

TOKEN_PREFIX = "rt_"
TOKENS_CHANNEL = "api_tokens"
"""NOTIFY'd when a token is revoked, so the API closes the websockets open with it at once
(HTTP requests look their token up every time)."""


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    ADMIN = "admin"


CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS api_tokens (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    role text NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
)"""


@dataclass(frozen=True)
class TokenInfo:
    id: UUID
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


def token_hash(token: str) -> bytes:
    """Tokens are 256 random bits, so a plain SHA-256 is enough (no password stretching)."""
    return hashlib.sha256(token.encode()).digest()


SCHEMA_LOCK = int.from_bytes(hashlib.sha256(b"restoration:api_tokens").digest()[:8], "big", signed=True)


def ensure_table(connection: psycopg.Connection[Any]) -> None:
    """Create the table if missing. Processes starting together would otherwise race:
    CREATE TABLE IF NOT EXISTS is not safe against a concurrent identical one."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        connection.execute(CREATE_TABLE)


def create_token(connection: psycopg.Connection[Any], *, name: str, role: Role) -> tuple[TokenInfo, str]:
    """A new token and its secret; the secret is not stored and cannot be shown again."""
    name = name.strip()
    if not name:
        raise ValueError("A token needs a name saying who or what uses it.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ensure_table(connection)
    row = connection.execute(
        "INSERT INTO api_tokens (id, name, role, token_hash) VALUES (%s, %s, %s, %s) "
        "RETURNING id, name, role, created_at, revoked_at",
        (uuid4(), name, Role(role).value, token_hash(secret)),
    ).fetchone()
    connection.commit()
    assert row is not None
    return _info(row), secret


def list_tokens(connection: psycopg.Connection[Any]) -> list[TokenInfo]:
    ensure_table(connection)
    rows = connection.execute(
        "SELECT id, name, role, created_at, revoked_at FROM api_tokens ORDER BY created_at"
    ).fetchall()
    return [_info(row) for row in rows]


def revoke_token(connection: psycopg.Connection[Any], token_id: UUID) -> bool:
    """True if the token existed and was live; it stops working at once, on open websockets too."""
    ensure_table(connection)
    revoked = connection.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (token_id,)
    ).rowcount
    if revoked:
        # Delivered on commit, with the update: whoever hears it reads the table already changed.
        connection.execute("SELECT pg_notify(%s, '')", (TOKENS_CHANNEL,))
    connection.commit()
    return revoked == 1


AUTHENTICATE_SQL = "SELECT id, name, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
"""For the async read path: id, name and role of a live token (asyncpg placeholder style)."""
LIVE_AMONG_SQL = "SELECT id FROM api_tokens WHERE id = ANY($1::uuid[]) AND revoked_at IS NULL"
"""Which of the token ids in $1 are still live."""


def _info(row: tuple[Any, ...]) -> TokenInfo:
    return TokenInfo(id=row[0], name=row[1], role=Role(row[2]), created_at=row[3], revoked_at=row[4])
