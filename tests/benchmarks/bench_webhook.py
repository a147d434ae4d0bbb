"""MLflow webhook received to candidate card posted: `gatekeeper serve` beside the bare floor.

Run on demand (not part of the test suite): `.venv/bin/python -m tests.benchmarks.bench_webhook`.
Two `mlflow server`s on loopback (dev, where versions are registered with bundle tags, and
staging, asked for the champion) and `gatekeeper serve` (SQLite) posting to the Slack stand-in.
Each delivery is `model_version.created`, signed as MLflow signs it, and POSTed to
/webhooks/mlflow one at a time; the clock runs from just before the POST until the card is in
the stand-in's channel (woken by the stand-in's own change notification, not by polling).
The baseline, in the same run and process: what any implementation must do for one delivery,
done from a plain script: MLflow's `get_model_version` on dev and a `chat.postMessage` of the
same card's blocks to the stand-in. The 202 alone (the delivery's HTTP round trip, stored
before answering) is reported beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from mlflow.tracking import MlflowClient
from mlflow.webhooks.delivery import _generate_hmac_signature
from slack_sdk import WebClient

from bot.demo.services import start_mlflow
from tests.benchmarks.machine import machine
from tests.e2e.conftest import BOT_TOKEN, CHANNEL, SRE, TEAM, WEBHOOK_SECRET, Bot, serving
from tests.e2e.test_mlflow_webhooks import created, register
from tests.mlflow_fixtures import MLFLOW_START_SECONDS

WARM_UP = 3


def gatekeeper_yaml(dev: str, staging: str, model: str) -> str:
    return f"""
environments:
  dev: {{mlflow: "{dev}"}}
  staging: {{mlflow: "{staging}"}}
promotion_path: [dev, staging]
models:
  {model}: {{channel: {CHANNEL}}}
policies:
  staging: {{gates: ["accuracy >= 0.90"], approvals: 1, approvers: [{SRE}]}}
slack: {{team_ids: [{TEAM}]}}
"""


def deliver(bot: Bot, http: httpx.Client, model: str, version: str) -> tuple[float, float, Any]:
    """Seconds to the 202 and to the card, and the card, for one delivery signed as MLflow
    signs it (by its own function, as tests/e2e/test_mlflow_webhooks.py's ``post``)."""
    body = created(model, version)
    delivery_id, stamp = str(uuid.uuid4()), str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": _generate_hmac_signature(
            WEBHOOK_SECRET, delivery_id, stamp, body.decode()
        ),
    }
    before = len(bot.slack.workspace.messages(CHANNEL))
    started = time.perf_counter()
    answer = http.post(f"{bot.url}/webhooks/mlflow?environment=dev", content=body, headers=headers)
    accepted = time.perf_counter() - started
    if answer.status_code != 202:
        raise SystemExit(f"the delivery was answered {answer.status_code}: {answer.text}")
    try:
        [card] = bot.slack.wait_for(lambda ws: ws.messages(CHANNEL)[before:], timeout=30)
    except (TimeoutError, ValueError):
        raise SystemExit(f"no single card for v{version}:\n{bot.log.read_text()[-3000:]}") from None
    posted = time.perf_counter() - started
    if f"v{version}" not in json.dumps(card.content.blocks):
        raise SystemExit(f"the message posted is not v{version}'s card: {card.content.blocks}")
    return accepted, posted, card


def floor(dev: MlflowClient, slack: WebClient, model: str, version: str, card: Any) -> float:
    """One delivery's unavoidable work from a plain script: read the version, post its card."""
    started = time.perf_counter()
    dev.get_model_version(model, version)
    slack.chat_postMessage(channel=CHANNEL, text=card.content.text, blocks=card.content.blocks)
    return time.perf_counter() - started


def percentiles(times: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds (p99 of 30 is the slowest but none)."""
    ordered = sorted(times)
    index = max(int(len(ordered) * 0.99) - 1, 0)
    return statistics.median(ordered) * 1000, ordered[index] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=30, help="measured deliveries")
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    model = f"bench-{uuid.uuid4().hex[:8]}"
    servers = [
        start_mlflow("dev", root / "mlflow-dev"),
        start_mlflow("staging", root / "mlflow-staging"),
    ]
    try:
        for server in servers:
            server.wait_until_up(MLFLOW_START_SECONDS)
        dev_url, staging_url = (server.url for server in servers)
        dev = MlflowClient(tracking_uri=dev_url, registry_uri=dev_url)
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        with contextlib.redirect_stdout(io.StringIO()):  # MLflow prints a link to every run
            versions = [register(dev, model) for _ in range(WARM_UP + options.deliveries)]
        ours: dict[str, list[float]] = {"202": [], "card": []}
        bare: list[float] = []
        (root / "serve").mkdir()
        with (
            serving(root / "serve", gatekeeper_yaml(dev_url, staging_url, model)) as bot,
            httpx.Client(timeout=10) as http,
        ):
            for index, version in enumerate(versions):
                accepted, posted, card = deliver(bot, http, model, version)
                time.sleep(0.2)  # the card's own follow-ups settle: deliveries arrive one by one
                if index >= WARM_UP:
                    ours["202"].append(accepted)
                    ours["card"].append(posted)
            web = WebClient(token=BOT_TOKEN, base_url=bot.slack.api_url)
            for index, version in enumerate(versions):
                seconds = floor(dev, web, model, version, card)
                if index >= WARM_UP:
                    bare.append(seconds)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)

    card_p50, card_p99 = percentiles(ours["card"])
    ack_p50, ack_p99 = percentiles(ours["202"])
    bare_p50, bare_p99 = percentiles(bare)
    print(f"\nMLflow webhook received -> card posted, {options.deliveries} deliveries one by one")
    print(f"machine: {machine()}")
    print(f"{'':<52} {'p50':>9} {'p99':>9}")
    rows = [
        ("gatekeeper serve: POST -> card in the channel", card_p50, card_p99),
        ("gatekeeper serve: POST -> 202 (stored, not acted on)", ack_p50, ack_p99),
        ("baseline: get_model_version + chat.postMessage", bare_p50, bare_p99),
    ]
    for name, p50, p99 in rows:
        print(f"{name:<52} {p50:6.1f} ms {p99:6.1f} ms")
    print(f"ratio card / baseline: p50 {card_p50 / bare_p50:.1f}x, p99 {card_p99 / bare_p99:.1f}x")
    verdict = "met" if card_p50 <= 1000 else "MISSED"
    print(f"target p50 <= 1 s: {verdict} ({card_p50:.0f} ms)")


if __name__ == "__main__":
    main()
