"""What the demo sets up before anyone presses a button: a champion in staging, promoted earlier
by Gatekeeper's own engine, and a better challenger that asks to follow it.

Both models come from the same KFP pipeline run with kfp.local; its last step tags the version
with its bundle and ``gatekeeper.promote``. The champion's request is taken by a Gatekeeper built
with the seed policy (staging's gates approve by themselves) and promoted by the real engine: its
model, image and snapshot really are in staging. Only then is MLflow's webhook pointed at the bot,
and the challenger's request reaches it the way production's requests do: MLflow → webhook →
intake → candidate card.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.adapters.kfp import LocalPipelineRunner
from bot.adapters.mlflow_webhooks import subscribe
from bot.bootstrap import Gatekeeper, build
from bot.config import GatekeeperConfig
from bot.demo.pipeline import compile_pipeline
from bot.demo.team import MODEL, REQUESTER
from bot.domain.errors import GatekeeperError
from bot.domain.promotion import CandidateState
from bot.services.requests import Wanted


class SeedFailed(GatekeeperError):
    """A step of the demo's set-up went wrong; the message says which."""


@dataclass(frozen=True)
class Trained:
    version: str
    accuracy: float
    seconds: float


class Seeder:
    """Runs the demo's pipeline and makes its champion, each step once, in order."""

    def __init__(self, folder: Path, config: GatekeeperConfig, serving_image: str) -> None:
        self._folder = folder
        self._config = config
        self._serving_image = serving_image
        self._spec_path = folder / "pipeline" / "breast-cancer-training.yaml"
        self._spec_path.parent.mkdir(parents=True, exist_ok=True)
        self._spec = compile_pipeline(serving_image, str(self._spec_path))

    @property
    def spec_path(self) -> Path:
        return self._spec_path

    def train(self, variant: str, target: str = "staging") -> Trained:
        """Run the pipeline for ``variant`` against dev's MLflow; the version it registered."""
        dev = self._config.environments["dev"]
        started = time.monotonic()
        run = LocalPipelineRunner(self._folder / "kfp").run(
            self._spec,
            {
                "mlflow_tracking_uri": dev.mlflow,
                "model_name": MODEL,
                "variant": variant,
                "snapshot_root": dev.snapshots or "",
                "serving_image": self._serving_image if dev.images else "",
                "target": target,
                "pipeline_spec_base64": base64.b64encode(self._spec.encode()).decode("ascii"),
            },
        )
        version = str(run.parameters.get("version", ""))
        if not version:
            raise SeedFailed(f"the {variant} run registered no model version: {run.parameters}")
        accuracy = float(run.parameters.get("accuracy", "nan"))
        return Trained(version, accuracy, time.monotonic() - started)

    def make_champion(
        self, gatekeeper: Gatekeeper, seed_config: GatekeeperConfig, version: str, timeout: float
    ) -> int:
        """Propose ``version`` for staging under the seed policy, which approves it, and let the
        running bot's engine promote it; the candidate's id. Its card and thread reach the
        channel like any other."""
        seeding = build(gatekeeper.settings, seed_config)
        try:
            candidate_id = seeding.requests.request(
                Wanted(MODEL, version, target="staging"),
                requester=REQUESTER.user_id,
                actor="gatekeeper demo",
                now=seeding.now(),
            )
        finally:
            seeding.close()
        gatekeeper.promote_later(candidate_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with gatekeeper.unit_of_work().reading() as uow:
                state = CandidateState(uow.candidates.get(candidate_id).state)
                reason = uow.candidates.get(candidate_id).reason
            if state is CandidateState.PROMOTED:
                return candidate_id
            if state not in (CandidateState.APPROVED, CandidateState.PROMOTING):
                raise SeedFailed(
                    f"the champion v{version} was not promoted to staging ({state.value}: "
                    f"{reason}); see the thread of candidate #{candidate_id}"
                )
            time.sleep(0.2)
        raise SeedFailed(f"the champion v{version} was not promoted within {timeout:.0f} s")


def install_webhook(config: GatekeeperConfig, bot_url: str, secret: str) -> str:
    """Point dev's MLflow webhook at the bot, as `gatekeeper webhooks install` does."""
    url = f"{bot_url}/webhooks/mlflow?environment=dev"
    subscribe("dev", config.environments["dev"].mlflow, "gatekeeper-dev", url, secret)
    return url


def wait_for_card(
    gatekeeper: Gatekeeper, version: str, timeout: float, stop: Callable[[], bool]
) -> int:
    """Until the version's staging candidate has its card in the channel; the candidate's id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop():
        with gatekeeper.unit_of_work().reading() as uow:
            row = uow.candidates.find_live(MODEL, version, "staging")
            if row is not None and uow.slack_messages.find(row.id) is not None:
                return row.id
        time.sleep(0.1)
    raise SeedFailed(
        f"{MODEL} v{version} asked for staging, but no card was posted within {timeout:.0f} s; "
        "see mlflow/dev/server.log for the webhook's delivery"
    )
