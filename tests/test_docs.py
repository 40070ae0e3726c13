"""The README's settings tables are what `linli settings --markdown` prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def generated(service: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "settings", service, "--markdown"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    return result.stdout.strip()


@pytest.mark.parametrize("service", ["hub", "node", "adapter"])
def test_readme_lists_every_setting(service: str) -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    match = re.search(
        rf"<!-- settings:{service} -->\n(.*?)<!-- /settings:{service} -->", readme, re.S
    )
    assert match, f"README has no settings:{service} section"
    assert match.group(1).strip() == generated(service), (
        f"README settings for {service} are stale: run `python -m tests.test_docs`"
    )


def refresh() -> None:
    """Rewrite the README's settings tables."""
    path = REPO / "README.md"
    readme = path.read_text("utf-8")
    for service in ("hub", "node", "adapter"):
        readme = re.sub(
            rf"(<!-- settings:{service} -->\n).*?(<!-- /settings:{service} -->)",
            lambda m, s=service: f"{m.group(1)}{generated(s)}\n{m.group(2)}",
            readme,
            flags=re.S,
        )
    path.write_text(readme, "utf-8")


if __name__ == "__main__":
    refresh()
