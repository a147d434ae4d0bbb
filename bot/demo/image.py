"""The demo's serving image: a real OCI image made from bytes and pushed through the registry API.

No Docker daemon: one layer (a tarball holding a small server script and the model's card), an
image config naming it, and a manifest, each uploaded as a blob or manifest by digest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from bot.adapters.oci import ImageRegistry
from bot.adapters.oci.media import OCI_MANIFEST, Descriptor, Manifest, digest_of

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

_SERVE = b'''"""Serves the model named by MODEL_URI (a stand-in: the demo never runs it)."""
import os

print("serving", os.environ.get("MODEL_URI", "models:/breast-cancer-classifier@champion"))
'''


def _layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzipped tarball of ``files`` and the digest of its uncompressed bytes (its diff_id)."""
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    diff_id = f"sha256:{hashlib.sha256(plain.getvalue()).hexdigest()}"
    return gzip.compress(plain.getvalue(), mtime=0), diff_id


def push_serving_image(host: str, repository: str, tag: str, model: str) -> str:
    """Push the serving image for ``model`` to ``host/repository``; ``host/repository@digest``."""
    card = json.dumps({"model": model, "serves": "champion alias"}, sort_keys=True).encode()
    layer, diff_id = _layer({"app/serve.py": _SERVE, "app/model-card.json": card})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["python", "/app/serve.py"], "Env": [f"MODEL_NAME={model}"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "gatekeeper demo"}],
        },
        sort_keys=True,
    ).encode()
    blobs = [Descriptor(OCI_CONFIG, digest_of(config), len(config))]
    blobs.append(Descriptor(OCI_LAYER, digest_of(layer), len(layer)))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _described(blobs[0]),
            "layers": [_described(blobs[1])],
            "annotations": {"org.opencontainers.image.title": f"{model} serving"},
        },
        sort_keys=True,
    ).encode()
    with ImageRegistry(host) as registry:
        for blob, data in zip(blobs, (config, layer), strict=True):
            if not registry.has_blob(repository, blob.digest):
                location = registry.start_upload(repository)
                registry.upload_blob(location, blob, [data], f"{host}/{repository}")
        pushed = Manifest(manifest, OCI_MANIFEST, digest_of(manifest))
        registry.put_manifest(repository, pushed.digest, pushed)
        registry.put_manifest(repository, tag, pushed)
    return f"{host}/{repository}@{pushed.digest}"


def _described(blob: Descriptor) -> dict[str, object]:
    return {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}
