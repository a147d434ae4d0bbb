"""Kubeflow Pipelines: read a compiled pipeline, pin its images by digest, run it with kfp.local,
or register and run it on an environment's KFP server.

    PipelineError                 (a GatekeeperError)
    ├── PipelineSpecInvalid       not a compiled KFP v2 pipeline, or the server would not take it
    ├── PipelineVersionConflict   the version name is taken by a different spec
    ├── PipelineRunFailed         a task failed; a run ended FAILED, CANCELED or SKIPPED
    │   └── PipelineRunTimedOut   not finished when Gatekeeper stopped waiting
    ├── PipelineHostUnavailable   refused, timed out, failing, or not a KFP API at that URL
    └── PipelineHostRefused       the server did not accept Gatekeeper's token
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import itertools
import json
import re
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import kfp
import kfp_server_api  # type: ignore[import-untyped]  # generated, unannotated; Any at the edge
import urllib3
import yaml
from google.protobuf import json_format  # type: ignore[import-untyped]  # protobuf ships no stubs
from kfp import components, local
from kfp.pipeline_spec import pipeline_spec_pb2

from bot.domain.errors import GatekeeperError

T = TypeVar("T")


class PipelineError(GatekeeperError):
    """A pipeline could not be read, registered or run; the message says which and why."""


class PipelineSpecInvalid(PipelineError):
    pass


class PipelineVersionConflict(PipelineError):
    pass


class PipelineRunFailed(PipelineError):
    def __init__(self, message: str, *, task: str | None = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.task = task  # the task that failed, when one did
        self.log_tail = log_tail  # its last lines of output, for the candidate's thread


class PipelineRunTimedOut(PipelineRunFailed):
    pass


class PipelineHostUnavailable(PipelineError):
    pass


class PipelineHostRefused(PipelineError):
    pass


# ---------------------------------------------------------------------------------------------
# The compiled spec


@dataclass(frozen=True)
class CompiledPipeline:
    """A compiled KFP v2 pipeline: its YAML as given, and every document in it, parsed."""

    name: str
    text: str
    documents: tuple[Mapping[str, Any], ...]  # the pipeline spec, then any platform specs
    images: Mapping[str, str]  # executor label → container image

    @property
    def pipeline_spec(self) -> Mapping[str, Any]:
        return self.documents[0]

    @property
    def platform_specs(self) -> tuple[Mapping[str, Any], ...]:
        return self.documents[1:]

    @property
    def parameters(self) -> Mapping[str, str]:
        """The pipeline's input parameters and their KFP types (NUMBER_INTEGER, STRING ...)."""
        found = _at(self.pipeline_spec, "root", "inputDefinitions", "parameters") or {}
        return {name: str(spec.get("parameterType", "")) for name, spec in found.items()}


def load_pipeline_spec(source: str | Path) -> CompiledPipeline:
    """Read a compiled pipeline from a file (a Path, or a one-line str ending in .yaml/.yml/.json)
    or from its YAML text; PipelineSpecInvalid names what is wrong."""
    if isinstance(source, Path) or (
        "\n" not in source and source.strip().endswith((".yaml", ".yml", ".json"))
    ):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise PipelineSpecInvalid(f"cannot read the pipeline spec {path}: {error}") from error
        return _parse(text, str(path))
    return _parse(source, "the pipeline spec")


def _parse(text: str, origin: str) -> CompiledPipeline:
    try:
        documents = [document for document in yaml.safe_load_all(text) if document is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or error
        raise PipelineSpecInvalid(f"{origin} is not valid YAML{where}: {problem}") from error
    if not documents or not all(isinstance(document, dict) for document in documents):
        raise PipelineSpecInvalid(f"{origin} is not a compiled KFP pipeline: it is not YAML maps")
    spec = documents[0]
    if str(spec.get("apiVersion", "")).startswith("argoproj.io"):
        raise PipelineSpecInvalid(
            f"{origin} is a KFP v1 package (an Argo Workflow); recompile the pipeline with the "
            "KFP v2 SDK (kfp>=2): kfp.compiler.Compiler().compile(pipeline, 'pipeline.yaml')"
        )
    name = _at(spec, "pipelineInfo", "name")
    if not isinstance(name, str) or "root" not in spec:
        raise PipelineSpecInvalid(
            f"{origin} is not a compiled KFP v2 pipeline (it has no pipelineInfo.name and root); "
            "compile it with kfp.compiler.Compiler().compile(pipeline, 'pipeline.yaml')"
        )
    # KFP's own schema catches wrong shapes and types; fields newer than this SDK are let through
    # so that a pipeline compiled by a newer kfp still promotes.
    for document, message in [(spec, pipeline_spec_pb2.PipelineSpec)] + [
        (platform, pipeline_spec_pb2.PlatformSpec) for platform in documents[1:]
    ]:
        try:
            json_format.ParseDict(document, message(), ignore_unknown_fields=True)
        except json_format.ParseError as error:
            raise PipelineSpecInvalid(f"{origin} is not a valid KFP v2 spec: {error}") from error
    executors = _at(spec, "deploymentSpec", "executors") or {}
    images = {
        str(label): str(image)
        for label, executor in executors.items()
        if (image := _at(executor, "container", "image")) is not None
    }
    return CompiledPipeline(name, text, tuple(documents), images)


def _at(document: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


# ---------------------------------------------------------------------------------------------
# Pinning images

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# A reference that reads back as the same string when written as a plain YAML scalar.
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")


@dataclass(frozen=True)
class PinnedImage:
    executor: str
    source: str
    target: str


@dataclass(frozen=True)
class PinnedSpec:
    """The spec with its executors' images pinned, and what was left alone and why."""

    text: str
    pinned: tuple[PinnedImage, ...]
    #: Left as they were, by digest, but not in the bundle (so not copied to the target).
    warnings: tuple[str, ...] = ()
    #: Left as they were and not reproducible: tags, run-time images, ambiguous bundles.
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def pin_images(spec_text: str, images: Mapping[str, str]) -> PinnedSpec:
    """Point every executor image at the target environment's copy, by digest.

    ``images`` maps a source reference (tag or digest; matched by repository path) to the target
    ``registry/repo@sha256:…``. Only the image values change: the rest of the text, every YAML
    document included, is kept byte for byte (or, where that cannot be verified, re-dumped with
    equal content). Images it cannot pin are left as they are and reported.
    """
    compiled = _parse(spec_text, "the pipeline spec")
    by_repository: dict[str, list[tuple[str, str]]] = {}
    for source, target in images.items():
        if _split_reference(target)[2] is None:
            raise ValueError(f"target image {target!r} is not pinned by digest (…@sha256:<hex>)")
        by_repository.setdefault(_repository(source), []).append((source, target))

    chosen: dict[str, str] = {}
    pinned: list[PinnedImage] = []
    notes: list[str] = []
    problems: list[str] = []
    for executor, image in compiled.images.items():
        if "{{" in image:
            problems.append(
                f"{executor} takes its image from a run-time parameter ({image}), which cannot be "
                "pinned; give the component a base_image by digest"
            )
            continue
        _, _, digest = _split_reference(image)
        candidates = by_repository.get(_repository(image), [])
        exact = [pair for pair in candidates if _split_reference(pair[0])[2] == digest]
        if exact or len({target for _, target in candidates}) == 1:
            source, target = (exact or candidates)[0]
            chosen[executor] = target
            pinned.append(PinnedImage(executor, image, target))
            if digest and not exact and _split_reference(source)[2]:
                notes.append(
                    f"{executor} was compiled with {image}, the bundle declares {source}; "
                    f"pinned to the bundle's copy {target}"
                )
        elif candidates:
            problems.append(
                f"{executor} uses {image}, and the bundle has several images of that repository "
                f"({', '.join(sorted(source for source, _ in candidates))}); say which by digest"
            )
        elif digest is not None:
            notes.append(
                f"{executor} keeps {image}: it is pinned by digest but not in the bundle, so it "
                "was not copied to the target's registry"
            )
        else:
            problems.append(
                f"{executor} uses {image}, a tag that can move, and the bundle has no image of "
                f"that repository; add gatekeeper.image.<name> = {_name(image)}@sha256:<digest> "
                "to the model version, or build the component with its base_image by digest"
            )
    text = _replace_images(spec_text, compiled, chosen) if chosen else spec_text
    return PinnedSpec(text, tuple(pinned), tuple(notes), tuple(problems))


def _split_reference(reference: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of ``registry/repo:tag@sha256:…``; a malformed digest counts as none."""
    name, _, digest = reference.strip().partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    tag = name[colon + 1 :] if colon > slash else None
    name = name[:colon] if colon > slash else name
    return name, tag, digest if _DIGEST.fullmatch(digest) else None


def _name(reference: str) -> str:
    return _split_reference(reference)[0]


def _repository(reference: str) -> str:
    """The repository a reference names, spelled out the way Docker reads a short name."""
    name = _name(reference)
    first, _, rest = name.partition("/")
    if not rest:
        return f"docker.io/library/{name}"
    if first == "index.docker.io":
        return f"docker.io/{rest}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def _replace_images(text: str, compiled: CompiledPipeline, chosen: Mapping[str, str]) -> str:
    """The text with the chosen executors' image scalars rewritten in place.

    Splicing at the scalars' positions keeps comments, quoting and key order exactly; should the
    result not read back as intended (aliases, exotic quoting), the documents are re-dumped.
    """
    expected: list[Any] = [copy.deepcopy(document) for document in compiled.documents]
    for executor, target in chosen.items():
        expected[0]["deploymentSpec"]["executors"][executor]["container"]["image"] = target

    edits: dict[int, tuple[int, str]] = {}
    first = next(node for node in yaml.compose_all(text) if node is not None)
    for executor, node in _image_nodes(first):
        if executor in chosen:
            edits[node.start_mark.index] = (node.end_mark.index, _scalar(chosen[executor], node))
    spliced = text
    for start, (end, replacement) in sorted(edits.items(), reverse=True):
        spliced = spliced[:start] + replacement + spliced[end:]
    with contextlib.suppress(yaml.YAMLError):  # a spliced anchor (&name) took its name along
        if [d for d in yaml.safe_load_all(spliced) if d is not None] == expected:
            return spliced
    header = "".join(itertools.takewhile(lambda line: line.startswith("#"), text.splitlines(True)))
    return header + yaml.safe_dump_all(expected, sort_keys=False, allow_unicode=True)


def _image_nodes(document: yaml.Node) -> Iterator[tuple[str, yaml.ScalarNode]]:
    executors = _child(_child(document, "deploymentSpec"), "executors")
    if isinstance(executors, yaml.MappingNode):
        for key, executor in executors.value:
            image = _child(_child(executor, "container"), "image")
            if isinstance(image, yaml.ScalarNode):
                yield str(key.value), image


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return value if isinstance(value, yaml.Node) else None
    return None


def _scalar(value: str, original: yaml.ScalarNode) -> str:
    if original.style is None and _PLAIN_SAFE.fullmatch(value):
        return value
    if original.style == "'":
        return "'" + value.replace("'", "''") + "'"
    return json.dumps(value)  # a JSON string is a valid double-quoted YAML scalar


# ---------------------------------------------------------------------------------------------
# Running on this machine

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_KFP_LOG_LINE = re.compile(r"\d\d:\d\d:\d\d\.\d+ - [A-Z]+ - ")
_TASK_STARTED = re.compile(r" - INFO - Executing task '(?P<task>[^']+)'")
_TASK_ENDED = re.compile(r" - [A-Z]+ - Task '[^']+' finished with status")
_INNER_TASK = re.compile(r"Inner task failed: '(?P<task>[^']+)'")
_LINES_KEPT = 60

# kfp.local keeps its settings in a process-wide singleton and swaps print and the root logger's
# handlers while a task runs: two runs at once would mix their settings and their logs.
_LOCAL_RUNS = threading.Lock()


@dataclass(frozen=True)
class LocalArtifact:
    name: str
    uri: str  # on this machine, a path under the runner's pipeline root
    schema_title: str  # system.Dataset, system.Metrics, system.Model ...
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class LocalRun:
    """What a local run returned: the pipeline's output parameters and artifacts."""

    pipeline: str
    parameters: Mapping[str, Any]
    artifacts: Mapping[str, tuple[LocalArtifact, ...]]
    logs: Mapping[str, str]  # task → the last lines it printed
    duration_s: float

    def artifact(self, name: str) -> LocalArtifact:
        """The one artifact the pipeline output under ``name``."""
        (artifact,) = self.artifacts[name]
        return artifact

    @property
    def metrics(self) -> Mapping[str, float]:
        """Every number logged to a Metrics artifact the pipeline output."""
        return {
            key: float(value)
            for artifacts in self.artifacts.values()
            for artifact in artifacts
            if artifact.schema_title == "system.Metrics"
            for key, value in artifact.metadata.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }


class LocalPipelineRunner:
    """Runs compiled pipelines on this machine with kfp.local's SubprocessRunner.

    The SubprocessRunner runs each lightweight Python component in a subprocess of this
    virtualenv and ignores its container image, so a local run of a pinned spec tests the
    pipeline's logic, not its images: the pinning is checked separately, by ``pin_images``.
    Container components cannot run this way. Runs in one process take turns (see _LOCAL_RUNS),
    and log lines the rest of the process writes during a run land in that run's captured output.
    """

    def __init__(self, pipeline_root: Path) -> None:
        self._pipeline_root = pipeline_root

    def run(
        self, pipeline: CompiledPipeline | str, arguments: Mapping[str, Any] | None = None
    ) -> LocalRun:
        """Run the pipeline to the end; its outputs, or PipelineRunFailed with the task's log."""
        compiled = (
            pipeline
            if isinstance(pipeline, CompiledPipeline)
            else _parse(pipeline, "the pipeline spec")
        )
        try:
            component = components.load_component_from_text(compiled.text)
        except Exception as error:  # kfp raises whatever its parsers raise
            raise PipelineSpecInvalid(f"kfp cannot load {compiled.name}: {error}") from error
        logs = _TaskLogs()
        started = time.monotonic()
        with _LOCAL_RUNS, contextlib.redirect_stdout(logs), warnings.catch_warnings():
            # Expected here: the SubprocessRunner ignores images, as the class docstring says.
            warnings.filterwarnings("ignore", "You may be attemping", RuntimeWarning)
            local.init(
                runner=local.SubprocessRunner(use_venv=False),
                pipeline_root=str(self._pipeline_root),
            )
            try:
                task = component(**dict(arguments or {}))
            except Exception as error:  # kfp raises RuntimeError, TypeError, ValueError ...
                raise _local_failure(compiled.name, error, logs) from error
        return LocalRun(
            pipeline=compiled.name,
            parameters={k: v for k, v in task.outputs.items() if not _is_artifacts(v)},
            artifacts={k: _artifacts(v) for k, v in task.outputs.items() if _is_artifacts(v)},
            logs={name: logs.tail(name) for name in logs.tasks},
            duration_s=time.monotonic() - started,
        )


def _local_failure(pipeline: str, error: Exception, logs: _TaskLogs) -> PipelineRunFailed:
    message = _ANSI.sub("", str(error))
    inner = _INNER_TASK.search(message)
    task = inner["task"] if inner else logs.current
    if task is None:
        return PipelineRunFailed(f"pipeline {pipeline} could not start: {message}")
    tail = logs.tail(task)
    last = tail.splitlines()[-1] if tail else message
    return PipelineRunFailed(
        f"pipeline {pipeline} failed in task {task}: {last}", task=task, log_tail=tail
    )


def _is_artifacts(value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(hasattr(item, "schema_title") for item in values)


def _artifacts(value: Any) -> tuple[LocalArtifact, ...]:
    return tuple(
        LocalArtifact(str(item.name), str(item.uri), str(item.schema_title), dict(item.metadata))
        for item in (value if isinstance(value, list) else [value])
    )


class _TaskLogs(io.StringIO):
    """kfp.local's console output, kept as the last lines each task printed (bounded)."""

    def __init__(self) -> None:
        super().__init__()
        self._partial = ""
        self.current: str | None = None
        self.tasks: dict[str, deque[str]] = {}

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._take(_ANSI.sub("", line).rstrip())
        return len(text)

    def _take(self, line: str) -> None:
        if started := _TASK_STARTED.search(line):
            self.current = started["task"]
            self.tasks[self.current] = deque(maxlen=_LINES_KEPT)
        elif _TASK_ENDED.search(line):
            self.current = None
        elif self.current is not None and not _KFP_LOG_LINE.match(line):
            # kfp indents a task's own output by four spaces under its own narration.
            self.tasks[self.current].append(line.removeprefix("    "))

    def tail(self, task: str) -> str:
        return "\n".join(self.tasks.get(task, ())).strip("\n")


# ---------------------------------------------------------------------------------------------
# Running on a KFP server


class RunState(StrEnum):
    UNSPECIFIED = "RUNTIME_STATE_UNSPECIFIED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"
    PAUSED = "PAUSED"


_ENDED_BADLY = {
    RunState.FAILED: "failed",
    RunState.CANCELED: "was canceled",
    RunState.SKIPPED: "was skipped",
}
_EQUALS = 1  # the list filter's EQUALS operation, as kfp.Client spells it


class RemotePipelines:
    """One environment's Kubeflow Pipelines API (v2beta1 REST), through kfp.Client.

    Tested against a stand-in that serves the endpoints used here with KFP's JSON; no real
    cluster was available. The client is made on first use, so the bot starts while KFP is down.
    """

    def __init__(
        self,
        host: str,
        token: str | None = None,
        *,
        namespace: str | None = None,  # for multi-user deployments
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
    ) -> None:
        self.host = host.rstrip("/")
        self._token = token
        self._namespace = {"namespace": namespace} if namespace else {}
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._lock = threading.Lock()
        self._kfp: Any = None

    def upload_version(
        self, spec_text: str, pipeline_name: str, version_name: str, *, description: str = ""
    ) -> tuple[str, str]:
        """Register the spec as ``version_name`` of ``pipeline_name`` (made if missing), giving
        (pipeline ID, version ID); the same spec under the same name again is a no-op."""
        _parse(spec_text, f"the pipeline spec for {pipeline_name}")
        # The digest in the description lets a retried step recognise its own earlier upload.
        marker = f"gatekeeper spec sha256:{hashlib.sha256(spec_text.encode()).hexdigest()}"
        client = self._client()
        pipeline_id = self._pipeline_id(pipeline_name) or self._create_pipeline(pipeline_name)
        doing = f"register version {version_name} of pipeline {pipeline_name}"
        listed = self._call(
            doing,
            partial(
                client.pipelines.pipeline_service_list_pipeline_versions,
                pipeline_id,
                filter=_named(version_name),
                _request_timeout=self._timeout,
            ),
        )
        for version in listed.pipeline_versions or ():
            if version.display_name == version_name:
                if marker in (version.description or ""):
                    return pipeline_id, str(version.pipeline_version_id)
                raise PipelineVersionConflict(
                    f"pipeline {pipeline_name} at {self.host} already has a version named "
                    f"{version_name} with a different spec; promote under a new version name"
                )
        with tempfile.TemporaryDirectory(prefix="gatekeeper-kfp-") as directory:
            package = Path(directory) / "pipeline.yaml"  # the server reads the format off the name
            package.write_text(spec_text, encoding="utf-8")
            created = self._call(
                doing,
                partial(
                    client.pipeline_uploads.upload_pipeline_version,
                    str(package),
                    name=version_name,
                    pipelineid=pipeline_id,
                    description=f"{description}\n{marker}".strip(),
                    _request_timeout=self._timeout,
                ),
                rejected=PipelineSpecInvalid,
            )
        return pipeline_id, str(created.pipeline_version_id)

    def run(
        self,
        pipeline_id: str,
        version_id: str,
        arguments: Mapping[str, Any] | None = None,
        experiment: str = "gatekeeper",
        *,
        run_name: str | None = None,
    ) -> str:
        """Start a run of the version in ``experiment`` (made if missing); the run's ID."""
        client = self._client()
        run = kfp_server_api.V2beta1Run(
            display_name=run_name or f"gatekeeper {version_id}",
            experiment_id=self._experiment_id(experiment),
            pipeline_version_reference=kfp_server_api.V2beta1PipelineVersionReference(
                pipeline_id=pipeline_id, pipeline_version_id=version_id
            ),
            runtime_config=kfp_server_api.V2beta1RuntimeConfig(parameters=dict(arguments or {})),
        )
        created = self._call(
            f"start a run of pipeline version {version_id}",
            partial(client.runs.run_service_create_run, run, _request_timeout=self._timeout),
            rejected=PipelineRunFailed,
        )
        return str(created.run_id)

    def wait(self, run_id: str, timeout_s: float = 3600.0, poll_s: float = 10.0) -> RunState:
        """Poll until the run ends: SUCCEEDED, or PipelineRunFailed saying how it ended.

        A server that stops answering for a while is waited out, up to the deadline.
        """
        client = self._client()
        read = partial(client.runs.run_service_get_run, run_id, _request_timeout=self._timeout)
        deadline = time.monotonic() + timeout_s
        state: RunState | None = None
        unreachable: PipelineHostUnavailable | None = None
        while True:
            try:
                run = self._call(f"read run {run_id}", read, rejected=PipelineRunFailed)
            except PipelineHostUnavailable as error:
                unreachable = error
            else:
                unreachable, state = None, _state(run.state)
                if state is RunState.SUCCEEDED:
                    return state
                if state in _ENDED_BADLY:
                    raise PipelineRunFailed(_run_failure(run, state, self.run_url(run_id)))
            if time.monotonic() + poll_s > deadline:
                seen = f"last seen {state.value}" if state else "its state never read"
                silent = f"; the server stopped answering: {unreachable}" if unreachable else ""
                raise PipelineRunTimedOut(
                    f"run {run_id} had not finished after {timeout_s:g} s ({seen}{silent}); "
                    f"it was left running: {self.run_url(run_id)}"
                )
            time.sleep(poll_s)

    def run_url(self, run_id: str) -> str:
        """Where a person sees the run in the KFP UI."""
        return f"{self.host}/#/runs/details/{run_id}"

    def _client(self) -> Any:
        with self._lock:
            if self._kfp is None:
                self._call("answer its health check", self._probe)
                # kfp.Client warns on every construction that it needs KFP >= 2.0.0-beta.2.
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "This client only works", FutureWarning)
                    self._kfp = self._call(
                        "connect",
                        partial(
                            kfp.Client,
                            host=self.host,
                            existing_token=self._token,
                            **self._namespace,
                        ),
                    )
            return self._kfp

    def _probe(self) -> None:
        """Ask healthz once, with a timeout: kfp.Client's constructor asks with none, and retries
        a failing server for 25 s, which would hold a promotion hostage."""
        config = kfp_server_api.Configuration(host=self.host)
        if self._token:
            config.api_key["authorization"] = self._token
            config.api_key_prefix["authorization"] = "Bearer"
        config.retries = 1
        healthz = kfp_server_api.HealthzServiceApi(kfp_server_api.ApiClient(config))
        try:
            healthz.healthz_service_get_healthz(_request_timeout=self._timeout[0])
        except kfp_server_api.ApiException as error:
            if error.status != 404:
                raise
            raise PipelineHostUnavailable(
                f"{self.host} is not a Kubeflow Pipelines v2 API (GET /apis/v2beta1/healthz "
                "answered 404); set the environment's kfp to the KFP API URL"
            ) from error

    def _pipeline_id(self, name: str) -> str | None:
        listed = self._call(
            f"look up pipeline {name}",
            partial(
                self._kfp.pipelines.pipeline_service_list_pipelines,
                filter=_named(name),
                _request_timeout=self._timeout,
                **self._namespace,
            ),
        )
        for pipeline in listed.pipelines or ():
            if pipeline.display_name == name:
                return str(pipeline.pipeline_id)
        return None

    def _create_pipeline(self, name: str) -> str:
        pipeline = kfp_server_api.V2beta1Pipeline(
            display_name=name, description="Promoted by Gatekeeper.", **self._namespace
        )
        created = self._call(
            f"create pipeline {name}",
            partial(
                self._kfp.pipelines.pipeline_service_create_pipeline,
                pipeline,
                _request_timeout=self._timeout,
            ),
            rejected=PipelineSpecInvalid,
        )
        return str(created.pipeline_id)

    def _experiment_id(self, name: str) -> str:
        doing = f"find or create experiment {name}"
        experiments = self._kfp.experiments
        listed = self._call(
            doing,
            partial(
                experiments.experiment_service_list_experiments,
                filter=_named(name),
                _request_timeout=self._timeout,
                **self._namespace,
            ),
        )
        for experiment in listed.experiments or ():
            if experiment.display_name == name:
                return str(experiment.experiment_id)
        body = kfp_server_api.V2beta1Experiment(display_name=name, **self._namespace)
        created = self._call(
            doing,
            partial(
                experiments.experiment_service_create_experiment,
                body,
                _request_timeout=self._timeout,
            ),
        )
        return str(created.experiment_id)

    def _call(
        self,
        doing: str,
        call: Callable[[], T],
        rejected: type[PipelineError] = PipelineHostUnavailable,
    ) -> T:
        """``call()``, its failures turned into errors that say what Gatekeeper was doing where."""
        try:
            return call()
        except kfp_server_api.ApiException as error:
            status, said = int(error.status or 0), _server_message(error)
            if status in (401, 403):
                raise PipelineHostRefused(
                    f"Kubeflow Pipelines at {self.host} refused Gatekeeper's credentials "
                    f"when asked to {doing}: {said}; check the environment's KFP token"
                ) from error
            unavailable = status == 0 or status >= 500
            raise (PipelineHostUnavailable if unavailable else rejected)(
                f"Kubeflow Pipelines at {self.host} would not {doing}: {said}"
            ) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise PipelineHostUnavailable(
                f"cannot reach Kubeflow Pipelines at {self.host} to {doing}: {_reason(error)}"
            ) from error


def _named(name: str) -> str:
    """A list filter matching ``name`` exactly, as kfp.Client builds it."""
    predicate = {"operation": _EQUALS, "key": "display_name", "stringValue": name}
    return json.dumps({"predicates": [predicate]})


def _state(value: Any) -> RunState:
    try:
        return RunState(str(value))
    except ValueError:
        return RunState.UNSPECIFIED  # a state newer than this code: keep waiting


def _run_failure(run: Any, state: RunState, url: str) -> str:
    reasons = [
        f"{task.display_name}: {task.error.message}"
        for task in getattr(run.run_details, "task_details", None) or ()
        if task.state == "FAILED" and task.error is not None and task.error.message
    ]
    if not reasons and run.error is not None and run.error.message:
        reasons.append(str(run.error.message))
    because = f": {'; '.join(reasons)}" if reasons else ""
    return f"run {run.run_id} of {run.display_name} {_ENDED_BADLY[state]}{because} ({url})"


def _reason(error: Exception) -> str:
    """urllib3's reason for a failed connection, without its object reprs."""
    reason = getattr(error, "reason", None) or error
    return re.sub(r"<[^>]*>: ", "", str(reason))


def _server_message(error: Any) -> str:
    """What the server said, from KFP's JSON error body (google.rpc.Status), else the status."""
    body = error.body.decode("utf-8", "replace") if isinstance(error.body, bytes) else error.body
    try:
        parsed = json.loads(body or "")
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("message", "error_message", "error"):
            if parsed.get(key):
                return str(parsed[key])[:500]
    return f"HTTP {error.status} {error.reason or ''}".strip() + (f": {body[:300]}" if body else "")
