"""Manifests and blobs as the distribution API carries them: media types, descriptors, digests."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bot.adapters.oci.errors import DigestMismatch, ImageRegistryError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
#: Registries answer a manifest request with a type the client listed, or rewrite it (distribution
#: turns schema 2 into schema 1 for old clients), which would change the digest.
ACCEPT = ", ".join((OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST))

#: Registries must accept manifests up to 4 MiB (OCI distribution spec); anything larger is not
#: a manifest, and reading it would put an unbounded body in memory.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

_DIGEST = re.compile(r"^(?P<algorithm>sha256|sha512):(?P<hex>[0-9a-f]+)$")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")


def check_digest(digest: str) -> str:
    """``digest`` itself when it is ``sha256:<64 hex>`` or ``sha512:<128 hex>``; else ValueError."""
    if not is_digest(digest):
        raise ValueError(f"{digest!r} is not a digest; expected sha256:<64 lowercase hex digits>")
    return digest


def check_tag(tag: str) -> str:
    """``tag`` itself when a registry accepts it as a tag; else ValueError."""
    if not _TAG.match(tag):
        raise ValueError(
            f"{tag!r} is not an image tag: up to 128 letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'"
        )
    return tag


def check_repository(repository: str) -> str:
    """``repository`` itself when it is a valid repository path; else ValueError.

    A registry answers an invalid name with a bare 404, which would read as a missing image.
    """
    if not _REPOSITORY.match(repository) or len(repository) > 255:
        raise ValueError(
            f"{repository!r} is not a repository path: lowercase letters and digits, separated "
            "by '.', '_', '__', '-' or '/'"
        )
    return repository


def is_digest(reference: str) -> bool:
    match = _DIGEST.match(reference)
    return match is not None and len(match["hex"]) == _HEX_LENGTH[match["algorithm"]]


def hasher(digest: str) -> hashlib._Hash:
    """A fresh hash object of the digest's algorithm."""
    return hashlib.new(check_digest(digest).partition(":")[0])


def digest_of(content: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, content).hexdigest()}"


@dataclass(frozen=True)
class Descriptor:
    """A pointer to content by digest, as manifests and indexes hold them."""

    media_type: str
    digest: str
    size: int

    @property
    def stored_elsewhere(self) -> bool:
        # Foreign (Windows base) and non-distributable layers are fetched from their own URLs;
        # registries do not hold them, and docker and skopeo do not copy them either.
        return "foreign" in self.media_type or "nondistributable" in self.media_type


@dataclass(frozen=True)
class Manifest:
    """A manifest's exact bytes: re-serialising the JSON would change its digest."""

    content: bytes
    media_type: str
    digest: str

    @classmethod
    def parse(cls, content: bytes, content_type: str | None, digest: str, where: str) -> Manifest:
        """Check ``content`` hashes to ``digest`` and is a manifest type Gatekeeper copies."""
        actual = digest_of(content, digest.partition(":")[0])
        if actual != digest:
            raise DigestMismatch(
                f"the manifest of {where} hashes to {actual}, not to its digest {digest}; "
                "the registry or something between it and Gatekeeper altered it"
            )
        media_type = _media_type(_json(content, where), content_type)
        if media_type not in INDEX_TYPES | IMAGE_TYPES:
            raise ImageRegistryError(
                f"{where} is a {media_type or 'manifest without a media type'}; Gatekeeper "
                "copies OCI images and indexes and Docker schema 2 manifests and lists only"
            )
        return cls(content, media_type, digest)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def children(self) -> list[Descriptor]:
        """The manifests an index or manifest list points at; none for an image."""
        if not self.is_index:
            return []
        return [_descriptor(item) for item in _json(self.content, self.digest).get("manifests", [])]

    def blobs(self) -> list[Descriptor]:
        """The config and layers an image manifest points at, those the registry holds."""
        if self.is_index:
            return []
        document = _json(self.content, self.digest)
        found = [_descriptor(document["config"])] if "config" in document else []
        found += [_descriptor(layer) for layer in document.get("layers", [])]
        return [blob for blob in found if not blob.stored_elsewhere]


def verified(chunks: Iterable[bytes], blob: Descriptor, where: str) -> Iterator[bytes]:
    """Pass ``chunks`` through, failing before the last one unless all of them hash to the blob.

    Holding the last chunk back until the whole blob is checked means a bad blob never finishes
    uploading: the target sees a broken request, never a complete blob under a wrong name.
    """
    digest = hasher(blob.digest)
    size = 0
    held: bytes | None = None
    for chunk in chunks:
        if not chunk:
            continue
        if held is not None:
            yield held
        digest.update(chunk)
        size += len(chunk)
        held = chunk
    actual = f"{blob.digest.partition(':')[0]}:{digest.hexdigest()}"
    if size != blob.size or actual != blob.digest:
        raise DigestMismatch(
            f"blob {blob.digest} of {where} came as {size} bytes hashing to {actual}; its "
            f"manifest says {blob.size} bytes; the source registry's copy is damaged"
        )
    if held is not None:
        yield held


def _json(content: bytes, where: str) -> dict[str, Any]:
    try:
        document = json.loads(content)
    except ValueError as error:
        raise ImageRegistryError(f"the manifest of {where} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ImageRegistryError(f"the manifest of {where} is not a JSON object")
    return document


def _media_type(document: dict[str, Any], content_type: str | None) -> str:
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    header = (content_type or "").partition(";")[0].strip()
    if header in INDEX_TYPES | IMAGE_TYPES:
        return header
    # OCI made mediaType optional at first; what the document holds then tells the two apart.
    if document.get("schemaVersion") == 2:
        return OCI_INDEX if "manifests" in document else OCI_MANIFEST
    return header


def _descriptor(item: object) -> Descriptor:
    if not isinstance(item, dict):
        raise ImageRegistryError(f"a manifest holds {item!r} where a descriptor belongs")
    media_type, digest, size = item.get("mediaType", ""), item.get("digest"), item.get("size")
    if not isinstance(digest, str) or not is_digest(digest):
        raise ImageRegistryError(f"a manifest points at {digest!r}, which is not a digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageRegistryError(f"a manifest gives {digest} the size {size!r}")
    return Descriptor(str(media_type), digest, size)
