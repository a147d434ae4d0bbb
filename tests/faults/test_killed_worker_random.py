"""Workers killed at random moments of many promotions, each restarted: staging stays whole.

Several versions of one model wait in dev as approved candidates for staging; `gatekeeper worker`
promotes them one after another, oldest first, everything real (two MLflow servers, two image
registries, two snapshot stores). The test kills it with SIGKILL at moments drawn from a seeded
plan (during start-up, a random time into a promotion, or into a chosen step) and after each
kill checks staging: its champion alias is unset or names a complete version (artifacts, images
and snapshot all there, and the same as in dev) of the newest candidate that reached the
cut-over. Then it starts the next worker, until every candidate is promoted: each once, in
order, with one staging version, one thread line per step and the audit chain intact.

CI runs 5 promotions and 3 to 5 kills. On demand:
    GATEKEEPER_FAULTS=long      50 promotions and 50 kills
    GATEKEEPER_KILL_SEED=<n>    the plan of a run that printed this seed (timing still varies)
    GATEKEEPER_KILLS=<n>        another number of kills
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.adapters.mlflow_copy import PROMOTION_ID_TAG, SOURCE_VERSION_TAG
from bot.adapters.oci import ImageRegistries
from bot.domain.candidates import ImageRef
from bot.domain.promotion import STEP_DONE, CandidateState, PromotionStep, StepStatus
from bot.emulator import SlackEmulator
from bot.store.audit import verify_chain
from bot.store.database import make_engine
from bot.store.models import AuditRow, CandidateRow, OutboxRow, PromotionRow, PromotionStepRow
from bot.store.repositories import UnitOfWork
from handlers.blocks import step_message
from tests.faults.processes import MlflowProcess, Worker, running_worker
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
    World,
    arrange_many,
    artifact_sha256,
    artifacts,
    champion,
    make_world,
    promotion_of,
    sha256,
    steps,
)
from tests.oci_fixtures import RunningRegistry

S = PromotionStep
LONG = os.environ.get("GATEKEEPER_FAULTS") == "long"
PROMOTIONS = 50 if LONG else 5
#: The whole run, kills and restarts included; past it the test fails saying how far it got.
TIME_LIMIT_S = 1800.0 if LONG else 180.0
#: `gatekeeper worker` takes ~3 s here to start and find its work: start-up kills land within.
START_UP_S = 5.0
#: About one promotion here (0.5-1 s): a kill this long into one may land in the next.
PROMOTION_S = 1.0
#: Into a step marked running: long copies are killed midway...
COPY_JITTER_S = 0.3
#: ...and short steps (a few registry calls) within their first few requests.
STEP_JITTER_S = 0.02
POLL_S = 0.01
#: What `gatekeeper worker` prints once it works.
WORKING = "gatekeeper worker: promoting"
#: Steps a kill may aim at, by weight: the copies (where a kill hurts most) twice as often.
AIMS = {S.VERIFY: 1, S.COPY_IMAGES: 2, S.COPY_SNAPSHOTS: 2, S.COPY_MODEL: 2, S.CUT_OVER: 1,
        S.RECORD_LINEAGE: 1, S.NOTIFY: 1}  # fmt: skip
_COPIES = {S.COPY_IMAGES, S.COPY_SNAPSHOTS, S.COPY_MODEL}
#: A kill may delay a candidate, never fail it.
_ON_THE_WAY = {CandidateState.APPROVED, CandidateState.PROMOTING, CandidateState.PROMOTED}


@pytest.fixture
def world(
    mlflow_server: str, staging_mlflow: MlflowProcess, oci_source: RunningRegistry,
    oci_target: RunningRegistry, sqlite_url: str, tmp_path: Path,
) -> Iterator[World]:  # fmt: skip
    database = make_engine(sqlite_url)
    with SlackEmulator(team_id=TEAM, bot_token=BOT_TOKEN) as slack:
        slack.workspace.add_user(SRE, "sam")
        slack.workspace.add_channel(CHANNEL, "ml-models")
        yield make_world(tmp_path, sqlite_url, database, mlflow_server, staging_mlflow,
                         oci_source, oci_target, slack)  # fmt: skip
    database.dispose()


def _sizes(n: int) -> Sizes:
    """Each bundle has one piece big enough that its copy lasts (~0.2-1 s here)."""
    return (Sizes(image=16 * MB), Sizes(snapshot=48 * MB), Sizes(artifact=6 * MB))[n % 3]


# --- the plan ----------------------------------------------------------------------------------


class Moment(StrEnum):
    START_UP = "start-up"  # a random time after the worker starts, whatever it is doing then
    INTO_PROMOTION = "into promotion"  # a random time after the target's promotion got going
    INTO_STEP = "into step"  # a random time after the target's step was marked running


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: aimed at a candidate's promotion (those before it are promoted meanwhile)."""

    target: int  # the candidate's index
    moment: Moment
    delay_s: float
    step: PromotionStep | None = None

    def __str__(self) -> str:
        step = f" {self.step}" if self.step else ""
        return f"#{self.target + 1} {self.moment}{step} +{self.delay_s:.2f} s"


def plan_kills(rng: random.Random, promotions: int, kills: int) -> list[Kill]:
    """``kills`` moments spread over the promotions, in the order the worker reaches them; the
    first cuts the first promotion's image copy (16 MB) short, so no run kills only idle ones."""
    plan = [Kill(0, Moment.INTO_STEP, rng.uniform(0, COPY_JITTER_S), S.COPY_IMAGES)]
    for target in sorted(rng.randrange(promotions) for _ in range(kills - 1)):
        moment = rng.choices(list(Moment), weights=(1, 2, 3))[0]
        if moment is Moment.START_UP:
            plan.append(Kill(target, moment, rng.uniform(0, START_UP_S)))
        elif moment is Moment.INTO_PROMOTION:
            plan.append(Kill(target, moment, rng.uniform(0, PROMOTION_S)))
        else:
            step = rng.choices(list(AIMS), weights=list(AIMS.values()))[0]
            jitter = COPY_JITTER_S if step in _COPIES else STEP_JITTER_S
            plan.append(Kill(target, moment, rng.uniform(0, jitter), step))
    return plan


# --- what the database says, and where a kill landed --------------------------------------------


@dataclass(frozen=True)
class Seen:
    """Each candidate's state and its steps' (status, attempts), at one moment."""

    states: dict[int, CandidateState]
    steps: dict[int, dict[PromotionStep, tuple[str, int]]]

    def of(self, candidate_id: int) -> tuple[CandidateState, dict[PromotionStep, tuple[str, int]]]:
        return self.states[candidate_id], self.steps.get(candidate_id, {})

    def promoted(self) -> int:
        return sum(state is CandidateState.PROMOTED for state in self.states.values())


def _seen(world: World) -> Seen:
    with world.uow().reading() as uow:
        states = {
            row.id: CandidateState(row.state)
            for row in uow.session.scalars(sa.select(CandidateRow))
        }
        rows = uow.session.execute(
            sa.select(PromotionRow.candidate_id, PromotionStepRow.step, PromotionStepRow.status,
                      PromotionStepRow.attempts)
            .join(PromotionRow, PromotionRow.id == PromotionStepRow.promotion_id)
            .where(PromotionRow.kind == "promote")
        )  # fmt: skip
        found: dict[int, dict[PromotionStep, tuple[str, int]]] = {}
        for candidate_id, step, status, attempts in rows:
            found.setdefault(candidate_id, {})[PromotionStep(step)] = (status, attempts)
    return Seen(states, found)


@dataclass(frozen=True)
class Landing:
    """Where a kill landed: a row of the summary, and the step it cut short, if it did."""

    where: str
    candidate_id: int | None = None
    step: PromotionStep | None = None


def _landing(world: World, before: Seen, after: Seen, worker: Worker) -> Landing:
    """Read after the kill: what the killed worker wrote since it started says where it was."""
    changed = [cid for cid in after.states if after.of(cid) != before.of(cid)]
    if not changed:
        said = worker.log.read_text(errors="replace") if worker.log.exists() else ""
        return Landing("started, nothing written" if WORKING in said else "start-up")
    promoting = [cid for cid, s in after.states.items() if s is CandidateState.PROMOTING]
    if not promoting:
        return Landing("between promotions")  # the next one not started (or none left)
    [cid] = promoting
    _, rows = after.of(cid)
    _, earlier = before.of(cid)
    running = [s for s, row in rows.items() if row[0] == "running" and earlier.get(s) != row]
    if running:
        [step] = running
        if step is S.CUT_OVER:
            copied = steps(world, cid)[S.COPY_MODEL].details["target_version"]
            if champion(world) == copied:
                return Landing("cut_over, after the alias moved", cid, step)
        return Landing(step.value, cid, step)
    if not rows:
        return Landing("promotion opened, no step yet", cid)
    if len(rows) == len(S) and all(StepStatus(row[0]) in STEP_DONE for row in rows.values()):
        return Landing("steps done, outcome not recorded", cid)
    return Landing("between steps", cid)


# --- the scenario ------------------------------------------------------------------------------


@dataclass
class Run:
    """The run so far, for the summary and for every failure message."""

    seed: int
    plan: list[Kill]
    started: float = field(default_factory=time.monotonic)
    workers: int = 0
    landings: list[tuple[Kill, Landing]] = field(default_factory=list)

    def summary(self, seen: Seen | None = None) -> str:
        counts = Counter(landing.where for _, landing in self.landings)
        table = "\n".join(f"  {where:<34} {n}" for where, n in counts.most_common())
        got = f"{seen.promoted()} of {len(seen.states)} promoted, " if seen else ""
        return (
            f"seed {self.seed} (GATEKEEPER_KILL_SEED={self.seed} replays it): {got}"
            f"{len(self.landings)} kill(s) of {len(self.plan)} planned, {self.workers} worker(s), "
            f"{time.monotonic() - self.started:.1f} s\nwhere the kills landed:\n{table or '  -'}"
        )

    def check_time(self, world: World, worker: Worker) -> None:
        if time.monotonic() - self.started > TIME_LIMIT_S:
            pytest.fail(
                f"not every candidate was promoted within {TIME_LIMIT_S:.0f} s\n"
                f"{self.summary(_seen(world))}\nworker log:\n{worker.output()}",
                pytrace=False,
            )


def test_workers_killed_at_random_moments_leave_staging_consistent_and_promote_each_once(
    world: World,
) -> None:
    given = os.environ.get("GATEKEEPER_KILL_SEED")
    seed = int(given) if given else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    kills = int(os.environ.get("GATEKEEPER_KILLS") or (PROMOTIONS if LONG else rng.randint(3, 5)))
    run = Run(seed, plan_kills(rng, PROMOTIONS, kills))
    print(f"seed {seed}: {PROMOTIONS} promotions; plan: {', '.join(map(str, run.plan))}")
    arranged = arrange_many(world, [_sizes(n) for n in range(PROMOTIONS)])
    complete: set[str] = set()  # staging versions already found complete

    plan = list(run.plan)
    while _seen(world).promoted() < PROMOTIONS:
        before = _seen(world)
        run.workers += 1
        started = time.monotonic()
        with running_worker(world.env, world.root / f"worker-{run.workers}.log") as worker:
            if not plan:
                _await_all_promoted(world, worker, run)
                break
            kill = plan.pop(0)
            if not _await_moment(world, worker, run, kill, before, arranged):
                break  # every candidate promoted before the moment came
            worker.kill()
        landing = _landing(world, before, _seen(world), worker)
        run.landings.append((kill, landing))
        print(f"kill {len(run.landings)} ({kill}): in {landing.where}, "
              f"{time.monotonic() - started:.1f} s after the worker started")  # fmt: skip
        try:
            _assert_consistent(world, arranged, complete)
        except AssertionError as error:
            raise AssertionError(
                f"after kill {kill}, landed in {landing.where}: {error}\n{run.summary()}"
            ) from error

    print(run.summary(_seen(world)))
    assert any(landing.step for _, landing in run.landings), (
        f"no kill cut a step short: {run.summary()}"
    )
    _assert_each_promoted_once(world, arranged, run)
    print(_leftovers(world))


def _await_moment(
    world: World, worker: Worker, run: Run, kill: Kill, before: Seen, arranged: list[Arranged]
) -> bool:
    """Wait for the kill's moment, then its delay; False if every candidate got promoted first.

    A target an earlier kill overshot gives way to the next candidate still to promote.
    """
    promoted = CandidateState.PROMOTED
    waiting = [a.candidate_id for a in arranged if before.states[a.candidate_id] is not promoted]
    target = max(arranged[kill.target].candidate_id, waiting[0])
    while True:
        seen = _seen(world)
        if seen.promoted() == PROMOTIONS:
            return False
        if _reached(kill, target, before, seen):
            break
        worker.check_alive()
        run.check_time(world, worker)
        time.sleep(POLL_S)
    moment = time.monotonic() + kill.delay_s
    while time.monotonic() < moment:
        if seen.promoted() == PROMOTIONS:
            return False
        time.sleep(min(POLL_S, max(moment - time.monotonic(), 0)))
        seen = _seen(world)
    return True


def _reached(kill: Kill, target: int, before: Seen, seen: Seen) -> bool:
    state, rows = seen.of(target)
    if kill.moment is Moment.START_UP or state is CandidateState.PROMOTED:
        return True  # a target promoted already: the kill lands in whatever comes next
    going = seen.of(target) != before.of(target)
    if kill.moment is Moment.INTO_PROMOTION or kill.step is None:
        return going
    _, earlier = before.of(target)
    done_before = kill.step in earlier and StepStatus(earlier[kill.step][0]) in STEP_DONE
    return (going and done_before) or rows.get(kill.step) != earlier.get(kill.step)


def _await_all_promoted(world: World, worker: Worker, run: Run) -> None:
    while (seen := _seen(world)).promoted() < PROMOTIONS:
        failed = [s for s in seen.states.values() if s not in _ON_THE_WAY]
        assert not failed, f"a candidate left the way to promoted: {seen.states}"
        worker.check_alive()
        run.check_time(world, worker)
        time.sleep(0.1)


def _leftovers(world: World) -> str:
    """What the kills left behind that nobody sees (for the record; none of it is served)."""
    partial = list(world.stg_store.rglob("*.partial"))
    carried = [p for p in world.worker_tmp.rglob("*") if p.is_file()]
    with world.uow().reading() as uow:
        waiting = uow.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.delivered_at.is_(None))
        )
    workspace = world.slack.workspace
    cards = workspace.messages(CHANNEL)
    lines = Counter(
        (card.ts, reply.text) for card in cards for reply in workspace.thread(CHANNEL, card.ts)
    )

    def mb(files: list[Path]) -> str:
        return f"{len(files)} file(s), {sum(f.stat().st_size for f in files) / MB:.0f} MB"

    return (
        f"left behind: partial snapshots in staging's store {mb(partial)}; in the worker's "
        f"TMPDIR {mb(carried)}; staging runs by status {dict(_staging_runs(world))}; outbox: "
        f"{waiting} message(s) not yet delivered; Slack: {len(cards)} card(s), "
        f"{sum(n - 1 for n in lines.values())} thread line(s) delivered twice"
    )


def _staging_runs(world: World) -> Counter[str]:
    """Staging's runs of the model's experiment (copies made, and attempts killed), by status."""
    found = world.stg.get_experiment_by_name(f"faults-{world.tag}")
    runs = world.stg.search_runs([found.experiment_id], max_results=10000) if found else []
    return Counter(run.info.status for run in runs)


# --- what a consistent staging looks like ------------------------------------------------------


def _assert_consistent(world: World, arranged: list[Arranged], complete: set[str]) -> None:
    """Staging as a killed worker left it: every version complete, the champion the newest."""
    by_source = {a.version: a for a in arranged}
    staged = {v.version: v for v in world.stg.search_model_versions(f"name = '{world.stg_name}'")}
    for number, version in staged.items():
        if number in complete:
            continue
        source = version.tags.get(SOURCE_VERSION_TAG)
        assert source in by_source, f"staging v{number} carries no lineage: {version.tags}"
        assert version.tags.get(PROMOTION_ID_TAG), f"staging v{number}: {version.tags}"
        assert artifacts(world.staging_mlflow.url, world.stg_name, number) == artifacts(
            world.dev_mlflow, world.dev_name, source
        ), f"staging v{number} is not dev v{source}, artifact for artifact"
        complete.add(number)
    sources = Counter(v.tags[SOURCE_VERSION_TAG] for v in staged.values())
    assert max(sources.values(), default=1) == 1, f"a dev version copied twice: {sources}"

    with world.uow().reading() as uow:
        states = {a.candidate_id: CandidateState(uow.candidates.get(a.candidate_id).state)
                  for a in arranged}  # fmt: skip
        recorded = uow.champions.current(MODEL, "staging")
        versions = {a.candidate_id: promotion_of(uow, a.candidate_id).target_version
                    for a in arranged if states[a.candidate_id] is CandidateState.PROMOTED}  # fmt: skip
    assert set(states.values()) <= _ON_THE_WAY, f"a kill made a candidate fail: {states}"
    promoted = sorted(versions)

    held = champion(world)
    if held is None:
        assert promoted == [], "a promotion was reported, yet staging has no champion"
        assert recorded is None, recorded
        return
    assert held in staged, f"the champion alias names v{held}, which staging lacks"
    source = by_source[staged[held].tags[SOURCE_VERSION_TAG]]
    cid = source.candidate_id
    # The newest candidate to reach the cut-over: never one older than a promotion reported.
    assert states[cid] in (CandidateState.PROMOTING, CandidateState.PROMOTED), states
    assert all(promoted_id <= cid for promoted_id in promoted), (held, cid, promoted)
    last = versions[promoted[-1]] if promoted else None
    if states[cid] is CandidateState.PROMOTED:
        assert (recorded.version if recorded else None) == held, (recorded, held)
    else:  # its cut-over under way, or done and its outcome not yet written
        assert (recorded.version if recorded else None) in (held, last), (recorded, held, last)

    assert artifact_sha256(world.staging_mlflow.url, world.stg_name, held, source.weights) == (
        source.weights_sha256
    )
    assert sha256(world.stg_store / source.snapshot) == source.snapshot_sha256
    with ImageRegistries() as images:
        assert images.exists(ImageRef(world.target.host, world.stg_repository, source.digest))
        tagged = images.registry(world.target.host).manifest_digest(world.stg_repository, ALIAS)
    if states[cid] is CandidateState.PROMOTED:
        assert tagged == source.digest, "the champion image tag lags a finished promotion"
    else:  # the cut-over moves the alias first, then the image tags
        previous = [a.digest for a in arranged if a.candidate_id in promoted[-1:]]
        assert tagged in (source.digest, *previous, None), tagged


def _assert_each_promoted_once(world: World, arranged: list[Arranged], run: Run) -> None:
    cut_short = Counter((landing.candidate_id, landing.step) for _, landing in run.landings)
    previous: str | None = None
    with world.uow().reading() as uow:
        history = uow.champions.history(MODEL, "staging")
        for a in arranged:
            cid = a.candidate_id
            moves = [t.to_state for t in uow.candidates.transitions(cid)]
            assert moves[-2:] == [CandidateState.PROMOTING, CandidateState.PROMOTED], moves
            assert moves.count(CandidateState.PROMOTING) == 1, moves
            promotion = promotion_of(uow, cid)
            assert promotion.state == "succeeded"
            assert promotion.target_version is not None
            assert promotion.previous_champion == previous, (cid, promotion.previous_champion)
            audit = uow.session.scalars(
                sa.select(AuditRow.action).where(AuditRow.subject == f"candidate:{cid}")
            ).all()
            assert audit.count("promotion.started") == audit.count("candidate.promoted") == 1
            _assert_thread(uow, cid, previous)
            previous = promotion.target_version
        versions = [promotion_of(uow, a.candidate_id).target_version for a in arranged]
        promotions = [promotion_of(uow, a.candidate_id).id for a in arranged]
    assert verify_chain(world.database).intact

    # The champion history: one row per promotion, each replacing the one before.
    assert [(r.version, r.previous_version, r.promotion_id) for r in history] == [
        (v, p, i) for v, p, i in zip(versions, [None, *versions[:-1]], promotions, strict=True)
    ]
    for a, row in zip(arranged, history, strict=True):
        assert row.images == {"serving": f"{world.target.host}/{world.stg_repository}@{a.digest}"}

    # Each step ran once, and once more for each kill that cut it short.
    for a in arranged:
        finished = steps(world, a.candidate_id)
        assert {step: row.status for step, row in finished.items()} == {
            step: "skipped" if step is S.REGISTER_PIPELINE else "succeeded" for step in S
        }
        for step, row in finished.items():
            if row.status == "succeeded":
                expected = 1 + cut_short[(a.candidate_id, step)]
                assert row.attempts == expected, (a.candidate_id, step, row, run.summary())

    # Staging: one version per promotion, with its lineage, its bundle naming staging's copies.
    staged = {v.version: v for v in world.stg.search_model_versions(f"name = '{world.stg_name}'")}
    assert sorted(staged, key=int) == sorted(map(str, versions), key=int)
    with ImageRegistries() as images:
        for a, version, promotion_id in zip(arranged, versions, promotions, strict=True):
            assert version is not None
            tags = staged[version].tags
            image = ImageRef(world.target.host, world.stg_repository, a.digest)
            assert {k: tags.get(k) for k in _LINEAGE} == {
                "gatekeeper.lineage.promotion_id": str(promotion_id),
                "gatekeeper.lineage.source_env": "dev",
                "gatekeeper.lineage.source_version": a.version,
                "gatekeeper.lineage.approvers": "policy",
            }
            assert tags["gatekeeper.image.serving"] == str(image)
            copied = world.stg_store / a.snapshot
            assert (
                tags["gatekeeper.snapshot.train"] == f"{copied.as_uri()}#sha256={a.snapshot_sha256}"
            )
            assert sha256(copied) == a.snapshot_sha256
            assert images.exists(image)
            held = images.resolve_tag(
                world.target.host, world.stg_repository, f"{MODEL}-v{a.version}"
            )
            assert held == a.digest
            assert artifacts(world.staging_mlflow.url, world.stg_name, version) == artifacts(
                world.dev_mlflow, world.dev_name, a.version
            )
        last = arranged[-1]
        assert images.resolve_tag(world.target.host, world.stg_repository, ALIAS) == last.digest
    assert champion(world) == versions[-1]
    # A copy killed midway leaves a run; the attempt after it marks that run failed.
    runs = _staging_runs(world)
    assert (runs["FINISHED"], runs["RUNNING"]) == (PROMOTIONS, 0), runs
    assert artifact_sha256(
        world.staging_mlflow.url, world.stg_name, versions[-1], last.weights
    ) == (last.weights_sha256)


_LINEAGE = ("gatekeeper.lineage.promotion_id", "gatekeeper.lineage.source_env",
            "gatekeeper.lineage.source_version", "gatekeeper.lineage.approvers")  # fmt: skip


def _assert_thread(uow: UnitOfWork, candidate_id: int, previous: str | None) -> None:
    """One line per step, in order, then the champion's: nothing twice, nothing failed."""
    payloads = uow.session.scalars(
        sa.select(OutboxRow.payload)
        .where(OutboxRow.candidate_id == candidate_id)
        .order_by(OutboxRow.id)
    )
    thread = [str(p.get("text", "")) for p in payloads if p.get("_thread_of")]
    done = {step: StepStatus.SUCCEEDED for step in S} | {S.REGISTER_PIPELINE: StepStatus.SKIPPED}
    heads = [step_message(step, status).text for step, status in done.items()]
    assert len(thread) == len(heads) + 1, thread
    for line, head in zip(thread, heads, strict=False):
        assert line == head or line.startswith(f"{head} — "), (head, thread)
    assert "is the champion" in thread[-1], thread
    assert (f"(was v{previous})" in thread[-1]) == (previous is not None), (previous, thread)
    cut_over = thread[list(S).index(S.CUT_OVER)]
    # The cut-over names the champion it replaced, even when a kill came after the alias moved.
    assert (f"(was v{previous})" in cut_over) == (previous is not None), (previous, cut_over)
    assert previous is None or cut_over.count("(was v") == 1
