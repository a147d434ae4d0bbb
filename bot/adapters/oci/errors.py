"""What can go wrong copying images between registries, each with a message meant for a person.

    GatekeeperError
    └── ImageRegistryError      a registry refused an image operation for another reason
        │                       (a manifest it calls invalid, an unsupported manifest type ...)
        ├── ImageNotFound       the manifest, tag or blob is not in the repository (404)
        ├── RegistryAuthFailed  no credentials where some are needed, or refused ones (401, 403)
        ├── RegistryUnavailable cannot connect, the connection broke, or 429 / 5xx: retry later
        └── DigestMismatch      the bytes do not hash to the digest they were asked for by

Only ``RegistryUnavailable`` is worth retrying as is; the others need a person to act.
"""

from __future__ import annotations

from bot.domain.errors import GatekeeperError


class ImageRegistryError(GatekeeperError):
    """A registry refused or failed an image operation; the message says which and why."""


class ImageNotFound(ImageRegistryError):
    pass


class RegistryAuthFailed(ImageRegistryError):
    pass


class RegistryUnavailable(ImageRegistryError):
    pass


class DigestMismatch(ImageRegistryError):
    pass
