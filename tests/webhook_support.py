"""A real webhook receiver on loopback that checks signatures with the `standardwebhooks`
package (a third party's reading of the convention, not ours), and a sender in a thread."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from api.webhook_sender import RetrySchedule, WebhookSender
from api.background import in_background

FAST_RETRIES = RetrySchedule(first_seconds=0.05, factor=2.0, max_seconds=0.2, jitter=0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """Answers ``status`` to requests whose signature verifies (400 to the others), and keeps
    the verified ones in arrival order. Not listening until :meth:`start`: connection refused."""

    def __init__(self, port: int | None = None, path: str = "/hooks") -> None:
        self.port = port or free_port()
        self.path = path
        self.secret = ""
        self.status = 200
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.rejected: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each answer waits ~40 ms for a delayed ACK

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    payload = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                except WebhookVerificationError as error:
                    with receiver._lock:
                        receiver.rejected.append(str(error))
                    self._answer(400, b"bad signature or timestamp")
                    return
                status = receiver.status
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.received.append((self.headers["webhook-id"], payload))
                self._answer(status, json.dumps({"status": status}).encode())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def first_deliveries(self) -> list[dict[str, Any]]:
        """Payloads in arrival order, each webhook-id only the first time it came."""
        seen: set[str] = set()
        unique = []
        with self._lock:
            for message_id, payload in self.received:
                if message_id not in seen:
                    seen.add(message_id)
                    unique.append(payload)
        return unique


@contextmanager
def receiving(port: int | None = None, *, start: bool = True) -> Iterator[Receiver]:
    receiver = Receiver(port)
    if start:
        receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@contextmanager
def sending(database_url: str, **options: Any) -> Iterator[WebhookSender]:
    """A sender in a thread, with fast retries; stopped and joined on exit."""
    sender = WebhookSender(database_url, **{"schedule": FAST_RETRIES, "sweep_seconds": 0.2, **options})
    with in_background(lambda: asyncio.run(sender.run()), sender.stop, name="test-sender"):
        yield sender
