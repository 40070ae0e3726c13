"""`linli demo` starts a whole district: its example queries answer, a flag raised at a
node travels to the department and back, and a node that dies is restarted."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]
OFFICE = "110105400001"
KILLED = "110105001002"


class _Output:
    """The demo's output, read by a thread so the test can wait for a line without blocking."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.text = ""
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.text += line

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = re.search(pattern, self.text, re.M)
                text = self.text
            if found:
                return found
            assert self.process.poll() is None, f"the demo stopped:\n{text}"
            assert time.monotonic() < deadline, f"no {pattern!r} within {timeout} s:\n{text}"
            time.sleep(0.1)


def _graphql(url: str, token: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    return httpx.post(
        url,
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()


def _until(check: Any, timeout: float, what: str) -> Any:
    """Call ``check`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout} s (last: {last})")


def test_demo_runs_a_district_delivers_flags_and_restarts_a_dead_node(tmp_path: Path) -> None:
    base = free_port()
    while any(_taken(base + i) for i in range(1, 5)):
        base = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "demo", "--port", str(base), "--data-dir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "400"}, start_new_session=True,
    )  # fmt: skip
    output = _Output(demo)
    try:
        output.wait_for(r"Press Ctrl-C to stop\.", timeout=300)
        text = output.text
        state = json.loads((tmp_path / "demo.json").read_text("utf-8"))
        assert oct((tmp_path / "demo.json").stat().st_mode & 0o777) == "0o600"
        hub_graphql = state["hub"]["graphql"]
        token = re.search(r"Bearer ([\w\-.]+)", text)
        assert token, text
        office = token.group(1)

        # The printed GraphiQL link opens the page in a browser without a token of its own
        # (the token rides in the fragment, which never reaches the server).
        link = re.search(
            r"GraphiQL, as the district emergency office: (\S+)#token=([\w\-.]+)", text
        )
        assert link, text
        assert link.group(2) == office
        page = httpx.get(link.group(1), headers={"Accept": "text/html"}, timeout=10)
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]

        # The example queries answer, from every source (the demo waited for all of them).
        queries = re.findall(r"^  (\{ .*\})$", text, re.M)
        assert len(queries) == 3, text
        for query in queries:
            body = _graphql(hub_graphql, office, query)
            assert "errors" not in body, (query, body)
            first_field = next(iter(body["data"].values()))
            rows = first_field["edges"] if isinstance(first_field, dict) else first_field
            assert rows, (query, body)
            assert {s["status"] for s in body["extensions"]["sources"]} == {"ok"}

        # The seeded flags reached the emergency office by the time the demo said it was ready.
        seeded = _graphql(
            hub_graphql, office,
            "{ flags { edges { node { id community assignedTo source { sensor rule } "
            "evidence { v } } } } }",
        )  # fmt: skip
        flags = [e["node"] for e in seeded["data"]["flags"]["edges"]]
        by_person = [f for f in flags if f["source"] is None]
        assert sorted(f["community"] for f in by_person) == [
            "110105001001", "110105001002",
        ], seeded  # fmt: skip
        assert {f["assignedTo"] for f in flags} == {OFFICE}
        # The simulated storm raised a flag by itself, which reached the office within the
        # first minute of the simulation; the demo printed it.
        by_sensor = re.search(
            r"Sensor-raised flag reached the emergency office (\d+) s after the storm began: "
            r"(RiskFlag:110105001003:\w+)",
            text,
        )
        assert by_sensor, text
        assert int(by_sensor.group(1)) <= 60
        (sensor_flag,) = [f for f in flags if f["source"] is not None]
        assert sensor_flag["id"] == by_sensor.group(2)
        assert sensor_flag["source"]["rule"] == "high-water"
        assert min(r["v"] for r in sensor_flag["evidence"]) >= 0.30

        # demo.json holds a ready token per role; the printed header of the staff is one of them.
        department = state["roles"]["department"]
        assert (department["org"], department["token"]) == (OFFICE, office)
        # The printed `linli token -c <hub.toml>` mints a token this hub accepts (its issuer),
        # from any folder, without touching a database of its own.
        token_command = re.search(r"(linli token -c \S+ --client-id \S+)", text)
        assert token_command, text
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        minted = subprocess.run(
            [sys.executable, "-m", "hub.cli", *token_command.group(1).split()[1:],
             "--client-secret", department["secret"]],
            cwd=elsewhere, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert list(elsewhere.iterdir()) == []
        body = _graphql(
            hub_graphql, minted.stdout.strip(), "{ flags(first: 1) { edges { node { id } } } }"
        )
        assert "errors" not in body, body
        # Each demo person signs in with the printed password, as the web app does.
        sign_in = re.search(r"Sign in as a person at (\S+) ", text)
        assert sign_in, text
        assert sign_in.group(1) == state["sign_in"] == f"{state['hub']['url']}/app/"
        printed = dict(re.findall(rf"^  (\S+) +(\S+) +(?:{'|'.join(ROLES)}) ", text, re.M))
        assert set(printed) == {"staff", "duty", "verifier", "wall-screen", "admin"}, text
        for username, password in printed.items():
            claims = _person_token(state["hub"]["url"], username, password)
            assert (claims["sub"], claims["client_id"]) == (username, "linli-web")
        staff_header = re.search(
            r"community staff of .* at its node (\S+) .*\n.*Bearer ([\w\-.]+)", text
        )
        assert staff_header, text
        staff = next(
            s for s in state["roles"]["community_staff"] if s["graphql"] == staff_header.group(1)
        )
        assert staff["token"] == staff_header.group(2)

        # The demo seeded one open aid request; the printed offer answers it at the provider.
        request_id = state["aid_request"]
        answer = re.search(
            r"Answer the open aid request (\S+) as staff of .* at its node (\S+), with the "
            r"header\n.*Bearer ([\w\-.]+)",
            text,
        )
        assert answer, text
        assert answer.group(1) == request_id
        provider_url, provider_token = answer.group(2), answer.group(3)
        open_cases = re.search(r"^    (query \{ aidCases.*)$", text, re.M)
        offer = re.search(r"^    (mutation \{ aidStep\(.*)$", text, re.M)
        assert open_cases, text
        assert offer, text

        def requested() -> Any:
            body = _graphql(provider_url, provider_token, open_cases.group(1))
            items = body["data"]["aidCases"]["items"]
            return next((i for i in items if i["requestId"] == request_id), None)

        case = _until(requested, 30, "the aid request did not reach the provider's node")
        offered = _graphql(
            provider_url,
            provider_token,
            offer.group(1)
            .replace("<requestId>", request_id)
            .replace("<resourceId>", case["resourceId"]),
        )
        assert "errors" not in offered, offered
        assert offered["data"]["aidStep"]["status"] == "OFFERED"

        # Community staff raise the printed flag at their node ...
        raise_flag = re.search(r"^    (mutation \{ raiseRiskFlag\(.*)$", text, re.M)
        assert raise_flag, text
        raised = _graphql(staff["graphql"], staff["token"], raise_flag.group(1))
        assert "errors" not in raised, raised
        flag_id = raised["data"]["raiseRiskFlag"]["id"]

        # ... it reaches the printed department at the hub, which moves it to resolved ...
        listed = re.search(r"^    (query \{ flags\(status: ROUTED\).*)$", text, re.M)
        assert listed, text

        def routed_flag() -> Any:
            body = _graphql(department["graphql"], department["token"], listed.group(1))
            return next(
                (e["node"] for e in body["data"]["flags"]["edges"] if e["node"]["id"] == flag_id),
                None,
            )

        version = _until(routed_flag, 30, "the flag did not reach the department")["version"]
        move = re.search(r"^    (mutation \{ transitionFlag\(.*)$", text, re.M)
        assert move, text
        steps = ["ACKNOWLEDGED", "VERIFYING", "CONFIRMED", "RESOLVED"]
        for to in steps:
            mutation = (
                move.group(1)
                .replace("<id>", flag_id)
                .replace("ACKNOWLEDGED", to)
                .replace("<version>", str(version))
            )
            moved = _graphql(department["graphql"], department["token"], mutation)
            assert "errors" not in moved, (to, moved)
            assert moved["data"]["transitionFlag"]["status"] == to
            version = moved["data"]["transitionFlag"]["version"]

        # ... and every step comes back to the node.
        at_node = re.search(r"^    (query \{ riskFlags .*)$", text, re.M)
        assert at_node, text

        def resolved_at_node() -> Any:
            body = _graphql(staff["graphql"], staff["token"], at_node.group(1))
            flag = next(
                e["node"] for e in body["data"]["riskFlags"]["edges"] if e["node"]["id"] == flag_id
            )
            return flag if flag["status"] == "RESOLVED" else None

        flag = _until(resolved_at_node, 30, "the node did not see its flag resolved")
        assert [t["status"] for t in flag["transitions"]] == ["RAISED", "ROUTED", *steps]
        assert flag["assignedTo"] == OFFICE

        # A node killed with SIGKILL is restarted; meanwhile the hub answers from the others.
        pid = int(output.wait_for(rf"starting node {KILLED} .* \(pid (\d+)\)", 1).group(1))
        os.kill(pid, signal.SIGKILL)
        output.wait_for(rf"^node {KILLED} exited \(code -9\); restarting in 2 s$", 10)
        during = _graphql(hub_graphql, office, queries[0])
        statuses = {s["source"]: s["status"] for s in during["extensions"]["sources"]}
        assert statuses[KILLED] != "ok", during
        assert {v for k, v in statuses.items() if k != KILLED} == {"ok"}, during
        new_pid = int(output.wait_for(rf"^node {KILLED} restarted \(pid (\d+)\)$", 10).group(1))
        assert new_pid != pid

        def node_back() -> Any:
            body = _graphql(hub_graphql, office, "{ sources { id status } }")
            return {s["id"]: s["status"] for s in body["data"]["sources"]}.get(KILLED) == "ok"

        _until(node_back, 60, f"the hub did not find {KILLED} ok again")

        def answers_again() -> Any:
            body = _graphql(hub_graphql, office, queries[0])
            return {s["source"]: s["status"] for s in body["extensions"]["sources"]}.get(
                KILLED
            ) == "ok"

        _until(answers_again, 60, f"{KILLED} did not answer a federated query again")
        assert demo.poll() is None, output.text
        assert "stopping the demo" not in output.text

        # SIGTERM to the demo alone (as a service manager sends it) stops every service, exit 0.
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=60)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)
            demo.wait(timeout=60)
    assert demo.returncode == 0, output.text
    assert not any(_taken(base + i) for i in range(0, 5)), "a demo service is still listening"


ROLES = ("community-staff", "duty-officer", "verifier", "viewer", "administrator")


def _person_token(hub_url: str, username: str, password: str) -> Any:
    """Sign in with PKCE at the hub's sign-in page; the access token's claims."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": "linli-web",
        "redirect_uri": f"{hub_url}/app/callback",
        "state": "demo",
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
    }
    with httpx.Client(timeout=30) as http:
        answer = http.post(
            f"{hub_url}/oauth/authorize",
            data={**params, "username": username, "password": password},
        )
        assert answer.status_code == 303, answer.text
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        token = http.post(
            f"{hub_url}/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": params["redirect_uri"],
                "client_id": "linli-web",
                "code_verifier": verifier,
            },
        )
    assert token.status_code == 200, token.text
    payload = token.json()["access_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _taken(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_demo_alerts_are_current_and_keep_their_spans(tmp_path: Path) -> None:
    from hub.demo.command import CAP_SAMPLES, current_cap_samples

    now = datetime.now(UTC)
    folder = current_cap_samples(tmp_path, now)

    def times(text: str, element: str) -> list[datetime]:
        return [datetime.fromisoformat(t) for t in re.findall(rf"<{element}>([^<]+)</", text)]

    originals = {p.name: p.read_text("utf-8") for p in CAP_SAMPLES.glob("*.xml")}
    moved = {p.name: p.read_text("utf-8") for p in folder.glob("*.xml")}
    assert moved.keys() == originals.keys()
    sent = [t for text in moved.values() for t in times(text, "sent")]
    assert max(sent) == now.replace(microsecond=0) - timedelta(minutes=5)
    offset = max(sent) - max(t for text in originals.values() for t in times(text, "sent"))
    for name, text in moved.items():
        # one offset for every time: spans (sent -> expires, references) are kept
        before = re.findall(r"\d{4}-\d\d-\d\dT[\d:]+[+-]\d\d:\d\d", originals[name])
        after = re.findall(r"\d{4}-\d\d-\d\dT[\d:]+[+-]\d\d:\d\d", text)
        assert [datetime.fromisoformat(a) for a in after] == [
            datetime.fromisoformat(b) + offset for b in before
        ]
        for expires in times(text, "expires"):
            assert expires > now  # the alert with an expiry is active when the demo starts
