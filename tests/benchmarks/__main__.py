"""Every benchmark, one after another: `.venv/bin/python -m tests.benchmarks [NAME ...]`.

NAME is a module's name without ``bench_`` (``ack``, ``webhook``, ``images``, ``model_copy``,
``digest``, ``idle``); none runs them all. Each runs in its own process, as it would alone, and
prints its figures beside its baseline from the same run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.benchmarks.machine import machine

ALL = ("ack", "webhook", "images", "model_copy", "digest", "idle")


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in ALL]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(ALL)}", file=sys.stderr)
        return 2
    print(f"machine: {machine()}", flush=True)
    failed = []
    root = Path(__file__).resolve().parents[2]
    for name in names or ALL:
        print(f"\n== bench_{name} ==", flush=True)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", f"tests.benchmarks.bench_{name}"], cwd=root)
        print(f"== bench_{name}: exit {done.returncode}, {time.monotonic() - started:.0f} s ==",
              flush=True)  # fmt: skip
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
