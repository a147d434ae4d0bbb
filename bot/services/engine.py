"""The promotion engine: PRODUCT.md's steps over the adapters, each idempotent and reported.

Each step reads what earlier attempts recorded (the promotion's step details), so a promotion
restarted after a crash picks up where it stopped; a failure after the cut-over moves the
alias back before it is reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Protocol, TypeVar

from bot.config import GatekeeperConfig
from bot.domain.candidates import (
    IMAGE_TAG,
    SNAPSHOT_TAG,
    Bundle,
    Candidate,
    ImageRef,
    parse_image,
)
from bot.domain.errors import GatekeeperError
from bot.domain.plan import Place, plan, relocate_image, relocate_snapshot
from bot.domain.policy import VerdictKind, evaluate
from bot.domain.promotion import PromotionStep, StepStatus
from bot.services.promotions import Progress, Promoted, Report, StepFailed
from bot.services.registry import ModelNotFound, ModelRegistry
from bot.store.codec import bundle_from_json
from bot.store.repositories import UnitOfWork

logger = logging.getLogger(__name__)
S = PromotionStep
T = TypeVar("T")


class ModelCopier(Protocol):
    def copy_version(self, source_uri: str, source_name: str, version: str, target_uri: str,
                     target_name: str, lineage_tags: Mapping[str, str]) -> str: ...  # fmt: skip
    def set_alias(self, uri: str, name: str, alias: str, version: str) -> None: ...
    def set_tags(self, uri: str, name: str, version: str, tags: Mapping[str, str]) -> None: ...
    def current_alias(self, uri: str, name: str, alias: str) -> str | None: ...


class ImageCopier(Protocol):
    def copy_image(self, source: ImageRef, target_registry: str, target_repository: str,
                   tags: Sequence[str] = ()) -> Any: ...  # fmt: skip
    def tag(self, registry: str, repository: str, digest: str, tag: str) -> None: ...
    def exists(self, ref: ImageRef) -> bool: ...


class SnapshotCopier(Protocol):
    def __call__(self, source_url: str, sha256: str, target_url: str) -> Any: ...


class PipelineRebuilder(Protocol):
    def rebuild(self, candidate: Staged, images: Mapping[str, str]) -> str:
        """Register (and run, for `kfp: local`) the pipeline with images pinned; a detail line."""
        ...


class Transient(Protocol):
    """Which adapter errors are worth another attempt (registries restarting, timeouts)."""

    def __call__(self, error: Exception) -> bool: ...


@dataclass(frozen=True)
class Staged:
    """A candidate as the engine moves it: where from, where to, what with."""

    candidate_id: int
    promotion_id: int
    model: str
    version: str
    source: Place
    target: Place
    source_uri: str
    target_uri: str
    alias: str
    bundle: Bundle
    approvers: tuple[str, ...]
    done: Mapping[PromotionStep, Mapping[str, Any]] = field(default_factory=dict)
    #: The target's champion when this promotion started, as Gatekeeper recorded it.
    previous_champion: str | None = None

    @property
    def source_name(self) -> str:
        return self.source.model_name.format(model=self.model)

    @property
    def target_name(self) -> str:
        return self.target.model_name.format(model=self.model)

    def target_images(self) -> dict[str, ImageRef]:
        return {
            n: relocate_image(i, self.source, self.target) for n, i in self.bundle.images.items()
        }


@dataclass
class Engine:
    config: GatekeeperConfig
    unit_of_work: Callable[[], UnitOfWork]
    registries: Mapping[str, ModelRegistry]
    models: ModelCopier
    images: ImageCopier
    snapshots: SnapshotCopier
    pipelines: PipelineRebuilder | None
    transient: Transient
    clock: Callable[[], datetime]
    attempts: int = 3
    backoff_s: float = 1.0

    def promote(self, candidate_id: int, report: Report) -> Promoted:
        staged = self._stage(candidate_id)
        planned = {action.step for action in plan(_candidate(staged), staged.source,
                                                   staged.target, staged.alias)}  # fmt: skip
        steps: dict[PromotionStep, Callable[[Staged], tuple[str, dict[str, Any]]]] = {
            S.VERIFY: self._verify, S.COPY_IMAGES: self._copy_images,
            S.COPY_SNAPSHOTS: self._copy_snapshots, S.COPY_MODEL: self._copy_model,
            S.REGISTER_PIPELINE: self._register_pipeline, S.CUT_OVER: self._cut_over,
            S.RECORD_LINEAGE: self._record_lineage, S.NOTIFY: self._notify,
        }  # fmt: skip
        done = dict(staged.done)
        for step, run in steps.items():
            if step in done:
                continue  # finished before a restart: its details are all we need of it
            if step not in planned:
                report(Progress(step, StepStatus.SKIPPED, detail="nothing to do"))
                done[step] = {}
                continue
            report(Progress(step, StepStatus.RUNNING))
            started = time.monotonic()
            try:
                detail, details = self._attempt(partial(run, _with(staged, done)))
            except GatekeeperError as error:
                report(Progress(step, StepStatus.FAILED, time.monotonic() - started, str(error)))
                if S.CUT_OVER in done:
                    self._compensate(_with(staged, done), report)
                raise StepFailed(step, f"{step.value.replace('_', ' ')}: {error}") from error
            done[step] = details
            report(Progress(step, StepStatus.SUCCEEDED, time.monotonic() - started, detail,
                            details))  # fmt: skip
        final = _with(staged, done)
        return Promoted(
            version=str(done[S.COPY_MODEL]["target_version"]),
            images={n: str(ref) for n, ref in final.target_images().items()},
        )

    def roll_back(self, model: str, environment: str, to_version: str, report: Report) -> None:
        spec = self.config.environments[environment]
        name, alias = spec.registered_name(model), self.config.model(model).champion_alias
        started = time.monotonic()
        self._attempt(partial(self.models.set_alias, spec.mlflow, name, alias, to_version))
        with self.unit_of_work().reading() as uow:
            champion = next((row for row in reversed(uow.champions.history(model, environment))
                             if row.version == to_version), None)  # fmt: skip
        retagged = 0
        for reference in (champion.images if champion else {}).values():
            image = _image(reference)
            self._attempt(
                partial(self.images.tag, image.registry, image.repository, image.digest, alias)
            )
            retagged += 1
        moved = f"{name}@{alias} → v{to_version}, {retagged} image tag(s) moved back"
        report(Progress(S.CUT_OVER, StepStatus.SUCCEEDED, time.monotonic() - started, moved))

    # --- the steps: each returns a line for the thread and the details a restart needs ---------

    def _verify(self, staged: Staged) -> tuple[str, dict[str, Any]]:
        fresh = self.registries[staged.source.name].get_version(staged.model, staged.version)
        try:
            held = self.registries[staged.target.name].champion(staged.model, staged.alias)
        except ModelNotFound:
            held = None
        policy = self.config.policy_for(staged.target.name)
        candidate = _candidate(staged, dict(fresh.metrics))
        verdict = evaluate(policy, candidate, dict(held.metrics) if held else None, self.clock())
        if verdict.kind is VerdictKind.BLOCKED and not self._overridden(staged):
            raise VerifyFailed("; ".join(verdict.reasons))
        missing = [str(i) for i in staged.bundle.images.values() if not self.images.exists(i)]
        if missing:
            raise VerifyFailed("images not in their registry: " + ", ".join(missing))
        return f"gates pass on fresh metrics; {len(staged.bundle.images)} image(s) found", {}

    def _copy_images(self, staged: Staged) -> tuple[str, dict[str, Any]]:
        uploaded = mounted = 0
        tag = f"{staged.model}-v{staged.version}"
        for _, image in sorted(staged.bundle.images.items()):
            target = relocate_image(image, staged.source, staged.target)
            copied = self.images.copy_image(image, target.registry, target.repository, [tag])
            uploaded += int(getattr(copied, "bytes_uploaded", 0))
            mounted += int(getattr(copied, "blobs_mounted", 0))
        return (f"{len(staged.bundle.images)} image(s), {mounted} blob(s) mounted, "
                f"{uploaded / 1e6:.1f} MB uploaded"), {}  # fmt: skip

    def _copy_snapshots(self, staged: Staged) -> tuple[str, dict[str, Any]]:
        for snapshot in staged.bundle.snapshots.values():
            target = relocate_snapshot(snapshot, staged.source, staged.target)
            self.snapshots(snapshot.url, snapshot.sha256, target.url)
        return f"{len(staged.bundle.snapshots)} snapshot(s), sha256 verified", {}

    def _copy_model(self, staged: Staged) -> tuple[str, dict[str, Any]]:
        lineage = {
            "gatekeeper.lineage.promotion_id": str(staged.promotion_id),
            "gatekeeper.lineage.source_env": staged.source.name,
            "gatekeeper.lineage.source_version": staged.version,
            "gatekeeper.lineage.approvers": ",".join(staged.approvers) or "policy",
        }
        version = self.models.copy_version(
            staged.source_uri, staged.source_name, staged.version, staged.target_uri,
            staged.target_name, lineage,
        )  # fmt: skip
        return f"{staged.target_name} v{version}", {"target_version": version}

    def _register_pipeline(self, staged: Staged) -> tuple[str, dict[str, Any]]:
        if self.pipelines is None:
            raise NoPipelines(f"{staged.target.name} has a pipeline to register but no KFP")
        pinned = {
            str(i): str(t)
            for i, t in zip(
                staged.bundle.images.values(), staged.target_images().values(), strict=True
            )
        }
        return self.pipelines.rebuild(staged, pinned), {}

    def _cut_over(self, staged: Staged) -> tuple[str, dict[str, Any]]:
        version = str(staged.done[S.COPY_MODEL]["target_version"])
        previous = self.models.current_alias(staged.target_uri, staged.target_name, staged.alias)
        if previous == version:
            # An earlier attempt moved the alias and stopped before recording the step: the
            # champion it replaced is the one this promotion started from.
            previous = staged.previous_champion
        self.models.set_alias(staged.target_uri, staged.target_name, staged.alias, version)
        for image in staged.target_images().values():
            self.images.tag(image.registry, image.repository, image.digest, staged.alias)
        was = f" (was v{previous})" if previous else ""
        return f"{staged.target_name}@{staged.alias} → v{version}{was}", {"previous": previous}

    def _record_lineage(self, staged: Staged) -> tuple[str, dict[str, Any]]:
        # The lineage tags went onto the version with its copy; here its bundle is made to
        # name the target's own copies, so the next hop starts from this environment.
        version = str(staged.done[S.COPY_MODEL]["target_version"])
        tags = {f"{IMAGE_TAG}{name}": str(ref) for name, ref in staged.target_images().items()}
        for name, snapshot in staged.bundle.snapshots.items():
            moved = relocate_snapshot(snapshot, staged.source, staged.target)
            tags[f"{SNAPSHOT_TAG}{name}"] = f"{moved.url}#sha256={moved.sha256}"
        self.models.set_tags(staged.target_uri, staged.target_name, version, tags)
        return (
            f"promotion #{staged.promotion_id}; bundle now names {staged.target.name}'s copies",
            {},
        )

    def _notify(self, staged: Staged) -> tuple[str, dict[str, Any]]:
        return "no deployment hand-off configured", {}

    # --- helpers -------------------------------------------------------------------------------

    def _compensate(self, staged: Staged, report: Report) -> None:
        previous = staged.done[S.CUT_OVER].get("previous")
        if previous:
            self.models.set_alias(staged.target_uri, staged.target_name, staged.alias, previous)
        undone = f"alias moved back to v{previous}" if previous else "alias had no earlier version"
        report(Progress(S.CUT_OVER, StepStatus.COMPENSATED, detail=undone))

    def _attempt(self, call: Callable[[], T]) -> T:
        """Call, retrying transient failures with exponential backoff; the last one is raised."""
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except Exception as error:
                if attempt == self.attempts or not self.transient(error):
                    raise
                logger.warning("attempt %s failed (%s); retrying", attempt, error)
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _overridden(self, staged: Staged) -> bool:
        with self.unit_of_work().reading() as uow:
            reason = uow.candidates.get(staged.candidate_id).reason or ""
        return reason.startswith("block overridden")

    def _stage(self, candidate_id: int) -> Staged:
        with self.unit_of_work().reading() as uow:
            row = uow.candidates.get(candidate_id)
            running = uow.promotions.running_for(candidate_id)
            if running is None:
                raise GatekeeperError(f"candidate #{candidate_id} has no promotion running")
            done = uow.promotions.finished_steps(running.id)
            votes = uow.votes.for_candidate(candidate_id)
        source, target = self._place(row.source_env), self._place(row.target_env)
        return Staged(
            candidate_id, running.id, row.model, row.version, source, target,
            self.config.environments[row.source_env].mlflow,
            self.config.environments[row.target_env].mlflow,
            self.config.model(row.model).champion_alias, bundle_from_json(row.bundle),
            tuple(v.voter for v in votes if v.decision.value == "approve"), done,
            running.previous_champion,
        )  # fmt: skip

    def _place(self, name: str) -> Place:
        spec = self.config.environments[name]
        return Place(name, spec.images, spec.snapshots, spec.kfp, spec.model_name)


class VerifyFailed(GatekeeperError):
    pass


class NoPipelines(GatekeeperError):
    pass


def _with(staged: Staged, done: Mapping[PromotionStep, Mapping[str, Any]]) -> Staged:
    return Staged(**{**staged.__dict__, "done": dict(done)})


def _candidate(staged: Staged, metrics: dict[str, float] | None = None) -> Candidate:
    return Candidate(staged.model, staged.version, staged.source.name, staged.target.name,
                     metrics or {}, staged.bundle)  # fmt: skip


def _image(reference: str) -> ImageRef:
    image = parse_image(reference)
    if image is None:
        raise GatekeeperError(f"champion history holds an image that is not by digest: {reference}")
    return image
