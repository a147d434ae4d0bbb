"""dev → staging for fault tests, every piece real: how it is set up, arranged and read back."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient
from sqlalchemy import Engine

from bot.adapters.mlflow_copy import MlflowCopier
from bot.adapters.mlflow_registry import MlflowRegistry
from bot.config import GatekeeperConfig, load_config
from bot.domain.promotion import CandidateState, PromotionStep
from bot.emulator import SlackEmulator
from bot.emulator.workspace import Workspace
from bot.services.requests import Requests, Wanted
from bot.store.database import make_session_factory
from bot.store.models import OutboxRow, PromotionRow, PromotionStepRow
from bot.store.repositories import UnitOfWork
from handlers.notifier import SlackNotifier
from tests.faults.processes import MlflowProcess
from tests.oci_fixtures import Pusher, RunningRegistry, layer

SRE = "U0SRE0001"
TEAM, CHANNEL, BOT_TOKEN = "T0GATEKPR", "C0ML00001", "xoxb-faults-token"
MODEL, ALIAS = "churn-classifier", "champion"
MB = 1024 * 1024


@dataclass
class World:
    """One test's dev and staging: names unique to it on servers the module shares."""

    tag: str
    root: Path
    config: GatekeeperConfig
    #: The worker's environment, as an operator would set it.
    env: dict[str, str]
    dev_mlflow: str
    staging_mlflow: MlflowProcess
    source: RunningRegistry
    target: RunningRegistry
    database: Engine
    slack: SlackEmulator

    @property
    def dev(self) -> MlflowClient:
        return MlflowClient(self.dev_mlflow, self.dev_mlflow)

    @property
    def stg(self) -> MlflowClient:
        return MlflowClient(self.staging_mlflow.url, self.staging_mlflow.url)

    @property
    def dev_name(self) -> str:
        return f"{self.tag}-dev.{MODEL}"

    @property
    def stg_name(self) -> str:
        return f"{self.tag}-stg.{MODEL}"

    @property
    def dev_repository(self) -> str:
        return f"{self.tag}dev/churn-serving"

    @property
    def stg_repository(self) -> str:
        return f"{self.tag}stg/churn-serving"

    @property
    def dev_store(self) -> Path:
        return self.root / "snapshots-dev"

    @property
    def stg_store(self) -> Path:
        return self.root / "snapshots-stg"

    @property
    def worker_tmp(self) -> Path:
        """The worker's TMPDIR: where it carries artifacts between MLflow servers."""
        return self.root / "worker-tmp"

    def uow(self) -> UnitOfWork:
        return UnitOfWork(make_session_factory(self.database))


def make_world(
    root: Path, database_url: str, database: Engine, dev_mlflow: str,
    staging_mlflow: MlflowProcess, source: RunningRegistry, target: RunningRegistry,
    slack: SlackEmulator,
) -> World:  # fmt: skip
    """Write gatekeeper.yaml for dev (images in ``source``) and staging (images in ``target``)."""
    tag = uuid.uuid4().hex[:6]
    config = root / "gatekeeper.yaml"
    config.write_text(f"""
environments:
  dev: {{mlflow: "{dev_mlflow}", model_name: "{tag}-dev.{{model}}",
         images: "{source.host}/{tag}dev", snapshots: "{(root / "snapshots-dev").as_uri()}"}}
  staging: {{mlflow: "{staging_mlflow.url}", model_name: "{tag}-stg.{{model}}",
             images: "{target.host}/{tag}stg", snapshots: "{(root / "snapshots-stg").as_uri()}"}}
promotion_path: [dev, staging]
models:
  {MODEL}: {{channel: {CHANNEL}, champion_alias: {ALIAS}}}
policies:
  staging: {{gates: ["accuracy >= 0.90", "accuracy >= champion - 0.005"], approvals: 0}}
""")  # fmt: skip
    (root / "worker-tmp").mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GATEKEEPER_"))},
        "TMPDIR": str(root / "worker-tmp"),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": database_url,
        "GATEKEEPER_CONFIG": str(config),
        "PYTHONUNBUFFERED": "1",
    }
    return World(tag, root, load_config(config), env, dev_mlflow, staging_mlflow, source, target,
                 database, slack)  # fmt: skip


@dataclass(frozen=True)
class Sizes:
    """How big each piece of the bundle is: big ones make their copy step last long enough."""

    image: int = 4096
    snapshot: int = 4096
    artifact: int = 4096


@dataclass(frozen=True)
class Arranged:
    """A dev version with its bundle, and its candidate for staging, approved by policy."""

    candidate_id: int
    version: str
    digest: str
    snapshot_sha256: str
    #: The snapshot's path under each environment's store.
    snapshot: str
    #: The version's one artifact (a file name) and its sha256.
    weights: str
    weights_sha256: str


def arrange(world: World, sizes: Sizes) -> Arranged:
    """Push the image, write the snapshot, register the dev version, request it for staging."""
    [arranged] = arrange_many(world, [sizes])
    return arranged


def arrange_many(world: World, sizes: Sequence[Sizes]) -> list[Arranged]:
    """A dev version per entry of ``sizes``, each with a bundle of its own (image, snapshot,
    weights), requested for staging in that order: the oldest candidate comes first."""
    client = world.dev
    client.create_registered_model(world.dev_name)
    experiment = client.create_experiment(f"faults-{world.tag}")
    config = world.config
    registries = {
        n: MlflowRegistry(n, s.mlflow, s.model_name) for n, s in config.environments.items()
    }
    notifier = SlackNotifier(lambda m: config.model(m).channel, config.policy_for)
    requests = Requests(config, registries, world.uow, notifier)
    return [_arrange_one(world, requests, experiment, n, s) for n, s in enumerate(sizes)]


def _arrange_one(
    world: World, requests: Requests, experiment: str, n: int, sizes: Sizes
) -> Arranged:
    # The first keeps the names single-promotion tests (and their kill moments) look for.
    suffix = "" if n == 0 else f"-{n}"
    pusher = Pusher(world.source.url)
    try:
        if sizes.image > MB:
            packed = world.root / f"layer{suffix}.tar.gz"
            image = pusher.large_image(world.dev_repository, packed, sizes.image)
            packed.unlink()
        else:
            image = pusher.image(world.dev_repository, [layer(sizes.image, world.tag + suffix)])
    finally:
        pusher.close()
    relative = f"train/2026-11{suffix}.csv"
    snapshot = world.dev_store / relative
    snapshot_sha256 = fill(snapshot, sizes.snapshot)
    bundle = {
        "gatekeeper.image.serving": f"{world.source.host}/{image.repository}@{image.digest}",
        "gatekeeper.snapshot.train": f"{snapshot.as_uri()}#sha256={snapshot_sha256}",
    }
    weights = world.root / f"model{suffix}" / f"weights-{world.tag}{suffix}.bin"
    weights_sha256 = fill(weights, sizes.artifact)
    client = world.dev
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "accuracy", 0.93)
    client.log_artifacts(run.info.run_id, str(weights.parent), "model")
    client.set_terminated(run.info.run_id)
    version = str(
        client.create_model_version(world.dev_name, f"{run.info.artifact_uri}/model",
                                    run_id=run.info.run_id, tags=bundle).version
    )  # fmt: skip
    candidate = requests.request(Wanted(MODEL, version, None, "staging"), SRE, SRE,
                                 datetime.now(UTC))  # fmt: skip
    assert state(world, candidate) is CandidateState.APPROVED
    return Arranged(candidate, version, image.digest, snapshot_sha256, relative, weights.name,
                    weights_sha256)  # fmt: skip


def fill(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; their sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with path.open("wb") as output:
        for start in range(0, size, 8 * MB):
            block = os.urandom(min(8 * MB, size - start))
            digest.update(block)
            output.write(block)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(8 * MB):
            digest.update(block)
    return digest.hexdigest()


def any_bytes(paths: Iterable[Path]) -> bool:
    """Whether any of the files holds something: a copy has begun to arrive."""
    with contextlib.suppress(FileNotFoundError):  # a partial file renamed while we look
        return any(path.stat().st_size > 0 for path in paths)
    return False


# --- read back ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepRow:
    status: str
    attempts: int
    details: dict[str, Any]


def steps(world: World, candidate_id: int) -> dict[PromotionStep, StepRow]:
    """The candidate's promotion steps as the database holds them now."""
    with world.uow().reading() as uow:
        rows = uow.session.scalars(
            sa.select(PromotionStepRow)
            .join(PromotionRow, PromotionRow.id == PromotionStepRow.promotion_id)
            .where(PromotionRow.candidate_id == candidate_id, PromotionRow.kind == "promote")
        )
        return {PromotionStep(r.step): StepRow(r.status, r.attempts, dict(r.details)) for r in rows}


def state(world: World, candidate_id: int) -> CandidateState:
    with world.uow().reading() as uow:
        return CandidateState(uow.candidates.get(candidate_id).state)


def promotion_of(uow: UnitOfWork, candidate_id: int) -> PromotionRow:
    """The candidate's one promotion (more than one fails the test)."""
    return uow.session.scalars(
        sa.select(PromotionRow).where(PromotionRow.candidate_id == candidate_id)
    ).one()


def champion(world: World) -> str | None:
    """The version staging's champion alias points at, if it is set."""
    return MlflowCopier().current_alias(world.staging_mlflow.url, world.stg_name, ALIAS)


def artifacts(uri: str, name: str, version: str) -> dict[str, int]:
    """Every file of a version's artifacts, with its size."""
    client = MlflowClient(uri, uri)
    repository = get_artifact_repository(
        client.get_model_version_download_uri(name, version), tracking_uri=uri, registry_uri=uri
    )

    def walk(path: str) -> Iterator[tuple[str, int]]:
        for info in repository.list_artifacts(path):
            if info.is_dir:
                yield from walk(info.path)
            else:
                yield info.path, int(info.file_size or 0)

    return dict(walk(""))


def artifact_sha256(uri: str, name: str, version: str, path: str) -> str:
    """The sha256 of one file of a version's artifacts, as its MLflow server serves it."""
    client = MlflowClient(uri, uri)
    repository = get_artifact_repository(
        client.get_model_version_download_uri(name, version), tracking_uri=uri, registry_uri=uri
    )
    with tempfile.TemporaryDirectory() as work:
        return sha256(Path(repository.download_artifacts(path, dst_path=work)))


def thread_lines(workspace: Workspace, contains: str) -> list[str]:
    """Lines delivered to any thread of the channel that hold ``contains``."""
    return [
        reply.text
        for message in workspace.messages(CHANNEL)
        for reply in workspace.thread(CHANNEL, message.ts)
        if contains in reply.text
    ]


def outbox_lines(uow: UnitOfWork, candidate_id: int, contains: str) -> list[str]:
    """Lines queued for the candidate (delivered or not) that hold ``contains``."""
    payloads = uow.session.scalars(
        sa.select(OutboxRow.payload).where(OutboxRow.candidate_id == candidate_id)
    )
    return [p["text"] for p in payloads if contains in str(p.get("text", ""))]
