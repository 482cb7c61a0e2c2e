"""Start ``restoration serve --demo`` on the embedded default, check /healthz, stop it.

Run by CI (``make smoke``) to prove the first of the README's two commands works.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_and_stop(data_dir: Path, *, demo: bool = True) -> tuple[dict[str, object], int]:
    """Start the tracker on the embedded default, read /healthz, stop it with Ctrl-C (SIGINT).

    Returns what /healthz said and the server's exit code.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    command = [str(Path(sys.executable).with_name("restoration")), "serve", "--port", str(port),
               "--data-dir", str(data_dir), *(["--demo"] if demo else [])]
    server = subprocess.Popen(command, env=env)
    try:
        health = wait_for_health(port, server)
    finally:
        server.send_signal(signal.SIGINT)
        code = server.wait(timeout=60)
    return health, code


def embedded_server_running(data_dir: Path) -> bool:
    return (data_dir / "pgdata" / "postmaster.pid").exists()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="restoration-smoke-") as data_dir:
        health, code = serve_and_stop(Path(data_dir))
        print(f"smoke: /healthz answered {health}; the server exited with code {code}")
        if embedded_server_running(Path(data_dir)):
            print("smoke: the embedded PostgreSQL was left running", file=sys.stderr)
            return 1
        return 0 if health.get("status") == "ok" and code == 0 else 1


def wait_for_health(port: int, server: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"smoke: the server exited early with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                return json.load(reply)
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"smoke: /healthz did not answer within {STARTUP_SECONDS}s")


if __name__ == "__main__":
    sys.exit(main())
