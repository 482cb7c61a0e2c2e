"""A webhook receiver for benchmarks, run as its own process: answers 200 to every POST and
notes when each arrived (wall clock, to compare with the writer's commit times).

    python -m bench.receiver --port 8765 --out arrivals.txt

``GET /count`` answers how many POSTs have arrived; the arrivals ("<unix time> <webhook-id>"
lines) are written to --out when the process stops (SIGTERM).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import uvicorn


def receiver(out: str) -> Any:
    arrivals: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    with open(out, "w") as file:
                        file.writelines(arrivals)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["method"] == "GET":
            body = str(len(arrivals)).encode()
        else:
            more = True
            while more:
                more = (await receive()).get("more_body", False)
            message_id = dict(scope["headers"]).get(b"webhook-id", b"?").decode()
            arrivals.append(f"{time.time():.6f} {message_id}\n")
            body = b"ok"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    uvicorn.run(receiver(args.out), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
