"""`linli demo-city` starts a city hub over two district hubs over two nodes each."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port
from tests.test_demo import REPO, _graphql, _Output, _taken, _until

NODES = {"110105001001", "110105001002", "110106001001", "110106001002"}


def test_demo_city_runs_a_city_over_two_districts(tmp_path: Path) -> None:
    base = free_port()
    while any(_taken(base + i) for i in range(1, 7)):
        base = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "demo-city", "--port", str(base),
         "--data-dir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "400"}, start_new_session=True,
    )  # fmt: skip
    output = _Output(demo)
    try:
        output.wait_for(r"Press Ctrl-C to stop\.", timeout=300)
        text = output.text
        state = json.loads((tmp_path / "levels" / "demo.json").read_text("utf-8"))
        city = state["city"]["graphql"]
        link = re.search(r"GraphiQL, as the city emergency office: (\S+)#token=([\w\-.]+)", text)
        assert link, text
        office = link.group(2)
        resources, totals = re.findall(r"^  (\{ .*\})$", text, re.M)

        def every_node_answers() -> dict[str, object] | None:
            body: dict[str, object] = _graphql(city, office, resources)
            nested = [
                leaf
                for entry in body.get("extensions", {}).get("sources", [])  # type: ignore[attr-defined]
                for leaf in entry.get("sources") or []
            ]
            ok = {leaf["source"] for leaf in nested if leaf["status"] == "ok"}
            return body if ok == NODES else None

        body = _until(every_node_answers, 60, "every node answering through its district")
        assert "errors" not in body, body
        edges = body["data"]["resources"]["edges"]
        assert {e["node"]["owner"] for e in edges} == NODES
        assert {e["node"]["availableBand"]["label"] for e in edges} == {"10-49"}  # bands
        districts = {e["source"] for e in body["extensions"]["sources"]}
        assert districts == {"hub-110105", "hub-110106"}

        summed = _graphql(city, office, totals)
        assert "errors" not in summed, summed
        generators = {
            t["area"]: (t["count"], t["quantity"])
            for t in summed["data"]["aggregates"]["totals"]
            if t["recordType"] == "Resource"
        }
        assert generators == {"110105": (2, 24), "110106": (2, 24)}
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGTERM)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()
    assert demo.returncode == 0, output.text[-3000:]
    assert not any(_taken(base + i) for i in range(7)), "a demo service is still listening"
