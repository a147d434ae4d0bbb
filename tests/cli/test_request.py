"""`gatekeeper request`, run as a script runs it: a real process, a real MLflow server, the Slack
stand-in, and a database `gatekeeper serve` would share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from bot.emulator import SlackEmulator
from bot.store.database import make_engine, make_session_factory
from bot.store.migrations import upgrade
from bot.store.models import CandidateRow

BOT_TOKEN = "xoxb-cli-token"
CHANNEL = "C0ML00001"
REQUESTER = "U0DS00001"
GATEKEEPER = Path(sys.executable).with_name("gatekeeper")


def config_text(dev_mlflow: str, staging_mlflow: str, prefix: str) -> str:
    return f"""
environments:
  dev: {{mlflow: "{dev_mlflow}", model_name: "{prefix}-dev.{{model}}"}}
  staging: {{mlflow: "{staging_mlflow}", model_name: "{prefix}-stg.{{model}}"}}
promotion_path: [dev, staging]
models:
  churn-classifier: {{channel: {CHANNEL}}}
policies:
  staging: {{gates: ["accuracy >= 0.90"], approvals: 1, approvers: [U0SRE0001]}}
"""


@dataclass
class Setup:
    slack: SlackEmulator
    env: dict[str, str]
    database: str
    versions: dict[str, str]  # accuracy label → dev version number

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(GATEKEEPER), "request", *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def states(self) -> list[tuple[str, str]]:
        engine = make_engine(self.database)
        try:
            with make_session_factory(engine)() as session:
                rows = session.query(CandidateRow).order_by(CandidateRow.id)
                return [(row.version, row.state) for row in rows]
        finally:
            engine.dispose()


def register(client: MlflowClient, name: str, accuracy: float) -> str:
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    experiment = client.get_experiment_by_name("cli-request")
    run = client.create_run(
        experiment.experiment_id if experiment else client.create_experiment("cli-request")
    )
    client.log_metric(run.info.run_id, "accuracy", accuracy)
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(
        name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    return str(version.version)


@pytest.fixture
def setup(tmp_path: Path, mlflow_server: str, mlflow_client: MlflowClient) -> Iterator[Setup]:
    prefix = f"cli{uuid.uuid4().hex[:6]}"
    versions = {
        "good": register(mlflow_client, f"{prefix}-dev.churn-classifier", 0.95),
        "poor": register(mlflow_client, f"{prefix}-dev.churn-classifier", 0.80),
    }
    config = tmp_path / "gatekeeper.yaml"
    config.write_text(config_text(mlflow_server, mlflow_server, prefix), encoding="utf-8")
    database = f"sqlite:///{tmp_path / 'gatekeeper.db'}"
    upgrade(database)
    with SlackEmulator(bot_token=BOT_TOKEN) as slack:
        slack.workspace.add_user(REQUESTER, "dana")
        slack.workspace.add_channel(CHANNEL, "ml-models")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GATEKEEPER_"))}
        env.update(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_API_URL=slack.api_url,
            DATABASE_URL=database,
            GATEKEEPER_CONFIG=str(config),
        )
        yield Setup(slack, env, database, versions)


def cards(slack: SlackEmulator) -> list[str]:
    return [json.dumps(m.content.blocks) for m in slack.workspace.messages(CHANNEL)]


def test_a_request_proposes_prints_and_posts_the_card(setup: Setup) -> None:
    version = setup.versions["good"]
    result = setup.run("churn-classifier", version, "--to", "staging", "--requester", REQUESTER)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"candidate #1: churn-classifier v{version} dev → staging is pending"
    assert lines[-1] == f"card posted in {CHANNEL}"
    assert setup.states() == [(version, "pending")]
    [card] = cards(setup.slack)
    assert "accuracy 0.95" in card


def test_json_names_the_state_and_the_reasons(setup: Setup) -> None:
    version = setup.versions["poor"]
    result = setup.run("churn-classifier", version, "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["candidate"] == 1
    assert (answer["version"], answer["source"], answer["target"]) == (version, "dev", "staging")
    assert answer["state"] == "blocked"
    assert any("accuracy" in reason and "0.9" in reason for reason in answer["reasons"])
    assert (answer["channel"], answer["card"], answer["card_detail"]) == (CHANNEL, "posted", None)
    assert setup.states() == [(version, "blocked")]


def test_refusals_are_one_line_exit_1_and_change_nothing(setup: Setup) -> None:
    version = setup.versions["good"]
    assert setup.run("churn-classifier", version).returncode == 0

    refusals = {
        "already": setup.run("churn-classifier", version),
        "no version": setup.run("churn-classifier", "999"),
        "no model": setup.run("fraud-detector", "1"),
        "no target": setup.run("churn-classifier", version, "--to", "production"),
    }
    for case, result in refusals.items():
        assert result.returncode == 1, (case, result.stdout, result.stderr)
        assert result.stdout == ""
        assert len(result.stderr.splitlines()) == 1, (case, result.stderr)
        assert result.stderr.startswith("error: "), (case, result.stderr)
    assert "is already a candidate for staging" in refusals["already"].stderr
    assert "has no version 999" in refusals["no version"].stderr
    assert "does not promote 'fraud-detector'" in refusals["no model"].stderr
    assert "'production' is not on the promotion path" in refusals["no target"].stderr
    assert setup.states() == [(version, "pending")]
    assert len(cards(setup.slack)) == 1


def test_mlflow_unreachable_is_a_refusal(
    setup: Setup, tmp_path: Path, mlflow_server: str, closed_port: int
) -> None:
    config = tmp_path / "unreachable.yaml"
    config.write_text(
        config_text(f"http://127.0.0.1:{closed_port}", mlflow_server, "cliunreach"),
        encoding="utf-8",
    )
    result = setup.run("churn-classifier", "1", "--json", GATEKEEPER_CONFIG=str(config))
    assert result.returncode == 1
    assert f"127.0.0.1:{closed_port}" in json.loads(result.stdout)["error"]
    assert "Traceback" not in result.stderr
    assert setup.states() == []


def test_slack_unreachable_leaves_the_card_queued_without_hanging(
    setup: Setup, closed_port: int
) -> None:
    version = setup.versions["good"]
    started = time.monotonic()
    result = setup.run(
        "churn-classifier", version, "--wait", "5",
        SLACK_API_URL=f"http://127.0.0.1:{closed_port}/api/",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    assert result.stdout.splitlines()[-1] == (
        f"card queued for {CHANNEL}: Slack could not be reached (URLError)"
    )
    assert setup.states() == [(version, "pending")]
    assert cards(setup.slack) == []


def test_usage_errors_exit_2(setup: Setup) -> None:
    bad_requester = setup.run("churn-classifier", "1", "--requester", "@dana")
    assert bad_requester.returncode == 2
    assert "'@dana' is not a Slack user ID" in bad_requester.stderr
    assert setup.run("churn-classifier").returncode == 2
    no_settings = setup.run("churn-classifier", "1", SLACK_API_URL="slack.example.com")
    assert no_settings.returncode == 2, no_settings.stderr
    assert "must be an http(s) URL" in no_settings.stderr
    assert setup.states() == []
