"""Rebuilding a model's pipeline in the target: its compiled YAML, images pinned, then KFP."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from mlflow.tracking import MlflowClient

from bot.adapters.kfp import LocalPipelineRunner, RemotePipelines, pin_images
from bot.config import GatekeeperConfig
from bot.domain.errors import GatekeeperError
from bot.domain.promotion import PromotionStep
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
        self._keep(candidate, pinned.text)
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

    def _keep(self, candidate: Staged, pinned: str) -> None:
        """Store the pinned spec with the target's version, where the next promotion finds it."""
        path_in_run = candidate.bundle.pipeline
        target_version = candidate.done.get(PromotionStep.COPY_MODEL, {}).get("target_version")
        assert path_in_run is not None
        if target_version is None:
            return
        client = MlflowClient(tracking_uri=candidate.target_uri, registry_uri=candidate.target_uri)
        run_id = client.get_model_version(candidate.target_name, str(target_version)).run_id
        source = MlflowClient(tracking_uri=candidate.source_uri, registry_uri=candidate.source_uri)
        source_run = source.get_model_version(candidate.source_name, candidate.version).run_id
        if not run_id or (candidate.source_uri == candidate.target_uri and run_id == source_run):
            return  # one server shares the source's run: its spec is the unpinned original
        folder, _, name = path_in_run.rpartition("/")
        with tempfile.TemporaryDirectory(dir=self._workdir) as scratch:
            spec = Path(scratch) / name
            spec.write_text(pinned, encoding="utf-8")
            client.log_artifact(run_id, str(spec), folder or None)

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
