"""The schema: queries, mutations and subscriptions, with limits and error handling."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from datetime import datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as create_alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as create_depth_rule
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, Info
from graphql.validation import NoSchemaIntrospectionCustomRule

from api.graphql import timeline, views
from api.graphql import webhooks as webhooks_api
from api.graphql.enums import Status
from api.graphql.context import Context
from api.graphql.errors import Code, add_code, should_mask
from api.graphql.shared_events import SharedEventExecutor
from api.outage import DATABASE_AWAY

MAX_DEPTH = 10
MAX_TOKENS = 2_000
MAX_ALIASES = 15


AsOf = Annotated[
    datetime | None,
    strawberry.argument(description="The state of the world at this effective time."),
]
KnownAt = Annotated[
    datetime | None,
    strawberry.argument(description="As the tracker knew it at this recorded time (default: now)."),
]


@strawberry.type
class Query:
    @strawberry.field(description="Every service (resident-facing ones only without a token).")
    async def services(
        self,
        info: Info[Context, Any],
        status: Status | None = None,
        category: str | None = None,
        resident_facing: bool | None = None,
        as_of: AsOf = None,
        known_at: KnownAt = None,
    ) -> list[views.Service]:
        return await views.list_services(info, status, category, resident_facing, as_of, known_at)

    @strawberry.field(description="One service, by id or slug.")
    async def service(
        self,
        info: Info[Context, Any],
        id: strawberry.ID | None = None,
        slug: str | None = None,
        as_of: AsOf = None,
        known_at: KnownAt = None,
    ) -> views.Service:
        return await views.find_service(info, timeline.uuid_arg("id", id), slug, as_of, known_at)

    @strawberry.field
    async def incidents(self, info: Info[Context, Any]) -> list[views.Incident]:
        return await views.list_incidents(info)

    @strawberry.field
    async def incident(self, info: Info[Context, Any], id: strawberry.ID) -> views.Incident:
        incident_id = timeline.uuid_arg("id", id)
        assert incident_id is not None
        return await views.load_incident(info, incident_id)

    @strawberry.field(description="The timeline of facts, ordered by position (Relay-style pages).")
    async def timeline(
        self,
        info: Info[Context, Any],
        incident_id: strawberry.ID | None = None,
        service_id: strawberry.ID | None = None,
        public_only: bool = False,
        first: int | None = None,
        after: str | None = None,
    ) -> timeline.TimelineConnection:
        service = timeline.uuid_arg("serviceId", service_id)
        return await timeline.timeline_page(
            info,
            incident_id=incident_id,
            service_ids=[service] if service else None,
            public_only=public_only,
            first=first,
            after=after,
        )

    @strawberry.field(description="The raw event log after a position (auditors only).")
    async def events(
        self, info: Info[Context, Any], after: int = 0, first: int | None = None
    ) -> list[timeline.EventRecord]:
        return await timeline.event_records(info, after, first)

    @strawberry.field(description="Webhook endpoints with delivery statistics (admins only).")
    async def webhooks(self, info: Info[Context, Any]) -> list[webhooks_api.Webhook]:
        return await webhooks_api.list_webhooks(info)

    @strawberry.field(description="Verify the hash chain now (auditors only).")
    async def audit_report(self, info: Info[Context, Any]) -> timeline.AuditReport:
        return await timeline.audit_report(info)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every timeline entry after `after`, then live: reconnect with your last "
        "position and you miss nothing."
    )
    async def restoration_events(
        self,
        info: Info[Context, Any],
        after: int = 0,
        service_ids: list[strawberry.ID] | None = None,
        incident_id: strawberry.ID | None = None,
        kinds: list[str] | None = None,
    ) -> AsyncGenerator[timeline.TimelineEntry, None]:
        async for entry in timeline.restoration_events(info, after, service_ids, incident_id, kinds):
            yield entry


    @strawberry.subscription(description="The chosen services as they are now, then each again after every change.")
    async def service_changed(
        self, info: Info[Context, Any], ids: list[strawberry.ID] | None = None
    ) -> AsyncGenerator[views.Service, None]:
        wanted = [timeline.uuid_arg("ids", i) for i in ids] if ids else None
        async for service in views.service_changes(info, wanted):  # type: ignore[arg-type]
            yield service


class ErrorPolicy(MaskErrors):
    """Unexpected exceptions are masked, and every error a client sees carries
    ``extensions.code``, over HTTP and websockets alike (the HTTP router also codes the parse
    errors that never get here)."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [
            add_code(self.anonymise_error(error), Code.INTERNAL) if should_mask(error) else add_code(error)
            for error in errors
        ]

    def _process_result(self, result: object) -> None:
        # MaskErrors asks isinstance() of a runtime Protocol for every result, which costs more
        # than the rest of delivering a live event to one subscriber; a plain attribute will do.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]


# The limits' validation rules are made once, not once per request, so that a document
# validated before (the same dashboard query, the same subscription) is not validated again.
LIMIT_RULES = (create_depth_rule(MAX_DEPTH, None), create_alias_rule(MAX_ALIASES))


class TrackerSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """The database being away is logged by the listener that notices it, once per retry,
        not with a traceback for every request that finds it away."""
        super().process_errors([e for e in errors if not isinstance(e.original_error, DATABASE_AWAY)],
                               execution_context)


def build_schema(*, production: bool, mutation: type | None = None) -> strawberry.Schema:
    rules = [*LIMIT_RULES, *([NoSchemaIntrospectionCustomRule] if production else [])]
    extensions: list[Any] = [
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        ParserCache,
        ValidationCache,
        ErrorPolicy,
    ]
    return TrackerSchema(
        query=Query,
        mutation=mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=SharedEventExecutor,
        config=StrawberryConfig(disable_field_suggestions=production),
    )


SDL_PATH = Path(__file__).resolve().parent.parent / "schema.graphql"


def sdl() -> str:
    """The contract as SDL; ``make schema`` writes it to api/schema.graphql."""
    from api.graphql.mutations import Mutation

    return build_schema(production=False, mutation=Mutation).as_str() + "\n"


if __name__ == "__main__":
    SDL_PATH.write_text(sdl())
    print(f"wrote {SDL_PATH}")


__all__ = ["GraphQLError", "build_schema", "sdl"]
