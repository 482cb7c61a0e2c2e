"""What every benchmark needs: a fresh database on a real server, the API in a process of its
own with a load generator to drive it, and a way to report."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg

from api.database import create_database, drop_database, embedded_postgres, with_database
from projections.catalog import all_projections


# The PostgreSQL server the last fresh_database() was on, for report() to record.
_database_server: str | None = None


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new database on BENCH_DATABASE_URL / TEST_DATABASE_URL's server, or on an embedded one."""
    configured = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if configured:
        with _scratch(configured, embedded=False) as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="restoration-bench-") as data_dir:
        with embedded_postgres(Path(data_dir)) as server, _scratch(server, embedded=True) as url:
            yield url


@contextmanager
def _scratch(server_url: str, *, embedded: bool) -> Iterator[str]:
    global _database_server
    name = f"rt_bench_{uuid.uuid4().hex[:10]}"
    create_database(server_url, name)
    try:
        url = with_database(server_url, name)
        with psycopg.connect(url) as connection:
            version = connection.execute("SHOW server_version").fetchone()[0]
            where = "embedded" if embedded else f"{connection.info.host}:{connection.info.port}"
        _database_server = f"{version}, {where}"
        yield url
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


@dataclass(frozen=True)
class Target:
    """What a figure should reach: ``bound`` or more (or at most ``bound``), either the figure
    itself or, ``of_ratio``, its ratio to its baseline."""

    bound: float
    at_most: bool = False
    of_ratio: bool = False

    def met(self, row: Row) -> bool:
        measured = row.ratio if self.of_ratio else row.value
        assert measured is not None, f"{row.name}: a target of its ratio needs a baseline"
        return measured <= self.bound if self.at_most else measured >= self.bound

    def describe(self, unit: str) -> str:
        bound = f"{self.bound:,g}" if self.of_ratio or not unit else f"{self.bound:,g} {unit}"
        return f"{'ratio ' if self.of_ratio else ''}{'<=' if self.at_most else '>='} {bound}"


def at_least(bound: float, *, ratio: bool = False) -> Target:
    return Target(bound, at_most=False, of_ratio=ratio)


def at_most(bound: float, *, ratio: bool = False) -> Target:
    return Target(bound, at_most=True, of_ratio=ratio)


@dataclass(frozen=True)
class Row:
    """One figure of a benchmark, with the baseline it is compared with (a figure measured in
    the same run) and the target it should reach, where it has them."""

    name: str
    value: float
    unit: str
    baseline: Row | None = None
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline.value if self.baseline and self.baseline.value else None

    @property
    def met(self) -> bool | None:
        return self.target.met(self) if self.target else None


def report(title: str, rows: Sequence[Row | tuple[str, float, str]]) -> None:
    """Print the figures with their ratios, then PASS or BELOW TARGET for each target; and when
    BENCH_RESULTS names a file, append them to it as one JSON line (bench/report.py turns that
    file into BENCHMARKS.md)."""
    figures = [row if isinstance(row, Row) else Row(*row) for row in rows]
    names = _full_names(figures)
    print(f"\n{title}")
    width = max(len(row.name) for row in figures)
    units = max(len(row.unit) for row in figures)
    for row in figures:
        line = f"  {row.name:<{width}}  {row.value:>12,.1f} {row.unit:<{units}}"
        if row.baseline is not None and row.ratio is not None:
            line += f"  {ratio_text(row.ratio)} x {names.get(id(row.baseline), row.baseline.name.strip())}"
        print(line.rstrip())
    for row in figures:
        if row.target is not None:
            measured = f"ratio {ratio_text(row.ratio)}" if row.target.of_ratio else f"{row.value:,.1f} {row.unit}".rstrip()
            print(f"  {'PASS' if row.met else 'BELOW TARGET'}: {names[id(row)]} {measured} "
                  f"(target {row.target.describe(row.unit)})")
    if results := os.environ.get("BENCH_RESULTS"):
        with open(results, "a", encoding="utf-8") as file:
            file.write(json.dumps(_result(title, figures, names)) + "\n")


def ratio_text(ratio: float) -> str:
    """Two decimals, or two significant digits for a ratio too small to show in two decimals."""
    return f"{ratio:.2f}" if abs(ratio) >= 0.1 else f"{ratio:.2g}"


def _full_names(rows: list[Row]) -> dict[int, str]:
    """Each row's name, said in full: an indented row ("  p99") is a detail of the row above it."""
    names: dict[int, str] = {}
    above = ""
    for row in rows:
        if row.name.startswith(" "):
            names[id(row)] = f"{above}, {row.name.strip()}"
        else:
            names[id(row)] = above = row.name
    return names


def _result(title: str, rows: list[Row], names: dict[int, str]) -> dict[str, Any]:
    def figure(row: Row) -> dict[str, Any]:
        return {"name": row.name, "full_name": names.get(id(row), row.name.strip()), "value": row.value,
                "unit": row.unit}

    return {
        "title": title,
        "script": os.path.relpath(sys.argv[0], PROJECT_ROOT),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "postgresql": _database_server,
        "rows": [
            {
                **figure(row),
                "baseline": figure(row.baseline) if row.baseline else None,
                "ratio": row.ratio,
                "target": vars(row.target) if row.target else None,
                "met": row.met,
            }
            for row in rows
        ],
    }


def machine() -> dict[str, str]:
    """What the figures depend on besides the code: the CPU, memory, OS and Python."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        distribution = platform.freedesktop_os_release()["PRETTY_NAME"]
    except OSError:  # not Linux, or no os-release
        distribution = platform.platform(terse=True)
    return {
        "cpu": _cpu_model(),
        "cores": f"{cores} logical" + (f", {usable} usable by the benchmarks" if usable != cores else ""),
        "memory": f"{memory / 2**30:.1f} GiB",
        "os": f"{distribution}, {platform.system()} {platform.release()} {platform.machine()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                name, _, value = line.partition(":")
                if name.strip() == "model name":
                    return value.strip()
    except OSError:  # not Linux
        pass
    return platform.processor() or platform.machine()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def api_server(url: str, head: int, static_dir: Path | None = None) -> Iterator[str]:
    """bench/server.py (the API and the baselines) on a free port, once every view has reached
    position ``head``; yields its address, host:port."""
    with api_server_process(url, head, static_dir) as server:
        yield server.address


@dataclass(frozen=True)
class ApiServer:
    address: str
    pid: int


@contextmanager
def api_server_process(url: str, head: int, static_dir: Path | None = None) -> Iterator[ApiServer]:
    """As api_server, yielding the process's id too, for a benchmark that watches its memory."""
    port = free_port()
    command = [sys.executable, str(Path(__file__).with_name("server.py")), str(port)]
    server = subprocess.Popen(
        command + ([str(static_dir)] if static_dir else []),
        env={**os.environ, "DATABASE_URL": url, "RESTORATION_POOL_SIZE": "10"},
    )
    address = f"127.0.0.1:{port}"
    try:
        _wait_until_ready(address, url, head)
        yield ApiServer(address, server.pid)
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
                status, _ = await read_response(reader, head_only=request.method == "HEAD")
                if status != request.expect:
                    raise RuntimeError(f"{request.method} {request.path} answered {status}, not {request.expect}")
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Throughput(len(latencies) / elapsed, statistics.quantiles(latencies, n=100)[98] * 1000)


async def read_response(reader: asyncio.StreamReader, *, head_only: bool = False) -> tuple[int, bytes]:
    """Read one response (its body by Content-Length); its status code and body."""
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
        return status, await reader.readexactly(length)
    return status, b""
