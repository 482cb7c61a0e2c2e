"""The HTTP application: health, GraphQL (queries, mutations, subscriptions), the public status
page and feeds, the operations dashboard, and the auditors' export."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketState
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage
from strawberry.types import ExecutionResult

from api.composition import Tracker, open_read_pool
from api.audit_http import audit_router
from api.dashboard import dashboard_router
from api.graphql.context import AUDITORS, Context, Runtime, authenticate
from api.graphql.errors import add_code
from api.graphql.mutations import Mutation
from api.graphql.schema import build_schema
from api.limits import RequestLimits, graphql_error
from api.graphql.timeline import TAIL_SQL, TimelineEntry
from api.listener import Listener
from api.log_redaction import redact_server_log
from api.revocations import RevocationWatch
from api.security_headers import SecurityHeaders, page_with_its_assets
from api.throttle import FailedAuthentications, Throttled
from api.tokens import TOKENS_CHANNEL
from api.outage import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, DatabaseUnavailable, unavailable_response
from api.timeline_tail import TimelineTail
from api.status_page import PublicDocuments, status_router
from api.status_site import Site
from projections.catalog import all_projections
from projections.runner import VIEWS_CHANNEL

VERSION = "0.1.0"
HEALTH_TIMEOUT_SECONDS = 2.0
SHUTDOWN_SECONDS = 5.0
SERVER_OPTIONS: dict[str, Any] = {
    "timeout_graceful_shutdown": 10,
    # Live-feed messages are small JSON; compressing each one, for every subscriber, costs
    # more CPU than it saves bandwidth and delays the last subscriber of a busy fan-out.
    "ws_per_message_deflate": False,
}
"""How uvicorn should serve :func:`create_app`."""

log = logging.getLogger(__name__)


TRY_AGAIN_LATER = 1013
"""The websocket close code for a temporary condition: clients reconnect, as they would not
after 4403 (a refused token)."""


class TrackerTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws that also refuses a client over its limit of failed authentications
    (close code 4429), asks it to come back later when its token cannot be checked (1013), and
    is closed (4403, as for a refused token) the moment its token is revoked."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        revocations = self.context.runtime.revocations
        ticket = revocations.ticket()
        try:
            await super().handle_connection_init(message)
        except Throttled as throttled:
            await self.websocket.close(code=4429, reason=str(throttled))
            return
        except DatabaseUnavailable:  # the token could not be checked, not refused
            await self.websocket.close(code=TRY_AGAIN_LATER, reason=DATABASE_UNAVAILABLE)
            return
        if self.connection_acknowledged and self.context.principal is not None:
            revocations.watch(self.context.principal.token_id, self, ticket)

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            if self.context.principal is not None:
                self.context.runtime.revocations.forget(self.context.principal.token_id, self)

    async def close_revoked(self) -> None:
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        if self.context.request.application_state is WebSocketState.CONNECTED:
            await self.websocket.close(code=4403, reason="The token was revoked.")


class TrackerGraphQLRouter(GraphQLRouter[Context, None]):
    graphql_transport_ws_handler_class = TrackerTransportWS

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """Parse errors never reach the schema's extensions; give them a code here too."""
        if result.errors:
            result.errors = [add_code(error) for error in result.errors]
        return process_result(result)

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        """An answer the database's absence spoiled is a 503 with Retry-After, not a 200."""
        response = super().create_response(response_data, sub_response)
        results = response_data if isinstance(response_data, list) else [response_data]
        if any(error.get("extensions", {}).get("code") == DATABASE_UNAVAILABLE
               for result in results for error in result.get("errors") or []):
            response.status_code = 503
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        """Websockets authenticate with ``{"Authorization": "Bearer …"}`` in connection_init."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = params.get("Authorization") or params.get("authorization")
        principal, error = await authenticate(
            context.runtime, header if isinstance(header, str) else None, client_address(context.request)
        )
        if error:
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED", "message": error})
        context.principal = principal
        return None

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """GraphiQL (development only) loads its code from a CDN: allowed on this page alone."""
        return page_with_its_assets(self.graphql_ide_html)


def client_address(connection: HTTPConnection) -> str | None:
    return connection.client.host if connection.client else None


def create_app(tracker: Tracker) -> FastAPI:
    redact_server_log()
    settings = tracker.settings
    app_state: dict[str, Runtime] = {}
    failed_authentications = FailedAuthentications(settings.auth_failures_per_minute)
    events_table = tracker.app.recorder.events_table_name  # type: ignore[attr-defined]
    events_channel = tracker.app.recorder.channel_name  # type: ignore[attr-defined]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_read_pool(tracker.database_url, size=settings.pool_size)
        listener = Listener(tracker.database_url, [events_channel, VIEWS_CHANNEL, TOKENS_CHANNEL])
        await listener.start()
        revocations = RevocationWatch(pool, listener.bell(TOKENS_CHANNEL))
        await revocations.start()
        tail = TimelineTail(
            lambda after, limit: pool.fetch(TAIL_SQL, after, limit),
            lambda: pool.fetchval("SELECT coalesce(max(position), 0) FROM timeline"),
            listener.bell(VIEWS_CHANNEL),
            convert=TimelineEntry.from_row,
        )
        await tail.start()
        app.state.runtime = app_state["runtime"] = Runtime(
            tracker=tracker,
            pool=pool,
            listener=listener,
            tracking_tables=[p.tracking_table for p in all_projections()],
            events_channel=events_channel,
            tail=tail,
            failed_authentications=failed_authentications,
            revocations=revocations,
        )
        try:
            yield
        finally:
            await revocations.stop()
            await tail.stop()
            await listener.stop()
            try:
                await asyncio.wait_for(pool.close(), SHUTDOWN_SECONDS)
            except TimeoutError:
                # A subscription cancelled mid-query can leave a connection that never comes
                # back to the pool; do not let it hold the process up.
                log.warning("read pool did not close within %ss; terminating it", SHUTDOWN_SECONDS)
                pool.terminate()

    async def context_getter(request: Request = None, websocket: WebSocket = None) -> AsyncIterator[Context]:  # type: ignore[assignment]
        runtime = app_state["runtime"]
        if websocket is not None:
            context = Context(runtime=runtime)
        else:
            principal, error = await authenticate(runtime, request.headers.get("authorization"), client_address(request))
            context = Context(runtime=runtime, principal=principal, auth_error=error)
        try:
            yield context
        finally:
            # The execution that used the context is garbage only the cycle collector can free;
            # let the services it read go now, not after being traced again and again.
            context.services = None

    production = settings.production
    app = FastAPI(
        title="Restoration Tracker",
        version=VERSION,
        description="The system of record for recovering from a cyber attack or major outage.",
        lifespan=lifespan,
        docs_url=None,  # served below, with a policy of its own
        redoc_url=None,
        openapi_url=None if production else "/openapi.json",
    )
    # The last added runs first: limits innermost, so their 413 and 504 carry CORS and security headers.
    app.add_middleware(RequestLimits)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After"],  # so a page can honour a 429
            max_age=600,
        )
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(Throttled)
    async def throttled(request: Request, error: Throttled) -> JSONResponse:
        return JSONResponse(graphql_error("RATE_LIMITED", str(error)), status_code=429,
                            headers={"Retry-After": str(error.retry_after)})

    app.add_exception_handler(
        DatabaseUnavailable, lambda request, error: unavailable_response(str(error))  # type: ignore[arg-type]
    )
    app.include_router(
        TrackerGraphQLRouter(
            build_schema(production=production, mutation=Mutation),
            path="/graphql",
            context_getter=context_getter,
            graphql_ide=None if production else "graphiql",
            # The contract is graphql-transport-ws (README); revoked tokens are closed on it.
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            allowed_origins=settings.cors_origins,
        )
    )

    if not production:
        @app.get("/docs", include_in_schema=False)
        async def docs() -> HTMLResponse:
            swagger = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title}: HTTP API")
            return page_with_its_assets(bytes(swagger.body).decode())

    async def is_auditor(request: Request) -> bool:
        principal, _ = await authenticate(
            app_state["runtime"], request.headers.get("authorization"), client_address(request)
        )
        return principal is not None and principal.role in AUDITORS

    app.include_router(
        audit_router(
            authorize=is_auditor,
            pool=lambda request: app_state["runtime"].pool,
            events_table=events_table,
        )
    )

    app.state.public_documents = PublicDocuments(Site(settings.site_name, settings.public_url))
    app.include_router(
        status_router(
            app.state.public_documents,
            pool=lambda request: app_state["runtime"].pool,
            doorbell=lambda request: app_state["runtime"].listener.bell(VIEWS_CHANNEL),
        )
    )
    app.include_router(dashboard_router())

    @app.get("/healthz", summary="Is the tracker up and its event store reachable?")
    async def healthz() -> JSONResponse:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                head = await app_state["runtime"].pool.fetchval(
                    f"SELECT coalesce(max(notification_id), 0) FROM {events_table}"
                )
        except Exception as error:  # unreachable, timed out, or failing: not healthy
            return JSONResponse(
                {"status": "unavailable", "detail": f"event store unreachable ({type(error).__name__})"},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return JSONResponse({"status": "ok", "version": VERSION, "headPosition": head})

    return app


__all__: list[Any] = ["create_app"]
