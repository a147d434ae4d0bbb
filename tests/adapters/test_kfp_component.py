"""The request_promotion component, run by kfp.local against a real MLflow server, and the
example pipeline that ends with it."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kfp import compiler, local
from mlflow.tracking import MlflowClient

from bot.domain.candidates import parse_bundle
from bot.kfp_components import MLFLOW_PACKAGE, request_promotion

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "examples" / "train_and_request.py"
IMAGE = "127.0.0.1:5000/dev/churn-serving@sha256:" + "ab" * 32
SNAPSHOT = "file:///srv/dev/train.parquet#sha256=" + "cd" * 32
SET_TAG = "/api/2.0/mlflow/model-versions/set-tag"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@contextlib.contextmanager
def recording_proxy(upstream: str) -> Iterator[tuple[str, list[str]]]:
    """A loopback proxy in front of MLflow: its URL, and the tag keys set through it, in order."""
    tags_set: list[str] = []

    class Forward(BaseHTTPRequestHandler):
        def forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith(SET_TAG):
                tags_set.append(json.loads(body)["key"])
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            with httpx.Client(trust_env=False, timeout=30) as client:
                answer = client.request(
                    self.command, upstream + self.path, content=body, headers=headers
                )
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("Content-Type", "text/plain"))
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        # http.server's names for the methods MlflowClient uses.
        do_GET = forward  # noqa: N815
        do_POST = forward  # noqa: N815

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tags_set
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def version(mlflow_client: MlflowClient) -> tuple[str, str]:
    """A freshly registered model version with no tags: (registered name, version)."""
    name = f"kfp-component-{uuid.uuid4().hex[:8]}"
    mlflow_client.create_registered_model(name)
    experiment = mlflow_client.get_experiment_by_name("kfp-component")
    run = mlflow_client.create_run(
        experiment.experiment_id if experiment else mlflow_client.create_experiment("kfp-component")
    )
    created = mlflow_client.create_model_version(
        name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    return name, str(created.version)


def run_locally(tmp_path: Path, **arguments: Any) -> tuple[Any, str]:
    """Run the component with kfp.local as a pipeline author would: (its task, its output)."""
    printed = io.StringIO()
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path))
    task: Any = None
    with contextlib.redirect_stdout(printed):
        try:
            task = request_promotion(**arguments)
        except RuntimeError as failure:
            print(failure)
    return task, _ANSI.sub("", printed.getvalue())


def test_the_bundle_is_tagged_and_the_request_comes_last(
    tmp_path: Path, mlflow_server: str, mlflow_client: MlflowClient, version: tuple[str, str]
) -> None:
    name, number = version
    with recording_proxy(mlflow_server) as (url, tags_set):
        task, printed = run_locally(
            tmp_path,
            mlflow_tracking_uri=url,
            model_name=name,
            model_version=number,
            target="staging",
            images={"serving": IMAGE},
            snapshots={"train": SNAPSHOT},
            pipeline="pipeline/churn.yaml",
        )
    assert task is not None, printed
    assert task.output == f"models:/{name}/{number}"
    assert tags_set[-1] == "gatekeeper.promote"
    assert sorted(tags_set[:-1]) == [
        "gatekeeper.image.serving",
        "gatekeeper.pipeline",
        "gatekeeper.snapshot.train",
    ]

    tags = mlflow_client.get_model_version(name, number).tags
    bundle = parse_bundle(tags)
    assert bundle.problems == ()
    assert str(bundle.images["serving"]) == IMAGE
    assert bundle.snapshots["train"].url == "file:///srv/dev/train.parquet"
    assert bundle.pipeline == "pipeline/churn.yaml"
    assert bundle.requested_target == "staging"


def test_bad_input_is_named_and_nothing_is_tagged(
    tmp_path: Path, mlflow_server: str, mlflow_client: MlflowClient, version: tuple[str, str]
) -> None:
    name, number = version
    task, printed = run_locally(
        tmp_path,
        mlflow_tracking_uri=mlflow_server,
        model_name=name,
        model_version=number,
        target="staging",
        images={"serving": "127.0.0.1:5000/dev/churn-serving:latest"},
        snapshots={"train": "file:///srv/dev/train.parquet"},
        pipeline="/abs/pipeline.yaml",
    )
    assert task is None
    assert "ValueError: nothing was tagged" in printed
    assert "images['serving']: '127.0.0.1:5000/dev/churn-serving:latest' is not an image by " in (
        printed
    )
    assert "snapshots['train']: 'file:///srv/dev/train.parquet' has no checksum" in printed
    assert "pipeline: '/abs/pipeline.yaml' must be a relative path" in printed
    assert mlflow_client.get_model_version(name, number).tags == {}


def test_an_unknown_version_is_named_and_nothing_is_tagged(
    tmp_path: Path, mlflow_server: str, mlflow_client: MlflowClient, version: tuple[str, str]
) -> None:
    name, number = version
    task, printed = run_locally(
        tmp_path,
        mlflow_tracking_uri=mlflow_server,
        model_name=name,
        model_version="999",
        target="staging",
        images={"serving": IMAGE},
        snapshots={},
    )
    assert task is None
    said = f"ValueError: nothing was tagged: {mlflow_server} has no model '{name}' version '999'"
    assert said in printed
    assert mlflow_client.get_model_version(name, number).tags == {}


def test_the_example_pipeline_compiles_and_ends_by_requesting(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("train_and_request", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    compiled = tmp_path / "train_and_request.yaml"
    compiler.Compiler().compile(example.train_and_request, str(compiled))

    pipeline = yaml.safe_load(compiled.read_text(encoding="utf-8"))
    tasks = pipeline["root"]["dag"]["tasks"]
    assert set(tasks) == {"train", "request-promotion"}
    assert tasks["request-promotion"]["dependentTasks"] == ["train"]
    arguments = tasks["request-promotion"]["inputs"]["parameters"]
    assert "train" in json.dumps(arguments["snapshots"])
    assert set(pipeline["root"]["inputDefinitions"]["parameters"]) == {
        "mlflow_tracking_uri", "serving_image", "snapshot_root", "model_name", "target",
    }  # fmt: skip
    # The cluster installs what each step needs; mlflow-skinny pinned to the server's series.
    command = json.dumps(pipeline["deploymentSpec"]["executors"]["exec-request-promotion"])
    assert MLFLOW_PACKAGE in command
