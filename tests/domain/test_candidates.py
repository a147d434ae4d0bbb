"""Pins how a version's ``gatekeeper.*`` tags become a bundle, and how bad tags are reported."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.candidates import Bundle, ImageRef, Snapshot, parse_bundle, parse_image

HEX = "0123456789abcdef" * 4
DIGEST = f"sha256:{HEX}"
IMAGE = f"127.0.0.1:5000/dev/churn-serving@{DIGEST}"
SNAPSHOT = f"s3://ml-dev/snapshots/train.parquet#sha256={HEX}"


# reference, registry, repository
VALID_IMAGES = [
    pytest.param(IMAGE, "127.0.0.1:5000", "dev/churn-serving", id="ip-and-port"),
    pytest.param(
        f"localhost:5000/dev/churn@{DIGEST}", "localhost:5000", "dev/churn", id="host-and-port"
    ),
    pytest.param(
        f"registry.example.com/ml/churn@{DIGEST}",
        "registry.example.com",
        "ml/churn",
        id="dotted-hostname",
    ),
    pytest.param(f"registry/churn@{DIGEST}", "registry", "churn", id="bare-hostname"),
    pytest.param(f"[::1]:5000/dev/churn@{DIGEST}", "[::1]:5000", "dev/churn", id="ipv6-and-port"),
    pytest.param(
        f"ghcr.io/org/team/churn_serving__v2.x-y@{DIGEST}",
        "ghcr.io",
        "org/team/churn_serving__v2.x-y",
        id="deep-path-with-separators",
    ),
    pytest.param(f"  reg/churn@{DIGEST}\n", "reg", "churn", id="surrounding-whitespace"),
]


@pytest.mark.parametrize(("reference", "registry", "repository"), VALID_IMAGES)
def test_parse_image(reference: str, registry: str, repository: str) -> None:
    image = parse_image(reference)

    assert image == ImageRef(registry, repository, DIGEST)
    assert str(image) == reference.strip()
    assert image.short_digest == HEX[:12]


INVALID_IMAGES = [
    pytest.param("127.0.0.1:5000/dev/churn-serving:1.0", id="tag-instead-of-digest"),
    pytest.param("127.0.0.1:5000/dev/churn-serving:latest", id="latest-tag"),
    pytest.param("127.0.0.1:5000/dev/churn-serving@sha256:0123abcd", id="short-digest"),
    pytest.param(f"reg/churn@sha256:{HEX}0", id="long-digest"),
    pytest.param(f"reg/churn@sha256:{HEX.upper()}", id="uppercase-hex"),
    pytest.param(f"reg/churn@sha256:{'g' * 64}", id="not-hex"),
    pytest.param(f"reg/churn@sha512:{HEX}", id="other-algorithm"),
    pytest.param(f"reg/churn@{HEX}", id="no-algorithm"),
    pytest.param(f"reg/Dev/Churn@{DIGEST}", id="uppercase-repository"),
    pytest.param(f"churn-serving@{DIGEST}", id="missing-registry"),
    pytest.param(f"reg/@{DIGEST}", id="empty-repository"),
    pytest.param(f"reg/dev/@{DIGEST}", id="trailing-slash"),
    pytest.param(f"reg/dev//churn@{DIGEST}", id="double-slash"),
    pytest.param(f"reg/-churn@{DIGEST}", id="repository-starts-with-dash"),
    pytest.param(f"https://reg/churn@{DIGEST}", id="url-scheme"),
    pytest.param(f"reg/chu rn@{DIGEST}", id="space-inside"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("reference", INVALID_IMAGES)
def test_parse_image_refuses(reference: str) -> None:
    assert parse_image(reference) is None


@pytest.mark.parametrize("reference", INVALID_IMAGES)
def test_a_malformed_image_tag_is_a_problem_naming_the_tag(reference: str) -> None:
    bundle = parse_bundle({"gatekeeper.image.serving": reference})

    assert bundle.images == {}
    assert len(bundle.problems) == 1
    assert "gatekeeper.image.serving" in bundle.problems[0]
    assert "by digest" in bundle.problems[0]


def test_images_are_read_by_name() -> None:
    bundle = parse_bundle(
        {"gatekeeper.image.serving": IMAGE, "gatekeeper.image.batch-scorer": f"reg/b@{DIGEST}"}
    )

    assert bundle.images == {
        "serving": ImageRef("127.0.0.1:5000", "dev/churn-serving", DIGEST),
        "batch-scorer": ImageRef("reg", "b", DIGEST),
    }
    assert bundle.is_valid


# tag value, url
VALID_SNAPSHOTS = [
    pytest.param(
        f"file:///srv/dev/data/train.parquet#sha256={HEX}",
        "file:///srv/dev/data/train.parquet",
        id="file",
    ),
    pytest.param(SNAPSHOT, "s3://ml-dev/snapshots/train.parquet", id="s3"),
    pytest.param(f"gs://bucket/ckpt/model.pt#sha256={HEX}", "gs://bucket/ckpt/model.pt", id="gs"),
    pytest.param(
        f" s3://b/k?versionId=3#sha256={HEX} ", "s3://b/k?versionId=3", id="query-and-whitespace"
    ),
]


@pytest.mark.parametrize(("value", "url"), VALID_SNAPSHOTS)
def test_snapshots_carry_url_and_checksum(value: str, url: str) -> None:
    bundle = parse_bundle({"gatekeeper.snapshot.train": value})

    assert bundle.snapshots == {"train": Snapshot(url, HEX)}
    assert bundle.is_valid


MALFORMED_SNAPSHOTS = [
    pytest.param("s3://ml-dev/train.parquet", id="no-checksum"),
    pytest.param(f"s3://ml-dev/train.parquet#md5={HEX[:32]}", id="other-checksum"),
    pytest.param(f"s3://ml-dev/train.parquet#sha256:{HEX}", id="colon-not-equals"),
    pytest.param("s3://ml-dev/train.parquet#sha256=0123abcd", id="short-hex"),
    pytest.param(f"s3://ml-dev/train.parquet#sha256={HEX.upper()}", id="uppercase-hex"),
    pytest.param(f"s3://ml-dev/train.parquet#sha256={'z' * 64}", id="not-hex"),
    pytest.param(f"/srv/dev/train.parquet#sha256={HEX}", id="no-scheme-absolute"),
    pytest.param(f"ml-dev/train.parquet#sha256={HEX}", id="no-scheme-relative"),
    pytest.param(f"s3://#sha256={HEX}", id="nothing-after-scheme"),
    pytest.param(f"s3://ml dev/train.parquet#sha256={HEX}", id="space-in-url"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("value", MALFORMED_SNAPSHOTS)
def test_a_malformed_snapshot_is_a_problem_naming_the_tag(value: str) -> None:
    bundle = parse_bundle({"gatekeeper.snapshot.train": value})

    assert bundle.snapshots == {}
    assert len(bundle.problems) == 1
    assert "gatekeeper.snapshot.train" in bundle.problems[0]
    assert "checksum" in bundle.problems[0]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("gatekeeper.image.", id="image-empty-name"),
        pytest.param("gatekeeper.image.my image", id="image-space-in-name"),
        pytest.param("gatekeeper.image.-serving", id="image-name-starts-with-dash"),
        pytest.param("gatekeeper.image.serving\n", id="image-name-trailing-newline"),
        pytest.param("gatekeeper.image." + "a" * 129, id="image-name-too-long"),
        pytest.param("gatekeeper.snapshot.", id="snapshot-empty-name"),
        pytest.param("gatekeeper.snapshot.train/set", id="snapshot-slash-in-name"),
        pytest.param("gatekeeper.snapshot.train\n", id="snapshot-name-trailing-newline"),
    ],
)
def test_an_invalid_name_is_a_problem(key: str) -> None:
    value = IMAGE if key.startswith("gatekeeper.image.") else SNAPSHOT

    bundle = parse_bundle({key: value})

    assert bundle.images == {}
    assert bundle.snapshots == {}
    assert len(bundle.problems) == 1
    assert "not a valid name" in bundle.problems[0]


# tag value, pipeline as read
VALID_PIPELINES = [
    pytest.param("pipeline/pipeline.yaml", "pipeline/pipeline.yaml", id="nested"),
    pytest.param("pipeline.yaml", "pipeline.yaml", id="top-level"),
    pytest.param("./pipeline/pipeline.yaml", "pipeline/pipeline.yaml", id="dot-slash"),
    pytest.param(" pipeline/pipeline.yaml ", "pipeline/pipeline.yaml", id="whitespace"),
]


@pytest.mark.parametrize(("value", "pipeline"), VALID_PIPELINES)
def test_pipeline_path(value: str, pipeline: str) -> None:
    bundle = parse_bundle({"gatekeeper.pipeline": value})

    assert bundle.pipeline == pipeline
    assert bundle.is_valid


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("/pipeline/pipeline.yaml", id="absolute"),
        pytest.param("../pipeline.yaml", id="parent"),
        pytest.param("pipeline/../../pipeline.yaml", id="parent-inside"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param(".", id="the-artifact-root-itself"),
    ],
)
def test_a_pipeline_path_outside_the_artifacts_is_a_problem(value: str) -> None:
    bundle = parse_bundle({"gatekeeper.pipeline": value})

    assert bundle.pipeline is None
    assert len(bundle.problems) == 1
    assert "gatekeeper.pipeline" in bundle.problems[0]
    assert "relative path" in bundle.problems[0]


@pytest.mark.parametrize(
    ("value", "target"),
    [
        pytest.param("staging", "staging", id="plain"),
        pytest.param(" production ", "production", id="whitespace"),
    ],
)
def test_promote_tag_requests_a_target(value: str, target: str) -> None:
    bundle = parse_bundle({"gatekeeper.promote": value})

    assert bundle.requested_target == target
    assert bundle.is_valid


@pytest.mark.parametrize("value", [pytest.param("", id="empty"), pytest.param("  ", id="blank")])
def test_an_empty_promote_tag_is_a_problem(value: str) -> None:
    bundle = parse_bundle({"gatekeeper.promote": value})

    assert bundle.requested_target is None
    assert bundle.problems == ("tag gatekeeper.promote: empty; name the target environment",)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("gatekeeper.images.serving", id="plural-images"),
        pytest.param("gatekeeper.imageserving", id="missing-dot"),
        pytest.param("gatekeeper.pipelines", id="plural-pipeline"),
        pytest.param("gatekeeper.pipeline.path", id="pipeline-with-suffix"),
        pytest.param("gatekeeper.target", id="unknown-word"),
        pytest.param("gatekeeper.", id="prefix-only"),
    ],
)
def test_an_unknown_gatekeeper_tag_is_a_problem(key: str) -> None:
    bundle = parse_bundle({key: "x"})

    assert len(bundle.problems) == 1
    assert key in bundle.problems[0]
    assert "unknown gatekeeper tag" in bundle.problems[0]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("gatekeeper.lineage.promoted_from", id="lineage"),
        pytest.param("gatekeeper.lineage.approved_by", id="lineage-other"),
        pytest.param("mlflow.source.name", id="mlflow"),
        pytest.param("team", id="plain"),
        pytest.param("gatekeeper", id="prefix-without-dot"),
        pytest.param("my.gatekeeper.image.serving", id="prefix-not-at-start"),
    ],
)
def test_tags_that_are_not_bundle_tags_are_ignored(key: str) -> None:
    assert parse_bundle({key: "anything at all"}) == Bundle()


def test_every_problem_is_reported_at_once() -> None:
    tags = {
        "gatekeeper.image.serving": IMAGE,
        "gatekeeper.image.batch": "reg/batch:latest",
        "gatekeeper.snapshot.train": "s3://ml-dev/train.parquet",
        "gatekeeper.pipeline": "/abs/pipeline.yaml",
        "gatekeeper.promote": "",
        "gatekeeper.colour": "blue",
        "gatekeeper.lineage.promoted_from": "dev",
    }

    bundle = parse_bundle(tags)

    assert not bundle.is_valid
    assert len(bundle.problems) == 5
    for key in (
        "gatekeeper.image.batch",
        "gatekeeper.snapshot.train",
        "gatekeeper.pipeline",
        "gatekeeper.promote",
        "gatekeeper.colour",
    ):
        assert sum(problem.startswith(f"tag {key}:") for problem in bundle.problems) == 1
    assert bundle.images == {"serving": ImageRef("127.0.0.1:5000", "dev/churn-serving", DIGEST)}


def test_a_full_bundle() -> None:
    bundle = parse_bundle(
        {
            "gatekeeper.image.serving": IMAGE,
            "gatekeeper.snapshot.train": SNAPSHOT,
            "gatekeeper.pipeline": "pipeline/pipeline.yaml",
            "gatekeeper.promote": "staging",
            "mlflow.user": "ana",
        }
    )

    assert bundle == Bundle(
        images={"serving": ImageRef("127.0.0.1:5000", "dev/churn-serving", DIGEST)},
        snapshots={"train": Snapshot("s3://ml-dev/snapshots/train.parquet", HEX)},
        pipeline="pipeline/pipeline.yaml",
        requested_target="staging",
    )
    assert bundle.is_valid


@given(st.dictionaries(st.text(), st.text()))
def test_parse_bundle_never_raises(tags: dict[str, str]) -> None:
    bundle = parse_bundle(tags)

    assert bundle.is_valid is (not bundle.problems)
    assert all(isinstance(problem, str) and problem for problem in bundle.problems)


_BUNDLE_KEYS = st.sampled_from(
    [
        "gatekeeper.image.",
        "gatekeeper.snapshot.",
        "gatekeeper.pipeline",
        "gatekeeper.promote",
        "gatekeeper.lineage.",
        "gatekeeper.",
    ]
)


@given(st.dictionaries(st.builds(str.__add__, _BUNDLE_KEYS, st.text()), st.text()))
def test_parse_bundle_never_raises_on_gatekeeper_tags(tags: dict[str, str]) -> None:
    bundle = parse_bundle(tags)

    read = len(bundle.images) + len(bundle.snapshots)
    read += bundle.pipeline is not None
    read += bundle.requested_target is not None
    ignored = sum(key.startswith("gatekeeper.lineage.") for key in tags)
    # every gatekeeper tag is either read into the bundle, reported, or lineage
    assert read + len(bundle.problems) + ignored == len(tags)
