"""Per-request context: who is asking, and the process-wide pieces resolvers use."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
from starlette.concurrency import run_in_threadpool
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from api.background import wait_at_most
from api.composition import Tracker
from api.graphql.errors import ApiError, Code
from api.listener import Listener
from api.revocations import RevocationWatch
from api.throttle import FailedAuthentications
from api.outage import DATABASE_AWAY, DatabaseUnavailable
from api.timeline_tail import TimelineTail
from api.tokens import AUTHENTICATE_SQL, Role, token_hash
from domain.errors import DomainError
from projections.runner import VIEWS_CHANNEL

READ_YOUR_WRITES_SECONDS = 5.0
NOT_RECORDED = "The database is unavailable for a moment, so nothing was recorded. Try again in a few seconds."
MAYBE_RECORDED = (
    "The database went away while this was being recorded, so it was most likely not recorded; but if "
    "the connection dropped during the commit itself it may have been. Check the timeline before repeating it."
)


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    token_id: UUID


@dataclass
class Runtime:
    """What every resolver may use; built once per process by the HTTP app."""

    tracker: Tracker
    pool: asyncpg.Pool
    listener: Listener
    tracking_tables: list[str]
    events_channel: str
    tail: TimelineTail
    failed_authentications: FailedAuthentications
    revocations: RevocationWatch

    async def wait_for_views(self, position: int | None) -> None:
        """Return once every view has reached ``position`` (read your writes).

        Woken by the workers' NOTIFY; bounded, then a clear error that the write is stored.
        """
        if position is None:
            return
        deadline = time.monotonic() + READ_YOUR_WRITES_SECONDS
        bell = self.listener.bell(VIEWS_CHANNEL)
        while True:
            ticket = bell.ticket()
            try:
                reached = await self.pool.fetchval(self._min_tracked_sql())
            except DATABASE_AWAY:
                raise stored_but_unreadable(position) from None
            if reached is not None and reached >= position:
                # The NOTIFY that announced this may reach the listener a moment after the
                # tables show it; ring now, so this process's caches (the status page) check
                # again when the writer reads next.
                bell.ring()
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ApiError(
                    Code.VIEWS_LAGGING,
                    f"Your change is stored (position {position}), but the views have only reached "
                    f"position {reached or 0}, so it may not show yet. Nothing needs redoing: "
                    "read again in a moment, and check that a projection worker is running.",
                    {"position": position},
                )
            await wait_at_most(remaining, ticket)

    def _min_tracked_sql(self) -> str:
        parts = [f"(SELECT position FROM {table})" for table in self.tracking_tables]
        return f"SELECT least({', '.join(parts)})"

    async def command(self, run: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a write-side command off the event loop, turning refusals into API errors.

        While the database is known to be away the command is not started at all, so it
        answers at once and certainly recorded nothing; one caught by the outage on its way
        fails within a few seconds (see api.composition.open_application).
        """
        if self.listener.away:
            raise ApiError(Code.DATABASE_UNAVAILABLE, NOT_RECORDED)
        try:
            return await run_in_threadpool(run, *args, **kwargs)
        except DomainError as error:
            raise ApiError(Code(error.code), error.message) from None
        except DATABASE_AWAY:
            raise ApiError(Code.DATABASE_UNAVAILABLE, MAYBE_RECORDED) from None


def stored_but_unreadable(position: int) -> ApiError:
    """A change is stored but the database went away before it could be read back: the
    client must learn its position, not be told to try again (that would record it twice)."""
    return ApiError(
        Code.VIEWS_LAGGING,
        f"Your change is stored (position {position}), but the database went away before it could be "
        "read back. Nothing needs redoing: read it again in a few seconds.",
        {"position": position},
    )


@dataclass
class Context(BaseContext):
    runtime: Runtime = field(default=None)  # type: ignore[assignment]
    principal: Principal | None = None
    auth_error: str | None = None
    services: Any = None
    """The request's service catalogue, read at most once (see api.graphql.views)."""

    def __post_init__(self) -> None:
        super().__init__()


async def authenticate(
    runtime: Runtime, authorization: str | None, address: str | None
) -> tuple[Principal | None, str | None]:
    """(principal, error): no header is anonymous; a bad header is an error, not anonymous.

    Raises :class:`api.throttle.Throttled` while the client ``address`` is over its limit of
    failed authentications (before looking the token up); each failure here counts.
    """
    if not authorization:
        return None, None
    runtime.failed_authentications.check(address)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        error = "Send the token as 'Authorization: Bearer <token>'."
    else:
        try:
            row = await runtime.pool.fetchrow(AUTHENTICATE_SQL, token_hash(token.strip()))
        except DATABASE_AWAY as away:
            raise DatabaseUnavailable("Tokens cannot be checked while the database is unavailable.") from away
        if row is not None:
            return Principal(name=row["name"], role=Role(row["role"]), token_id=row["id"]), None
        error = "That token is not valid (unknown or revoked)."
    runtime.failed_authentications.failed(address)
    return None, error


PUBLIC = frozenset({None, *Role})
READERS = frozenset(Role)
WRITERS = frozenset({Role.OPERATOR, Role.ADMIN})
AUDITORS = frozenset({Role.AUDITOR, Role.ADMIN})
ADMINS = frozenset({Role.ADMIN})


def access(info: Info[Context, Any], allowed: frozenset[Role | None]) -> Principal | None:
    """The caller, if their role may do this; otherwise UNAUTHENTICATED or FORBIDDEN."""
    context = info.context
    if context.auth_error:
        raise ApiError(Code.UNAUTHENTICATED, context.auth_error)
    role = context.principal.role if context.principal else None
    if role in allowed:
        return context.principal
    if context.principal is None:
        raise ApiError(Code.UNAUTHENTICATED, "This needs an API token: send 'Authorization: Bearer <token>'.")
    needed = ", ".join(sorted(r.value for r in allowed if r is not None))
    raise ApiError(Code.FORBIDDEN, f"A {role.value} token cannot do this; it needs one of: {needed}.")


def is_public_only(info: Info[Context, Any]) -> bool:
    return info.context.principal is None
