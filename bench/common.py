"""What every benchmark needs: a fresh database on a real server, and a way to report."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from api.database import create_database, drop_database, embedded_postgres, with_database


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


def start_worker(url: str, output: IO[bytes] | int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """`restoration worker` as a process of its own, on ``url``, running this checkout's code."""
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [Path(sys.executable).with_name("restoration"), "worker"],
        env={**os.environ, "DATABASE_URL": url, "PYTHONPATH": path},
        stdout=output,
        stderr=subprocess.STDOUT,
    )


def report(title: str, rows: list[tuple[str, float, str]]) -> None:
    print(f"\n{title}")
    width = max(len(name) for name, _, _ in rows)
    for name, value, unit in rows:
        print(f"  {name:<{width}}  {value:>12,.1f} {unit}")
