"""`gatekeeper serve` to throw malformed requests at, and the proof that they changed nothing.

Each fuzz module starts the bot twice, on SQLite and on PostgreSQL (strict about lengths, NUL
characters and JSON), and sends each drawn request to one of the two. A refusal may add
audit rows and tell the sender why (an ephemeral message); an accepted MLflow delivery is kept
(``bot.web_mlflow``). Everything else in the database must stay byte for byte as it was, and
Slack must see nothing posted where others can read it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from bot.bootstrap import Gatekeeper, build
from bot.config import load_config, load_settings
from bot.emulator import SlackEmulator
from bot.store.database import READ_ONLY
from bot.store.migrations import upgrade
from tests.conftest import POSTGRES_URL, _postgres_admin
from tests.e2e.conftest import (
    APP_TOKEN,
    BOT_TOKEN,
    CHANNEL,
    LEAD,
    LEADS,
    OUTSIDER,
    REQUESTER,
    SIGNING_SECRET,
    SRE,
    TEAM,
    WEBHOOK_SECRET,
    _free_port,
    _wait_until_up,
)

#: Examples per fuzz test: a modest number in CI, more on demand (GATEKEEPER_FUZZ_EXAMPLES=2000).
EXAMPLES = int(os.environ.get("GATEKEEPER_FUZZ_EXAMPLES") or 100)

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The bots live for the module on purpose: nothing an example sends may change them.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

#: Text a person, a client or an attacker might put anywhere: empty, huge, NUL, RTL marks,
#: and lone surrogates (JSON's "\\ud800", which Python reads into a str as it is).
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(max_size=10).map(lambda s: s * 50),
    st.sampled_from(["", " ", "\x00", "null", "{}", "[]", "é", "👍", "\u202e", "a" * 3001]),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "\x00"]), st.integers(1, 100_000)),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF).map(lambda c: f"U0{c}"),
)
#: Any JSON value Python reads, NaN and Infinity included.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=10,
)
#: Three examples in four are plausible (what Slack or MLflow sends, wrong in one or two
#: places), so most reach the code behind the first checks; the rest are wrong anywhere.
PLAUSIBLE = st.integers(0, 3).map(bool)


@st.composite
def damaged(draw: st.DrawFn, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with some keys dropped and some set to anything at all."""
    keys = st.sampled_from(list(payload))
    dropped = draw(st.lists(keys, max_size=3))
    changed = draw(st.dictionaries(keys | TEXT, JSON_VALUES, max_size=2))
    return {**{k: v for k, v in payload.items() if k not in dropped}, **changed}


#: What a Python traceback looks like in a response body: its header, or a frame's line.
TRACEBACK_MARKS = ("Traceback (most recent call last)", '.py", line ')

#: What the bot logs when a request went wrong in a way nobody meant it to.
LOG_PROBLEMS = ("Traceback", "unexpected error", "Exception in ASGI application")

#: A table's rows by primary key.
Rows = dict[tuple[Any, ...], dict[str, Any]]

#: Columns the bot updates on rows as it works through them: delivering a message, acting on a
#: kept delivery. The rest of a row never changes once written.
BOOKKEEPING = {
    "outbox": frozenset({"attempts", "delivered_at", "last_error", "deliver_after"}),
    "webhook_deliveries": frozenset({"processed_at", "outcome", "detail"}),
}


@dataclass
class Served:
    """One `gatekeeper serve` (no worker: nothing scheduled moves on its own), its database
    and the Slack stand-in it talks to."""

    database: str
    url: str
    engine: sa.Engine
    slack: SlackEmulator
    gatekeeper: Gatekeeper  # the same database and config, for arranging what the bot serves
    log: Path
    process: subprocess.Popen[bytes]
    http: httpx.Client  # kept alive between examples, as Slack's and MLflow's senders keep theirs
    tables: dict[str, sa.Table] = field(default_factory=dict)
    baseline: dict[str, Rows] = field(default_factory=dict)
    calls_before: int = 0
    card_ts: str = ""  # the card a test arranged, if any
    log_read: int = 0

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"gatekeeper serve ({self.database}) exited:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        """Lines the bot logged since last asked that say something went wrong that no
        refusal explains, each with the lines around it."""
        with self.log.open("rb") as log:
            log.seek(self.log_read)
            text = log.read().decode("utf-8", errors="replace")
            self.log_read = log.tell()
        lines = text.splitlines()
        return [
            "\n".join(lines[max(0, n - 2) : n + 25])
            for n, line in enumerate(lines)
            if any(mark in line for mark in LOG_PROBLEMS)
        ]

    def mark(self) -> None:
        """Take the state the examples that follow are compared with."""
        self.baseline = snapshot(self.engine, self.tables)
        self.calls_before = len(self.slack.calls)
        self.log_problems()  # what came before is not theirs to answer for

    def settle(self) -> None:
        """Once what was arranged is delivered: the state the fuzz starts from."""
        deadline = time.monotonic() + 15
        while _undelivered(self.engine):
            if time.monotonic() > deadline:
                pytest.fail(f"the outbox was not delivered within 15 s:\n{self.log_tail()}")
            time.sleep(0.05)
        self.tables = reflect(self.engine)
        self.mark()


def _undelivered(engine: sa.Engine) -> int:
    with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
        return int(
            connection.scalar(sa.text("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"))
            or 0
        )


def slack_team(slack: SlackEmulator) -> None:
    """The e2e team: a requester, two approvers (one through a user group), an outsider."""
    workspace = slack.workspace
    for user, name in [(REQUESTER, "dana"), (LEAD, "lea"), (SRE, "sam"), (OUTSIDER, "ovid")]:
        workspace.add_user(user, name)
    workspace.add_usergroup(LEADS, "ml-leads", [LEAD])
    workspace.add_channel(CHANNEL, "ml-models")


@contextlib.contextmanager
def fresh_database(kind: str, root: Path) -> Iterator[str]:
    """A migrated database of its own: a SQLite file, or a new PostgreSQL database."""
    if kind == "sqlite":
        url = f"sqlite:///{root / 'gatekeeper.db'}"
        upgrade(url)
        yield url
        return
    admin = _postgres_admin()
    name = f"gk_fuzz_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextlib.contextmanager
def serving(root: Path, gatekeeper_yaml: str, database: str, **variables: str) -> Iterator[Served]:
    """The stand-in with the e2e team, and `gatekeeper serve --no-worker` on ``database``,
    with ``variables`` added to its environment."""
    root.mkdir(parents=True, exist_ok=True)
    with (
        SlackEmulator(
            team_id=TEAM, bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, app_token=APP_TOKEN
        ) as slack,
        fresh_database(database, root) as database_url,
    ):
        slack_team(slack)
        config = root / "gatekeeper.yaml"
        config.write_text(gatekeeper_yaml, encoding="utf-8")
        port = _free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GATEKEEPER_"))},
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "DATABASE_URL": database_url,
            "GATEKEEPER_CONFIG": str(config),
            "PORT": str(port),
            "MLFLOW_WEBHOOK_SECRET": WEBHOOK_SECRET,
            **variables,
        }
        log = root / "serve.log"
        command = [str(Path(sys.executable).with_name("gatekeeper")), "serve", "--no-worker"]
        with log.open("wb") as output:
            process = subprocess.Popen(
                [*command, "--host", "127.0.0.1"],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(slack, url, process, log)
            settings = load_settings(
                slack_bot_token=BOT_TOKEN, slack_api_url=slack.api_url, database_url=database_url
            )
            gatekeeper = build(settings, load_config(config))
            with httpx.Client(base_url=url, timeout=30, trust_env=False) as http:
                try:
                    yield Served(
                        database, url, gatekeeper.engine, slack, gatekeeper, log, process, http
                    )
                finally:
                    gatekeeper.close()
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def reflect(engine: sa.Engine) -> dict[str, sa.Table]:
    """The database's tables as the migrations made them."""
    metadata = sa.MetaData()
    with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
        metadata.reflect(connection)
    return dict(sorted(metadata.tables.items()))


def snapshot(engine: sa.Engine, tables: dict[str, sa.Table]) -> dict[str, Rows]:
    """Every row of every table by primary key, as the database returns it."""
    rows: dict[str, Rows] = {}
    # Read-only: on SQLite, a snapshot must not take the write lock from the bot.
    with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
        for name, table in tables.items():
            key = list(table.primary_key.columns) or list(table.c)
            rows[name] = {
                tuple(row[column.name] for column in key): dict(row)
                for row in connection.execute(sa.select(table)).mappings()
            }
    return rows


Rule = Callable[[dict[str, Any]], bool]


def changes(served: Served, allowed: dict[str, Rule]) -> list[str]:
    """What changed since the baseline beyond the rows ``allowed`` lets a table gain (by table
    name); empty when nothing did."""
    now = snapshot(served.engine, served.tables)
    problems: list[str] = []
    for table, after in now.items():
        before = served.baseline.get(table, {})
        rule = allowed.get(table)
        if rule is None:
            if after != before:
                problems.append(f"{table}: {_difference(before, after)}")
            continue
        ignored = BOOKKEEPING.get(table, frozenset())
        for key, row in before.items():
            kept = after.get(key)
            if kept is None or _without(kept, ignored) != _without(row, ignored):
                problems.append(f"{table}: {row} became {kept}")
        problems += [
            f"{table}: a new row not allowed here: {row}"
            for key, row in after.items()
            if key not in before and not rule(row)
        ]
    return problems


def _without(row: dict[str, Any], columns: frozenset[str]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name not in columns}


def _difference(before: Rows, after: Rows) -> str:
    added = [row for key, row in after.items() if key not in before]
    gone = [row for key, row in before.items() if key not in after]
    changed = [(row, after[key]) for key, row in before.items() if after.get(key, row) != row]
    return f"added {added[:3]}, removed {gone[:3]}, changed {changed[:3]}"


def slack_changes(served: Served, allowed_methods: frozenset[str]) -> list[str]:
    """Web API calls since the baseline outside ``allowed_methods``."""
    return [
        f"{call.method}({call.args})"
        for call in served.slack.calls[served.calls_before :]
        if call.method not in allowed_methods
    ]


def no_traceback(body: bytes | str) -> None:
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    for mark in TRACEBACK_MARKS:
        assert mark not in text, f"a traceback in the response:\n{text[:2000]}"


def wait_quiet(bots: list[Served], seconds: float = 1.0) -> None:
    """Long enough for what runs after an answer (lazy listeners, background tasks) to end."""
    time.sleep(seconds)
    for served in bots:
        served.check_alive()
