"""Domain values to and from the JSON columns they are stored in."""

from __future__ import annotations

from typing import Any

from bot.domain.candidates import Bundle, ImageRef, Snapshot
from bot.domain.policy import Verdict


def bundle_to_json(bundle: Bundle) -> dict[str, Any]:
    return {
        "images": {name: str(image) for name, image in bundle.images.items()},
        "snapshots": {
            name: {"url": snap.url, "sha256": snap.sha256}
            for name, snap in bundle.snapshots.items()
        },
        "pipeline": bundle.pipeline,
        "requested_target": bundle.requested_target,
        "problems": list(bundle.problems),
    }


def bundle_from_json(data: dict[str, Any]) -> Bundle:
    images = {}
    for name, reference in data.get("images", {}).items():
        registry, _, rest = reference.partition("/")
        repository, _, digest = rest.partition("@")
        images[name] = ImageRef(registry, repository, digest)
    return Bundle(
        images=images,
        snapshots={
            n: Snapshot(s["url"], s["sha256"]) for n, s in data.get("snapshots", {}).items()
        },
        pipeline=data.get("pipeline"),
        requested_target=data.get("requested_target"),
        problems=tuple(data.get("problems", ())),
    )


def verdict_to_json(verdict: Verdict) -> dict[str, Any]:
    return {
        "kind": verdict.kind.value,
        "reasons": list(verdict.reasons),
        "override_by": sorted(verdict.override_by),
        "gates": [
            {
                "gate": str(result.gate),
                "outcome": result.outcome.value,
                "value": result.value,
                "threshold": result.threshold,
                "champion_value": result.champion_value,
                "explanation": result.explain(),
            }
            for result in verdict.gate_results
        ],
    }
