"""Who may run the scheduler: one process at a time, however many workers start.

On PostgreSQL a session-level advisory lock, held on a connection of its own for as long as the
scheduler runs: it is gone the moment that connection or its process dies. SQLite has no such
lock, so a lease row in ``scheduler_lease`` stands in: renewed every few seconds by its holder,
taken over by another only once it has expired.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot.store.models import SchedulerLeaseRow as LeaseRow

logger = logging.getLogger(__name__)

#: Any constant will do, as long as every process uses the same one and nothing else does.
ADVISORY_KEY = 0x6761_7465_7363  # "gatesc"
LEASE_NAME = "scheduler"
LEASE_TTL = timedelta(seconds=15)


class SchedulerLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this process now holds it."""
        ...

    def keep(self) -> bool:
        """Whether this process still holds the lock (renewing it where it expires)."""
        ...

    def release(self) -> None:
        """Let another process take over at once."""
        ...


def holder_id() -> str:
    """Names this process in ``scheduler_lease``: host, pid, and a nonce against pid reuse."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _gone(holder: str) -> bool:
    """Whether ``holder`` names a process of this host that no longer runs (a worker killed
    and restarted need not wait out its own lease). Unsure — another host, a pid reused —
    means not gone: the lease then expires as usual."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def scheduler_lock(engine: Engine, holder: str | None = None) -> SchedulerLock:
    """The lock fit for ``engine``'s database."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    return Lease(engine, holder or holder_id())


class AdvisoryLock:
    """``pg_try_advisory_lock`` on a connection kept out of the pool while the lock is held."""

    def __init__(self, engine: Engine, key: int = ADVISORY_KEY) -> None:
        self._engine = engine
        self._key = key
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        if self._connection is not None:
            return True
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
            ).scalar()
        except BaseException:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def keep(self) -> bool:
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
        except DBAPIError as error:
            logger.warning("the scheduler's lock connection broke: %s", type(error.orig).__name__)
            self._drop()
            return False
        return True

    def release(self) -> None:
        self._drop()

    def _drop(self) -> None:
        # Closing the database session, not just returning it to the pool, is what frees the
        # lock for sure, whatever state the connection is in.
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.invalidate()
            connection.close()


class Lease:
    """A row naming the holder and until when; renewed by ``keep``, taken over once expired."""

    def __init__(
        self,
        engine: Engine,
        holder: str,
        *,
        ttl: timedelta = LEASE_TTL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self.holder = holder
        self._ttl = ttl
        self._clock = clock

    def acquire(self) -> bool:
        now = self._clock()
        try:
            with self._engine.begin() as connection:
                current = connection.execute(
                    select(LeaseRow.holder, LeaseRow.expires_at).where(LeaseRow.name == LEASE_NAME)
                ).first()
                if current is None:
                    connection.execute(
                        insert(LeaseRow).values(
                            name=LEASE_NAME, holder=self.holder, expires_at=now + self._ttl
                        )
                    )
                    return True
                if (
                    current.holder != self.holder
                    and current.expires_at > now
                    and not _gone(current.holder)
                ):
                    return False
                taken = connection.execute(
                    update(LeaseRow)
                    .where(
                        LeaseRow.name == LEASE_NAME,
                        LeaseRow.holder == current.holder,
                        LeaseRow.expires_at == current.expires_at,
                    )
                    .values(holder=self.holder, expires_at=now + self._ttl)
                )
                return bool(taken.rowcount == 1)
        except IntegrityError:
            return False  # another process inserted the row first

    def keep(self) -> bool:
        with self._engine.begin() as connection:
            renewed = connection.execute(
                update(LeaseRow)
                .where(LeaseRow.name == LEASE_NAME, LeaseRow.holder == self.holder)
                .values(expires_at=self._clock() + self._ttl)
            )
            return bool(renewed.rowcount == 1)

    def release(self) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                delete(LeaseRow).where(LeaseRow.name == LEASE_NAME, LeaseRow.holder == self.holder)
            )
