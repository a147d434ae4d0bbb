"""The audit log is append-only, and an edit that gets past the database is still detected."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from bot.store.audit import GENESIS, verify_chain
from bot.store.repositories import UnitOfWork
from tests.conftest import NOW


def _append(uow: Callable[[], UnitOfWork], count: int, actor: str = "U0SRE0001") -> None:
    for i in range(count):
        with uow() as unit:
            unit.audit.append(
                actor, "vote.approve", f"candidate:{i}", {"n": i, "note": "ünïcode ✓"},
                at=NOW + timedelta(seconds=i),
            )  # fmt: skip
            unit.commit()


def test_rows_form_a_chain(uow: Callable[[], UnitOfWork], engine: Engine) -> None:
    _append(uow, 5)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq")
        )
        chain = [tuple(r) for r in rows]
    assert [seq for seq, _, _ in chain] == [1, 2, 3, 4, 5]
    assert chain[0][1] == GENESIS
    assert all(chain[i][1] == chain[i - 1][2] for i in range(1, 5))
    check = verify_chain(engine)
    assert (check.intact, check.rows) == (True, 5)


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET actor = 'U0EVIL'", "DELETE FROM audit_log"]
)
def test_the_database_refuses_edits(
    uow: Callable[[], UnitOfWork], engine: Engine, statement: str
) -> None:
    _append(uow, 2)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as connection:
        connection.execute(sa.text(statement))
    assert verify_chain(engine).rows == 2


def _drop_append_only_triggers(connection: sa.Connection) -> None:
    """What an owner of the database could do; the chain must still give the edit away."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("DROP TRIGGER audit_log_append_only ON audit_log")
    else:
        connection.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        connection.exec_driver_sql("DROP TRIGGER audit_log_no_delete")


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        ("UPDATE audit_log SET actor = 'U0EVIL' WHERE seq = 3", "row 3 (vote.approve) was altered"),
        ("DELETE FROM audit_log WHERE seq = 2", "row 2 is missing (next is 3)"),
    ],
)
def test_an_edit_past_the_trigger_is_detected(
    uow: Callable[[], UnitOfWork], engine: Engine, tamper: str, problem: str
) -> None:
    _append(uow, 4)
    with engine.begin() as connection:
        _drop_append_only_triggers(connection)
        connection.execute(sa.text(tamper))
    check = verify_chain(engine)
    assert not check.intact
    assert check.problem == problem


def test_a_rewritten_row_with_a_recomputed_hash_still_breaks_the_next_link(
    uow: Callable[[], UnitOfWork], engine: Engine
) -> None:
    from bot.store.audit import row_hash

    _append(uow, 3)
    with engine.begin() as connection:
        _drop_append_only_triggers(connection)
        row = connection.execute(sa.text("SELECT prev_hash FROM audit_log WHERE seq = 2")).one()
        forged = row_hash(2, NOW, "U0EVIL", "vote.approve", "candidate:1", {}, row.prev_hash)
        connection.execute(
            sa.text(
                "UPDATE audit_log SET actor = 'U0EVIL', details = :d, at = :at, hash = :h "
                "WHERE seq = 2"
            ),
            {"d": "{}", "at": NOW, "h": forged},
        )
    assert verify_chain(engine).problem == "row 3 does not follow row 2"


def test_concurrent_writers_keep_one_chain(uow: Callable[[], UnitOfWork], engine: Engine) -> None:
    def writer(n: int) -> None:
        _append(uow, 10, actor=f"U0WRITER{n}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check = verify_chain(engine)
    assert (check.intact, check.rows) == (True, 40)


def test_audit_verify_command_exits_1_on_a_tampered_log(
    uow: Callable[[], UnitOfWork], engine: Engine, database_url: str
) -> None:
    command = [str(Path(sys.executable).with_name("gatekeeper")), "audit", "verify"]
    env = {**os.environ, "DATABASE_URL": database_url}
    _append(uow, 3)
    ok = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert (ok.returncode, ok.stdout.strip()) == (0, "audit log intact: 3 rows")
    with engine.begin() as connection:
        _drop_append_only_triggers(connection)
        connection.execute(sa.text("UPDATE audit_log SET subject = 'candidate:9' WHERE seq = 1"))
    bad = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert "row 1 (vote.approve) was altered" in bad.stderr
