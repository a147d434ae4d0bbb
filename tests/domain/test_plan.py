"""What a promotion will move where, before it moves anything."""

from __future__ import annotations

import pytest

from bot.domain.candidates import Candidate, ImageRef, Snapshot, parse_bundle
from bot.domain.plan import Place, Unplannable, plan, relocate_image, relocate_snapshot
from bot.domain.promotion import PromotionStep

D = "sha256:" + "ab" * 32
DEV = Place("dev", "127.0.0.1:5000/dev", "file:///srv/dev", "local")
STG = Place("staging", "127.0.0.1:5000/stg", "s3://ml-stg/data", "local", "staging.{model}")
OTHER_REGISTRY = Place("production", "registry.example.com/prod", "s3://ml-prod", "https://kfp")


@pytest.mark.parametrize(
    ("image", "source", "target", "expected"),
    [
        (
            ImageRef("127.0.0.1:5000", "dev/churn-serving", D),
            DEV,
            STG,
            ImageRef("127.0.0.1:5000", "stg/churn-serving", D),
        ),
        (
            ImageRef("127.0.0.1:5000", "dev/team/churn", D),
            DEV,
            STG,
            ImageRef("127.0.0.1:5000", "stg/team/churn", D),
        ),
        (
            ImageRef("127.0.0.1:5000", "dev/churn", D),
            DEV,
            OTHER_REGISTRY,
            ImageRef("registry.example.com", "prod/churn", D),
        ),
        # An image from elsewhere (a base image in a public registry) keeps its whole path.
        (
            ImageRef("docker.io", "library/python", D),
            DEV,
            STG,
            ImageRef("127.0.0.1:5000", "stg/library/python", D),
        ),
    ],
)
def test_images_keep_their_path_and_digest_under_the_target_prefix(
    image: ImageRef, source: Place, target: Place, expected: ImageRef
) -> None:
    assert relocate_image(image, source, target) == expected


def test_an_image_outside_the_source_prefix_of_its_own_registry_is_unplannable() -> None:
    with pytest.raises(Unplannable, match="not under dev's prefix"):
        relocate_image(ImageRef("127.0.0.1:5000", "devx/churn", D), DEV, STG)


def test_images_need_a_registry_on_both_sides() -> None:
    with pytest.raises(Unplannable, match="set `images`"):
        relocate_image(ImageRef("127.0.0.1:5000", "dev/churn", D), DEV, Place("staging"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///srv/dev/train/2026-11.parquet", "s3://ml-stg/data/train/2026-11.parquet"),
        ("gs://elsewhere/ckpt/model.pt", "s3://ml-stg/data/elsewhere/ckpt/model.pt"),
    ],
)
def test_snapshots_keep_their_relative_path(url: str, expected: str) -> None:
    moved = relocate_snapshot(Snapshot(url, "cd" * 32), DEV, STG)
    assert moved == Snapshot(expected, "cd" * 32)


def test_the_plan_lists_every_step_in_order() -> None:
    bundle = parse_bundle({
        "gatekeeper.image.serving": f"127.0.0.1:5000/dev/churn-serving@{D}",
        "gatekeeper.snapshot.train": "file:///srv/dev/train.parquet#sha256=" + "cd" * 32,
        "gatekeeper.pipeline": "pipeline.yaml",
    })  # fmt: skip
    candidate = Candidate("churn-classifier", "7", "dev", "staging", {}, bundle)
    actions = plan(candidate, DEV, STG, "champion")
    assert [a.step for a in actions] == list(PromotionStep)
    text = "\n".join(a.description for a in actions)
    assert "127.0.0.1:5000/stg/churn-serving, tagged churn-classifier-v7" in text
    assert "into staging's staging.churn-classifier" in text
    assert "move staging.churn-classifier@champion" in text


def test_a_bundle_without_images_snapshots_or_pipeline_plans_only_the_model() -> None:
    candidate = Candidate("churn-classifier", "7", "dev", "staging", {}, parse_bundle({}))
    steps = [a.step for a in plan(candidate, DEV, STG, "champion")]
    assert PromotionStep.COPY_IMAGES not in steps
    assert PromotionStep.REGISTER_PIPELINE not in steps
    assert steps[-3:] == [
        PromotionStep.CUT_OVER,
        PromotionStep.RECORD_LINEAGE,
        PromotionStep.NOTIFY,
    ]
