"""Fixtures the fault tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.fuzzing import Served
from tests.faults.processes import MlflowProcess, launch_mlflow


@pytest.fixture(scope="module")
def staging_mlflow(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[MlflowProcess]:
    """Staging's own MLflow server, so the model copy crosses servers, artifacts and all."""
    server = launch_mlflow(tmp_path_factory.mktemp("mlflow-staging"))
    try:
        request.getfixturevalue("mlflow_server")  # dev's (shared by the session), started meanwhile
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def fuzzed(bots: list[Served]) -> list[Served]:
    """The bots (each fuzz module's own), each test's examples compared with the state they
    were in when it started."""
    for served in bots:
        served.mark()
    return bots
