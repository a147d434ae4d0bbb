"""Start-up to ready, and memory when idle: `gatekeeper serve` and `worker` beside bare floors.

Run on demand (not part of the test suite): `.venv/bin/python -m tests.benchmarks.bench_idle`.
Each process is started as an operator starts it (a freshly migrated SQLite database, the
Slack stand-in as SLACK_API_URL, gatekeeper.yaml naming MLflow servers it never needs to
reach), timed from `Popen` until it is ready, then left idle and measured: VmRSS of the process
and its children from /proc, and the CPU it spent idling (utime + stime). Ready means:
- `gatekeeper serve`: GET /readyz answers 200 (the database and Slack's auth.test answered);
- `gatekeeper worker` (no HTTP port): its scheduler holds the lock (the `scheduler_lease` row
  names its pid) and it has printed "gatekeeper worker: promoting, scheduling and delivering";
- a bare Bolt AsyncApp served by uvicorn (bench_ack's): its port answers any HTTP request;
- `python -c 'import mlflow, kfp, slack_bolt, sqlalchemy'`, the import floor: it has printed a
  line after the imports (it then sleeps, so that its memory can be read the same way).
Kinds take turns, each started `--repeat` times; the figures are medians.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bot.emulator import SlackEmulator
from bot.store.migrations import upgrade
from tests.benchmarks.bench_ack import BARE_ASYNC
from tests.benchmarks.machine import machine
from tests.e2e.conftest import BOT_TOKEN, CONFIG, SIGNING_SECRET, TEAM, _free_port

WORKER_LINE = "gatekeeper worker: promoting, scheduling and delivering"
IMPORTS = "import mlflow, kfp, slack_bolt, sqlalchemy"
TICKS = os.sysconf("SC_CLK_TCK")

SERVE = "gatekeeper serve"
WORKER = "gatekeeper worker"
BOLT = "bare Bolt AsyncApp (uvicorn)"
FLOOR = f"python -c '{IMPORTS}'"


@dataclass(frozen=True)
class Start:
    ready_s: float
    rss_mib: float
    idle_cpu: float  # fraction of one core while idle


@dataclass(frozen=True)
class Launch:
    """How to start one kind of process, and how to tell it is ready."""

    command: list[str]
    env: dict[str, str]
    ready: Callable[[subprocess.Popen[bytes], Path], bool]


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (state first)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rsplit(")", 1)[1].split()


def tree(pid: int) -> list[int]:
    """The process and every descendant still running."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parents.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue += parents.get(current, [])
    return found


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = _stat(pid)
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / TICKS


def start(launch: Launch, folder: Path, idle_s: float) -> Start:
    log = folder / "output.log"
    with log.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            launch.command, env=launch.env, stdout=output, stderr=subprocess.STDOUT,
            cwd=folder, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = started + 60
        while not launch.ready(process, log):
            if process.poll() is not None or time.perf_counter() > deadline:
                raise SystemExit(f"{launch.command} was not ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.01)
        ready_s = time.perf_counter() - started
        before = cpu_seconds(tree(process.pid))
        time.sleep(idle_s)
        pids = tree(process.pid)
        idle_cpu = (cpu_seconds(pids) - before) / idle_s
        return Start(ready_s, rss_kib(pids) / 1024, idle_cpu)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def answers(http: httpx.Client, url: str, want: int | None = None) -> bool:
    try:
        status = http.get(url).status_code
    except httpx.TransportError:
        return False
    return want is None or status == want


def printed(log: Path, line: str) -> bool:
    return line in log.read_text(errors="replace")


def holds_lease(database: Path, pid: int) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=1)) as connection:
            row = connection.execute(
                "SELECT holder FROM scheduler_lease WHERE name = 'scheduler'"
            ).fetchone()
    except sqlite3.Error:
        return False
    return row is not None and f":{pid}:" in row[0]


def launches(kind: str, folder: Path, api_url: str, http: httpx.Client) -> Launch:
    """A fresh folder, database and port for one start of ``kind``."""
    port = _free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    if kind == FLOOR:
        code = f"{IMPORTS}; print('imported', flush=True); import time; time.sleep(3600)"
        return Launch([sys.executable, "-c", code], base, lambda _, log: printed(log, "imported\n"))
    if kind == BOLT:
        (folder / "bare.py").write_text(textwrap.dedent(BARE_ASYNC), encoding="utf-8")
        command = [sys.executable, "-m", "uvicorn", "bare:web", "--app-dir", str(folder),
                   "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]  # fmt: skip
        env = {**base, "SECRET": SIGNING_SECRET, "TOKEN": BOT_TOKEN, "API": api_url}
        return Launch(command, env, lambda _, __: answers(http, f"http://127.0.0.1:{port}/readyz"))
    database = folder / "gatekeeper.db"
    upgrade(f"sqlite:///{database}")
    config = folder / "gatekeeper.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    env = {
        **base,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": api_url,
        "DATABASE_URL": f"sqlite:///{database}",
        "GATEKEEPER_CONFIG": str(config),
        "PORT": str(port),
    }
    gatekeeper = str(Path(sys.executable).with_name("gatekeeper"))
    if kind == SERVE:
        url = f"http://127.0.0.1:{port}/readyz"
        return Launch([gatekeeper, "serve", "--host", "127.0.0.1"], env,
                      lambda _, __: answers(http, url, 200))  # fmt: skip

    def worker_ready(process: subprocess.Popen[bytes], log: Path) -> bool:
        return printed(log, WORKER_LINE) and holds_lease(database, process.pid)

    return Launch([gatekeeper, "worker"], env, worker_ready)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="starts of each kind (median)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds idle before reading")
    options = parser.parse_args()
    kinds = (SERVE, BOLT, WORKER, FLOOR)
    results: dict[str, list[Start]] = {kind: [] for kind in kinds}
    root = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    try:
        with (
            SlackEmulator(
                team_id=TEAM, bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET
            ) as slack,
            httpx.Client(timeout=1) as http,  # one client: the poller's own cost stays small
        ):
            for attempt in range(options.repeat):
                for index, kind in enumerate(kinds):
                    folder = root / f"{attempt}-{index}"
                    folder.mkdir()
                    launch = launches(kind, folder, slack.api_url, http)
                    results[kind].append(start(launch, folder, options.idle))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def median(kind: str, figure: Callable[[Start], float]) -> float:
        return statistics.median(figure(run) for run in results[kind])

    print(f"\nstart-up to ready and idle memory, median of {options.repeat} starts")
    print(f"machine: {machine()}")
    print(f"{'process':<56} {'ready':>8} {'idle RSS':>10} {'idle CPU':>9}")
    for kind in kinds:
        ready, rss = median(kind, lambda r: r.ready_s), median(kind, lambda r: r.rss_mib)
        cpu = median(kind, lambda r: r.idle_cpu)
        print(f"{kind:<56} {ready:6.2f} s {rss:6.0f} MiB {cpu * 100:7.1f} %")
    for ours, base in ((SERVE, BOLT), (SERVE, FLOOR), (WORKER, FLOOR)):
        ready = median(ours, lambda r: r.ready_s) / median(base, lambda r: r.ready_s)
        rss = median(ours, lambda r: r.rss_mib) / median(base, lambda r: r.rss_mib)
        print(f"ratio {ours} / {base}: ready {ready:.2f}x, idle RSS {rss:.2f}x")
    print(
        f"idle: after {options.idle:.0f} s; RSS of the process and its children (VmRSS); "
        "CPU: share of one core spent while idle"
    )


if __name__ == "__main__":
    main()
