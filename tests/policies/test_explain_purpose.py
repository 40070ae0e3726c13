"""`linli policy explain --purpose` takes the services' purpose list (LINLI_PURPOSES)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

LINLI = Path(sys.executable).with_name("linli")
VOLUNTEERS_IN_AN_EMERGENCY = [
    "policy", "explain", "--caller", "110105000100", "--caller-kind", "department",
    "--owner", "110105001001", "--owner-district", "110105", "--type", "Volunteer",
    "--mode", "emergency", "--level", "II",
]  # fmt: skip


def _explain(purpose: str, purposes: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real console script, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if k != "LINLI_PURPOSES"}
    env["COLUMNS"] = "200"  # one table row per field group
    if purposes is not None:
        env["LINLI_PURPOSES"] = purposes
    return subprocess.run(
        [str(LINLI), *VOLUNTEERS_IN_AN_EMERGENCY, "--purpose", purpose],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _personal(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    (row,) = [line for line in done.stdout.splitlines() if "name, phone" in line]
    return row


@pytest.mark.parametrize(
    ("purpose", "purposes", "shown"),
    [
        ("rescue", None, "shown exactly"),  # a default code
        ("", None, "hidden"),  # no purpose
        ("flood-pumping", '{"flood-pumping": "排涝 Flood pumping"}', "shown exactly"),
    ],
)
def test_a_listed_purpose_unlocks_personal_data(
    purpose: str, purposes: str | None, shown: str
) -> None:
    assert shown in _personal(_explain(purpose, purposes))


@pytest.mark.parametrize(
    ("purpose", "purposes", "allowed"),
    [
        (".", None, "evacuation, medical, relief-distribution, rescue, volunteer-dispatch,"),
        ("rescue", '{"flood-pumping": "排涝 Flood pumping"}', "use one of: flood-pumping"),
    ],
)
def test_an_unknown_purpose_is_refused(purpose: str, purposes: str | None, allowed: str) -> None:
    done = _explain(purpose, purposes)
    assert done.returncode == 2
    assert done.stdout == ""
    message = " ".join(done.stderr.replace("│", " ").split())
    assert f"Invalid value for --purpose: X-Linli-Purpose {purpose!r} is not a known purpose" in (
        message
    )
    assert allowed in message
