"""`/promote <model> <version>` and `/promote plan` against a real MLflow server."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from bot.domain.promotion import CandidateState
from tests.e2e.conftest import CHANNEL, LEAD, SRE, TEAM, Bot

DIGEST = "sha256:" + "cd" * 32
SNAPSHOT_SHA = "ef" * 32


@pytest.fixture
def gatekeeper_yaml(mlflow_server: str) -> str:
    """One shared MLflow server, each environment's models under its own name."""
    return f"""
environments:
  dev: {{mlflow: "{mlflow_server}", model_name: "e2e-dev.{{model}}",
         images: "127.0.0.1:5000/dev", snapshots: "file:///srv/dev"}}
  staging: {{mlflow: "{mlflow_server}", model_name: "e2e-stg.{{model}}",
             images: "127.0.0.1:5000/stg", snapshots: "file:///srv/stg", kfp: local}}
promotion_path: [dev, staging]
models:
  churn-classifier: {{channel: {CHANNEL}}}
policies:
  staging: {{gates: ["accuracy >= 0.90", "accuracy >= champion - 0.005"], approvals: 1,
             approvers: [{SRE}]}}
slack: {{team_ids: [{TEAM}]}}
"""


@pytest.fixture
def dev_version(mlflow_client: MlflowClient) -> str:
    """A version in dev's registry with metrics and a bundle, as a pipeline would leave it."""
    name = "e2e-dev.churn-classifier"
    if not mlflow_client.search_registered_models(filter_string=f"name = '{name}'"):
        mlflow_client.create_registered_model(name)
    experiment = mlflow_client.get_experiment_by_name("e2e") or None
    experiment_id = (
        experiment.experiment_id if experiment else mlflow_client.create_experiment("e2e")
    )
    run = mlflow_client.create_run(experiment_id)
    mlflow_client.log_metric(run.info.run_id, "accuracy", 0.94)
    mlflow_client.set_terminated(run.info.run_id)
    version = mlflow_client.create_model_version(
        name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
        tags={
            "gatekeeper.image.serving": f"127.0.0.1:5000/dev/churn-serving@{DIGEST}",
            "gatekeeper.snapshot.train": f"file:///srv/dev/train.parquet#sha256={SNAPSHOT_SHA}",
            "gatekeeper.pipeline": "pipeline/churn.yaml",
        },
    )  # fmt: skip
    return str(version.version)


def _said(bot: Bot, user: str, contains: str) -> str:
    try:
        found = bot.slack.wait_for(
            lambda ws: [e for e in ws.ephemerals(CHANNEL, user) if contains in e.content.text],
            timeout=15,
        )
    except TimeoutError:
        told = [e.content.text for e in bot.slack.workspace.ephemerals(CHANNEL, user)]
        raise AssertionError(f"{user} was never told {contains!r}; was told {told}") from None
    return str(found[0].content.text)


def test_a_request_reads_mlflow_and_posts_a_card(bot: Bot, dev_version: str) -> None:
    receipt = bot.person().slash_command(
        LEAD, "/promote", f"churn-classifier {dev_version} to staging", channel=CHANNEL
    )
    assert "Looking up churn-classifier" in receipt.response_body.decode()
    told = _said(bot, LEAD, "Candidate #")
    assert f"churn-classifier v{dev_version} `dev` → `staging` is pending" in told
    card = bot.slack.wait_for(lambda ws: [m for m in ws.messages(CHANNEL) if m.content.blocks])[0]
    blocks = json.dumps(card.content.blocks)
    assert "accuracy 0.94" in blocks
    assert "cdcdcdcdcdcd" in blocks  # the image's short digest


def test_a_plan_lists_every_action_and_changes_nothing(bot: Bot, dev_version: str) -> None:
    bot.person().slash_command(
        LEAD, "/promote", f"plan churn-classifier {dev_version} to staging", channel=CHANNEL
    )
    plan = _said(bot, LEAD, "Plan:")
    assert "dry run" in plan
    assert f"127.0.0.1:5000/dev/churn-serving@{DIGEST} → 127.0.0.1:5000/stg/churn-serving" in plan
    assert "file:///srv/dev/train.parquet → file:///srv/stg/train.parquet" in plan
    assert "register pipeline/churn.yaml with kfp.local" in plan
    assert "move e2e-stg.churn-classifier@champion" in plan
    with bot.gatekeeper.unit_of_work() as uow:
        assert list(uow.candidates.in_states(frozenset(CandidateState))) == []


def test_an_unknown_version_is_told_plainly(bot: Bot, dev_version: str) -> None:
    bot.person().slash_command(LEAD, "/promote", "churn-classifier 999 to staging", channel=CHANNEL)
    told = _said(bot, LEAD, "999")
    assert "has no version 999" in told
    assert "Traceback" not in told
