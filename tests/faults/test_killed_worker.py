"""A worker killed at any step of a promotion, restarted, leaves every environment consistent.

`gatekeeper worker` promotes for real from dev to staging: each has its own MLflow server (the
model's artifacts cross between them), images cross from one registry into another, snapshots
from one directory into another. The worker gets SIGKILL inside a step. At that moment staging's
champion alias is unset or names a complete version; a second worker then finishes the same
promotion, once. Losing staging's registry mid-copy fails the promotion cleanly instead.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.adapters.mlflow_copy import MlflowCopier
from bot.adapters.oci import ImageRegistries
from bot.domain.candidates import Candidate, ImageRef, parse_bundle
from bot.domain.policy import Policy
from bot.domain.promotion import CandidateState, PromotionStep
from bot.emulator import SlackEmulator
from bot.services.candidates import propose
from bot.services.promotions import Promoted, Promotions, Report
from bot.store.audit import verify_chain
from bot.store.database import make_engine, make_session_factory
from bot.store.models import AuditRow
from bot.store.repositories import UnitOfWork
from handlers.notifier import SlackNotifier
from tests.faults.processes import MlflowProcess, Worker, frozen, running_worker
from tests.faults.world import (
    ALIAS,
    BOT_TOKEN,
    CHANNEL,
    MB,
    MODEL,
    SRE,
    TEAM,
    Arranged,
    Sizes,
    StepRow,
    World,
    any_bytes,
    arrange,
    artifacts,
    champion,
    make_world,
    outbox_lines,
    promotion_of,
    sha256,
    state,
    steps,
    thread_lines,
)
from tests.oci_fixtures import RunningRegistry

S = PromotionStep
PROMOTION_ID_TAG = "gatekeeper.lineage.promotion_id"
#: Long enough for a worker to start (~3 s here) and reach any step; short enough to fail fast.
WAIT_S = 60.0
POLL_S = 0.005


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(team_id=TEAM, bot_token=BOT_TOKEN) as emulator:
        emulator.workspace.add_user(SRE, "sam")
        emulator.workspace.add_channel(CHANNEL, "ml-models")
        yield emulator


@pytest.fixture
def open_world(
    mlflow_server: str, staging_mlflow: MlflowProcess, oci_source: RunningRegistry,
    sqlite_url: str, slack: SlackEmulator, tmp_path: Path,
) -> Iterator[Callable[[RunningRegistry], World]]:  # fmt: skip
    """Opens the world with staging's images kept in ``target`` (another registry than dev's)."""
    database = make_engine(sqlite_url)
    yield lambda target: make_world(tmp_path, sqlite_url, database, mlflow_server, staging_mlflow,
                                    oci_source, target, slack)  # fmt: skip
    database.dispose()


# --- where the worker dies ---------------------------------------------------------------------


def _at_once(world: World, arranged: Arranged) -> bool:
    return True


def _image_arriving(world: World, arranged: Arranged) -> bool:
    """Staging's registry holds part of the layer: an upload under way."""
    repository = world.target.root / "docker/registry/v2/repositories" / world.stg_repository
    return any_bytes((repository / "_uploads").glob("*/data"))


def _snapshot_arriving(world: World, arranged: Arranged) -> bool:
    return any_bytes(world.stg_store.rglob("*.partial"))


def _artifacts_crossing(world: World, arranged: Arranged) -> bool:
    """The worker is carrying the weights across: staging has a run and a model, no version."""
    return any_bytes(world.worker_tmp.rglob(f"weights-{world.tag}.bin"))


def _alias_moved(world: World, arranged: Arranged) -> bool:
    return champion(world) is not None


@dataclass(frozen=True)
class Kill:
    """The moment the worker dies: ``step`` is marked running and ``ready`` says it is under way.

    A step that ends before ``ready`` holds is not waited for: the kill lands in the next one.
    """

    step: PromotionStep
    sizes: Sizes = field(default_factory=Sizes)
    ready: Callable[[World, Arranged], bool] = _at_once
    #: The step lasts long enough that the kill must land inside it, its row still running.
    inside: bool = False
    #: Freeze staging's registry once the images are copied: the cut-over then moves the alias
    #: and stalls tagging the images, so the kill lands after the alias moved, unrecorded.
    freeze_registry: bool = False


KILLS = [
    pytest.param(Kill(S.VERIFY), id="verify-or-next"),
    pytest.param(Kill(S.COPY_IMAGES, Sizes(image=128 * MB), _image_arriving, inside=True),
                 id="mid-copy_images"),
    pytest.param(Kill(S.COPY_SNAPSHOTS, Sizes(snapshot=256 * MB), _snapshot_arriving, inside=True),
                 id="mid-copy_snapshots"),
    pytest.param(Kill(S.COPY_MODEL, Sizes(artifact=32 * MB), _artifacts_crossing, inside=True),
                 id="mid-copy_model"),
    pytest.param(Kill(S.CUT_OVER), id="cut_over-or-next"),
    pytest.param(Kill(S.CUT_OVER, ready=_alias_moved, inside=True, freeze_registry=True),
                 id="cut_over-after-alias-moved"),
    pytest.param(Kill(S.RECORD_LINEAGE), id="record_lineage-or-next"),
]  # fmt: skip


@contextlib.contextmanager
def _moment(world: World, worker: Worker, arranged: Arranged, kill: Kill) -> Iterator[None]:
    """Wait (bounded) for the moment ``kill`` names; the registry stays frozen inside the block."""
    deadline = time.monotonic() + WAIT_S
    with contextlib.ExitStack() as held:
        frozen_yet = False
        while True:
            rows = steps(world, arranged.candidate_id)
            if kill.freeze_registry and not frozen_yet and _done(rows, S.COPY_IMAGES):
                held.enter_context(frozen(world.target.process))
                frozen_yet = True
            row = rows.get(kill.step)
            if row is not None and (row.status != "running" or kill.ready(world, arranged)):
                break
            worker.check_alive()
            if time.monotonic() > deadline:
                pytest.fail(f"{kill.step} never ran within {WAIT_S} s; steps {rows}; "
                            f"worker log:\n{worker.output()}")  # fmt: skip
            time.sleep(POLL_S)
        yield


def _done(rows: dict[PromotionStep, StepRow], step: PromotionStep) -> bool:
    return step in rows and rows[step].status in ("succeeded", "skipped")


def _wait_for(world: World, candidate_id: int, wanted: CandidateState, worker: Worker) -> None:
    deadline = time.monotonic() + WAIT_S
    while (now := state(world, candidate_id)) is not wanted:
        worker.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"candidate #{candidate_id} is {now}, not {wanted}, after {WAIT_S} s; "
                        f"steps {steps(world, candidate_id)}; worker log:\n{worker.output()}")  # fmt: skip
        time.sleep(0.1)


# --- the scenarios -----------------------------------------------------------------------------


@pytest.mark.parametrize("kill", KILLS)
def test_a_killed_worker_leaves_staging_consistent_and_the_next_one_promotes_once(
    kill: Kill, open_world: Callable[[RunningRegistry], World], oci_target: RunningRegistry
) -> None:
    world = open_world(oci_target)
    arranged = arrange(world, kill.sizes)

    with running_worker(world.env, world.root / "worker-1.log") as first:
        with _moment(world, first, arranged, kill):
            first.kill()
        at_kill = steps(world, arranged.candidate_id)
    if kill.inside:
        assert at_kill[kill.step].status == "running", f"the kill missed {kill.step}: {at_kill}"
    _assert_champion_complete(world, arranged)

    with running_worker(world.env, world.root / "worker-2.log") as second:
        _wait_for(world, arranged.candidate_id, CandidateState.PROMOTED, second)
    _assert_promoted_once(world, arranged, at_kill)


def test_losing_stagings_registry_mid_copy_fails_the_promotion_cleanly(
    open_world: Callable[[RunningRegistry], World], oci_disposable: RunningRegistry
) -> None:
    world = open_world(oci_disposable)
    arranged = arrange(world, Sizes(image=128 * MB))

    with running_worker(world.env, world.root / "worker.log") as worker:
        with _moment(world, worker, arranged, Kill(S.COPY_IMAGES, ready=_image_arriving)):
            oci_disposable.stop()
        _wait_for(world, arranged.candidate_id, CandidateState.FAILED, worker)
        thread = world.slack.wait_for(lambda ws: thread_lines(ws, "failed at"), timeout=15)
        log = worker.output()

    assert "copy images" in thread[0], thread
    assert oci_disposable.host in thread[0], thread
    # RegistryUnavailable is transient: three attempts, two of them after a backoff.
    assert log.count("retrying") == 2, log
    assert {step: row.status for step, row in steps(world, arranged.candidate_id).items()} == {
        S.VERIFY: "succeeded", S.COPY_IMAGES: "failed"
    }  # fmt: skip
    with world.uow().reading() as uow:
        assert "copy images" in (uow.candidates.get(arranged.candidate_id).reason or "")
        assert uow.champions.history(MODEL, "staging") == []
        promotion = promotion_of(uow, arranged.candidate_id)
        assert (promotion.state, promotion.target_version) == ("failed", None)
    assert champion(world) is None
    assert world.stg.search_model_versions(f"name = '{world.stg_name}'") == []
    assert verify_chain(world.database).intact


# --- between two commits, where no signal can be aimed ------------------------------------------


class Killed(BaseException):
    """The process dying where it stands: nothing after this runs, nothing uncommitted stays."""


class DyingNotifier(SlackNotifier):
    """Dies while the promotion's outcome is being written, in that transaction."""

    def outcome(self, *args: Any, **kwargs: Any) -> None:
        raise Killed


class Finished:
    """A promotion engine resuming a promotion whose steps all finished before the kill."""

    def promote(self, candidate_id: int, report: Report) -> Promoted:
        return Promoted("3", {"serving": f"127.0.0.1:5000/stg/churn-serving@sha256:{'ab' * 32}"})

    def roll_back(self, model: str, environment: str, to_version: str, report: Report) -> None:
        raise AssertionError("nothing is rolled back here")


class NoGroups:
    def members(self, group_id: str) -> frozenset[str]:
        return frozenset()


def test_a_worker_killed_as_it_finishes_leaves_one_champion_row(sqlite_url: str) -> None:
    database = make_engine(sqlite_url)
    factory = make_session_factory(database)

    def uow() -> UnitOfWork:
        return UnitOfWork(factory)

    policy = Policy(approvals=0)
    candidate = Candidate(MODEL, "7", "dev", "staging", {"accuracy": 0.93}, parse_bundle({}))
    notifier = SlackNotifier(lambda _: CHANNEL, lambda _: policy)
    candidate_id = propose(uow, lambda _: policy, notifier, candidate, None, actor=SRE,
                           now=datetime.now(UTC))  # fmt: skip

    def promotions(notifier: SlackNotifier) -> Promotions:
        return Promotions(uow, notifier, Finished(), lambda _: policy, NoGroups(),
                          lambda: datetime.now(UTC))  # fmt: skip

    with pytest.raises(Killed):
        promotions(DyingNotifier(lambda _: CHANNEL, lambda _: policy)).promote(candidate_id)
    with uow() as unit:
        assert unit.candidates.get(candidate_id).state == CandidateState.PROMOTING
    assert promotions(notifier).promote(candidate_id) is CandidateState.PROMOTED
    with uow() as unit:
        history = unit.champions.history(MODEL, "staging")
        assert [(row.version, row.previous_version) for row in history] == [("3", None)]
        assert unit.champions.rollback_target(MODEL, "staging") is None
    database.dispose()


# --- what a consistent staging looks like ------------------------------------------------------


def _assert_champion_complete(world: World, arranged: Arranged) -> None:
    """Staging's champion alias is unset, or names a version with every artifact there."""
    version = champion(world)
    if version is None:
        return
    assert MlflowCopier().version_exists(world.staging_mlflow.url, world.stg_name, version)
    assert artifacts(world.staging_mlflow.url, world.stg_name, version) == artifacts(
        world.dev_mlflow, world.dev_name, arranged.version
    )


def _assert_promoted_once(
    world: World, arranged: Arranged, at_kill: dict[PromotionStep, StepRow]
) -> None:
    cid = arranged.candidate_id
    staged_image = f"{world.target.host}/{world.stg_repository}@{arranged.digest}"
    with world.uow().reading() as uow:
        moves = [t.to_state for t in uow.candidates.transitions(cid)]
        assert moves.count(CandidateState.PROMOTING) == moves.count(CandidateState.PROMOTED) == 1
        promotion = promotion_of(uow, cid)
        assert promotion.state == "succeeded"
        version = promotion.target_version
        assert version is not None
        [row] = uow.champions.history(MODEL, "staging")
        assert (row.version, row.previous_version) == (version, None)
        assert (row.promotion_id, row.images) == (promotion.id, {"serving": staged_image})
        audit = uow.session.scalars(
            sa.select(AuditRow.action).where(AuditRow.subject == f"candidate:{cid}")
        ).all()
        assert audit.count("promotion.started") == audit.count("candidate.promoted") == 1, audit
        assert len(outbox_lines(uow, cid, "is the champion")) == 1
        # Staging had no champion: a cut-over line naming one remembered the wrong version.
        assert outbox_lines(uow, cid, "(was v") == []
    assert verify_chain(world.database).intact

    finished = steps(world, cid)
    assert {step: row.status for step, row in finished.items()} == {
        step: "skipped" if step is S.REGISTER_PIPELINE else "succeeded" for step in S
    }
    for step, done in finished.items():
        if done.status == "succeeded":
            killed = step in at_kill and at_kill[step].status == "running"
            assert done.attempts == (2 if killed else 1), (step, done, at_kill)
    assert finished[S.CUT_OVER].details.get("previous") is None, finished[S.CUT_OVER]

    # One version in staging, this promotion's, complete, and the champion.
    found = world.stg.search_model_versions(f"tags.`{PROMOTION_ID_TAG}` = '{promotion.id}'")
    [staged] = [v for v in found if v.name == world.stg_name]
    assert staged.version == version
    copied = world.stg_store / "train" / "2026-11.csv"
    assert staged.tags["gatekeeper.image.serving"] == staged_image  # its bundle names staging's
    assert staged.tags["gatekeeper.snapshot.train"] == (
        f"{copied.as_uri()}#sha256={arranged.snapshot_sha256}"
    )
    assert len(world.stg.search_model_versions(f"name = '{world.stg_name}'")) == 1
    assert champion(world) == version
    _assert_champion_complete(world, arranged)

    with ImageRegistries() as images:
        assert images.exists(ImageRef(world.target.host, world.stg_repository, arranged.digest))
        for tag in (f"{MODEL}-v{arranged.version}", ALIAS):
            held = images.resolve_tag(world.target.host, world.stg_repository, tag)
            assert held == arranged.digest, tag
    assert sha256(copied) == arranged.snapshot_sha256
