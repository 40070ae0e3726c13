"""What the sharing policy costs per 1,000 Resource records, against returning them unfiltered.

Run: ``.venv/bin/python bench/policy.py``. Prints absolute times (best of
several runs) and ratios against two baselines measured in the same run:
copying the record dicts, and ``json.dumps`` of the page.
"""

from __future__ import annotations

import functools
import json
import random
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from policies import Caller, Mode, Owner, PolicyEngine, disclose_page
from schema.enums import OrgKind, ResourceStatus
from schema.geo import GeoPoint

PAGE = 1000
REPEAT = 7
OWNER = Owner("110105001001", OrgKind.COMMUNITY, "110105", frozenset({"110105001002"}))
READ = frozenset({"resources:read", "shelters:read", "incidents:read"})
CALLERS = {
    "self": Caller(OWNER.org, OrgKind.COMMUNITY, READ, "c", "s", district="110105"),
    "neighbour": Caller("110105001002", OrgKind.COMMUNITY, READ, "c", "s", district="110105"),
    "department": Caller("110105000100", OrgKind.DEPARTMENT, READ, "c", "s", district="110105"),
    "public": Caller("public-web", OrgKind.PUBLIC, READ, "c", "s"),
}


def resources(count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """A page of resource records as the node would hand them over."""
    rng = random.Random(seed)
    now = datetime(2025, 7, 1, tzinfo=UTC)
    page = []
    for i in range(count):
        quantity = rng.randint(0, 2000)
        page.append(
            {
                "id": f"Resource:{OWNER.org}:{i:032x}",
                "owner": OWNER.org,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "kind": "portable_generator",
                "name": f"Generator {i}",
                "quantity": quantity,
                "available": rng.randint(0, quantity),
                "unit": "台",
                "status": ResourceStatus.AVAILABLE,
                "location": GeoPoint.at(116.3 + rng.random() / 10, 39.9 + rng.random() / 10),
                "address": f"{i} Chang'an Avenue",
                "shareable": rng.random() < 0.8,
                "description": "Diesel, 10 kW",
                "available_band": None,
            }
        )
    return page


def best_ms(run: Callable[[], object]) -> float:
    """The best of ``REPEAT`` timings of ``run``, in milliseconds."""
    return min(timeit.repeat(run, number=1, repeat=REPEAT)) * 1000


def main() -> None:
    """Print the cost of ``disclose`` per 1,000 records against the baselines."""
    page = resources(PAGE)
    json_ready = [
        {**r, "location": r["location"].model_dump(), "status": r["status"].value} for r in page
    ]
    copy_ms = best_ms(lambda: [dict(r) for r in page])
    json_ms = best_ms(lambda: json.dumps(json_ready, default=str))
    print(f"records per page: {PAGE}; best of {REPEAT} runs")
    print(f"baseline copy the dicts:      {copy_ms:8.2f} ms")
    print(f"baseline json.dumps the page: {json_ms:8.2f} ms")
    print()
    print(f"{'caller':<12}{'cold ms':>10}{'warm ms':>10}{'x copy':>10}{'x json':>10}{'cedar':>8}")
    for name, caller in CALLERS.items():
        engine = PolicyEngine()
        started = time.perf_counter()
        disclose_page(page, "Resource", caller, owner=OWNER, engine=engine, mode=Mode.NORMAL)
        cold_ms = (time.perf_counter() - started) * 1000
        warm_ms = best_ms(
            functools.partial(
                disclose_page,
                page,
                "Resource",
                caller,
                owner=OWNER,
                engine=engine,
                mode=Mode.NORMAL,
            )
        )
        print(
            f"{name:<12}{cold_ms:10.2f}{warm_ms:10.2f}"
            f"{warm_ms / copy_ms:10.1f}{warm_ms / json_ms:10.2f}{engine.evaluations:8d}"
        )
    print()
    print("cold: first page with an empty decision cache; warm: later pages.")
    print("cedar: Cedar requests evaluated for all the pages of that caller.")


if __name__ == "__main__":
    main()
