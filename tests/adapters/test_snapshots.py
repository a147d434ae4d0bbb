"""Snapshot copies between real directories, and through fsspec's memory store when installed."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from bot.adapters.snapshots import (
    ChecksumMismatch,
    SnapshotConflict,
    SnapshotNotFound,
    SnapshotStoreFailed,
    SnapshotStoreUnsupported,
    copy_snapshot,
    verify,
)

MIB = 1024 * 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def url(path: Path) -> str:
    return path.as_uri()


@pytest.fixture
def train(tmp_path: Path) -> Path:
    path = tmp_path / "dev" / "churn" / "train.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(3 * 1024 + 17))
    return path


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_a_snapshot_is_copied_byte_for_byte_into_new_directories(
    train: Path, tmp_path: Path
) -> None:
    target = tmp_path / "stg" / "churn" / "2026" / "train.parquet"

    # A small chunk: the copy takes many rounds, as a large file would.
    copied = copy_snapshot(url(train), sha256(train.read_bytes()), url(target), chunk=1000)

    assert target.read_bytes() == train.read_bytes()
    assert copied.bytes == train.stat().st_size
    assert not copied.skipped
    assert copied.seconds >= 0
    assert files_under(tmp_path / "stg") == [target]


def test_a_wrong_checksum_copies_nothing(train: Path, tmp_path: Path) -> None:
    declared = "0" * 64
    target = tmp_path / "stg" / "churn" / "train.parquet"

    with pytest.raises(ChecksumMismatch) as mismatch:
        copy_snapshot(url(train), declared, url(target))

    assert str(mismatch.value) == (
        f"the snapshot at {url(train)} has sha256 {sha256(train.read_bytes())}, not the "
        f"{declared} its bundle declares; nothing was copied"
    )
    # Not even the directories the copy made for it.
    assert not (tmp_path / "stg").exists()


def test_a_wrong_checksum_leaves_an_existing_directory_as_it_was(
    train: Path, tmp_path: Path
) -> None:
    (tmp_path / "stg").mkdir()
    (tmp_path / "stg" / "other.parquet").write_bytes(b"kept")

    with pytest.raises(ChecksumMismatch):
        copy_snapshot(url(train), "0" * 64, url(tmp_path / "stg" / "train.parquet"))

    assert files_under(tmp_path / "stg") == [tmp_path / "stg" / "other.parquet"]


def test_a_snapshot_already_in_place_is_skipped_and_reported(train: Path, tmp_path: Path) -> None:
    target = tmp_path / "stg" / "train.parquet"
    checksum = sha256(train.read_bytes())
    copy_snapshot(url(train), checksum, url(target))
    written = target.stat().st_mtime_ns
    train.unlink()  # a restarted promotion need not read the source again

    again = copy_snapshot(url(train), checksum, url(target))

    assert again.skipped
    assert again.bytes == target.stat().st_size
    assert target.stat().st_mtime_ns == written


def test_other_bytes_under_the_target_name_are_never_overwritten(
    train: Path, tmp_path: Path
) -> None:
    target = tmp_path / "stg" / "train.parquet"
    target.parent.mkdir()
    target.write_bytes(b"what an earlier promotion copied")

    with pytest.raises(SnapshotConflict, match=r"already holds a different file"):
        copy_snapshot(url(train), sha256(train.read_bytes()), url(target))

    assert target.read_bytes() == b"what an earlier promotion copied"
    assert files_under(tmp_path / "stg") == [target]


def test_a_missing_source_is_named_and_nothing_is_left(tmp_path: Path) -> None:
    source = tmp_path / "dev" / "gone.parquet"
    with pytest.raises(SnapshotNotFound, match=r"there is no snapshot at file://.*/gone\.parquet"):
        copy_snapshot(url(source), "0" * 64, url(tmp_path / "stg" / "gone.parquet"))
    assert not (tmp_path / "stg").exists()


def test_verify_reads_the_checksum(train: Path, tmp_path: Path) -> None:
    assert verify(url(train), sha256(train.read_bytes()))
    assert verify(url(train), sha256(train.read_bytes()).upper())
    assert not verify(url(train), "0" * 64)
    assert not verify(url(tmp_path / "missing"), "0" * 64)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("file://fileserver/srv/x", "file URLs name this machine, not 'fileserver'"),
        ("/srv/dev/x", "not a URL"),
    ],
)
def test_addresses_it_cannot_use_are_refused(address: str, reason: str, train: Path) -> None:
    with pytest.raises(SnapshotStoreUnsupported, match=reason):
        copy_snapshot(url(train), "0" * 64, address)


def test_a_store_that_fails_is_named_and_left_as_it_was(train: Path, tmp_path: Path) -> None:
    checksum = sha256(train.read_bytes())
    # A file where the target needs a directory.
    blocked = url(train / "stg" / "train.parquet")
    with pytest.raises(SnapshotStoreFailed, match=r"the snapshot store at file://.* failed: "):
        copy_snapshot(url(train), checksum, blocked)
    with pytest.raises(SnapshotStoreFailed, match=r"it is a directory, not a file"):
        copy_snapshot(url(train.parent), checksum, url(tmp_path / "stg" / "x"))
    assert not (tmp_path / "stg").exists()


def test_a_store_without_its_implementation_says_which_package_is_missing(
    train: Path,
) -> None:
    # s3fs is no dependency of Gatekeeper: a deployment on S3 installs it beside.
    with pytest.raises(SnapshotStoreUnsupported, match=r"s3://.*(fsspec|s3fs)"):
        copy_snapshot(url(train), sha256(train.read_bytes()), "s3://ml-stg/churn/train.parquet")


def test_a_large_snapshot_streams_in_flat_memory(tmp_path: Path) -> None:
    source = tmp_path / "dev" / "checkpoint.bin"
    source.parent.mkdir()
    block = os.urandom(MIB)
    digest = hashlib.sha256()
    with source.open("wb") as out:
        for index in range(200):
            # Each MiB differs, so a copy that reordered or dropped one would not match.
            piece = index.to_bytes(4, "big") + block[4:]
            digest.update(piece)
            out.write(piece)
    target = tmp_path / "stg" / "checkpoint.bin"

    tracemalloc.start()
    try:
        copied = copy_snapshot(url(source), digest.hexdigest(), url(target))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert copied.bytes == 200 * MIB
    # One 8 MiB chunk in flight, give or take the interpreter's own.
    assert peak < 20 * MIB, f"peak {peak / MIB:.1f} MiB while copying 200 MiB"
    assert verify(url(target), digest.hexdigest())


class TestThroughFsspec:
    """The path every non-file store takes, on the one fsspec store that needs no service.

    Only file:// and memory:// can run here: s3://, gs:// and the rest take this same path with
    their own implementation package (s3fs, gcsfs ...) and a real bucket.
    """

    @pytest.fixture(autouse=True)
    def _fsspec(self) -> None:
        pytest.importorskip("fsspec")

    def test_memory_to_file_and_back(self, train: Path, tmp_path: Path) -> None:
        checksum = sha256(train.read_bytes())
        bucket = f"memory://gk-{os.getpid()}-{tmp_path.name}"

        up = copy_snapshot(url(train), checksum, f"{bucket}/stg/train.parquet", chunk=1000)
        down = copy_snapshot(f"{bucket}/stg/train.parquet", checksum, url(tmp_path / "back"))
        again = copy_snapshot(url(train), checksum, f"{bucket}/stg/train.parquet")

        assert (up.bytes, down.bytes, again.skipped) == (train.stat().st_size,) * 2 + (True,)
        assert (tmp_path / "back").read_bytes() == train.read_bytes()
        assert verify(f"{bucket}/stg/train.parquet", checksum)

    def test_a_wrong_checksum_leaves_nothing_in_the_store(
        self, train: Path, tmp_path: Path
    ) -> None:
        import fsspec

        bucket = f"memory://gk-{os.getpid()}-{tmp_path.name}"
        with pytest.raises(ChecksumMismatch):
            copy_snapshot(url(train), "0" * 64, f"{bucket}/stg/train.parquet")

        memory = fsspec.filesystem("memory")
        assert memory.find(bucket) == []
