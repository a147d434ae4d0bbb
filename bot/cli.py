"""The ``gatekeeper`` command: one entry point for every process and operator task."""

from __future__ import annotations

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
    """Serve Slack's requests over HTTP on $PORT (or over Socket Mode) and deliver messages."""
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
    gatekeeper.delivery.start()
    if worker:
        gatekeeper.start_promoting()
    try:
        if socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            assert settings.slack_app_token is not None
            handler = SocketModeHandler(slack_app, settings.slack_app_token.get_secret_value())
            handler.start()  # type: ignore[no-untyped-call]
        else:
            web = create_web_app(gatekeeper, slack_app)
            uvicorn.run(web, host=host, port=settings.port, log_level="info", access_log=False)
    finally:
        gatekeeper.close()


@main.command()
def worker() -> None:
    """Run promotions (resuming any a stopped process left) and deliver messages, until stopped."""
    import signal
    import threading

    from bot.bootstrap import build

    settings = _settings()
    config = _config(settings.gatekeeper_config)
    _require_migrated(settings)
    gatekeeper = build(settings, config)
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    gatekeeper.delivery.start()
    gatekeeper.start_promoting()
    click.echo("gatekeeper worker: promoting and delivering; Ctrl-C to stop")
    stopped.wait()
    gatekeeper.close()
