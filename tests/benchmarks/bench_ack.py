"""Button press to ack through the real HTTP stack: `gatekeeper serve` beside bare Bolt apps.

Run on demand (not part of the test suite): `.venv/bin/python -m tests.benchmarks.bench_ack`.
Each app gets the same signed block_actions press from 1, 20 and 100 concurrent clients, each
client pressing again as soon as it is answered, then in bursts (every client at the same
instant, 0.1 s between bursts); the figures are wall-clock times of whole HTTP
requests on loopback. For `gatekeeper serve` the CPU time it spent per press is printed too,
counting the private refusal it then delivers to the stand-in.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

from bot.domain.candidates import Candidate, parse_bundle
from bot.emulator.signing import signature
from bot.services.candidates import Champion, propose
from handlers.blocks import Action
from tests.e2e.conftest import (
    BOT_TOKEN,
    CHANNEL,
    CONFIG,
    LEAD,
    REQUESTER,
    SIGNING_SECRET,
    Bot,
    _free_port,
    serving,
)

PRESSES = {1: 300, 20: 1000, 100: 2000}
#: Bursts: every client presses at the same instant, this many times, 0.1 s apart.
BURSTS = {20: 50, 100: 20}
BURST_PAUSE_S = 0.1

BARE_ASYNC = """
from slack_bolt.async_app import AsyncApp
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from starlette.applications import Starlette
from starlette.routing import Route
import os
from slack_sdk.web.async_client import AsyncWebClient
app = AsyncApp(signing_secret=os.environ["SECRET"],
               client=AsyncWebClient(token=os.environ["TOKEN"], base_url=os.environ["API"]))
@app.action("candidate.approve")
async def approve(ack):
    await ack()
handler = AsyncSlackRequestHandler(app)
async def events(request):
    return await handler.handle(request)
web = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
"""

BARE_SYNC = """
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import SlackRequestHandler
from starlette.applications import Starlette
from starlette.routing import Route
import os
from slack_sdk import WebClient
app = App(signing_secret=os.environ["SECRET"], token_verification_enabled=False,
          client=WebClient(token=os.environ["TOKEN"], base_url=os.environ["API"]),
          process_before_response=True)
@app.action("candidate.approve")
def approve(ack):
    ack()
handler = SlackRequestHandler(app)
async def events(request):
    return await handler.handle(request)
web = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
"""


@contextmanager
def process(command: list[str], env: dict[str, str], url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as output:
        proc = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.post(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"{command} did not start:\n{log.read_text()}")
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def measure(
    url: str, body: bytes, clients: int, presses: int, burst_pause: float | None = None
) -> list[float]:
    """Seconds per request, each press freshly signed as Slack signs it.

    Each client presses again as soon as it is answered; with ``burst_pause``, all clients
    press at the same instant instead, and again ``burst_pause`` s after the last is answered.
    """
    times: list[float] = []
    lock = threading.Lock()
    per_client = presses // clients
    together = (
        threading.Barrier(clients, action=lambda: time.sleep(burst_pause))
        if burst_pause is not None
        else None
    )

    def run() -> None:
        with httpx.Client(timeout=10) as http:
            for _ in range(per_client):
                if together is not None:
                    together.wait()
                stamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": stamp,
                    "X-Slack-Signature": signature(SIGNING_SECRET, stamp, body),
                }
                start = time.perf_counter()
                response = http.post(url, content=body, headers=headers)
                elapsed = time.perf_counter() - start
                if response.status_code != 200:
                    raise SystemExit(f"{url} answered {response.status_code}: {response.text}")
                with lock:
                    times.append(elapsed)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times


def served_by(url: str) -> int:
    """The pid of this process's child `gatekeeper serve` listening at ``url``."""
    port = url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and b"serve" in command:
            return int(entry.name)
    raise SystemExit(f"no `gatekeeper serve` child of this process serves port {port}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def drain_outbox(bot: Bot, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with bot.gatekeeper.engine.connect() as connection:
            waiting = connection.scalar(
                sa.text("SELECT count(*) FROM outbox WHERE delivered_at IS NULL")
            )
        if not waiting:
            return
        time.sleep(0.5)
    raise SystemExit(f"the outbox still held {waiting} messages after {seconds} s")


def report(name: str, clients: int, times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    print(f"{name:<34} clients={clients:<3} n={len(times):<5} p50={p50:6.1f} ms  p99={p99:6.1f} ms")
    return p50, p99


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-ack-"))
    results: dict[str, dict[int, tuple[float, float]]] = {"gatekeeper serve": {}}
    bursts: dict[int, tuple[float, float]] = {}
    with serving(root, CONFIG) as bot:
        slack = bot.slack
        gatekeeper = bot.gatekeeper
        candidate = Candidate("churn-classifier", "7", "staging", "production",
                              {"accuracy": 0.93}, parse_bundle({}), requester=REQUESTER)  # fmt: skip
        propose(gatekeeper.unit_of_work, gatekeeper.policy_for, gatekeeper.notifier, candidate,
                Champion("5", {"accuracy": 0.925}), actor=REQUESTER, now=gatekeeper.now())  # fmt: skip
        card = slack.wait_for(lambda ws: [m for m in ws.messages(CHANNEL) if m.content.blocks])[0]
        # One real press, to capture exactly the body Slack sends; repeated, it is refused
        # (already voted), audited and answered privately: the path every later press takes.
        press = bot.person().click(LEAD, CHANNEL, card.ts, Action.APPROVE)
        assert press is not None
        body = press.body
        gk_url = f"{bot.url}/slack/events"
        serve = served_by(bot.url)
        for clients, presses in PRESSES.items():
            measure(gk_url, body, clients, 50)  # warm-up
            drain_outbox(bot)
            spent = cpu_seconds(serve)
            times = measure(gk_url, body, clients, presses)
            drain_outbox(bot)
            spent = cpu_seconds(serve) - spent
            results["gatekeeper serve"][clients] = report(
                "gatekeeper serve (approve)", clients, times
            )
            print(
                f"{'':<34} serve's CPU per press, refusal delivered: {spent / presses * 1000:.2f} ms"
            )
        for clients, rounds in BURSTS.items():
            drain_outbox(bot)
            bursts[clients] = report(
                "gatekeeper serve (approve), bursts", clients,
                measure(gk_url, body, clients, clients * rounds, BURST_PAUSE_S),
            )  # fmt: skip
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
        # The baselines run beside an idle bot, not one still delivering the replies above.
        drain_outbox(bot)

        for name, source in (("bare Bolt AsyncApp (ack only)", BARE_ASYNC),
                             ("bare Bolt App, sync (ack only)", BARE_SYNC)):  # fmt: skip
            module = root / f"bare_{len(results)}.py"
            module.write_text(textwrap.dedent(source), encoding="utf-8")
            bare_port = _free_port()
            bare_url = f"http://127.0.0.1:{bare_port}/slack/events"
            command = [sys.executable, "-m", "uvicorn", f"{module.stem}:web", "--app-dir", str(root),
                       "--host", "127.0.0.1", "--port", str(bare_port), "--no-access-log"]  # fmt: skip
            bare_env = {**base_env, "SECRET": SIGNING_SECRET, "TOKEN": BOT_TOKEN,
                        "API": slack.api_url}  # fmt: skip
            with process(command, bare_env, bare_url, root / f"{module.stem}.log"):
                results[name] = {}
                for clients, presses in PRESSES.items():
                    measure(bare_url, body, clients, 50)
                    results[name][clients] = report(
                        name, clients, measure(bare_url, body, clients, presses)
                    )
                for clients, rounds in BURSTS.items():
                    found = measure(bare_url, body, clients, clients * rounds, BURST_PAUSE_S)
                    report(f"{name}, bursts", clients, found)
    ours = results["gatekeeper serve"]
    bare = results["bare Bolt AsyncApp (ack only)"]
    for clients in PRESSES:
        print(f"ratio gatekeeper/bare async at {clients} clients: "
              f"p50 {ours[clients][0] / bare[clients][0]:.2f}, "
              f"p99 {ours[clients][1] / bare[clients][1]:.2f}")  # fmt: skip
    print(f"targets: p50 at 1 client below bare async Bolt's: {ours[1][0]:.1f} < {bare[1][0]:.1f} ms "
          f"{'met' if ours[1][0] < bare[1][0] else 'NOT met'}; p99 at 20 clients <= 100 ms: "
          f"{ours[20][1]:.1f} ms {'met' if ours[20][1] <= 100 else 'NOT met'} pressing as fast as "
          f"answered, {bursts[20][1]:.1f} ms {'met' if bursts[20][1] <= 100 else 'NOT met'} "
          f"in bursts of 20")  # fmt: skip


if __name__ == "__main__":
    main()
