"""A PostgreSQL server of a test's own, to stop and restart: the shared one on 5432 stays up."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.oci_fixtures import free_port

BINARIES = Path(os.environ.get("GATEKEEPER_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
#: PostgreSQL refuses to run as root: as root, the server runs as this user.
SERVER_USER = "postgres"
START_SECONDS = 30


@dataclass
class PrivatePostgres:
    """One cluster in a temporary folder, listening on a free loopback port (trust auth)."""

    data: Path
    port: int
    log: Path
    _as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._ctl("start", "-w", "-t", str(START_SECONDS), "-l", str(self.log), "-o", self._options)

    def stop(self) -> None:
        """``-m fast``: sessions are disconnected, as an operator's stop or a failover does."""
        self._ctl("stop", "-w", "-m", "fast")

    def restart(self) -> None:
        self._ctl("restart", "-w", "-m", "fast", "-t", str(START_SECONDS), "-l", str(self.log),
                  "-o", self._options)  # fmt: skip

    def running(self) -> bool:
        return self._ctl("status", check=False).returncode == 0

    def answers(self) -> bool:
        engine = sa.create_engine(self.url, connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.OperationalError:
            return False
        finally:
            engine.dispose()

    @property
    def _options(self) -> str:
        # Loopback only, and its socket in its own folder: nothing meets the system's server.
        return f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self._as_user, str(BINARIES / "pg_ctl"), "-D", str(self.data), *args],
            capture_output=True,
            text=True,
            timeout=START_SECONDS + 30,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"pg_ctl {args[0]} failed ({done.returncode}): {done.stderr.strip()}\n"
                f"its log ends:\n{self.tail()}"
            )
        return done

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _as_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        pytest.skip(f"runs PostgreSQL as root's stand-in user {SERVER_USER!r}, who does not exist")
    return ["runuser", "-u", SERVER_USER, "--"]


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """initdb, start, yield; stopped and removed on the way out."""
    if not (BINARIES / "initdb").exists():
        pytest.skip(
            f"needs PostgreSQL's server binaries (initdb, pg_ctl) in {BINARIES} "
            "(set GATEKEEPER_TEST_POSTGRES_BIN)"
        )
    as_user = _as_user()
    # Not under pytest's tmp_path: root's is private, and the server runs as another user.
    root = Path(tempfile.mkdtemp(prefix="gatekeeper-pg-"))
    try:
        if as_user:
            shutil.chown(root, SERVER_USER)
        data = root / "data"
        initdb = subprocess.run(
            [*as_user, str(BINARIES / "initdb"), "-D", str(data), "-U", "postgres",
             "-A", "trust", "-E", "UTF8", "--no-sync"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr.strip()}")
        server = PrivatePostgres(data, free_port(), root / "server.log", as_user)
        # A test database wants speed, not durability; the restarts under test stay real.
        with (data / "postgresql.conf").open("a") as conf:
            conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        server.start()
        try:
            yield server
        finally:
            if server.running():
                server._ctl("stop", "-w", "-m", "immediate", check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate()`` every 0.1 s until it holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s", pytrace=False)
        time.sleep(0.1)
