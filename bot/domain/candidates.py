"""A promotion candidate and the bundle its pipeline declared as ``gatekeeper.*`` version tags.

Malformed tags never raise: they become ``Bundle.problems``, which block the candidate with the
reason shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath

TAG_PREFIX = "gatekeeper."
IMAGE_TAG = "gatekeeper.image."
SNAPSHOT_TAG = "gatekeeper.snapshot."
PIPELINE_TAG = "gatekeeper.pipeline"
PROMOTE_TAG = "gatekeeper.promote"
#: Tags Gatekeeper itself writes on promoted versions; never part of a bundle.
LINEAGE_TAG = "gatekeeper.lineage."

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: The first path component is always the registry (host[:port]), as the bundle tag's format says.
_HOST = r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"^(?P<registry>{_HOST})/(?P<repository>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"@(?P<digest>sha256:[0-9a-f]{64})$"
)
_SNAPSHOT = re.compile(
    r"^(?P<url>[A-Za-z][A-Za-z0-9+.-]*://[^#\s]+)#sha256=(?P<sha256>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class ImageRef:
    registry: str  # host[:port]
    repository: str  # path inside the registry, environment prefix included
    digest: str  # sha256:<64 hex>

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"

    @property
    def short_digest(self) -> str:
        return self.digest[len("sha256:") :][:12]


@dataclass(frozen=True)
class Snapshot:
    url: str
    sha256: str


@dataclass(frozen=True)
class Bundle:
    """What a promotion moves besides the model version itself."""

    images: Mapping[str, ImageRef] = field(default_factory=dict)
    snapshots: Mapping[str, Snapshot] = field(default_factory=dict)
    pipeline: str | None = None  # path of the compiled KFP YAML inside the run's artifacts
    requested_target: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def is_valid(self) -> bool:
        return not self.problems


def parse_image(reference: str) -> ImageRef | None:
    """``registry/repository@sha256:hex`` as an ``ImageRef``; None when it is not one."""
    match = _IMAGE.match(reference.strip())
    if match is None:
        return None
    return ImageRef(match["registry"], match["repository"], match["digest"])


def parse_bundle(tags: Mapping[str, str]) -> Bundle:
    """Read the bundle from a model version's tags, collecting every problem instead of raising."""
    images: dict[str, ImageRef] = {}
    snapshots: dict[str, Snapshot] = {}
    pipeline: str | None = None
    target: str | None = None
    problems: list[str] = []

    for key in sorted(tags):
        value = tags[key]
        if not key.startswith(TAG_PREFIX) or key.startswith(LINEAGE_TAG):
            continue
        if key.startswith(IMAGE_TAG):
            name = key[len(IMAGE_TAG) :]
            image = parse_image(value)
            if not _NAME.fullmatch(name):
                problems.append(f"tag {key}: image name {name!r} is not a valid name")
            elif image is None:
                problems.append(
                    f"tag {key}: {value!r} is not an image by digest; "
                    "expected <registry>/<repository>@sha256:<64 hex digits>"
                )
            else:
                images[name] = image
        elif key.startswith(SNAPSHOT_TAG):
            name = key[len(SNAPSHOT_TAG) :]
            match = _SNAPSHOT.match(value.strip())
            if not _NAME.fullmatch(name):
                problems.append(f"tag {key}: snapshot name {name!r} is not a valid name")
            elif match is None:
                problems.append(
                    f"tag {key}: {value!r} is not a snapshot with a checksum; "
                    "expected <url>#sha256=<64 hex digits>"
                )
            else:
                snapshots[name] = Snapshot(match["url"], match["sha256"])
        elif key == PIPELINE_TAG:
            path = PurePosixPath(value.strip())
            if not path.parts or path.is_absolute() or ".." in path.parts:
                problems.append(
                    f"tag {key}: {value!r} must be a relative path inside the run's artifacts "
                    "(e.g. pipeline/pipeline.yaml)"
                )
            else:
                pipeline = str(path)
        elif key == PROMOTE_TAG:
            target = value.strip() or None
            if target is None:
                problems.append(f"tag {key}: empty; name the target environment")
        else:
            problems.append(
                f"tag {key}: unknown gatekeeper tag; expected gatekeeper.image.<name>, "
                "gatekeeper.snapshot.<name>, gatekeeper.pipeline or gatekeeper.promote"
            )
    return Bundle(images, snapshots, pipeline, target, tuple(problems))


@dataclass(frozen=True)
class Candidate:
    """A model version proposed for the next environment, as the policy sees it."""

    model: str
    version: str
    source_env: str
    target_env: str
    metrics: Mapping[str, float]
    bundle: Bundle
    requester: str | None = None  # Slack user ID of whoever asked; None when a pipeline did
    author: str | None = None  # Slack user ID of the model's author, when known
    created_at: datetime | None = None
