"""The OCI adapter against real registries: copies by digest, mounts, re-tags, auth and failures."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.adapters.oci import (
    DigestMismatch,
    ImageNotFound,
    ImageRef,
    ImageRegistries,
    ImageRegistry,
    RegistryAuthFailed,
    RegistryUnavailable,
)
from bot.adapters.oci.media import Descriptor, verified
from tests.oci_fixtures import (
    BASIC_PASSWORD,
    BASIC_USER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    TOKEN_PASSWORD,
    TOKEN_USER,
    PushedImage,
    Pusher,
    RunningRegistry,
    TokenRegistry,
    fetch_manifest,
    free_port,
    layer,
    sha256,
    unique,
)

MB = 1024 * 1024


@pytest.fixture
def registries() -> Iterator[ImageRegistries]:
    with ImageRegistries() as registries:
        yield registries


@pytest.fixture
def image(oci_pusher: Pusher) -> PushedImage:
    """A fresh OCI image of two layers in the source registry."""
    return oci_pusher.image(unique("dev/churn-serving"), [layer(40_000), layer(3_000)])


def ref(registry: RunningRegistry, image: PushedImage) -> ImageRef:
    return ImageRef(registry.host, image.repository, image.digest)


def served(registry: RunningRegistry, repository: str, reference: str) -> httpx.Response:
    response = fetch_manifest(registry.url, repository, reference)
    assert response.status_code == 200, response.text
    return response


def has_blob(registry: RunningRegistry, repository: str, digest: str) -> bool:
    url = f"{registry.url}/v2/{repository}/blobs/{digest}"
    return httpx.head(url, trust_env=False).status_code == 200


def skopeo(*arguments: str) -> str:
    if shutil.which("skopeo") is None:
        pytest.skip("needs skopeo (apt-get install skopeo)")
    done = subprocess.run(
        ["skopeo", *arguments[:-1], "--tls-verify=false", arguments[-1]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# --- copying ------------------------------------------------------------------------------------


def test_a_copy_within_one_registry_mounts_every_blob(
    oci_source: RunningRegistry, image: PushedImage, registries: ImageRegistries
) -> None:
    target = unique("stg/churn-serving")

    report = registries.copy_image(ref(oci_source, image), oci_source.host, target, ["churn-7"])

    assert (report.blobs_mounted, report.blobs_uploaded, report.bytes_uploaded) == (3, 0, 0)
    assert report.manifests_copied == 1
    assert report.target == f"{oci_source.host}/{target}@{image.digest}"
    assert served(oci_source, target, image.digest).content == image.manifest
    assert served(oci_source, target, "churn-7").headers["docker-content-digest"] == image.digest


def test_a_copy_across_registries_uploads_the_blobs_and_keeps_the_digest(
    oci_source: RunningRegistry,
    oci_target: RunningRegistry,
    image: PushedImage,
    registries: ImageRegistries,
) -> None:
    target = unique("stg/churn-serving")

    report = registries.copy_image(
        ref(oci_source, image), oci_target.host, target, ["churn-7", "latest"]
    )

    assert report.blobs_uploaded == 3
    assert report.bytes_uploaded == sum(size for _, size in image.blobs)
    assert report.blobs_mounted == report.blobs_skipped == 0
    for tag in ("churn-7", "latest", image.digest):
        assert sha256(served(oci_target, target, tag).content) == image.digest
    inspected = skopeo("inspect", f"docker://{oci_target.host}/{target}@{image.digest}")
    assert json.loads(inspected)["Digest"] == image.digest


def test_a_second_copy_skips_everything(
    oci_source: RunningRegistry,
    oci_target: RunningRegistry,
    image: PushedImage,
    registries: ImageRegistries,
) -> None:
    target = unique("stg/churn-serving")
    registries.copy_image(ref(oci_source, image), oci_target.host, target, ["churn-7"])

    again = registries.copy_image(ref(oci_source, image), oci_target.host, target, ["churn-7"])

    assert (again.manifests_copied, again.manifests_skipped) == (0, 1)
    assert (again.blobs_skipped, again.blobs_uploaded, again.blobs_mounted) == (3, 0, 0)
    assert again.bytes_uploaded == 0


@pytest.mark.parametrize("docker", [False, True], ids=["oci-index", "docker-manifest-list"])
def test_a_multi_arch_index_is_copied_with_its_children(
    oci_source: RunningRegistry,
    oci_target: RunningRegistry,
    oci_pusher: Pusher,
    registries: ImageRegistries,
    docker: bool,
) -> None:
    repository = unique("dev/churn-serving")
    shared = layer(5_000)  # both platforms share a layer: it is copied once
    amd64 = oci_pusher.image(repository, [shared, layer(1_000)], docker=docker)
    arm64 = oci_pusher.image(
        repository, [shared, layer(1_000)], docker=docker, platform=("linux", "arm64")
    )
    index = oci_pusher.index(
        repository, [(amd64, ("linux", "amd64")), (arm64, ("linux", "arm64"))], docker=docker
    )
    target = unique("stg/churn-serving")

    report = registries.copy_image(ref(oci_source, index), oci_target.host, target, ["churn-7"])

    assert report.manifests_copied == 3
    assert report.blobs_uploaded == len(index.all_blobs) == 5
    top = served(oci_target, target, "churn-7")
    assert (sha256(top.content), top.headers["content-type"]) == (
        index.digest,
        DOCKER_LIST if docker else OCI_INDEX,
    )
    for child in (amd64, arm64):
        assert served(oci_target, target, child.digest).content == child.manifest
    raw = skopeo("inspect", "--raw", f"docker://{oci_target.host}/{target}@{index.digest}")
    assert sha256(raw.encode()) == index.digest


def test_a_docker_schema_2_manifest_keeps_its_media_type(
    oci_source: RunningRegistry,
    oci_target: RunningRegistry,
    oci_pusher: Pusher,
    registries: ImageRegistries,
) -> None:
    image = oci_pusher.image(unique("dev/churn-serving"), [layer(2_000)], docker=True)
    target = unique("stg/churn-serving")

    registries.copy_image(ref(oci_source, image), oci_target.host, target, ["churn-7"])

    copied = served(oci_target, target, "churn-7")
    assert copied.headers["content-type"] == DOCKER_MANIFEST
    assert copied.content == image.manifest


def test_a_rollback_moves_the_tag_back_to_the_older_digest(
    oci_source: RunningRegistry, oci_pusher: Pusher, registries: ImageRegistries
) -> None:
    repository, target = unique("dev/churn-serving"), unique("prod/churn-serving")
    older = oci_pusher.image(repository, [layer(1_000)])
    newer = oci_pusher.image(repository, [layer(1_000)])
    registries.copy_image(ref(oci_source, older), oci_source.host, target, ["champion"])
    registries.copy_image(ref(oci_source, newer), oci_source.host, target, ["champion"])
    assert registries.resolve_tag(oci_source.host, target, "champion") == newer.digest

    registries.tag(oci_source.host, target, older.digest, "champion")

    assert registries.resolve_tag(oci_source.host, target, "champion") == older.digest
    assert served(oci_source, target, "champion").content == older.manifest


def test_exists_and_resolve_tag_answer_for_what_is_there_and_what_is_not(
    oci_source: RunningRegistry, image: PushedImage, registries: ImageRegistries
) -> None:
    missing = ImageRef(oci_source.host, image.repository, sha256(b"never pushed"))

    assert registries.exists(ref(oci_source, image))
    assert not registries.exists(missing)
    with pytest.raises(ImageNotFound, match=r":no-such-tag does not exist"):
        registries.resolve_tag(oci_source.host, image.repository, "no-such-tag")


# --- what goes wrong ----------------------------------------------------------------------------


def test_a_missing_digest_is_image_not_found_naming_the_image(
    oci_source: RunningRegistry,
    oci_target: RunningRegistry,
    image: PushedImage,
    registries: ImageRegistries,
) -> None:
    missing = ImageRef(oci_source.host, image.repository, sha256(b"never pushed"))

    with pytest.raises(ImageNotFound) as caught:
        registries.copy_image(missing, oci_target.host, unique("stg/x"), ["churn-7"])

    assert str(caught.value) == (f"{missing} does not exist: MANIFEST_UNKNOWN manifest unknown")


def test_a_missing_blob_is_image_not_found_naming_the_blob(
    oci_source: RunningRegistry,
    oci_target: RunningRegistry,
    image: PushedImage,
    registries: ImageRegistries,
) -> None:
    layer_digest = image.blobs[1][0]
    deleted = httpx.delete(
        f"{oci_source.url}/v2/{image.repository}/blobs/{layer_digest}", trust_env=False
    )
    assert deleted.status_code == 202

    with pytest.raises(
        ImageNotFound,
        match=rf"blob {layer_digest} in {oci_source.host}/{image.repository} does not exist",
    ):
        registries.copy_image(ref(oci_source, image), oci_target.host, unique("stg/x"), [])


def test_a_manifest_altered_in_the_source_is_a_digest_mismatch(
    oci_source: RunningRegistry,
    oci_target: RunningRegistry,
    image: PushedImage,
    registries: ImageRegistries,
) -> None:
    stored = oci_source.blob_file(image.digest)
    stored.write_bytes(stored.read_bytes().replace(b'"size"', b' "size"', 1))

    with pytest.raises(DigestMismatch, match="altered it"):
        registries.copy_image(ref(oci_source, image), oci_target.host, unique("stg/x"), [])


def test_a_damaged_layer_never_reaches_the_target(
    oci_source: RunningRegistry,
    oci_target: RunningRegistry,
    image: PushedImage,
    registries: ImageRegistries,
) -> None:
    layer_digest = image.blobs[1][0]
    stored = oci_source.blob_file(layer_digest)
    damaged = bytearray(stored.read_bytes())
    damaged[-100] ^= 0xFF  # same length: only the hash can tell
    stored.write_bytes(bytes(damaged))
    target = unique("stg/x")

    with pytest.raises(DigestMismatch, match="the source registry's copy is damaged"):
        registries.copy_image(ref(oci_source, image), oci_target.host, target, [])

    assert not has_blob(oci_target, target, layer_digest)
    assert fetch_manifest(oci_target.url, target, image.digest).status_code == 404


def test_a_damaged_stream_fails_before_its_last_chunk_is_sent() -> None:
    blob = Descriptor("application/octet-stream", sha256(b"abcdef"), 6)

    chunks = verified([b"abc", b"deX"], blob, "127.0.0.1:5000/dev/x")

    assert next(chunks) == b"abc"
    with pytest.raises(DigestMismatch, match="came as 6 bytes hashing to sha256:"):
        next(chunks)


@pytest.mark.parametrize(
    ("repository", "tag"),
    [("Stg/Churn", "churn-7"), ("stg/churn", "-churn")],
    ids=["repository", "tag"],
)
def test_a_malformed_name_is_refused_before_any_request(
    image: PushedImage, registries: ImageRegistries, repository: str, tag: str
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"  # it would be RegistryUnavailable had it been asked

    with pytest.raises(ValueError, match="is not a"):
        registries.copy_image(ImageRef(nowhere, "dev/x", image.digest), nowhere, repository, [tag])


class _StopsRegistryAtFirstUpload(httpx.BaseTransport):
    """The real network; the registry's process is killed as the first blob upload begins."""

    def __init__(self, registry: RunningRegistry) -> None:
        self.registry = registry
        self.network = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and "/blobs/uploads/" in request.url.path:
            self.registry.stop()
        return self.network.handle_request(request)


def test_a_target_registry_stopped_mid_copy_is_unavailable(
    oci_source: RunningRegistry, oci_disposable: RunningRegistry, image: PushedImage
) -> None:
    target = ImageRegistry(
        oci_disposable.host, transport=_StopsRegistryAtFirstUpload(oci_disposable)
    )

    with ImageRegistries([target]) as registries, pytest.raises(RegistryUnavailable) as caught:
        registries.copy_image(ref(oci_source, image), oci_disposable.host, unique("stg/x"), [])

    assert f"could not reach the image registry {oci_disposable.host}" in str(caught.value)
    with ImageRegistries() as again, pytest.raises(RegistryUnavailable, match="ConnectError"):
        again.copy_image(ref(oci_source, image), oci_disposable.host, unique("stg/x"), [])


def test_a_registry_nobody_listens_on_is_unavailable(registries: ImageRegistries) -> None:
    host = f"127.0.0.1:{free_port()}"

    with pytest.raises(RegistryUnavailable, match=f"could not reach the image registry {host}"):
        registries.exists(ImageRef(host, "dev/x", sha256(b"x")))


# --- authentication -----------------------------------------------------------------------------


def test_basic_auth_copies_with_the_right_credentials(
    oci_source: RunningRegistry, oci_basic: RunningRegistry, image: PushedImage
) -> None:
    basic = ImageRegistry(oci_basic.host, username=BASIC_USER, password=BASIC_PASSWORD)
    target = unique("stg/churn-serving")

    with ImageRegistries([basic]) as registries:
        report = registries.copy_image(ref(oci_source, image), oci_basic.host, target, ["churn-7"])
        assert registries.resolve_tag(oci_basic.host, target, "churn-7") == image.digest

    assert report.blobs_uploaded == 3


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        (
            (BASIC_USER, "wrong"),
            f"refused the credentials of '{BASIC_USER}'",
        ),
        ((None, None), "wants credentials for the registry's API, and none are configured for it"),
    ],
    ids=["wrong-password", "no-credentials"],
)
def test_basic_auth_refusals_say_so_without_the_password(
    oci_source: RunningRegistry,
    oci_basic: RunningRegistry,
    image: PushedImage,
    credentials: tuple[str | None, str | None],
    message: str,
) -> None:
    username, password = credentials
    client = ImageRegistry(oci_basic.host, username=username, password=password)
    with (
        ImageRegistries([client]) as registries,
        pytest.raises(RegistryAuthFailed) as caught,
    ):
        registries.copy_image(ref(oci_source, image), oci_basic.host, unique("stg/x"), [])

    assert message in str(caught.value)
    assert "wrong" not in str(caught.value)


def test_bearer_tokens_come_from_the_challenge_one_per_scope_and_are_reused(
    oci_source: RunningRegistry, oci_token: TokenRegistry, oci_pusher: Pusher
) -> None:
    repository = unique("dev/churn-serving")
    first, second = (oci_pusher.image(repository, [layer(1_000)]) for _ in range(2))
    host, target = oci_token.registry.host, unique("stg/churn-serving")
    oci_token.tokens.requests.clear()

    client = ImageRegistry(host, username=TOKEN_USER, password=TOKEN_PASSWORD)
    with ImageRegistries([client]) as registries:
        registries.copy_image(ref(oci_source, first), host, target, ["churn-7"])
        asked = list(oci_token.tokens.requests)
        registries.copy_image(ref(oci_source, second), host, target, ["churn-8"])
        assert registries.resolve_tag(host, target, "churn-8") == second.digest

    assert asked == [[f"repository:{target}:pull"], [f"repository:{target}:pull,push"]]
    assert oci_token.tokens.requests == asked, "the second copy needed no new token"


def test_bearer_tokens_for_a_mount_cover_both_repositories(
    oci_source: RunningRegistry, oci_token: TokenRegistry, image: PushedImage
) -> None:
    host = oci_token.registry.host
    staging, production = unique("stg/churn-serving"), unique("prod/churn-serving")
    client = ImageRegistry(host, username=TOKEN_USER, password=TOKEN_PASSWORD)

    with ImageRegistries([client]) as registries:
        registries.copy_image(ref(oci_source, image), host, staging, [])
        oci_token.tokens.requests.clear()
        report = registries.copy_image(
            ImageRef(host, staging, image.digest), host, production, ["churn-7"]
        )

    assert (report.blobs_mounted, report.bytes_uploaded) == (3, 0)
    assert (
        sorted([f"repository:{production}:pull,push", f"repository:{staging}:pull"])
        in oci_token.tokens.requests
    )


def test_a_token_service_refusing_the_password_is_registry_auth_failed(
    oci_source: RunningRegistry, oci_token: TokenRegistry, image: PushedImage
) -> None:
    host = oci_token.registry.host
    client = ImageRegistry(host, username=TOKEN_USER, password="not-the-password")

    with ImageRegistries([client]) as registries, pytest.raises(RegistryAuthFailed) as caught:
        registries.copy_image(ref(oci_source, image), host, unique("stg/x"), [])

    assert (
        f"the token service {oci_token.tokens.url} of the image registry {host} refused the credentials of '{TOKEN_USER}'"
        in str(caught.value)
    )
    assert "not-the-password" not in str(caught.value)


def test_a_static_bearer_token_is_sent_as_is_and_its_limits_hold(
    oci_source: RunningRegistry, oci_token: TokenRegistry, image: PushedImage
) -> None:
    host, target = oci_token.registry.host, unique("stg/churn-serving")
    may_push = oci_token.tokens.mint([f"repository:{target}:pull,push"])
    pull_only = oci_token.tokens.mint([f"repository:{target}:pull"])
    oci_token.tokens.requests.clear()

    with ImageRegistries([ImageRegistry(host, token=may_push)]) as registries:
        report = registries.copy_image(ref(oci_source, image), host, target, ["churn-7"])
    with ImageRegistries([ImageRegistry(host, token=pull_only)]) as registries:
        assert registries.exists(ImageRef(host, target, image.digest))
        with pytest.raises(RegistryAuthFailed, match="refused the configured bearer token"):
            registries.tag(host, target, image.digest, "churn-8")

    assert report.blobs_uploaded == 3
    assert oci_token.tokens.requests == [], "a static token needs no token service"


# --- memory -------------------------------------------------------------------------------------

#: Peak RSS is a high-water mark, and imports may have set it above what a copy needs: Linux
#: resets it on writing 5 to clear_refs, so the peak measured is the copy's own.
_COPY_AND_MEASURE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from bot.adapters.oci import ImageRef, ImageRegistries

    def status(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])

    source, repository, digest, target, target_repository = sys.argv[1:]
    with ImageRegistries() as registries:
        registries.registry(source).ping()
        registries.registry(target).ping()
        Path("/proc/self/clear_refs").write_text("5")
        before = status("VmRSS")
        ref = ImageRef(source, repository, digest)
        report = registries.copy_image(ref, target, target_repository, [])
        peak = status("VmHWM")
    print(json.dumps({"growth_kib": peak - before, "bytes": report.bytes_uploaded}))
    """
)


def test_copying_a_200_mb_layer_across_registries_keeps_memory_flat(
    oci_source: RunningRegistry, oci_target: RunningRegistry, oci_pusher: Pusher, tmp_path: Path
) -> None:
    repository = unique("dev/big-model")
    image = oci_pusher.large_image(repository, tmp_path / "layer.tar.gz", 200 * MB)
    (tmp_path / "layer.tar.gz").unlink()

    measured = subprocess.run(
        [
            sys.executable,
            "-c",
            _COPY_AND_MEASURE,
            oci_source.host,
            repository,
            image.digest,
            oci_target.host,
            unique("stg/big-model"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    result = json.loads(measured.stdout)
    assert result["bytes"] > 200 * MB
    assert result["growth_kib"] < 50 * 1024, f"peak RSS grew {result['growth_kib'] / 1024:.0f} MiB"


def test_a_registry_client_never_shows_its_password() -> None:
    registry = ImageRegistry("registry.example.com", username="robot", password="hunter2")

    assert repr(registry) == "ImageRegistry('registry.example.com', the credentials of 'robot')"
