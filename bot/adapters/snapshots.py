"""Copies data snapshots and checkpoints between environments' stores, verifying their sha256."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import unquote, urlsplit

from bot.domain.errors import GatekeeperError

logger = logging.getLogger(__name__)

CHUNK = 8 * 1024 * 1024


class SnapshotError(GatekeeperError):
    """A snapshot could not be copied or checked; the message names the URL.

    SnapshotError
    ├── SnapshotNotFound     nothing at the source URL
    ├── ChecksumMismatch     the bytes read are not the ones the bundle declared
    ├── SnapshotConflict     the target already holds other bytes under that name
    ├── SnapshotStoreFailed  the store refused or failed (may pass if tried again)
    └── SnapshotStoreUnsupported  an address no store here can serve (a configuration fix)
    """


class SnapshotNotFound(SnapshotError):
    def __init__(self, url: str) -> None:
        super().__init__(f"there is no snapshot at {url}")
        self.url = url


class ChecksumMismatch(SnapshotError):
    def __init__(self, url: str, expected: str, actual: str) -> None:
        super().__init__(
            f"the snapshot at {url} has sha256 {actual}, not the {expected} its bundle declares; "
            "nothing was copied"
        )
        self.url, self.expected, self.actual = url, expected, actual


class SnapshotConflict(SnapshotError):
    def __init__(self, url: str, expected: str, actual: str) -> None:
        super().__init__(
            f"{url} already holds a different file (sha256 {actual}, not {expected}); "
            "Gatekeeper does not overwrite what another promotion may depend on"
        )
        self.url, self.expected, self.actual = url, expected, actual


class SnapshotStoreFailed(SnapshotError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"the snapshot store at {url} failed: {reason}")
        self.url, self.reason = url, reason


class SnapshotStoreUnsupported(SnapshotError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"Gatekeeper cannot use the snapshot store at {url}: {reason}")
        self.url, self.reason = url, reason


@dataclass(frozen=True)
class SnapshotCopy:
    """What a copy did: bytes moved (or found already in place) and how long it took."""

    bytes: int
    seconds: float
    #: The target already held these bytes: nothing was written.
    skipped: bool = False


def copy_snapshot(
    source_url: str, sha256: str, target_url: str, chunk: int = CHUNK
) -> SnapshotCopy:
    """Stream source to target in chunks; the target appears only once its sha256 is right."""
    started = time.monotonic()
    expected = sha256.lower()
    source, source_path = _store(source_url)
    target, target_path = _store(target_url)
    with _translated(target_url):
        present = target.exists(target_path)
    if present:
        held, size = _digest(target, target_path, target_url, chunk)
        if held != expected:
            raise SnapshotConflict(target_url, expected, held)
        logger.info("%s already holds the snapshot; not copied again", target_url)
        return SnapshotCopy(size, time.monotonic() - started, skipped=True)
    # A name beside the target, so the final move stays within one directory or bucket.
    partial = f"{target_path}.gatekeeper-{uuid.uuid4().hex}.partial"
    digest, size = hashlib.sha256(), 0
    made: list[str] = []
    try:
        # Errors reading the source arrive already named for the source URL.
        with _translated(target_url):
            made = target.makedirs(target.parent(target_path))
            with target.open_write(partial) as writer:
                for block in _blocks(source, source_path, source_url, chunk):
                    digest.update(block)
                    writer.write(block)
                    size += len(block)
        if digest.hexdigest() != expected:
            raise ChecksumMismatch(source_url, expected, digest.hexdigest())
        with _translated(target_url):
            target.commit(partial, target_path)
    except BaseException:
        _discard(target, partial, made)
        raise
    return SnapshotCopy(size, time.monotonic() - started)


def verify(url: str, sha256: str, chunk: int = CHUNK) -> bool:
    """Whether the URL holds bytes with this sha256; False when nothing is there."""
    store, path = _store(url)
    try:
        held, _ = _digest(store, path, url, chunk)
    except SnapshotNotFound:
        return False
    return held == sha256.lower()


class _Store(Protocol):
    def exists(self, path: str) -> bool: ...
    def parent(self, path: str) -> str: ...
    def makedirs(self, path: str) -> list[str]: ...
    def remove_directory(self, path: str) -> None: ...
    def open_read(self, path: str) -> IO[bytes]: ...
    def open_write(self, path: str) -> _Sink: ...
    def commit(self, partial: str, path: str) -> None: ...
    def remove(self, path: str) -> None: ...


class _Sink(Protocol):
    def write(self, block: bytes, /) -> int: ...
    def __enter__(self) -> _Sink: ...
    def __exit__(self, *exc: object) -> None: ...


class _LocalFiles:
    """A directory tree on this machine."""

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def parent(self, path: str) -> str:
        return str(Path(path).parent)

    def makedirs(self, path: str) -> list[str]:
        missing = [p for p in (Path(path), *Path(path).parents) if not p.exists()]
        Path(path).mkdir(parents=True, exist_ok=True)
        return [str(p) for p in missing]

    def remove_directory(self, path: str) -> None:
        os.rmdir(path)

    def open_read(self, path: str) -> IO[bytes]:
        return open(path, "rb")

    def open_write(self, path: str) -> _Sink:
        # "x": a name that somehow exists already is never written through.
        return _Durable(open(path, "xb"))

    def commit(self, partial: str, path: str) -> None:
        os.replace(partial, path)
        # The rename itself reaches the disk only with its directory.
        directory = os.open(Path(path).parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def remove(self, path: str) -> None:
        os.unlink(path)


class _Durable:
    """A local file that reaches the disk before it is closed, so a crash cannot half-keep it."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def write(self, block: bytes) -> int:
        return self._file.write(block)

    def __enter__(self) -> _Durable:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()


class _Fsspec:
    """Any store fsspec has an implementation for."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs

    def exists(self, path: str) -> bool:
        return bool(self._fs.exists(path))

    def parent(self, path: str) -> str:
        return posixpath.dirname(path.rstrip("/"))

    def makedirs(self, path: str) -> list[str]:
        # Object stores have no directories, and their implementations make this a no-op.
        self._fs.makedirs(path, exist_ok=True)
        return []

    def remove_directory(self, path: str) -> None:
        self._fs.rmdir(path)

    def open_read(self, path: str) -> IO[bytes]:
        return self._fs.open(path, "rb")  # type: ignore[no-any-return]

    def open_write(self, path: str) -> _Sink:
        return self._fs.open(path, "wb")  # type: ignore[no-any-return]

    def commit(self, partial: str, path: str) -> None:
        # On object stores a move is a server-side copy and a delete: no byte passes through here.
        self._fs.mv(partial, path)

    def remove(self, path: str) -> None:
        self._fs.rm(path)


def _store(url: str) -> tuple[_Store, str]:
    # file:// needs nothing beyond the standard library, so a plain install promotes between
    # directories; every other scheme goes through fsspec and the package implementing it
    # (s3fs, gcsfs ...), imported only when such a URL turns up.
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return _LocalFiles(), unquote(parts.path)
    if parts.scheme == "file":
        raise SnapshotStoreUnsupported(url, f"file URLs name this machine, not {parts.netloc!r}")
    if not parts.scheme:
        raise SnapshotStoreUnsupported(url, "not a URL; expected file://, s3://, gs:// ...")
    try:
        from fsspec.core import url_to_fs  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        raise SnapshotStoreUnsupported(
            url, f"{parts.scheme}:// stores need the fsspec package, which is not installed"
        ) from None
    try:
        fs, path = url_to_fs(url)
    except (ImportError, ValueError) as error:
        # fsspec names the package that implements the scheme (s3fs, gcsfs ...) when it is missing.
        raise SnapshotStoreUnsupported(url, _first_line(error)) from error
    return _Fsspec(fs), str(path)


def _blocks(store: _Store, path: str, url: str, chunk: int) -> Iterator[bytes]:
    with _translated(url):
        reader = store.open_read(path)
    with reader:
        while True:
            with _translated(url):
                block = reader.read(chunk)
            if not block:
                return
            yield block


def _digest(store: _Store, path: str, url: str, chunk: int) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for block in _blocks(store, path, url, chunk):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


@contextlib.contextmanager
def _translated(url: str) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError as error:
        raise SnapshotNotFound(url) from error
    except IsADirectoryError as error:
        raise SnapshotStoreFailed(url, "it is a directory, not a file") from error
    except OSError as error:
        raise SnapshotStoreFailed(url, error.strerror or _first_line(error)) from error


def _discard(store: _Store, partial: str, directories: list[str]) -> None:
    """Leave the target as it was; a failure here must not hide the error that got us here."""
    try:
        store.remove(partial)
    except FileNotFoundError:
        pass
    except Exception:
        logger.warning("could not remove the partial copy %s", partial, exc_info=True)
    # Deepest first; one that another copy has meanwhile put a file in is not empty, and stays.
    for directory in directories:
        with contextlib.suppress(OSError):
            store.remove_directory(directory)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
