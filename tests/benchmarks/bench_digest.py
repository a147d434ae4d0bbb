"""The digest of 100, 1,000 and 10,000 open candidates, on SQLite and PostgreSQL, beside reading.

Run on demand (not part of the test suite): `.venv/bin/python -m tests.benchmarks.bench_digest`.
Candidates are inserted in bulk, as rows: five models, three in four bound for staging (one
approval) and one in four for production (two), one in five blocked with its reasons and who
may override, half of production's with one approval already, nine in ten with a posted card
(so lines link to threads), and a tenth as many approved ones that the digest leaves out.
The figure is what the scheduled digest does before queueing: read the candidates
(`bot.services.digests.read_digest`, on a unit of work as `post_digest` opens it) and render
the message (`handlers.blocks.digest.digest_message`). Baselines in the same run: the very
statements `read_digest` sends, run on the bare driver connection and fetched, with nothing
made of the rows (what reading alone costs); `json.dumps` of the resulting payload; and, for
scale, the statements that fetch every open candidate with its votes and card
(`bot.services.digests.read_open`) on the bare driver: the least a digest that reads every
row can cost.
PostgreSQL gets a scratch database of its own (dropped afterwards), ANALYZEd after the insert.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, event, insert
from sqlalchemy.engine import make_url

from bot.blockkit import message_problems
from bot.domain.policy import Policy
from bot.services.digests import read_digest, read_open
from bot.store.database import make_engine, make_session_factory
from bot.store.migrations import upgrade
from bot.store.models import CandidateRow, SlackMessageRow, VoteRow
from bot.store.repositories import UnitOfWork
from handlers.blocks.digest import digest_message
from tests.benchmarks.machine import machine
from tests.conftest import NOW, POSTGRES_URL

SIZES = (100, 1_000, 10_000)
CHANNEL = "C0LEADS01"  # hosts no model's cards: its digest covers every model
WORKSPACE = "https://acme.slack.com/"
LEADS, LEAD, SRE, REQUESTER = "S0MLLEADS", "U0LEAD001", "U0SRE0001", "U0REQUEST"
PATH = ("dev", "staging", "production")
POLICIES = {
    "staging": Policy(approvals=1, approvers=frozenset({LEAD})),
    "production": Policy(approvals=2, approvers=frozenset({LEADS, SRE, REQUESTER})),
}
MODELS = ("churn-classifier", "fraud-detector", "ltv-regressor", "ranker", "search-embedder")


Rows = list[dict[str, Any]]


def candidate_rows(count: int) -> tuple[Rows, Rows, Rows]:
    """``count`` open candidates (and a tenth as many approved), their votes and their cards."""
    candidates: Rows = []
    votes: Rows = []
    cards: Rows = []
    for n in range(1, count + count // 10 + 1):
        production = n % 4 == 0
        blocked = n % 5 == 0
        state = "approved" if n > count else "blocked" if blocked else "pending"
        if blocked:
            verdict = {
                "kind": "blocked",
                "reasons": [
                    f"accuracy 0.{880 + n % 40} < champion 0.925 - 0.005",
                    "image 127.0.0.1:5000/dev/serving is not signed",
                ],
                "override_by": ["S0MLOPS"],
            }
        else:
            needed = 2 if production else 1
            verdict = {"kind": "needs_approval", "reasons": [f"{needed} approval(s) needed"]}
        candidates.append(
            {
                "id": n,
                "model": MODELS[n % len(MODELS)],
                "version": str(n),
                "source_env": "staging" if production else "dev",
                "target_env": "production" if production else "staging",
                "state": state,
                "requester": REQUESTER if n % 2 else None,
                "author": f"U0AUTH{n % 7:03d}",
                "bundle": {"images": {"serving": f"127.0.0.1:5000/dev/serving@sha256:{n:064x}"}},
                "metrics": {"accuracy": 0.93, "auc": 0.88},
                "verdict": verdict,
                "reason": "gates failed" if blocked and n % 3 == 0 else None,
                "created_at": NOW - timedelta(minutes=n),
                "updated_at": NOW,
                "expires_at": NOW + timedelta(days=7) if n % 3 else None,
            }
        )
        if production and state == "pending" and n % 8 == 0:
            votes.append(
                {"candidate_id": n, "voter": LEAD, "decision": "approve", "reason": None, "at": NOW}
            )
        if n % 10:
            cards.append(
                {"candidate_id": n, "kind": "card", "channel": "C0ML00001",
                 "ts": f"1764230400.{n:06d}"}
            )  # fmt: skip
    return candidates, votes, cards


def fill(engine: Engine, count: int) -> None:
    """Only these candidates in the database: the previous size's are deleted first."""
    candidates, votes, cards = candidate_rows(count)
    with engine.begin() as connection:
        for table in (SlackMessageRow, VoteRow, CandidateRow):
            connection.execute(sa.delete(table))
        connection.execute(insert(CandidateRow), candidates)
        if votes:
            connection.execute(insert(VoteRow), votes)
        connection.execute(insert(SlackMessageRow), cards)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")


def build(uow: Callable[[], UnitOfWork]) -> tuple[float, float, dict[str, Any], int]:
    """Seconds reading and rendering, the payload, and how many candidates it covers."""
    with uow() as unit:
        started = time.perf_counter()
        digest = read_digest(unit.session, CHANNEL, None, POLICIES.__getitem__, PATH, NOW)
        read = time.perf_counter() - started
        message = digest_message(digest, workspace_url=WORKSPACE)
        payload = {**message.payload(), "channel": CHANNEL}
        rendered = time.perf_counter() - started - read
    return read, rendered, payload, digest.total


def read_everything(uow: Callable[[], UnitOfWork]) -> None:
    """Every open candidate with its votes and card, as a digest reading every row would."""
    with uow() as unit:
        read_open(unit.session, None, POLICIES.__getitem__, NOW)


def statements(engine: Engine, run: Callable[[], object]) -> list[tuple[str, Any]]:
    """The SELECTs ``run`` sends, exactly as the driver receives them."""
    sent: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    return sent


def bare_read(engine: Engine, sent: list[tuple[str, Any]]) -> tuple[float, int]:
    """Seconds to run the same statements on the driver's connection and fetch every row."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        rows = 0
        for statement, parameters in sent:
            cursor.execute(statement, parameters)
            rows += len(cursor.fetchall())
        seconds = time.perf_counter() - started
        cursor.close()
        raw.rollback()
    finally:
        raw.close()
    return seconds, rows


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def measure(name: str, url: str, runs: int) -> list[str]:
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)

    def uow() -> UnitOfWork:
        return UnitOfWork(factory)

    lines = []
    try:
        for count in SIZES:
            fill(engine, count)
            sent = statements(engine, lambda: build(uow))  # also the warm-up
            everything = statements(engine, lambda: read_everything(uow))
            reads, renders, totals, bares, dumps, alls = [], [], [], [], [], []
            for _ in range(runs):
                read, rendered, payload, covered = build(uow)
                reads.append(read)
                renders.append(rendered)
                totals.append(read + rendered)
                bare, rows = bare_read(engine, sent)
                bares.append(bare)
                alls.append(bare_read(engine, everything)[0])
                started = time.perf_counter()
                body = json.dumps(payload, ensure_ascii=False)
                dumps.append(time.perf_counter() - started)
            if covered != count:
                raise SystemExit(f"the digest covers {covered} candidates, not {count}")
            problems = message_problems(payload)
            total, floor = median_ms(totals), median_ms(bares) + median_ms(dumps)
            lines.append(
                f"{name:<10} {count:>7,} {total:8.1f} {median_ms(reads):7.1f} "
                f"{median_ms(renders):7.1f} {median_ms(bares):8.1f} {median_ms(dumps):6.2f} "
                f"{total / floor:6.1f} {median_ms(alls):7.1f} {len(payload['blocks']):>6} "
                f"{len(body.encode()):>7,} {rows:>7,} "
                f"{'ok' if not problems else f'{len(problems)} problem(s)':>7}"
            )
            if problems:
                lines += [f"    {problem}" for problem in problems]
    finally:
        engine.dispose()
    return lines


@contextmanager
def scratch_postgres() -> Iterator[str]:
    """A database of this run's own on the test server, dropped afterwards."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"gk_bench_digest_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="builds of each digest (median)")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-digest-"))
    try:
        lines = measure("sqlite", f"sqlite:///{folder / 'gatekeeper.db'}", options.runs)
        with scratch_postgres() as url:
            lines += measure("postgresql", url, options.runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\ndigest built from open candidates, median of {options.runs} (ms)")
    print(f"machine: {machine()}")
    print(
        f"{'database':<10} {'open':>7} {'built':>8} {'read':>7} {'render':>7} "
        f"{'bare rd':>8} {'dumps':>6} {'x base':>6} {'rd all':>7} {'blocks':>6} {'bytes':>7} "
        f"{'rows':>7} "
        f"{'limits':>7}"
    )
    for line in lines:
        print(line)
    print(
        "built = read + render (the figure; target <= 200 ms at 10,000); bare rd = the same "
        "SELECTs on the bare driver, rows fetched; x base = built / (bare rd + dumps); rd all = "
        "every open candidate, its votes and card fetched on the bare driver (the floor of "
        "reading every row); rows = rows the digest's SELECTs return"
    )


if __name__ == "__main__":
    main()
