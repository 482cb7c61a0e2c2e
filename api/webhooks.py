"""Webhook endpoints for admins: create (the secret is shown once), delete, list with delivery
statistics, and each endpoint's delivery log. The GraphQL mutations ``createWebhook`` and
``deleteWebhook`` and the list query call these (they block: run them in a thread).

The tables and SQL belong to ``projections.webhook_outbox``; this module adds what is policy
and I/O: validating the request, checking the URL's addresses, generating the secret.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from psycopg import Connection

from api.webhook_safety import RefusedDestination, check_url, private_allowed
from domain.dependencies import DependencyGraph
from domain.errors import NotFound, ValidationError
from domain.incident import Incident
from domain.service import Service
from domain.values import optional_text, required_text
from projections import webhook_outbox
from projections.runner import EventLog
from projections.webhook_outbox import Delivery, Endpoint

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
URL_LIMIT = 2000

EVENT_KINDS = frozenset(
    name
    for aggregate in (Service, Incident, DependencyGraph)
    for name, value in vars(aggregate).items()
    if isinstance(value, type) and issubclass(value, aggregate.Event) and name not in ("Event", "Created")
)
"""Every kind of event the tracker records: what an endpoint's kinds filter may name."""


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


@dataclass(frozen=True)
class CreatedWebhook:
    endpoint: Endpoint
    secret: str
    """Shown this once: the tracker never returns it again."""


def create_webhook(
    connection: Connection[Any],
    log_: EventLog,
    *,
    url: str,
    actor: str,
    kinds: Sequence[str] = (),
    service_ids: Sequence[UUID] = (),
    public_only: bool = False,
    description: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> CreatedWebhook:
    """Register an endpoint for every matching event recorded from now on.

    ``kinds`` (event kinds, e.g. ``StatusReported``) and ``service_ids`` narrow what it gets;
    empty means everything. ``public_only`` leaves out what residents may not see.
    Raises ValidationError (code VALIDATION) for a malformed URL, one that resolves to a
    private, loopback, link-local or metadata address (unless RESTORATION_WEBHOOK_ALLOW_PRIVATE=1
    in ``environ``, default os.environ), or an unknown kind.
    """
    url = required_text("url", url, URL_LIMIT)
    try:
        check_url(url, allow_private=private_allowed(environ))
    except RefusedDestination as refused:
        raise ValidationError(str(refused)) from None
    unknown = sorted(set(kinds) - EVENT_KINDS)
    if unknown:
        raise ValidationError(
            f"Unknown event kinds {', '.join(unknown)}; choose from {', '.join(sorted(EVENT_KINDS))}."
        )
    secret = new_secret()
    endpoint = webhook_outbox.add_endpoint(
        connection,
        log_,
        endpoint_id=uuid4(),
        url=url,
        secret=secret,
        kinds=list(kinds),
        service_ids=[UUID(str(s)) for s in service_ids],
        public_only=bool(public_only),
        description=optional_text("description", description),
        created_by=actor,
    )
    return CreatedWebhook(endpoint, secret)


def delete_webhook(connection: Connection[Any], webhook_id: UUID) -> None:
    """Delete an endpoint and its delivery log; nothing more is sent to it. NotFound if unknown."""
    if not webhook_outbox.remove_endpoint(connection, webhook_id):
        raise NotFound(f"No webhook has the id {webhook_id}.")


def list_webhooks(connection: Connection[Any]) -> list[Endpoint]:
    """Every endpoint (without its secret) with delivered, failed and pending counts and the
    last status, oldest first."""
    return webhook_outbox.list_endpoints(connection)


def webhook_deliveries(
    connection: Connection[Any], webhook_id: UUID, *, after: int = 0, first: int = 50
) -> list[Delivery]:
    """An endpoint's delivery log in position order, ``first`` entries after position ``after``."""
    if webhook_outbox.find_endpoint(connection, webhook_id) is None:
        raise NotFound(f"No webhook has the id {webhook_id}.")
    return webhook_outbox.delivery_log(connection, webhook_id, after=after, first=first)
