"""Real OCI registries for the image tests: Debian's docker-registry on loopback, images by hand."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

REGISTRY_BINARY = "docker-registry"
START_SECONDS = 20
TOKEN_USER, TOKEN_PASSWORD = "gatekeeper", "token-s3cret"
BASIC_USER, BASIC_PASSWORD = "gatekeeper", "basic-s3cret"
TOKEN_SERVICE, TOKEN_ISSUER = "gatekeeper-test-registry", "gatekeeper-test-issuer"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ACCEPT = f"{OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST}, {DOCKER_LIST}"


def free_port() -> int:
    # Free only until someone else binds it: good enough on a test machine.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


# --- registries ---------------------------------------------------------------------------------


@dataclass
class RunningRegistry:
    """One ``docker-registry serve`` process with filesystem storage in a temporary directory."""

    host: str  # 127.0.0.1:<port>
    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        if self.process.poll() is None:
            # Its own process group, so nothing it started outlives it.
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def blob_file(self, digest: str) -> Path:
        """Where filesystem storage keeps a blob's bytes: tests damage it to prove checks."""
        hex_digest = digest.partition(":")[2]
        return self.root / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"


def _answers(url: str) -> bool:
    try:
        status = httpx.get(f"{url}/v2/", timeout=2, trust_env=False).status_code
    except httpx.TransportError:
        return False
    return status in (200, 401)


def start_registry(root: Path, auth: str = "") -> RunningRegistry:
    """Start a registry serving ``root`` on a free loopback port; ``auth`` is its YAML block."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: {uuid.uuid4().hex}\n" + auth
    )
    log = root / "registry.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    registry = RunningRegistry(f"127.0.0.1:{port}", root / "data", process, log)
    deadline = time.monotonic() + START_SECONDS
    while not _answers(registry.url):
        if process.poll() is not None or time.monotonic() > deadline:
            registry.stop()
            pytest.fail(
                f"{REGISTRY_BINARY} did not answer {registry.url}/v2/ (exit code "
                f"{process.returncode}); its log ends:\n{log.read_text(errors='replace')[-3000:]}",
                pytrace=False,
            )
        time.sleep(0.05)
    return registry


@contextlib.contextmanager
def running_registry(root: Path, auth: str = "") -> Iterator[RunningRegistry]:
    if shutil.which(REGISTRY_BINARY) is None:
        pytest.skip(f"needs Debian's {REGISTRY_BINARY} (apt-get install docker-registry)")
    registry = start_registry(root, auth)
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def oci_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """The registry images are copied from (and, for mounts, within)."""
    with running_registry(tmp_path_factory.mktemp("oci-source")) as registry:
        yield registry


@pytest.fixture(scope="session")
def oci_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A second registry with its own storage: copies to it move bytes."""
    with running_registry(tmp_path_factory.mktemp("oci-target")) as registry:
        yield registry


@pytest.fixture
def oci_disposable(tmp_path: Path) -> Iterator[RunningRegistry]:
    """A registry of the test's own, which the test may stop."""
    with running_registry(tmp_path / "registry") as registry:
        yield registry


# --- basic auth ---------------------------------------------------------------------------------


def bcrypt_hash(password: str) -> str | None:
    """A bcrypt hash, the only kind the registry's htpasswd reads; None without a way to make one.

    Cost 4, bcrypt's least: the registry checks the password on every request, and at the
    default cost of 12 that alone takes a quarter of a second each.
    """
    with contextlib.suppress(ImportError):
        import bcrypt  # type: ignore[import-not-found]

        return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode())
    if shutil.which("htpasswd"):
        line = subprocess.run(
            ["htpasswd", "-nbB", "-C", "4", "user", password],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return line.partition(":")[2]
    with warnings.catch_warnings(), contextlib.suppress(ImportError):
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # libxcrypt does bcrypt; the module is gone in Python 3.13

        if crypt.METHOD_BLOWFISH in crypt.methods:
            return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    return None


@pytest.fixture(scope="session")
def oci_basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A registry behind htpasswd basic auth (BASIC_USER / BASIC_PASSWORD)."""
    hashed = bcrypt_hash(BASIC_PASSWORD)
    if hashed is None:
        pytest.skip(
            "basic auth needs a bcrypt htpasswd file: install Python's bcrypt package or "
            "apache2-utils (htpasswd), or run a Python whose crypt module does bcrypt"
        )
    root = tmp_path_factory.mktemp("oci-basic")
    (root / "htpasswd").write_text(f"{BASIC_USER}:{hashed}\n")
    auth = f"auth:\n  htpasswd:\n    realm: gatekeeper-test\n    path: {root / 'htpasswd'}\n"
    with running_registry(root, auth) as registry:
        yield registry


# --- bearer tokens ------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenService:
    """A Docker token service: checks basic credentials, grants what is asked, signs RS256 JWTs.

    The registry trusts the certificate in its ``rootcertbundle``; each token carries it in its
    ``x5c`` header, which is how the registry finds the key to check the signature with.
    """

    key: Any
    certificate_der: bytes
    url: str = ""
    #: The scopes of every token request, in order, to show which ones the client cached.
    requests: list[list[str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @classmethod
    def create(cls) -> TokenService:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER)])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate.public_bytes(serialization.Encoding.DER))

    @property
    def certificate_pem(self) -> str:
        body = base64.encodebytes(self.certificate_der).decode("ascii")
        return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"

    def mint(self, scopes: list[str], lifetime: int = 300) -> str:
        """A token the registry accepts for ``scopes`` (``repository:<name>:<actions>``)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self.certificate_der).decode("ascii")],
        }
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": TOKEN_USER,
            "aud": TOKEN_SERVICE,
            "exp": now + lifetime,
            "nbf": now - 5,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signed = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signed}.{_b64url(signature)}"

    def start(self) -> None:
        service = self
        expected = "Basic " + base64.b64encode(f"{TOKEN_USER}:{TOKEN_PASSWORD}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                scopes = query.get("scope", [])
                service.requests.append(scopes)
                if self.headers.get("Authorization") != expected:
                    self._reply(401, {"details": "wrong username or password"})
                elif query.get("service") != [TOKEN_SERVICE]:
                    self._reply(400, {"details": "unknown service"})
                else:
                    token = service.mint(scopes)
                    self._reply(200, {"token": token, "access_token": token, "expires_in": 300})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test output is no place for an access log

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class TokenRegistry:
    registry: RunningRegistry
    tokens: TokenService


@pytest.fixture(scope="session")
def oci_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    """A registry behind token auth, with the token service it trusts (TOKEN_USER / _PASSWORD)."""
    root = tmp_path_factory.mktemp("oci-token")
    tokens = TokenService.create()
    tokens.start()
    (root / "token.pem").write_text(tokens.certificate_pem)
    auth = (
        f"auth:\n  token:\n    realm: {tokens.url}\n    service: {TOKEN_SERVICE}\n"
        f"    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {root / 'token.pem'}\n"
    )
    try:
        with running_registry(root, auth) as registry:
            yield TokenRegistry(registry, tokens)
    finally:
        tokens.stop()


# --- images -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushedImage:
    """An image (or index) as pushed: its manifest's exact bytes and what it points at."""

    repository: str
    digest: str
    manifest: bytes
    media_type: str
    blobs: tuple[tuple[str, int], ...]  # (digest, size) of config and layers; none for an index
    children: tuple[PushedImage, ...] = ()

    @property
    def all_blobs(self) -> set[tuple[str, int]]:
        found = set(self.blobs)
        for child in self.children:
            found |= child.all_blobs
        return found


def layer(payload_bytes: int, seed: str = "") -> bytes:
    """A gzipped tarball holding one file of random bytes (unique per call)."""
    buffer = io.BytesIO()
    data = os.urandom(payload_bytes)
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(f"app/{seed or uuid.uuid4().hex}.bin")
        info.size = len(data)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def image_config(diff_ids: list[str], platform: tuple[str, str] = ("linux", "amd64")) -> bytes:
    """An image config naming its layers' uncompressed digests, unique per call."""
    return json.dumps(
        {
            "architecture": platform[1],
            "os": platform[0],
            "created": "2026-11-27T00:00:00Z",
            "config": {"Cmd": ["serve"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"gatekeeper test {uuid.uuid4().hex}"}],
        },
        sort_keys=True,
    ).encode()


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes what passes through it on its way to ``inner``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.hash.update(data)
        self.inner.write(data)
        return len(data)


def large_layer(path: Path, payload_bytes: int) -> tuple[str, int, str]:
    """Write a gzipped tarball of random bytes to ``path``, a chunk at a time: (digest, size, diff_id).

    Random bytes do not compress, so gzip stores them (level 0): as big, and much faster.
    """
    chunk = 1024 * 1024
    with (
        path.open("wb") as output,
        gzip.GzipFile(fileobj=output, mode="wb", compresslevel=0, mtime=0) as packed,
    ):
        plain = _Hashing(packed)
        with tarfile.open(fileobj=plain, mode="w|") as tar:
            info = tarfile.TarInfo("model/weights.bin")
            info.size = payload_bytes
            reader, writer = os.pipe()

            # tarfile reads the member from a file object; feed it random bytes through a pipe.
            def feed() -> None:
                with os.fdopen(writer, "wb") as sink:
                    left = payload_bytes
                    while left:
                        sink.write(os.urandom(min(chunk, left)))
                        left -= min(chunk, left)

            feeder = threading.Thread(target=feed)
            feeder.start()
            with os.fdopen(reader, "rb") as source:
                tar.addfile(info, source)
            feeder.join()
        diff_id = f"sha256:{plain.hash.hexdigest()}"
    digest = hashlib.sha256()
    with path.open("rb") as packed_file:
        while block := packed_file.read(chunk):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}", path.stat().st_size, diff_id


def file_chunks(path: Path, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as source:
        while block := source.read(chunk):
            yield block


class Pusher:
    """Puts blobs and manifests into a registry with plain httpx, independent of the code tested."""

    def __init__(self, url: str, auth: httpx.Auth | None = None) -> None:
        self.client = httpx.Client(base_url=url, auth=auth, timeout=120, trust_env=False)

    def close(self) -> None:
        self.client.close()

    def blob(self, repository: str, data: bytes) -> str:
        digest = sha256(data)
        if self.client.head(f"/v2/{repository}/blobs/{digest}").status_code == 200:
            return digest
        return self.blob_from(repository, digest, len(data), [data])

    def blob_from(self, repository: str, digest: str, size: int, chunks: Any) -> str:
        started = self.client.post(f"/v2/{repository}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = httpx.URL(started.headers["location"]).copy_merge_params({"digest": digest})
        done = self.client.put(
            location,
            content=chunks,
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
        return digest

    def manifest(self, repository: str, reference: str, content: bytes, media_type: str) -> str:
        response = self.client.put(
            f"/v2/{repository}/manifests/{reference}",
            content=content,
            headers={"Content-Type": media_type},
        )
        assert response.status_code == 201, response.text
        return sha256(content)

    def image(
        self,
        repository: str,
        layers: list[bytes],
        docker: bool = False,
        tag: str | None = None,
        platform: tuple[str, str] = ("linux", "amd64"),
    ) -> PushedImage:
        """Push an image of ``layers``: OCI media types, or Docker schema 2 with ``docker``."""
        config = image_config([sha256(gzip.decompress(data)) for data in layers], platform)
        blobs = [(self.blob(repository, config), len(config))]
        blobs += [(self.blob(repository, data), len(data)) for data in layers]
        return self.image_of(repository, blobs, docker=docker, tag=tag)

    def large_image(self, repository: str, path: Path, payload_bytes: int) -> PushedImage:
        """Push an image of one big layer, streamed from a file so the test stays small too."""
        digest, size, diff_id = large_layer(path, payload_bytes)
        config = image_config([diff_id])
        blobs = [(self.blob(repository, config), len(config))]
        blobs.append((self.blob_from(repository, digest, size, file_chunks(path)), size))
        return self.image_of(repository, blobs)

    def image_of(
        self,
        repository: str,
        blobs: list[tuple[str, int]],
        docker: bool = False,
        tag: str | None = None,
    ) -> PushedImage:
        """Push the manifest of blobs already in the repository, config first."""
        media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
        (config_digest, config_size), *layer_blobs = blobs
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": media_type,
                "config": {
                    "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
                    "digest": config_digest,
                    "size": config_size,
                },
                "layers": [
                    {"mediaType": DOCKER_LAYER if docker else OCI_LAYER, "digest": d, "size": s}
                    for d, s in layer_blobs
                ],
            },
            indent=3,  # unusual spacing: a client that re-serialised it would change the digest
        ).encode()
        digest = self.manifest(repository, tag or sha256(manifest), manifest, media_type)
        return PushedImage(repository, digest, manifest, media_type, tuple(blobs))

    def index(
        self,
        repository: str,
        children: list[tuple[PushedImage, tuple[str, str]]],
        docker: bool = False,
    ) -> PushedImage:
        """Push an index (a Docker manifest list with ``docker``) of images already pushed."""
        media_type = DOCKER_LIST if docker else OCI_INDEX
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": media_type,
                "manifests": [
                    {
                        "mediaType": child.media_type,
                        "digest": child.digest,
                        "size": len(child.manifest),
                        "platform": {"os": os_name, "architecture": arch},
                    }
                    for child, (os_name, arch) in children
                ],
            }
        ).encode()
        digest = self.manifest(repository, sha256(manifest), manifest, media_type)
        return PushedImage(
            repository, digest, manifest, media_type, (), tuple(child for child, _ in children)
        )


@pytest.fixture(scope="session")
def oci_pusher(oci_source: RunningRegistry) -> Iterator[Pusher]:
    """Pushes test images into the source registry."""
    pusher = Pusher(oci_source.url)
    yield pusher
    pusher.close()


def fetch_manifest(
    url: str, repository: str, reference: str, auth: httpx.Auth | None = None
) -> httpx.Response:
    """A manifest as the registry serves it, bytes and headers, by plain httpx."""
    response = httpx.get(
        f"{url}/v2/{repository}/manifests/{reference}",
        headers={"Accept": ACCEPT},
        auth=auth,
        trust_env=False,
    )
    return response


def unique(name: str) -> str:
    """A repository path no other test uses (the registries live for the whole session)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"
