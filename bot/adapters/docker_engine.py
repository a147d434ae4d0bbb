"""Images that start life in a Docker engine (a CI job's `docker build`), pushed by digest.

Promotions themselves never need a daemon (bot.adapters.oci speaks the registry API); this is
for the first hop, where the pipeline's images exist only in the engine that built them.
"""

from __future__ import annotations

from typing import Any

import docker
from docker.errors import DockerException

from bot.domain.candidates import ImageRef, parse_image
from bot.domain.errors import GatekeeperError


class DockerEngineUnavailable(GatekeeperError):
    pass


class DockerEngine:
    """A Docker engine reached through DOCKER_HOST (or the default socket)."""

    def __init__(self, client: Any | None = None) -> None:
        try:
            self._client = client or docker.from_env()
            self._client.ping()
        except DockerException as error:
            raise DockerEngineUnavailable(
                f"no Docker engine answers at DOCKER_HOST or the default socket: {error}"
            ) from None

    def push(self, local_image: str, registry: str, repository: str, tag: str) -> ImageRef:
        """Tag a local image into ``registry/repository:tag``, push it, return it by digest."""
        target = f"{registry}/{repository}"
        image = self._client.images.get(local_image)
        image.tag(target, tag)
        digest: str | None = None
        for line in self._client.images.push(target, tag=tag, stream=True, decode=True):
            if "error" in line:
                raise GatekeeperError(f"pushing {target}:{tag} failed: {line['error']}")
            digest = (line.get("aux") or {}).get("Digest", digest)
        if digest is None:
            raise GatekeeperError(f"pushing {target}:{tag} reported no digest")
        reference = parse_image(f"{target}@{digest}")
        assert reference is not None
        return reference
