"""Images by digest between OCI / Docker registries over the registry HTTP API v2, no daemon.

``ImageRegistries`` copies (``copy_image``), re-tags (``tag``), checks (``exists``) and resolves
(``resolve_tag``) across the ``ImageRegistry`` hosts it is given; errors are drawn as a tree in
``bot.adapters.oci.errors``.
"""

from bot.adapters.oci.errors import (
    DigestMismatch,
    ImageNotFound,
    ImageRegistryError,
    RegistryAuthFailed,
    RegistryUnavailable,
)
from bot.adapters.oci.images import CopyReport, ImageRegistries
from bot.adapters.oci.media import Descriptor, Manifest
from bot.adapters.oci.registry import ImageRegistry
from bot.domain.candidates import ImageRef

__all__ = [
    "CopyReport",
    "Descriptor",
    "DigestMismatch",
    "ImageNotFound",
    "ImageRef",
    "ImageRegistries",
    "ImageRegistry",
    "ImageRegistryError",
    "Manifest",
    "RegistryAuthFailed",
    "RegistryUnavailable",
]
