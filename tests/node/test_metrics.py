"""``/metrics`` stays bounded: requests are labelled by route template, never by raw path."""

from __future__ import annotations

import uuid

import httpx

from tests.node.conftest import RunningNode


def _request_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("linli_http_requests_total{")]


async def test_random_paths_share_one_label_and_routes_keep_their_template(
    node: RunningNode,
) -> None:
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
        for _ in range(300):
            await http.get(f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}")
        await http.get("/healthz")
        text = (await http.get("/metrics")).text
    lines = _request_lines(text)
    unmatched = [line for line in lines if 'path="(unmatched)"' in line]
    assert len(unmatched) == 1
    assert 'status="404"' in unmatched[0]
    assert float(unmatched[0].rsplit(" ", 1)[1]) >= 300
    assert any('path="/healthz"' in line for line in lines)
    # Nothing of the random paths made it into a label, and the page stays small.
    assert all(len(line) < 200 for line in lines)
    assert len(text) < 64 * 1024
