"""The KFP adapter on a real compiled pipeline: pinning, kfp.local runs, and the KFP REST client
against a local stand-in of the v2beta1 API (no Kubeflow cluster runs here)."""

from __future__ import annotations

import email.parser
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from kfp import compiler

from bot.adapters.kfp import (
    LocalPipelineRunner,
    PipelineHostRefused,
    PipelineHostUnavailable,
    PipelineRunFailed,
    PipelineRunTimedOut,
    PipelineSpecInvalid,
    PipelineVersionConflict,
    RemotePipelines,
    RunState,
    load_pipeline_spec,
    pin_images,
)
from tests.adapters.pipelines.churn_pipeline import TRAIN_IMAGE, churn_pipeline

STAGING_TRAIN = "127.0.0.1:5000/stg/churn-train@sha256:" + "c" * 64
EXECUTORS = ("exec-make-dataset", "exec-train-threshold")
# What kfp-kubernetes appends as a second document: pull secrets and node placement.
PLATFORM_SPEC = """\
---
platforms:
  kubernetes:
    deploymentSpec:
      executors:
        exec-train-threshold:
          imagePullSecret:
          - secretName: stg-registry
          nodeSelector:
            labels:
              pool: cpu
"""


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compiled") / "churn.yaml"
    compiler.Compiler().compile(churn_pipeline, str(path))
    return path


@pytest.fixture(scope="module")
def spec_text(spec_path: Path) -> str:
    return spec_path.read_text()


def documents(text: str) -> list[Any]:
    return [document for document in yaml.safe_load_all(text) if document is not None]


def with_images(text: str, **images: str) -> str:
    """The spec re-dumped with some executors' images replaced (keys with _ for -)."""
    spec = yaml.safe_load(text)
    for executor, image in images.items():
        spec["deploymentSpec"]["executors"][executor.replace("_", "-")]["container"]["image"] = (
            image
        )
    return yaml.safe_dump(spec, sort_keys=False)


# --- reading specs ------------------------------------------------------------------------


def test_loads_a_compiled_pipeline_with_every_document(spec_path: Path, spec_text: str) -> None:
    from_file = load_pipeline_spec(spec_path)
    both = load_pipeline_spec(spec_text + PLATFORM_SPEC)

    assert from_file.name == "churn-classifier"
    assert from_file.images == dict.fromkeys(EXECUTORS, TRAIN_IMAGE)
    assert from_file.parameters == {"customers": "NUMBER_INTEGER", "fail": "BOOLEAN"}
    assert load_pipeline_spec(str(spec_path)).text == spec_text
    assert both.pipeline_spec == from_file.pipeline_spec
    assert both.platform_specs == (documents(PLATFORM_SPEC)[0],)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("pipelineInfo: {name: x\nroot: {}", "is not valid YAML at line"),
        ("- just\n- a list\n", "not YAML maps"),
        ("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n", "KFP v1 package"),
        ("components: {}\ndeploymentSpec: {}\n", "no pipelineInfo.name and root"),
        ("pipelineInfo: {name: x}\nroot: {dag: {tasks: 3}}\n", "not a valid KFP v2 spec"),
        ("pipelineInfo: {name: x}\nroot: {}\n---\nplatforms: 7\n", "not a valid KFP v2 spec"),
    ],
)
def test_refuses_what_is_not_a_compiled_v2_pipeline(text: str, said: str) -> None:
    with pytest.raises(PipelineSpecInvalid, match=said):
        load_pipeline_spec(text)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PipelineSpecInvalid, match=r"cannot read the pipeline spec .*gone\.yaml"):
        load_pipeline_spec(tmp_path / "gone.yaml")


# --- pinning images -----------------------------------------------------------------------


def test_pins_every_executor_image_and_changes_nothing_else(spec_text: str) -> None:
    text = spec_text + PLATFORM_SPEC

    pinned = pin_images(text, {TRAIN_IMAGE: STAGING_TRAIN})

    assert pinned.ok
    assert not pinned.warnings
    assert {(p.executor, p.source, p.target) for p in pinned.pinned} == {
        (executor, TRAIN_IMAGE, STAGING_TRAIN) for executor in EXECUTORS
    }
    assert load_pipeline_spec(pinned.text).images == dict.fromkeys(EXECUTORS, STAGING_TRAIN)
    masked = documents(pinned.text)
    for executor in EXECUTORS:
        masked[0]["deploymentSpec"]["executors"][executor]["container"]["image"] = TRAIN_IMAGE
    assert masked == documents(text)
    # Only the image values were rewritten: comments, order and quoting are the original bytes.
    assert pinned.text.replace(STAGING_TRAIN, TRAIN_IMAGE) == text


def test_matches_the_bundle_by_repository_ignoring_tag_and_digest(spec_text: str) -> None:
    tagged = with_images(spec_text, exec_make_dataset="127.0.0.1:5000/dev/churn-train:1.4")
    other_build = "127.0.0.1:5000/dev/churn-train@sha256:" + "b" * 64

    pinned = pin_images(tagged, {other_build: STAGING_TRAIN})

    assert pinned.ok
    assert set(load_pipeline_spec(pinned.text).images.values()) == {STAGING_TRAIN}
    # The compiled digest differs from the bundle's: pinned to the bundle, and said so.
    (note,) = pinned.warnings
    assert note.startswith(f"exec-train-threshold was compiled with {TRAIN_IMAGE}")
    assert other_build in note


@pytest.mark.parametrize(
    ("image", "kind", "said"),
    [
        (
            "ghcr.io/acme/feature-tools@sha256:" + "d" * 64,
            "warnings",
            "pinned by digest but not in the bundle",
        ),
        ("python:3.11", "problems", "a tag that can move"),
        ("{{$.inputs.parameters['pipelinechannel--image']}}", "problems", "run-time parameter"),
    ],
)
def test_reports_images_it_cannot_pin(spec_text: str, image: str, kind: str, said: str) -> None:
    spec = with_images(spec_text, exec_make_dataset=image)

    pinned = pin_images(spec, {TRAIN_IMAGE: STAGING_TRAIN})

    (report,) = getattr(pinned, kind)
    assert report.startswith("exec-make-dataset")
    assert said in report
    assert pinned.ok is (kind == "warnings")
    images = documents(pinned.text)[0]["deploymentSpec"]["executors"]
    assert images["exec-make-dataset"]["container"]["image"] == image  # left as it was
    assert images["exec-train-threshold"]["container"]["image"] == STAGING_TRAIN


def test_two_bundle_images_of_one_repository_need_a_digest_to_choose(spec_text: str) -> None:
    tagged = with_images(spec_text, exec_make_dataset="127.0.0.1:5000/dev/churn-train:1.4")
    bundle = {
        TRAIN_IMAGE: STAGING_TRAIN,
        TRAIN_IMAGE[:-64] + "e" * 64: STAGING_TRAIN[:-64] + "f" * 64,
    }

    pinned = pin_images(tagged, bundle)

    (problem,) = pinned.problems
    assert problem.startswith("exec-make-dataset")
    assert "several images" in problem
    assert [p.executor for p in pinned.pinned] == ["exec-train-threshold"]  # its digest chose


def test_content_stays_equal_when_splicing_cannot_keep_the_bytes(spec_text: str) -> None:
    # An anchored image reused outside an executor: rewriting it in place would change both.
    spec = spec_text.replace(f"image: {TRAIN_IMAGE}", f"image: &train {TRAIN_IMAGE}", 1)
    spec = spec.replace(
        "  description: Train the churn", "  description: *train\n  summary: Train the churn"
    )

    pinned = pin_images(spec, {TRAIN_IMAGE: STAGING_TRAIN})

    expected = documents(spec)
    for executor in EXECUTORS:
        expected[0]["deploymentSpec"]["executors"][executor]["container"]["image"] = STAGING_TRAIN
    assert documents(pinned.text) == expected
    assert expected[0]["pipelineInfo"]["description"] == TRAIN_IMAGE


def test_refuses_a_target_that_is_not_by_digest(spec_text: str) -> None:
    with pytest.raises(ValueError, match="not pinned by digest"):
        pin_images(spec_text, {TRAIN_IMAGE: "127.0.0.1:5000/stg/churn-train:latest"})


# --- running with kfp.local ---------------------------------------------------------------


def test_runs_the_pinned_pipeline_locally(spec_text: str, tmp_path: Path) -> None:
    pinned = pin_images(spec_text + PLATFORM_SPEC, {TRAIN_IMAGE: STAGING_TRAIN})

    run = LocalPipelineRunner(tmp_path / "root").run(pinned.text, {"customers": 20})

    assert run.pipeline == "churn-classifier"
    assert run.parameters == {"accuracy": pytest.approx(0.9)}
    assert run.metrics == {"accuracy": pytest.approx(0.9), "threshold_minutes": 110.0}
    metrics = run.artifact("metrics")
    assert metrics.schema_title == "system.Metrics"
    assert Path(metrics.uri).is_relative_to(tmp_path / "root")
    assert "threshold 110 minutes, accuracy 0.900" in run.logs["train-threshold"]


def test_a_failing_task_is_named_with_its_log(spec_text: str, tmp_path: Path) -> None:
    runner = LocalPipelineRunner(tmp_path)
    compiled = load_pipeline_spec(spec_text)

    with pytest.raises(PipelineRunFailed) as failed:
        runner.run(compiled, {"customers": 20, "fail": True})

    assert str(failed.value) == (
        "pipeline churn-classifier failed in task train-threshold: "
        "RuntimeError: training data rejected: asked to fail"
    )
    assert failed.value.task == "train-threshold"
    assert "Traceback (most recent call last)" in failed.value.log_tail
    with pytest.raises(PipelineRunFailed, match=r"could not start: .*unexpected keyword argument"):
        runner.run(compiled, {"rows": 20})


# --- a stand-in for the KFP v2beta1 REST API ----------------------------------------------

CREATED_AT = "2025-06-02T09:00:00Z"


@dataclass
class FakeKfp:
    """Just enough of Kubeflow Pipelines' v2beta1 REST API, answering with its JSON shapes."""

    token: str = "kfp-token"
    not_kfp: bool = False  # answer 404 to everything, as a web server at the wrong URL would
    outage: int = 0  # answer this many next requests with 503, as a restarting API server would
    #: The states each new run reports, one per GET; the last one repeats.
    run_states: list[str] = field(default_factory=lambda: ["PENDING", "RUNNING", "SUCCEEDED"])
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    _polls: dict[str, int] = field(default_factory=dict)

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        self.calls.append(f"{method} {path}")
        route = path.removeprefix("/apis/v2beta1/").split("/")
        if self.not_kfp:
            route = ["elsewhere"]
        if self.outage:
            self.outage -= 1
            return 503, {"code": 14, "message": "upstream connect error"}
        if route == ["healthz"]:
            return 200, {"commit_sha": "0f1e2d3", "tag_name": "2.5.0", "multi_user": False}
        if route == ["pipelines"] and method == "GET":
            return 200, self._listed("pipelines", self.pipelines.values(), query)
        if route == ["pipelines"] and method == "POST":
            pipeline = {"pipeline_id": str(uuid.uuid4()), "display_name": body["display_name"],
                        "name": body["display_name"], "description": body.get("description", ""),
                        "created_at": CREATED_AT}  # fmt: skip
            self.pipelines[pipeline["pipeline_id"]] = pipeline
            return 200, pipeline
        if route[0] == "pipelines" and route[2:] == ["versions"]:
            mine = [v for v in self.versions.values() if v["pipeline_id"] == route[1]]
            return 200, self._listed("pipeline_versions", mine, query)
        if route == ["pipelines", "upload_version"]:
            return self._upload_version(query, body)
        if route == ["experiments"] and method == "GET":
            return 200, self._listed("experiments", self.experiments.values(), query)
        if route == ["experiments"] and method == "POST":
            experiment = {"experiment_id": str(uuid.uuid4()), "display_name": body["display_name"],
                          "created_at": CREATED_AT, "storage_state": "AVAILABLE"}  # fmt: skip
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        if route == ["runs"] and method == "POST":
            run = {**body, "run_id": str(uuid.uuid4()), "storage_state": "AVAILABLE",
                   "service_account": "pipeline-runner", "created_at": CREATED_AT,
                   "scheduled_at": CREATED_AT, "finished_at": "1970-01-01T00:00:00Z",
                   "state": "PENDING"}  # fmt: skip
            self.runs[run["run_id"]] = run
            return 200, run
        if route[0] == "runs" and len(route) == 2 and method == "GET":
            return self._poll(route[1])
        return 404, {"code": 5, "message": "Not Found", "details": []}

    def _listed(self, key: str, items: Any, query: dict[str, str]) -> dict[str, Any]:
        wanted = json.loads(query["filter"])["predicates"][0]["stringValue"]
        found = [item for item in items if item["display_name"] == wanted]
        # grpc-gateway leaves out empty fields, as KFP's answers do.
        return {key: found, "total_size": len(found)} if found else {}

    def _upload_version(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if query.get("pipelineid") not in self.pipelines:
            return 404, {"code": 5, "message": f"Pipeline {query.get('pipelineid')} not found"}
        spec = yaml.safe_load_all(body)
        self.uploads.append(body)
        version = {"pipeline_id": query["pipelineid"], "pipeline_version_id": str(uuid.uuid4()),
                   "display_name": query["name"], "name": query["name"],
                   "description": query.get("description", ""), "created_at": CREATED_AT,
                   "pipeline_spec": next(spec)}  # fmt: skip
        self.versions[version["pipeline_version_id"]] = version
        return 200, version

    def _poll(self, run_id: str) -> tuple[int, Any]:
        if run_id not in self.runs:
            return 404, {"code": 5, "message": f"Run {run_id} not found"}
        polls = self._polls[run_id] = self._polls.get(run_id, -1) + 1
        run = self.runs[run_id] | {"state": self.run_states[min(polls, len(self.run_states) - 1)]}
        if run["state"] == "FAILED":
            error = {"code": 2, "message": "RuntimeError: training data rejected"}
            run |= {"error": {"code": 2, "message": "1 task failed"}, "run_details": {
                "task_details": [
                    {"run_id": run_id, "task_id": "t1", "display_name": "make-dataset", "state": "SUCCEEDED"},
                    {"run_id": run_id, "task_id": "t2", "display_name": "train-threshold", "state": "FAILED", "error": error},
                ]}}  # fmt: skip
        return 200, run


def _handler(fake: FakeKfp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                status, answer = 401, {"code": 16, "message": "Unauthenticated: bad token"}
            else:
                status, answer = fake.handle(method, url.path, query, self._body(raw))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self, raw: bytes) -> Any:
            kind = self.headers.get("Content-Type", "")
            if kind.startswith("multipart/form-data"):
                form = email.parser.BytesParser().parsebytes(
                    f"Content-Type: {kind}\r\n\r\n".encode() + raw
                )
                for part in form.get_payload():
                    if part.get_param("name", header="content-disposition") == "uploadfile":
                        return part.get_payload(decode=True).decode()
            return json.loads(raw) if raw else None

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def kfp_server() -> Iterator[tuple[FakeKfp, str]]:
    fake = FakeKfp()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


# --- running on a KFP server --------------------------------------------------------------


def test_registers_a_version_runs_it_and_waits(
    kfp_server: tuple[FakeKfp, str], spec_text: str
) -> None:
    fake, url = kfp_server
    kfp = RemotePipelines(url, "kfp-token")
    pinned = pin_images(spec_text + PLATFORM_SPEC, {TRAIN_IMAGE: STAGING_TRAIN}).text

    pipeline_id, version_id = kfp.upload_version(pinned, "churn-classifier", "churn-classifier-v7")
    run_id = kfp.run(pipeline_id, version_id, {"customers": 20}, "promotions")

    assert kfp.wait(run_id, timeout_s=10, poll_s=0.01) is RunState.SUCCEEDED
    assert [call.split("/", 3)[-1] for call in fake.calls[:9]] == [
        "healthz",  # Gatekeeper's probe, with a timeout
        "healthz",  # kfp.Client's
        "pipelines",
        "pipelines",  # created: there was none
        f"pipelines/{pipeline_id}/versions",
        "pipelines/upload_version",
        "experiments",
        "experiments",  # created
        "runs",
    ]
    assert fake.uploads == [pinned]  # every document, as pinned
    assert fake.pipelines[pipeline_id]["display_name"] == "churn-classifier"
    assert fake.versions[version_id]["pipeline_spec"]["pipelineInfo"]["name"] == "churn-classifier"
    run = fake.runs[run_id]
    assert run["pipeline_version_reference"] == {
        "pipeline_id": pipeline_id,
        "pipeline_version_id": version_id,
    }
    assert run["runtime_config"] == {"parameters": {"customers": 20}}
    assert fake.experiments[run["experiment_id"]]["display_name"] == "promotions"
    assert kfp.run_url(run_id) == f"{url.rstrip('/')}/#/runs/details/{run_id}"


def test_registering_again_is_a_no_op_and_a_different_spec_is_refused(
    kfp_server: tuple[FakeKfp, str], spec_text: str
) -> None:
    fake, url = kfp_server
    kfp = RemotePipelines(url, "kfp-token")
    first = kfp.upload_version(spec_text, "churn-classifier", "v7")

    assert kfp.upload_version(spec_text, "churn-classifier", "v7") == first
    second = kfp.upload_version(spec_text + PLATFORM_SPEC, "churn-classifier", "v8")
    assert second[0] == first[0]
    assert len(fake.pipelines) == 1
    assert len(fake.uploads) == 2
    with pytest.raises(PipelineVersionConflict, match="already has a version named v7"):
        kfp.upload_version(spec_text + PLATFORM_SPEC, "churn-classifier", "v7")
    with pytest.raises(PipelineSpecInvalid):
        kfp.upload_version("kind: Workflow\n", "churn-classifier", "v9")
    assert len(fake.uploads) == 2


@pytest.mark.parametrize(
    ("states", "said"),
    [
        (
            ["RUNNING", "FAILED"],
            r"of run-7 failed: train-threshold: RuntimeError: training data rejected \(http",
        ),
        (["RUNNING", "CANCELING", "CANCELED"], "of run-7 was canceled"),
    ],
)
def test_a_run_that_does_not_succeed_raises(
    kfp_server: tuple[FakeKfp, str], spec_text: str, states: list[str], said: str
) -> None:
    fake, url = kfp_server
    fake.run_states = states
    kfp = RemotePipelines(url, "kfp-token")
    run_id = kfp.run(*kfp.upload_version(spec_text, "churn-classifier", "v7"), run_name="run-7")

    with pytest.raises(PipelineRunFailed, match=said) as failed:
        kfp.wait(run_id, timeout_s=10, poll_s=0.01)
    assert not isinstance(failed.value, PipelineRunTimedOut)


def test_waiting_gives_up_at_the_deadline(kfp_server: tuple[FakeKfp, str], spec_text: str) -> None:
    fake, url = kfp_server
    fake.run_states = ["RUNNING"]
    kfp = RemotePipelines(url, "kfp-token")
    run_id = kfp.run(*kfp.upload_version(spec_text, "churn-classifier", "v7"))

    started = time.monotonic()
    with pytest.raises(
        PipelineRunTimedOut,
        match=rf"had not finished after 0.3 s \(last seen RUNNING\); it was left running: .*{run_id}",
    ):
        kfp.wait(run_id, timeout_s=0.3, poll_s=0.05)
    assert time.monotonic() - started < 2
    with pytest.raises(PipelineRunFailed, match="would not read run nope: Run nope not found"):
        kfp.wait("nope", timeout_s=1, poll_s=0.05)


def test_a_server_that_stops_answering_for_a_while_is_waited_out(
    kfp_server: tuple[FakeKfp, str], spec_text: str
) -> None:
    fake, url = kfp_server
    kfp = RemotePipelines(url, "kfp-token")
    run_id = kfp.run(*kfp.upload_version(spec_text, "churn-classifier", "v7"))
    fake.outage = 3

    assert kfp.wait(run_id, timeout_s=10, poll_s=0.01) is RunState.SUCCEEDED
    fake.outage, fake.run_states = 1000, ["RUNNING"]
    with pytest.raises(
        PipelineRunTimedOut,
        match=r"\(its state never read; the server stopped answering: .*upstream connect error\)",
    ):
        kfp.wait(run_id, timeout_s=0.2, poll_s=0.05)


def test_an_unreachable_host_fails_fast() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    kfp = RemotePipelines(f"http://127.0.0.1:{port}", "kfp-token")

    started = time.monotonic()
    with pytest.raises(
        PipelineHostUnavailable,
        match=f"cannot reach Kubeflow Pipelines at http://127.0.0.1:{port} .*Connection refused",
    ):
        kfp.run("p", "v")
    assert time.monotonic() - started < 3


def test_a_bad_token_and_a_server_that_is_not_kfp_are_told_apart(
    kfp_server: tuple[FakeKfp, str],
) -> None:
    fake, url = kfp_server

    with pytest.raises(
        PipelineHostRefused, match=r"refused Gatekeeper's credentials .*Unauthenticated"
    ):
        RemotePipelines(url, "stale-token").wait("r")
    fake.not_kfp = True
    with pytest.raises(PipelineHostUnavailable, match="is not a Kubeflow Pipelines v2 API"):
        RemotePipelines(url, "kfp-token").wait("r")
