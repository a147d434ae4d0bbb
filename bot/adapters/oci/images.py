"""Copying images by digest between registries and repositories, and moving tags, without Docker."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from bot.adapters.oci.errors import DigestMismatch, ImageNotFound
from bot.adapters.oci.media import (
    Descriptor,
    Manifest,
    check_digest,
    check_repository,
    check_tag,
)
from bot.adapters.oci.registry import ImageRegistry
from bot.domain.candidates import ImageRef


@dataclass(frozen=True)
class CopyReport:
    """What one ``copy_image`` did; a second copy of the same image reports nothing copied."""

    source: str  # registry/repository@digest
    target: str  # registry/repository@digest, the same digest
    tags: tuple[str, ...]
    manifests_copied: int
    manifests_skipped: int
    blobs_skipped: int  # already in the target repository
    blobs_mounted: int  # linked from the source repository of the same registry, no bytes moved
    blobs_uploaded: int
    bytes_uploaded: int
    seconds: float


@dataclass
class _Tally:
    manifests_copied: int = 0
    manifests_skipped: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    blobs_uploaded: int = 0
    bytes_uploaded: int = 0
    # Children of an index often share a config or layer: each blob is handled once a copy.
    seen: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Route:
    source: ImageRegistry
    source_repository: str
    target: ImageRegistry
    target_repository: str

    @property
    def same_registry(self) -> bool:
        return self.source is self.target


class ImageRegistries:
    """The registries Gatekeeper reaches, by host; each copy, tag and lookup names its host.

    Hosts not given are reached anonymously (plain HTTP on loopback, as Docker does). Closing
    it closes every client, the given ones too.
    """

    def __init__(self, registries: Iterable[ImageRegistry] = ()) -> None:
        self._registries = {registry.host.lower(): registry for registry in registries}

    def __enter__(self) -> ImageRegistries:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for registry in self._registries.values():
            registry.close()

    def registry(self, host: str) -> ImageRegistry:
        """The client for ``host``, made anonymous on first use if none was given."""
        key = host.lower()
        if key not in self._registries:
            self._registries[key] = ImageRegistry(host)
        return self._registries[key]

    def copy_image(
        self,
        source: ImageRef,
        target_registry: str,
        target_repository: str,
        tags: Sequence[str] = (),
    ) -> CopyReport:
        """Copy an image or index by digest, digest preserved, then tag it in the target."""
        started = time.monotonic()
        check_digest(source.digest)
        check_repository(source.repository)
        check_repository(target_repository)
        for tag in tags:
            check_tag(tag)
        route = _Route(
            self.registry(source.registry),
            source.repository,
            self.registry(target_registry),
            target_repository,
        )
        tally = _Tally()
        manifest = route.source.manifest(source.repository, source.digest)
        self._copy_manifest(route, manifest, tally)
        for tag in tags:
            route.target.put_manifest(target_repository, tag, manifest)
        return CopyReport(
            source=str(source),
            target=f"{target_registry}/{target_repository}@{source.digest}",
            tags=tuple(tags),
            manifests_copied=tally.manifests_copied,
            manifests_skipped=tally.manifests_skipped,
            blobs_skipped=tally.blobs_skipped,
            blobs_mounted=tally.blobs_mounted,
            blobs_uploaded=tally.blobs_uploaded,
            bytes_uploaded=tally.bytes_uploaded,
            seconds=time.monotonic() - started,
        )

    def tag(self, registry: str, repository: str, digest: str, tag: str) -> None:
        """Point ``tag`` at a manifest already in the repository (a rollback moves tags back)."""
        check_tag(tag)
        check_repository(repository)
        client = self.registry(registry)
        client.put_manifest(repository, tag, client.manifest(repository, digest))

    def exists(self, ref: ImageRef) -> bool:
        """Whether the registry holds a manifest under ``ref``'s digest in its repository."""
        client = self.registry(ref.registry)
        found = client.manifest_digest(check_repository(ref.repository), check_digest(ref.digest))
        if found is not None and found != ref.digest:
            raise DigestMismatch(f"{ref} is served as {found}")
        return found is not None

    def resolve_tag(self, registry: str, repository: str, tag: str) -> str:
        """The digest ``tag`` points at in ``repository``."""
        client = self.registry(registry)
        digest = client.manifest_digest(check_repository(repository), check_tag(tag))
        if digest is None:
            raise ImageNotFound(f"{registry}/{repository}:{tag} does not exist")
        return digest

    def _copy_manifest(self, route: _Route, manifest: Manifest, tally: _Tally) -> None:
        # Children and blobs go first: a registry refuses a manifest whose parts it lacks.
        for child in manifest.children():
            if child.digest in tally.seen:
                continue
            tally.seen.add(child.digest)
            self._copy_manifest(
                route, route.source.manifest(route.source_repository, child.digest), tally
            )
        for blob in manifest.blobs():
            self._copy_blob(route, blob, tally)
        if route.target.manifest_digest(route.target_repository, manifest.digest) is not None:
            tally.manifests_skipped += 1
            return
        route.target.put_manifest(route.target_repository, manifest.digest, manifest)
        tally.manifests_copied += 1

    def _copy_blob(self, route: _Route, blob: Descriptor, tally: _Tally) -> None:
        if blob.digest in tally.seen:
            return
        tally.seen.add(blob.digest)
        target, repository = route.target, route.target_repository
        if target.has_blob(repository, blob.digest):
            tally.blobs_skipped += 1
            return
        location = None
        if route.same_registry:
            location = target.mount_blob(repository, blob.digest, route.source_repository)
            if location is None:
                tally.blobs_mounted += 1
                return
        where = f"blob {blob.digest} copied to {target.host}/{repository}"
        with route.source.open_blob(route.source_repository, blob) as chunks:
            target.upload_blob(
                location or target.start_upload(repository), blob, chunks, where=where
            )
        tally.blobs_uploaded += 1
        tally.bytes_uploaded += blob.size
