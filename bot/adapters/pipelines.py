"""Rebuilding a model's pipeline in the target: its compiled YAML, images pinned, then KFP."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from mlflow.tracking import MlflowClient

from bot.adapters.kfp import LocalPipelineRunner, RemotePipelines, pin_images
from bot.config import GatekeeperConfig
from bot.domain.errors import GatekeeperError
from bot.services.engine import Staged


class PipelineNotPinnable(GatekeeperError):
    pass


class KfpRebuilder:
    """`kfp: local` runs the pinned pipeline with kfp.local; a KFP host gets a new version."""

    def __init__(self, config: GatekeeperConfig, workdir: Path | None = None) -> None:
        self._config = config
        self._workdir = workdir

    def rebuild(self, candidate: Staged, images: Mapping[str, str]) -> str:
        """Fetch the pipeline from the source run's artifacts, pin its images, register or run."""
        assert candidate.bundle.pipeline is not None
        spec = self._download(candidate)
        pinned = pin_images(spec, images)
        if not pinned.ok:
            raise PipelineNotPinnable("; ".join(pinned.problems))
        kfp = candidate.target.kfp
        if kfp == "local":
            with tempfile.TemporaryDirectory(dir=self._workdir) as root:
                run = LocalPipelineRunner(Path(root)).run(pinned.text, {})
            return (
                f"ran with kfp.local, {len(pinned.pinned)} image(s) pinned, {run.duration_s:.1f} s"
            )
        if kfp is None:
            raise PipelineNotPinnable(f"{candidate.target.name} has no `kfp` to register it with")
        pipelines = RemotePipelines(kfp)
        _, version_id = pipelines.upload_version(
            pinned.text,
            candidate.model,
            f"{candidate.model}-v{candidate.version}-p{candidate.promotion_id}",
        )
        return f"registered as version {version_id} at {kfp}, {len(pinned.pinned)} image(s) pinned"

    def _download(self, candidate: Staged) -> str:
        path_in_run = candidate.bundle.pipeline
        assert path_in_run is not None
        client = MlflowClient(tracking_uri=candidate.source_uri, registry_uri=candidate.source_uri)
        version = client.get_model_version(candidate.source_name, candidate.version)
        if not version.run_id:
            raise PipelineNotPinnable(
                f"{candidate.source_name} v{candidate.version} has no run to hold its pipeline"
            )
        with tempfile.TemporaryDirectory(dir=self._workdir) as folder:
            path = client.download_artifacts(version.run_id, path_in_run, folder)
            return Path(path).read_text(encoding="utf-8")
