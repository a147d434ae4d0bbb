"""The audit log: append-only, each row chained to the one before by a SHA-256 hash.

A database trigger refuses UPDATE and DELETE; the chain catches whoever got past the trigger
(an owner who dropped it, a restore from an edited dump).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from bot.store.models import AuditRow

GENESIS = "0" * 64
#: Any constant will do, as long as every process uses the same one.
_APPEND_LOCK_KEY = 0x6761_7465  # "gate"


def row_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """The hash a row must carry: over its own fields and the previous row's hash."""
    canonical = json.dumps(
        {
            "seq": seq,
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details,
            "prev": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class AuditLog:
    def __init__(self, session: Session) -> None:
        self._session = session

    def append(
        self,
        actor: str,
        action: str,
        subject: str,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditRow:
        """Add a row at the end of the chain, within the caller's transaction."""
        if self._session.get_bind().dialect.name == "postgresql":
            # Two writers reading the same tail would fork the chain: append one at a time.
            self._session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK_KEY}
            )
        # SQLite needs no lock here: every transaction began IMMEDIATE (see store.database).
        last = self._session.execute(
            select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)
        ).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        at = at or datetime.now(UTC)
        # Stored exactly as it will be read back and hashed again: plain JSON values only.
        details = json.loads(json.dumps(details or {}, default=str))
        row = AuditRow(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            details=details,
            prev_hash=prev,
            hash=row_hash(seq, at, actor, action, subject, details, prev),
        )
        self._session.add(row)
        self._session.flush()
        return row


@dataclass(frozen=True)
class ChainCheck:
    rows: int
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify_chain(engine: Engine) -> ChainCheck:
    """Recompute every row's hash in order; report the first row that does not match."""
    prev, expected_seq, count = GENESIS, 1, 0
    with Session(engine) as session:
        for row in session.scalars(select(AuditRow).order_by(AuditRow.seq)).yield_per(1000):
            if row.seq != expected_seq:
                return ChainCheck(count, f"row {expected_seq} is missing (next is {row.seq})")
            if row.prev_hash != prev:
                return ChainCheck(count, f"row {row.seq} does not follow row {row.seq - 1}")
            recomputed = row_hash(
                row.seq, row.at, row.actor, row.action, row.subject, row.details, row.prev_hash
            )
            if recomputed != row.hash:
                return ChainCheck(count, f"row {row.seq} ({row.action}) was altered")
            prev, expected_seq, count = row.hash, expected_seq + 1, count + 1
    return ChainCheck(count)
