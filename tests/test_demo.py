"""`linli demo` starts a whole district, and the queries it prints return data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]


def test_demo_runs_a_district_and_its_example_queries_answer(tmp_path: Path) -> None:
    base = free_port()
    while any(_taken(base + i) for i in range(1, 5)):
        base = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "demo", "--port", str(base), "--data-dir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "400"}, start_new_session=True,
    )  # fmt: skip
    output = ""
    try:
        deadline = time.monotonic() + 180
        assert demo.stdout is not None
        while "Press Ctrl-C to stop." not in output:
            line = demo.stdout.readline()
            assert line or demo.poll() is None, f"the demo stopped:\n{output}"
            output += line
            assert time.monotonic() < deadline, f"the demo did not start:\n{output}"
        state = json.loads((tmp_path / "demo.json").read_text("utf-8"))
        assert oct((tmp_path / "demo.json").stat().st_mode & 0o777) == "0o600"
        token = re.search(r"Bearer ([\w\-.]+)", output)
        assert token, output
        queries = re.findall(r"^  (\{ .*\})$", output, re.M)
        assert len(queries) == 3, output
        for query in queries:
            body = httpx.post(
                f"{state['hub']['url']}/graphql",
                json={"query": query},
                headers={"Authorization": f"Bearer {token.group(1)}"},
                timeout=30,
            ).json()
            assert "errors" not in body, (query, body)
            first_field = next(iter(body["data"].values()))
            rows = first_field["edges"] if isinstance(first_field, dict) else first_field
            assert rows, (query, body)
            assert {s["status"] for s in body["extensions"]["sources"]} == {"ok"}
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=60)
    assert demo.returncode == 0
    assert not any(_taken(base + i) for i in range(0, 5)), "a demo service is still listening"


def _taken(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
