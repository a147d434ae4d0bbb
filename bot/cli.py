"""The ``gatekeeper`` command: one entry point for every process and operator task."""

from __future__ import annotations

import gc
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy.exc import OperationalError

from bot.config import (
    ConfigError,
    GatekeeperConfig,
    Settings,
    SettingsError,
    load_config,
    load_settings,
)


def _settings() -> Settings:
    """The environment's settings, or exit 2 naming every variable that is wrong."""
    try:
        return load_settings()
    except SettingsError as error:
        for problem in error.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(2)


def _config(path: Path) -> GatekeeperConfig:
    """The checked gatekeeper.yaml, or exit 1 listing every problem in it."""
    try:
        return load_config(path)
    except ConfigError as error:
        click.echo(f"{path}: {len(error.problems)} problem(s)", err=True)
        for problem in error.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)


def _require_migrated(settings: Settings) -> None:
    from bot.store.migrations import is_current

    with _reaching_database(settings):
        if not is_current(settings.database_url):
            click.echo(
                f"error: the database {settings.redacted_database_url} is not migrated; "
                "run `gatekeeper db upgrade` first",
                err=True,
            )
            sys.exit(1)


@contextmanager
def _reaching_database(settings: Settings) -> Iterator[None]:
    """Turn an unreachable database into one line naming it, password hidden."""
    try:
        yield
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0]
        click.echo(f"error: cannot reach {settings.redacted_database_url}: {reason}", err=True)
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gatekeeper")
def main() -> None:
    """Gatekeeper: promote ML models between environments from Slack."""


@main.group()
def config() -> None:
    """Check gatekeeper.yaml."""


@config.command("check")
@click.argument("file", required=False, type=click.Path(path_type=Path))
def config_check(file: Path | None) -> None:
    """Print every problem in FILE (default: $GATEKEEPER_CONFIG or ./gatekeeper.yaml)."""
    path = file or _settings().gatekeeper_config
    loaded = _config(path)
    counts = (
        _count(len(loaded.environments), "environment", "environments"),
        _count(len(loaded.models), "model", "models"),
        _count(len(loaded.policies), "policy", "policies"),
    )
    click.echo(f"{path}: OK ({', '.join(counts)})")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


@main.group()
def db() -> None:
    """Manage Gatekeeper's database."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to reach.")
def db_upgrade(revision: str) -> None:
    """Migrate the database named by DATABASE_URL (default: a SQLite file) to the latest schema."""
    from bot.store.migrations import upgrade

    settings = _settings()
    with _reaching_database(settings):
        upgrade(settings.database_url, revision)
    click.echo(f"database {settings.redacted_database_url} is at {revision}")


@main.group()
def audit() -> None:
    """Inspect the append-only audit log."""


@audit.command("verify")
def audit_verify() -> None:
    """Walk the audit log's hash chain; exit 1 and name the first row that was altered."""
    from bot.store.audit import verify_chain
    from bot.store.database import make_engine

    settings = _settings()
    with _reaching_database(settings):
        check = verify_chain(make_engine(settings.database_url))
    if not check.intact:
        click.echo(f"audit log altered: {check.problem}", err=True)
        sys.exit(1)
    click.echo(f"audit log intact: {check.rows} rows")


_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def _slack_user(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _SLACK_USER.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a Slack user ID (like U0123ABCD)")
    return value


@main.command()
@click.argument("model")
@click.argument("version")
@click.option("--to", "target", help="Target environment (default: the next on the path).")
@click.option(
    "--requester", callback=_slack_user, help="Slack user ID asking (none: a pipeline asks)."
)
@click.option(
    "--wait",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to spend posting the card; what is not posted, the running gatekeeper posts.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def request(
    model: str,
    version: str,
    target: str | None,
    requester: str | None,
    wait: float,
    as_json: bool,
) -> None:
    """Propose MODEL VERSION for promotion, as `/promote MODEL VERSION` does, and post its card.

    Exit status: 0 proposed (pending, blocked or approved), 1 refused (unknown model or
    version, already a live candidate, MLflow unreachable ...), 2 usage or settings.
    """
    from slack_sdk import WebClient

    from bot.bootstrap import build
    from bot.domain.errors import GatekeeperError
    from bot.services.candidates import summary
    from bot.services.delivery import deliver_candidate_now
    from bot.services.requests import Wanted

    settings = _settings()
    try:
        config = load_config(settings.gatekeeper_config)
    except ConfigError as error:
        for problem in error.problems:
            click.echo(f"error: {settings.gatekeeper_config}: {problem}", err=True)
        sys.exit(2)
    _require_migrated(settings)
    gatekeeper = build(settings, config)
    try:
        try:
            candidate_id = gatekeeper.requests.request(
                Wanted(model, version, target=target),
                requester=requester,
                actor="cli",
                now=gatekeeper.now(),
            )
        except GatekeeperError as error:
            if as_json:
                click.echo(json.dumps({"error": str(error)}))
            click.echo(f"error: {error}", err=True)
            sys.exit(1)
        shown = summary(gatekeeper.unit_of_work, gatekeeper.policy_for, candidate_id)
        channel = gatekeeper.channel_for(model)
        waiting: str | None = "left to the running gatekeeper (--wait 0)"
        if settings.slack_bot_token is None:
            waiting = "SLACK_BOT_TOKEN is not set here; the running gatekeeper posts it"
        elif wait > 0:
            # A client of its own: short timeout, no waiting out rate limits inside a call.
            client = WebClient(
                token=settings.slack_bot_token.get_secret_value(),
                base_url=settings.slack_api_url,
                timeout=5,
            )
            waiting = deliver_candidate_now(
                gatekeeper.unit_of_work, client, candidate_id, within=wait
            )
    finally:
        gatekeeper.close()
    if as_json:
        result = {
            "candidate": candidate_id,
            "model": model,
            "version": shown.version,
            "source": shown.source_env,
            "target": shown.target_env,
            "state": shown.state.value,
            "reasons": list(shown.reasons),
            "channel": channel,
            "card": "posted" if waiting is None else "queued",
            "card_detail": waiting,
        }
        click.echo(json.dumps(result))
        return
    click.echo(
        f"candidate #{candidate_id}: {model} v{shown.version} "
        f"{shown.source_env} → {shown.target_env} is {shown.state.value}"
    )
    for reason in shown.reasons:
        click.echo(f"  - {reason}")
    if waiting is None:
        click.echo(f"card posted in {channel}")
    else:
        click.echo(f"card queued for {channel}: {waiting}")


@main.command()
@click.option("--socket-mode", is_flag=True, help="Connect out to Slack (SLACK_APP_TOKEN).")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option(
    "--worker/--no-worker",
    default=True,
    show_default=True,
    help="Also run promotions here (one process); --no-worker when `gatekeeper worker` runs.",
)
def serve(socket_mode: bool, host: str, worker: bool) -> None:
    """Serve Slack's requests over HTTP on $PORT (or over Socket Mode) and deliver messages.

    Health, readiness, metrics and webhooks are served on $PORT in both modes.
    """
    import uvicorn

    from bot.bootstrap import build
    from bot.web import create_web_app
    from handlers.app import build_app

    settings = _settings()
    config = _config(settings.gatekeeper_config)
    _require_migrated(settings)
    if socket_mode and settings.slack_app_token is None:
        click.echo("error: --socket-mode needs SLACK_APP_TOKEN (an xapp- token)", err=True)
        sys.exit(2)
    gatekeeper = build(settings, config)
    slack_app = build_app(gatekeeper)
    _freeze_startup_objects()
    gatekeeper.delivery.start()
    if worker:
        gatekeeper.start_working()
    try:
        if socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            assert settings.slack_app_token is not None
            handler = SocketModeHandler(slack_app, settings.slack_app_token.get_secret_value())
            handler.connect()  # type: ignore[no-untyped-call]  # its own threads; returns at once
            connected = handler.client.is_connected
            web = create_web_app(gatekeeper, slack_app, socket_connected=connected)
            try:
                uvicorn.run(web, host=host, port=settings.port, log_level="info", access_log=False)
            finally:
                handler.close()  # type: ignore[no-untyped-call]
        else:
            web = create_web_app(gatekeeper, slack_app)
            uvicorn.run(web, host=host, port=settings.port, log_level="info", access_log=False)
    finally:
        gatekeeper.close()


def _freeze_startup_objects() -> None:
    """Leave what start-up built (mlflow, kfp, the app: most of the heap) out of collections.

    It lives as long as the process; without this, each full collection walks it again and
    stops every thread for about 150 ms, which is what the slowest Slack acks waited for.
    """
    gc.collect()
    gc.freeze()


@main.command()
def worker() -> None:
    """Run promotions (resuming any a stopped process left), the schedule (digests, reminders,
    expiry, MLflow polling) and message delivery, until stopped."""
    import signal
    import threading

    from bot.bootstrap import build

    settings = _settings()
    config = _config(settings.gatekeeper_config)
    _require_migrated(settings)
    gatekeeper = build(settings, config)
    _freeze_startup_objects()
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    gatekeeper.delivery.start()
    gatekeeper.start_working()
    click.echo("gatekeeper worker: promoting, scheduling and delivering; Ctrl-C to stop")
    stopped.wait()
    gatekeeper.close()


@main.command()
@click.option(
    "--dir", "folder", default="gatekeeper-demo", show_default=True,
    type=click.Path(path_type=Path), help="The demo's own folder; wiped at each start.",
)  # fmt: skip
@click.option(
    "--port", default=3000, show_default=True, type=click.IntRange(0, 65535),
    help="Port of the demo's Slack page on 127.0.0.1 (0: any free port).",
)  # fmt: skip
def demo(folder: Path, port: int) -> None:
    """Run the whole loop on this machine: MLflow for dev, staging and production, a registry,
    the bot, a Slack page, and a model trained by a KFP pipeline waiting for approval.

    Nothing is read from your Slack settings; everything stops on Ctrl-C.
    """
    from bot.demo.run import run_demo
    from bot.domain.errors import GatekeeperError

    try:
        status = run_demo(folder, port, lambda line: click.echo(line))
    except GatekeeperError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    sys.exit(status)


@main.group()
def webhooks() -> None:
    """Point MLflow's registry webhooks at Gatekeeper (the polling fallback needs none)."""


def _webhook_environments(config: GatekeeperConfig, chosen: tuple[str, ...]) -> list[str]:
    """The environments named (default: every one with a next on the path), or exit 2."""
    sources = list(config.promotion_path[:-1])
    for name in chosen:
        if name not in sources:
            click.echo(
                f"error: {name!r} is not an environment models are promoted from; "
                f"choose from {', '.join(sources)}",
                err=True,
            )
            sys.exit(2)
    return list(dict.fromkeys(chosen)) or sources


@webhooks.command("install")
@click.option(
    "--environment", "environments", multiple=True,
    help="An environment whose MLflow should call Gatekeeper (repeatable; default: all but "
    "the last on the path).",
)  # fmt: skip
@click.option("--url", "base_url", required=True, help="Gatekeeper's public base URL.")
def webhooks_install(environments: tuple[str, ...], base_url: str) -> None:
    """Create or update the webhook gatekeeper-<env> on each environment's MLflow server."""
    from urllib.parse import quote, urlsplit

    from bot.adapters.mlflow_webhooks import subscribe
    from bot.services.registry import RegistryError

    settings = _settings()
    config = _config(settings.gatekeeper_config)
    if settings.mlflow_webhook_secret is None:
        click.echo("error: MLFLOW_WEBHOOK_SECRET is not set; MLflow signs with it", err=True)
        sys.exit(2)
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        click.echo(f"error: --url {base_url!r} is not an http(s) base URL", err=True)
        sys.exit(2)
    secret = settings.mlflow_webhook_secret.get_secret_value()
    failed = False
    for name in _webhook_environments(config, environments):
        url = f"{base_url.rstrip('/')}/webhooks/mlflow?environment={quote(name)}"
        spec = config.environments[name]
        try:
            done = subscribe(name, spec.mlflow, f"gatekeeper-{name}", url, secret)
        except RegistryError as error:
            click.echo(f"error: {name}: {error}", err=True)
            failed = True
            continue
        click.echo(f"{name}: {done} webhook gatekeeper-{name} → {url}")
    if failed:
        sys.exit(1)


@webhooks.command("list")
def webhooks_list() -> None:
    """Show the webhooks on each environment's MLflow server."""
    from bot.adapters.mlflow_webhooks import subscriptions
    from bot.services.registry import RegistryError

    settings = _settings()
    config = _config(settings.gatekeeper_config)
    failed = False
    for name in config.promotion_path:
        try:
            found = subscriptions(name, config.environments[name].mlflow)
        except RegistryError as error:
            click.echo(f"error: {name}: {error}", err=True)
            failed = True
            continue
        if not found:
            click.echo(f"{name}: no webhooks")
        for hook in found:
            click.echo(f"{name}: {hook.name} {hook.status} {hook.url} ({', '.join(hook.events)})")
    if failed:
        sys.exit(1)
