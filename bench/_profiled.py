"""Run a Python script under cProfile, timed by the process's CPU clock, not the wall clock.

Run: ``python bench/_profiled.py OUT.prof SCRIPT [ARGS ...]``. On a loaded machine a
wall-clock profile charges whatever runs when the process is preempted; CPU time
charges only the work. An async server's waits then cost nothing, as they should.
The profile is written when the script ends, ``KeyboardInterrupt`` (SIGINT) included.
"""

from __future__ import annotations

import contextlib
import cProfile
import runpy
import sys
import time


def main() -> None:
    out, script, *args = sys.argv[1:]
    sys.argv = [script, *args]
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        with contextlib.suppress(SystemExit, KeyboardInterrupt):
            runpy.run_path(script, run_name="__main__")
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    main()
