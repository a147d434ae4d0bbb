"""What a promotion will do, worked out before it does anything: `/promote plan` and the runner
read the same list, so the dry run shows exactly the actions that follow."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.candidates import Candidate, ImageRef, Snapshot
from bot.domain.errors import GatekeeperError
from bot.domain.promotion import PromotionStep


@dataclass(frozen=True)
class Place:
    """Where one environment keeps what a promotion moves (each piece optional)."""

    name: str
    images: str | None = None  # host[:port]/prefix
    snapshots: str | None = None  # url prefix
    kfp: str | None = None  # "local" or a KFP host
    model_name: str = "{model}"


@dataclass(frozen=True)
class Action:
    step: PromotionStep
    description: str


class Unplannable(GatekeeperError):
    """The bundle cannot be moved into the target as configured; says which piece and why."""


def relocate_image(image: ImageRef, source: Place, target: Place) -> ImageRef:
    """The same repository path under the target's prefix, digest kept."""
    if source.images is None or target.images is None:
        raise Unplannable(f"image {image}: set `images` for both {source.name} and {target.name}")
    source_registry, _, source_prefix = source.images.partition("/")
    target_registry, _, target_prefix = target.images.partition("/")
    path = image.repository
    if image.registry == source_registry and source_prefix:
        if path != source_prefix and not path.startswith(source_prefix + "/"):
            raise Unplannable(f"image {image} is not under {source.name}'s prefix {source.images}")
        path = path[len(source_prefix) :].lstrip("/")
    repository = f"{target_prefix}/{path}" if target_prefix else path
    return ImageRef(target_registry, repository, image.digest)


def relocate_snapshot(snapshot: Snapshot, source: Place, target: Place) -> Snapshot:
    """The same relative path under the target's prefix when it lies under the source's."""
    if target.snapshots is None:
        raise Unplannable(f"snapshot {snapshot.url}: set `snapshots` for {target.name}")
    prefix = (source.snapshots or "").rstrip("/")
    if prefix and snapshot.url.startswith(prefix + "/"):
        relative = snapshot.url[len(prefix) + 1 :]
    else:
        relative = snapshot.url.split("://", 1)[-1].lstrip("/")
    return Snapshot(f"{target.snapshots.rstrip('/')}/{relative}", snapshot.sha256)


def plan(candidate: Candidate, source: Place, target: Place, champion_alias: str) -> list[Action]:
    """Every action a promotion of ``candidate`` from ``source`` into ``target`` takes, in order."""
    bundle = candidate.bundle
    actions = [
        Action(
            PromotionStep.VERIFY,
            "re-check the gates on fresh metrics, and that every digest and checksum exists",
        )
    ]
    for name, image in sorted(bundle.images.items()):
        moved = relocate_image(image, source, target)
        actions.append(
            Action(PromotionStep.COPY_IMAGES, f"copy image {name}: {image} → {moved.registry}/"
                   f"{moved.repository}, tagged {candidate.model}-v{candidate.version}")
        )  # fmt: skip
    for name, snapshot in sorted(bundle.snapshots.items()):
        moved_snapshot = relocate_snapshot(snapshot, source, target)
        actions.append(
            Action(PromotionStep.COPY_SNAPSHOTS, f"copy snapshot {name}: {snapshot.url} → "
                   f"{moved_snapshot.url}, verifying sha256 {snapshot.sha256[:12]}")
        )  # fmt: skip
    target_model = target.model_name.format(model=candidate.model)
    actions.append(
        Action(PromotionStep.COPY_MODEL, f"copy {source.model_name.format(model=candidate.model)} "
               f"v{candidate.version} and its artifacts into {target.name}'s {target_model}")
    )  # fmt: skip
    if bundle.pipeline:
        where = "with kfp.local" if target.kfp == "local" else f"at {target.kfp or '(no KFP)'}"
        actions.append(
            Action(PromotionStep.REGISTER_PIPELINE, f"register {bundle.pipeline} {where}, "
                   "every image pinned to its digest in " + target.name)
        )  # fmt: skip
    actions += [
        Action(PromotionStep.CUT_OVER, f"move {target_model}@{champion_alias} to the new version"),
        Action(PromotionStep.RECORD_LINEAGE, "tag the new version with where it came from"),
        Action(PromotionStep.NOTIFY, "post the outcome here and hand off to deployment"),
    ]
    return actions
