"""What every benchmark needs: a fresh database on a real server, the API in a process of its
own with a load generator to drive it, and a way to report."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psycopg

from api.database import create_database, drop_database, embedded_postgres, with_database
from projections.catalog import all_projections


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new database on BENCH_DATABASE_URL / TEST_DATABASE_URL's server, or on an embedded one."""
    configured = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if configured:
        with _scratch(configured) as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="restoration-bench-") as data_dir:
        with embedded_postgres(Path(data_dir)) as server, _scratch(server) as url:
            yield url


@contextmanager
def _scratch(server_url: str) -> Iterator[str]:
    name = f"rt_bench_{uuid.uuid4().hex[:10]}"
    create_database(server_url, name)
    try:
        yield with_database(server_url, name)
    finally:
        drop_database(server_url, name)


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def start_restoration(url: str, *arguments: str, output: IO[bytes] | int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """`restoration ARGUMENTS…` as a process of its own, on ``url``, running this checkout's code."""
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [Path(sys.executable).with_name("restoration"), *arguments],
        env={**os.environ, "DATABASE_URL": url, "PYTHONPATH": path},
        stdout=output,
        stderr=subprocess.STDOUT,
    )


def start_worker(url: str, output: IO[bytes] | int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """`restoration worker`: the projection worker."""
    return start_restoration(url, "worker", output=output)


def start_api(url: str, port: int, output: IO[bytes] | int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """`restoration serve --no-workers` on a loopback port: the API alone, as deployed beside workers."""
    return start_restoration(url, "serve", "--no-workers", "--port", str(port), output=output)


def report(title: str, rows: list[tuple[str, float, str]]) -> None:
    print(f"\n{title}")
    width = max(len(name) for name, _, _ in rows)
    for name, value, unit in rows:
        print(f"  {name:<{width}}  {value:>12,.1f} {unit}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def api_server(url: str, head: int, static_dir: Path | None = None) -> Iterator[str]:
    """bench/server.py (the API and the baselines) on a free port, once every view has reached
    position ``head``; yields its address, host:port."""
    port = free_port()
    command = [sys.executable, str(Path(__file__).with_name("server.py")), str(port)]
    server = subprocess.Popen(
        command + ([str(static_dir)] if static_dir else []),
        env={**os.environ, "DATABASE_URL": url, "RESTORATION_POOL_SIZE": "10"},
    )
    address = f"127.0.0.1:{port}"
    try:
        _wait_until_ready(address, url, head)
        yield address
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print("the API server did not stop within 30 s of SIGTERM; killed it", file=sys.stderr)
            server.kill()
            server.wait()


def _wait_until_ready(address: str, url: str, head: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{address}/healthz", timeout=2).status_code == 200 and _views_reached(url) >= head:
                return
        except (httpx.HTTPError, psycopg.errors.UndefinedTable):
            pass
        time.sleep(0.2)
    raise SystemExit("the API did not become ready")


def _views_reached(url: str) -> int:
    with psycopg.connect(url) as connection:
        union = " UNION ALL ".join(f"SELECT position FROM {p.tracking_table}" for p in all_projections())
        return connection.execute(f"SELECT min(position) FROM ({union}) t").fetchone()[0]


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    expect: int = 200

    def encode(self, address: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"host: {address}", f"content-length: {len(self.body)}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(frozen=True)
class Throughput:
    per_second: float
    p99_ms: float


async def load(address: str, request: HttpRequest, concurrency: int, seconds: float) -> Throughput:
    """``concurrency`` keep-alive connections sending ``request`` back to back for ``seconds``.

    A bare HTTP/1.1 client on asyncio streams, so that on a small machine the client is not what
    limits the figures (a full client library costs several times more per request).
    """
    host, port = address.rsplit(":", 1)
    raw = request.encode(address)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(raw)
                status = await _read_response(reader, head_only=request.method == "HEAD")
                if status != request.expect:
                    raise RuntimeError(f"{request.method} {request.path} answered {status}, not {request.expect}")
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Throughput(len(latencies) / elapsed, statistics.quantiles(latencies, n=100)[98] * 1000)


async def _read_response(reader: asyncio.StreamReader, *, head_only: bool) -> int:
    """Read one response (its body by Content-Length); its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding":
            raise RuntimeError("chunked responses are not supported by this load generator")
    status = int(lines[0].split()[1])
    if length and not head_only and status != 304:
        await reader.readexactly(length)
    return status
