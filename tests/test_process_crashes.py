"""The API process and the worker process killed with SIGKILL at random moments while operators
write: no write the API acknowledged is lost (each is in the log at the position it was given),
and after restarts every view is exactly what a replay of the log from position 0 builds."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import httpx
import pytest

from api.tokens import Role
from tests.deployment_support import (
    REQUEST_SECONDS,
    Deployment,
    Writer,
    assert_acknowledged_writes_are_logged,
    assert_every_view_matches_a_replay,
    deployed,
    eventually,
    kill,
    register_service,
    views_current,
)

pytestmark = pytest.mark.slow

KILLS = ("api", "worker") * 3


async def test_killed_api_and_worker_lose_no_acknowledged_write_and_corrupt_no_view(
    database_url: str, tmp_path: Path
) -> None:
    chance = random.Random(8)
    killed_api_at: list[float] = []
    with deployed(database_url, tmp_path / "processes.log") as deployment:
        operator = deployment.token(Role.OPERATOR)
        async with httpx.AsyncClient(base_url=deployment.base_url, timeout=REQUEST_SECONDS) as client:
            services = [await register_service(client, operator, slug) for slug in ("email", "rents", "repairs")]
            writers = [Writer(client, operator, service, f"writer {n}") for n, service in enumerate(services)]
            stop = asyncio.Event()
            writing = [asyncio.create_task(writer.run(stop)) for writer in writers]
            try:
                for target in KILLS:
                    acknowledged = sum(len(w.acknowledged) for w in writers)
                    await eventually(lambda: sum(len(w.acknowledged) for w in writers) > acknowledged + 3,
                                     "writes to be acknowledged again")
                    await asyncio.sleep(chance.uniform(0, 0.3))
                    if target == "api":
                        killed_api_at.append(time.monotonic())
                    await asyncio.to_thread(kill_and_restart, deployment, target)
                await eventually(lambda: sum(len(w.acknowledged) for w in writers) > acknowledged + 3,
                                 "writes to be acknowledged after the last restart")
            finally:
                stop.set()
                await asyncio.gather(*writing)
        await eventually(lambda: views_current(database_url), "the views to catch up")

    replies = [reply for writer in writers for reply in writer.replies]
    for reply in replies:  # stored (with its position), or no answer while the API was down
        assert reply.position is not None or reply.status is None, reply
    cut_off = [r for r in replies if r.status is None and any(r.started < at < r.ended for at in killed_api_at)]
    assert cut_off, "no kill of the API caught a write in flight"
    print(f"\n{len(replies)} writes, {sum(r.position is not None for r in replies)} acknowledged, "
          f"{len(cut_off)} cut off by a kill of the API")

    assert_acknowledged_writes_are_logged(database_url, writers)
    assert_every_view_matches_a_replay(database_url)


def kill_and_restart(deployment: Deployment, target: str) -> None:
    if target == "api":
        assert deployment.api is not None
        kill(deployment.api)
        deployment.start_api()
        deployment.wait_until_serving()
    else:
        assert deployment.worker is not None
        kill(deployment.worker)
        deployment.start_worker()

