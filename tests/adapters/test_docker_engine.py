"""Pushing from a Docker engine: needs an engine, which this kind of machine does not run."""

from __future__ import annotations

import pytest

from bot.adapters.docker_engine import DockerEngine, DockerEngineUnavailable
from tests.oci_fixtures import RunningRegistry


def _engine() -> DockerEngine:
    try:
        return DockerEngine()
    except DockerEngineUnavailable as missing:
        pytest.skip(
            f"needs a running Docker engine (DOCKER_HOST or /var/run/docker.sock): {missing}"
        )


def test_without_an_engine_the_adapter_says_so_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    with pytest.raises(DockerEngineUnavailable, match="no Docker engine answers"):
        DockerEngine()


def test_a_local_image_is_pushed_and_comes_back_by_digest(oci_source: RunningRegistry) -> None:
    engine = _engine()
    pushed = engine.push("busybox:latest", oci_source.host, "dev/busybox", "gatekeeper-test")
    assert pushed.registry == oci_source.host
    assert pushed.digest.startswith("sha256:")
