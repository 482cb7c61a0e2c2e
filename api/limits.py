"""Request limits that hold before GraphQL sees anything: body size and execution time."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 256 * 1024
MAX_SECONDS = 15.0


def graphql_error(code: str, message: str) -> dict[str, Any]:
    """A refusal made before GraphQL runs, in the shape of a GraphQL response."""
    return {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}


class RequestLimits:
    """Refuse bodies over ``max_body`` bytes (413) and stop requests running over
    ``max_seconds`` (504), each with a GraphQL-shaped error a client can show."""

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY_BYTES, max_seconds: float = MAX_SECONDS) -> None:
        self.app = app
        self.max_body = max_body
        self.max_seconds = max_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._reply(send, 413, "BODY_TOO_LARGE", f"The request body is over {self.max_body:,} bytes.")
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            async with asyncio.timeout(self.max_seconds):
                await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reply(send, 413, "BODY_TOO_LARGE", f"The request body is over {self.max_body:,} bytes.")
        except TimeoutError:
            if not started:
                await self._reply(
                    send, 504, "TIMEOUT",
                    f"The request took longer than {self.max_seconds:g} seconds and was stopped; "
                    "ask for less (smaller pages, fewer fields).",
                )

    @staticmethod
    async def _reply(send: Send, status: int, code: str, message: str) -> None:
        body = json.dumps(graphql_error(code, message)).encode()
        headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
