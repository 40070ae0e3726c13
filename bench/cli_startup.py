"""`linli --help` start-up against a bare interpreter, measured in the same run.

    python bench/cli_startup.py [--runs 15]

Prints the median and spread of wall time for `python -c pass`, `linli --help` and
`linli clients --help` (which loads the hub's auth part), and their ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from bench._harness import BIN

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "linli --help": [str(BIN / "linli"), "--help"],
    "linli clients --help": [str(BIN / "linli"), "clients", "--help"],
}


def _seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    for command in CASES.values():
        _seconds(command)  # warm the file cache
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(runs):  # interleaved, so machine noise hits every case alike
        for name, command in CASES.items():
            times[name].append(_seconds(command))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':24} {'median ms':>10} {'min':>7} {'max':>7} {'× bare':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:24} {median * 1000:10.0f} {min(values) * 1000:7.0f}"
            f" {max(values) * 1000:7.0f} {median / base:8.1f}"
        )


if __name__ == "__main__":
    main()
