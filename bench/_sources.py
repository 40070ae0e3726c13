"""Many tiny node-protocol sources in one process and one event loop, for ``bench/fanout.py``.

Run: ``python bench/_sources.py COUNT LATENCY_MS``. Each source is its own
aiohttp app on its own free port, answering ``GET /.well-known/linli-node``
and ``POST /graphql`` (the first ``first`` of its ``RECORDS_PER_SOURCE``
``resources``, newest first, after sleeping the latency; or, asked ``aggregates``, one
fixed total). It does not check
tokens. When every source listens it prints one JSON line
``{"sources": {id: url, ...}}``; it serves until stdin closes or it is
terminated.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
import socket
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from schema import SCHEMA_VERSION

__all__ = ["RECORDS_PER_SOURCE", "source_id", "source_page"]

FIRST_ID = 110105001001
RECORDS_PER_SOURCE = 500  # enough for the largest page
EPOCH = datetime(2026, 7, 1, tzinfo=UTC)


def source_id(index: int) -> str:
    """The 12-digit division code of the ``index``-th source."""
    return str(FIRST_ID + index)


def _record(owner: str, index: int, i: int) -> dict[str, Any]:
    created = (EPOCH + timedelta(minutes=i * 7 + index % 5)).isoformat()
    return {
        "id": f"Resource:{owner}:r{i:05d}",
        "owner": owner,
        "version": 1,
        "createdAt": created,
        "updatedAt": created,
        "kind": "drinking_water",
        "name": f"{owner} 饮用水 {i}",
        "quantity": 10 + i,
        "available": 10 + i,
        "unit": "箱",
        "status": "AVAILABLE",
        "availableBand": None,
        "location": {"type": "Point", "coordinates": [116.44, 39.9]},
    }


def source_page(index: int, first: int) -> dict[str, Any]:
    """The first page of ``first`` records the ``index``-th source answers, newest first."""
    owner = source_id(index)
    records = sorted(
        (_record(owner, index, i) for i in range(RECORDS_PER_SOURCE)),
        key=lambda r: (r["createdAt"], r["id"]),
        reverse=True,
    )[:first]
    edges = [
        {"cursor": base64.b64encode(json.dumps(r["id"]).encode()).decode(), "node": r}
        for r in records
    ]
    return {
        "edges": edges,
        "pageInfo": {
            "hasNextPage": first < RECORDS_PER_SOURCE,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _source_app(index: int, latency_s: float) -> web.Application:
    owner = source_id(index)
    described = json.dumps(
        {
            "id": owner,
            "kind": "community",
            "name": f"社区 {owner}",
            "division_code": owner,
            "bbox": None,
            "schema_version": SCHEMA_VERSION,
            "capabilities": ["resources", "aggregates"],
        }
    ).encode()
    # The answer to each page size never changes: encode it once, so that the source
    # costs little more than its latency.
    answers: dict[int, bytes] = {}

    def answer(first: int) -> bytes:
        if first not in answers:
            page = source_page(index, first)
            answers[first] = json.dumps({"data": {"resources": page}}).encode()
        return answers[first]

    async def well_known(request: web.Request) -> web.Response:
        return web.Response(body=described, content_type="application/json")

    totals = json.dumps(
        {
            "data": {
                "aggregates": {
                    "totals": [
                        {
                            "recordType": "Resource",
                            "area": owner[:6],
                            "kind": "drinking_water",
                            "status": "AVAILABLE",
                            "count": RECORDS_PER_SOURCE,
                            "quantity": 10 * RECORDS_PER_SOURCE,
                            "available": 10 * RECORDS_PER_SOURCE,
                            "capacity": None,
                            "occupancy": None,
                            "affected": None,
                            "oldestAt": None,
                        }
                    ]
                }
            }
        }
    ).encode()

    async def graphql(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if str(body.get("query", "")).lstrip("{ ").startswith("aggregates"):
            await asyncio.sleep(latency_s)
            return web.Response(body=totals, content_type="application/json")
        variables = body.get("variables") or {}
        first = min(max(int(variables.get("first") or 50), 0), RECORDS_PER_SOURCE)
        await asyncio.sleep(latency_s)
        return web.Response(body=answer(first), content_type="application/json")

    app = web.Application()
    app.router.add_get("/.well-known/linli-node", well_known)
    app.router.add_post("/graphql", graphql)
    return app


async def serve(count: int, latency_s: float) -> None:
    """Serve ``count`` sources until stdin closes or a signal arrives."""
    runners: list[web.AppRunner] = []
    urls: dict[str, str] = {}
    try:
        for index in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            runner = web.AppRunner(_source_app(index, latency_s), access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.SockSite(runner, sock, backlog=512).start()
            urls[source_id(index)] = f"http://127.0.0.1:{sock.getsockname()[1]}"
        print(json.dumps({"sources": urls}), flush=True)

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)

        def watch_parent() -> None:
            # The parent holds our stdin: when it goes away, so do we.
            sys.stdin.buffer.read()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=watch_parent, daemon=True).start()
        await stop.wait()
    finally:
        for runner in runners:
            await runner.cleanup()


def main() -> None:
    count, latency_ms = int(sys.argv[1]), float(sys.argv[2])
    try:
        import uvloop
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(count, latency_ms / 1000))


if __name__ == "__main__":
    main()
