"""`gatekeeper demo`: every piece of the loop on loopback, in a folder of its own, until Ctrl-C.

MLflow for dev, staging and production and the OCI registry run as process groups of their own;
the Slack stand-in and the bot (web, delivery, promotion runner, scheduler) run in this process.
Set-up prints a line per step with its seconds, then the one URL to open. Everything started
is stopped, in reverse, when the demo ends for any reason: Ctrl-C, SIGTERM, or a failed step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bot.config import Settings, load_config
from bot.demo.image import push_serving_image
from bot.demo.pipeline import UNBUNDLED_IMAGE
from bot.demo.seed import Seeder, install_webhook, wait_for_card
from bot.demo.services import Service, registry_missing, start_mlflow, start_registry
from bot.demo.team import (
    BOT_TOKEN,
    CHANNEL,
    CHANNEL_NAME,
    LEAD,
    LEADS,
    LEADS_HANDLE,
    MODEL,
    PEOPLE,
    TEAM,
    Places,
    gatekeeper_yaml,
)
from bot.domain.errors import GatekeeperError
from bot.emulator import BackgroundServer, Person, SlackEmulator

#: Written into the demo's folder: only a folder holding it is wiped by the next demo.
MARKER = ".gatekeeper-demo"
ENVIRONMENTS = ("dev", "staging", "production")
MLFLOW_START_SECONDS = 90.0
REGISTRY_START_SECONDS = 20.0
CARD_SECONDS = 30.0
PROMOTION_SECONDS = 120.0


class DemoRefused(GatekeeperError):
    """The demo cannot start here (a folder that is not its own, a port in use ...)."""


class Stopped(BaseException):
    """SIGTERM or SIGINT arrived: unwind, stopping everything started so far."""


class DemoSettings(Settings):
    """The demo's own values only: never the user's SLACK_*, DATABASE_URL or PORT."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@dataclass
class Progress:
    """Prints each set-up step with the seconds it took, and the total so far."""

    echo: Callable[[str], None]
    started: float = field(default_factory=time.monotonic)

    @contextlib.contextmanager
    def step(self, doing: str) -> Iterator[list[str]]:
        began = time.monotonic()
        notes: list[str] = []
        yield notes
        took = time.monotonic() - began
        total = time.monotonic() - self.started
        detail = f": {'; '.join(notes)}" if notes else ""
        self.echo(f"[{total:5.1f} s] {doing}{detail} ({took:.1f} s)")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def prepare_folder(folder: Path) -> None:
    """Start fresh: wipe what a previous demo left, refusing a folder the demo did not make."""
    if folder.exists():
        if not folder.is_dir():
            raise DemoRefused(f"{folder} is a file; give --dir a folder for the demo")
        if any(folder.iterdir()) and not (folder / MARKER).exists():
            raise DemoRefused(
                f"{folder} is not empty and was not made by `gatekeeper demo` (no {MARKER} "
                "in it); give --dir a new or empty folder"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("made by `gatekeeper demo`; wiped by the next one\n")


def forget_real_slack() -> None:
    """Keep the user's real Slack app out of the demo: Bolt itself reads SLACK_CLIENT_ID and
    SLACK_CLIENT_SECRET (switching to OAuth), and the demo's children inherit this environment."""
    for key in [key for key in os.environ if key.upper().startswith("SLACK_")]:
        del os.environ[key]


def run_demo(folder: Path, port: int, echo: Callable[[str], None]) -> int:
    """Set everything up, print the URL, serve until stopped; the exit status."""
    from bot.bootstrap import build
    from bot.store.migrations import upgrade
    from bot.web import create_web_app
    from handlers.app import build_app

    folder = folder.resolve()
    prepare_folder(folder)
    forget_real_slack()
    _log_to(folder / "gatekeeper.log")
    stop = threading.Event()
    serving = threading.Event()
    previous = _trap_signals(stop, serving)
    progress = Progress(echo)
    services: list[Service] = []
    ready = False
    try:
        with contextlib.ExitStack() as running:
            running.callback(_stop_services, services)
            with progress.step("starting MLflow (dev, staging, production) and the registry"):
                for name in ENVIRONMENTS:
                    services.append(start_mlflow(name, folder / "mlflow" / name))
                skipped = registry_missing()
                registry = None if skipped else start_registry(folder / "registry")
                if registry is not None:
                    services.append(registry)
            if skipped:
                echo(f"image step skipped: {skipped}")

            signing_secret = secrets.token_hex(16)
            webhook_secret = secrets.token_hex(24)
            with progress.step("Slack stand-in, database and bot") as notes:
                slack = SlackEmulator(
                    team_id=TEAM, bot_token=BOT_TOKEN, signing_secret=signing_secret,
                    app_token=None, port=port,
                )  # fmt: skip
                try:
                    slack.start()
                except OSError as error:
                    raise DemoRefused(f"cannot listen on 127.0.0.1:{port}: {error}") from None
                running.callback(slack.stop)
                _populate(slack)
                database = f"sqlite:///{folder / 'gatekeeper.db'}"
                upgrade(database)
                for service in services:
                    service.wait_until_up(
                        REGISTRY_START_SECONDS if service is registry else MLFLOW_START_SECONDS
                    )
                places = Places(
                    {
                        name: service.url
                        for name, service in zip(ENVIRONMENTS, services[:3], strict=True)
                    },
                    registry.url.removeprefix("http://") if registry else None,
                    folder,
                )
                config_path = folder / "gatekeeper.yaml"
                config_path.write_text(gatekeeper_yaml(places), encoding="utf-8")
                (folder / "seed.gatekeeper.yaml").write_text(
                    gatekeeper_yaml(places, seed=True), encoding="utf-8"
                )
                config = load_config(config_path)
                settings = DemoSettings(
                    slack_bot_token=BOT_TOKEN,
                    slack_signing_secret=signing_secret,
                    slack_api_url=slack.api_url,
                    database_url=database,
                    gatekeeper_config=config_path,
                    mlflow_webhook_secret=webhook_secret,
                )
                gatekeeper = build(settings, config)
                web = BackgroundServer(create_web_app(gatekeeper, build_app(gatekeeper)))
                web.start()
                running.callback(web.stop)
                running.callback(gatekeeper.close)
                gatekeeper.delivery.start()
                gatekeeper.start_working()
                bot_url = web.url.rstrip("/")
                notes.append(f"bot at {bot_url}, config {config_path}")

            image = UNBUNDLED_IMAGE
            if registry is not None:
                with progress.step("serving image pushed to the dev registry") as notes:
                    image = push_serving_image(
                        places.registry or "", "dev/breast-cancer-serving", "latest", MODEL
                    )
                    notes.append(image)

            with progress.step("champion trained by the KFP pipeline (kfp.local)") as notes:
                seeder = Seeder(folder, config, image)
                champion = seeder.train("champion")
                notes.append(f"{MODEL} v{champion.version}, accuracy {champion.accuracy:.3f}")
            with progress.step("champion promoted to staging by Gatekeeper's engine") as notes:
                seed_config = load_config(folder / "seed.gatekeeper.yaml")
                seeded = seeder.make_champion(
                    gatekeeper, seed_config, champion.version, PROMOTION_SECONDS
                )
                notes.append(f"candidate #{seeded}, approved by the seed policy")
            with progress.step("MLflow webhook on dev points at the bot") as notes:
                notes.append(install_webhook(config, bot_url, webhook_secret))
            with progress.step("challenger trained; it asked for staging") as notes:
                challenger = seeder.train("challenger")
                notes.append(f"{MODEL} v{challenger.version}, accuracy {challenger.accuracy:.3f}")
            with progress.step("challenger's card posted, through the webhook intake") as notes:
                candidate = wait_for_card(gatekeeper, challenger.version, CARD_SECONDS, stop.is_set)
                notes.append(f"candidate #{candidate}")

            url = _open_page(slack, bot_url)
            echo(f"ready in {progress.elapsed:.1f} s; open {url}")
            echo(url)
            echo("Ctrl-C to stop")
            ready = True
            serving.set()
            while not stop.wait(1.0):
                pass
            echo("stopping ...")
    except Stopped:
        echo("stopping ...")
    finally:
        _restore_signals(previous)
    echo("stopped: every server the demo started has exited")
    return 0 if ready else 130


def _open_page(slack: SlackEmulator, bot_url: str) -> str:
    people = [Person(member.user_id, member.name, member.role) for member in PEOPLE]
    return slack.open_page(request_url=f"{bot_url}/slack/events", people=people, channel=CHANNEL)


def _populate(slack: SlackEmulator) -> None:
    """The team, its approvers' group and the model's channel."""
    workspace = slack.workspace
    for member in PEOPLE:
        workspace.add_user(member.user_id, member.name, real_name=f"{member.name} ({member.role})")
    workspace.add_usergroup(LEADS, LEADS_HANDLE, [LEAD.user_id], name="ML leads")
    workspace.add_channel(CHANNEL, CHANNEL_NAME)


def _log_to(path: Path) -> None:
    """The bot's log goes to a file in the demo's folder: the terminal keeps the progress lines."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _stop_services(services: list[Service]) -> None:
    """Stop every server together: a polite signal to all, then each waited for (or killed)."""
    for service in services:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, signal.SIGTERM)
    for service in services:
        service.stop()


def _trap_signals(stop: threading.Event, serving: threading.Event) -> dict[int, Any]:
    """Ctrl-C and SIGTERM: while serving, end the wait; while setting up, unwind at once."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            return  # already stopping: a second Ctrl-C must not cut the clean-up short
        stop.set()
        if not serving.is_set():
            raise Stopped

    return {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
