"""One image registry host, spoken to through the distribution (registry HTTP API v2) protocol."""

from __future__ import annotations

import contextlib
import ipaddress
import json
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import NoReturn

import httpx

from bot.adapters.oci.auth import RegistryAuth, parse_challenge
from bot.adapters.oci.errors import (
    DigestMismatch,
    ImageNotFound,
    ImageRegistryError,
    RegistryAuthFailed,
    RegistryUnavailable,
)
from bot.adapters.oci.media import (
    ACCEPT,
    MAX_MANIFEST_BYTES,
    Descriptor,
    Manifest,
    check_digest,
    digest_of,
    is_digest,
    verified,
)

#: Big enough that per-chunk overhead vanishes beside the copy, small enough to keep memory flat.
CHUNK_BYTES = 1024 * 1024


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class ImageRegistry:
    """A client of one registry host (``host[:port]``) with its credentials.

    Give ``username`` and ``password`` for basic auth or a token service that wants them, or a
    static bearer ``token``, or nothing. ``insecure=True`` speaks plain HTTP; left unset, the
    scheme follows Docker's default: plain HTTP for loopback hosts, HTTPS for every other.
    ``transport`` replaces the network (tests, proxies, custom TLS).
    """

    def __init__(
        self,
        host: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        insecure: bool | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError(f"registry {host}: give both username and password, or neither")
        if token is not None and username is not None:
            raise ValueError(f"registry {host}: give a bearer token or a username, not both")
        self.host = host
        plain = _loopback(host) if insecure is None else insecure
        base_url = httpx.URL(f"{'http' if plain else 'https'}://{host}")
        self._auth = RegistryAuth(base_url, username, password, token)
        self._client = httpx.Client(
            base_url=base_url,
            auth=self._auth,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=10.0),
            # Plain HTTP needs no TLS context; building one loads the CA bundle (~20 ms a client).
            verify=not plain,
            headers={"User-Agent": "gatekeeper"},
            # Proxies come from the transport the caller builds, never from the environment:
            # settings are read in one place, and a stray HTTP_PROXY must not catch loopback.
            trust_env=False,
        )
        self._pinged = False

    def __repr__(self) -> str:
        return f"ImageRegistry({self.host!r}, {self._auth.credentials_phrase})"

    def __enter__(self) -> ImageRegistry:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def ping(self) -> None:
        """Check the registry speaks API v2 and learn how it authenticates (once per client)."""
        if self._pinged:
            return
        response = self._send("GET", "/v2/", what="the registry's API")
        if response.status_code == 401:
            challenges = response.headers.get_list("www-authenticate")
            parsed = [parse_challenge(value) for value in challenges]
            # Bearer registries refuse /v2/ without a token of no scope; the realm is learnt.
            if not any(challenge and challenge.scheme == "bearer" for challenge in parsed):
                self._fail(response, "the registry's API")
        elif response.status_code != 200:
            self._fail(response, "the registry's API")
        self._pinged = True

    def manifest(self, repository: str, digest: str) -> Manifest:
        """The manifest stored under ``digest``, checked to hash to it."""
        check_digest(digest)
        where = f"{self.host}/{repository}@{digest}"
        self.ping()
        with self._stream(
            "GET", f"/v2/{repository}/manifests/{digest}", what=where, accept=ACCEPT
        ) as response:
            if response.status_code != 200:
                self._fail(response, where)
            content = bytearray()
            for chunk in self._chunks(response, where):
                content += chunk
                if len(content) > MAX_MANIFEST_BYTES:
                    raise ImageRegistryError(
                        f"the manifest of {where} is over {MAX_MANIFEST_BYTES} bytes; "
                        "that is not a manifest Gatekeeper copies"
                    )
        return Manifest.parse(bytes(content), response.headers.get("content-type"), digest, where)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag or digest resolves to in ``repository``; None when it does not."""
        where = f"{self.host}/{repository}{'@' if is_digest(reference) else ':'}{reference}"
        self.ping()
        path = f"/v2/{repository}/manifests/{reference}"
        response = self._send("HEAD", path, what=where, accept=ACCEPT)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            self._fail(response, where)
        digest = response.headers.get("docker-content-digest")
        if digest and is_digest(digest):
            return str(digest)
        # The header is optional in the spec: hashing the body is the only other way to know.
        response = self._send("GET", path, what=where, accept=ACCEPT)
        if response.status_code != 200:
            self._fail(response, where)
        return digest_of(response.content)

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        """Store ``manifest`` under a tag or its digest; the registry must keep its digest."""
        where = f"{self.host}/{repository}{'@' if is_digest(reference) else ':'}{reference}"
        self.ping()
        response = self._send(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            what=where,
            content=manifest.content,
            headers={"Content-Type": manifest.media_type},
        )
        if response.status_code not in (200, 201):
            self._fail(response, where)
        stored = response.headers.get("docker-content-digest")
        if stored and stored != manifest.digest:
            raise DigestMismatch(
                f"{where} stored the manifest {manifest.digest} as {stored}; the registry "
                "rewrote it, so the image is not the one that was approved"
            )

    def has_blob(self, repository: str, digest: str) -> bool:
        where = f"blob {digest} in {self.host}/{repository}"
        self.ping()
        response = self._send("HEAD", f"/v2/{repository}/blobs/{digest}", what=where)
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            self._fail(response, where)
        return True

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> str | None:
        """Mount a blob from another repository of this registry; None once mounted.

        When the registry will not mount (202), it opens an upload session instead, and the
        session's URL is returned for the blob's upload.
        """
        where = f"blob {digest} mounted from {from_repository} into {self.host}/{repository}"
        self.ping()
        response = self._send(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            what=where,
            params={"mount": digest, "from": from_repository},
        )
        if response.status_code == 201:
            return None
        if response.status_code == 202:
            return self._upload_location(response, where)
        self._fail(response, where)

    def start_upload(self, repository: str) -> str:
        """Open an upload session; its URL."""
        where = f"an upload to {self.host}/{repository}"
        self.ping()
        response = self._send("POST", f"/v2/{repository}/blobs/uploads/", what=where)
        if response.status_code != 202:
            self._fail(response, where)
        return self._upload_location(response, where)

    def upload_blob(
        self, location: str, blob: Descriptor, chunks: Iterable[bytes], where: str
    ) -> None:
        """Finish an upload session with one streamed PUT of the blob's bytes.

        The caller passes chunks already checked against the digest (``media.verified``); the
        registry checks them again before it commits the blob. On any failure the session is
        cancelled, so the registry does not keep half a blob until its upload purge.
        """
        url = httpx.URL(location).copy_merge_params({"digest": blob.digest})
        try:
            response = self._send(
                "PUT",
                url,
                what=where,
                content=chunks,
                # A declared length streams the body as is; without it httpx would send it
                # chunked, which some registries refuse for uploads.
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(blob.size),
                },
            )
            if response.status_code != 201:
                self._fail(response, where)
        except Exception:
            with contextlib.suppress(ImageRegistryError):
                self._send("DELETE", location, what=where)
            raise

    @contextlib.contextmanager
    def open_blob(self, repository: str, blob: Descriptor) -> Iterator[Iterator[bytes]]:
        """The blob's bytes as a stream, checked against its digest as they are read."""
        where = f"{self.host}/{repository}"
        what = f"blob {blob.digest} in {where}"
        self.ping()
        with self._stream(
            "GET", f"/v2/{repository}/blobs/{blob.digest}", what=what, follow_redirects=True
        ) as response:
            if response.status_code != 200:
                self._fail(response, what)
            yield verified(self._chunks(response, what), blob, where)

    @contextlib.contextmanager
    def _stream(
        self,
        method: str,
        path: str,
        what: str,
        accept: str | None = None,
        follow_redirects: bool = False,
    ) -> Iterator[httpx.Response]:
        headers = {"Accept": accept} if accept else {}
        request = self._client.build_request(method, path, headers=headers)
        try:
            response = self._client.send(request, stream=True, follow_redirects=follow_redirects)
        except httpx.TransportError as error:
            self._unreachable(error, what)
        try:
            yield response
        finally:
            response.close()

    def _chunks(self, response: httpx.Response, what: str) -> Iterator[bytes]:
        # Raw bytes: the digest is of the stored bytes, whatever encoding a proxy might declare.
        try:
            yield from response.iter_raw(CHUNK_BYTES)
        except httpx.TransportError as error:
            self._unreachable(error, what)

    def _send(
        self,
        method: str,
        url: httpx.URL | str,
        what: str,
        *,
        accept: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
    ) -> httpx.Response:
        headers = {**({"Accept": accept} if accept else {}), **(headers or {})}
        request = self._client.build_request(
            method, url, headers=headers, params=params, content=content
        )
        try:
            return self._client.send(request)
        except httpx.TransportError as error:
            self._unreachable(error, what)

    def _upload_location(self, response: httpx.Response, where: str) -> str:
        location = response.headers.get("location")
        if not location:
            raise ImageRegistryError(f"{self.host} opened {where} without saying where to send it")
        # Relative locations are allowed; they are relative to the request that got them.
        return str(response.request.url.join(location))

    def _unreachable(self, error: httpx.TransportError, what: str) -> NoReturn:
        try:
            host = error.request.url.netloc.decode("ascii")
        except RuntimeError:
            host = self.host
        raise RegistryUnavailable(
            f"could not reach the image registry {host} for {what}: "
            f"{type(error).__name__}: {error or 'connection failed'}"
        ) from error

    def _fail(self, response: httpx.Response, what: str) -> NoReturn:
        status = response.status_code
        detail = _error_detail(response)
        if status == 404:
            raise ImageNotFound(f"{what} does not exist{detail}")
        if status == 401:
            if self._auth.has_credentials:
                raise RegistryAuthFailed(
                    f"the image registry {self.host} refused {self._auth.credentials_phrase} "
                    f"for {what}{detail}"
                )
            raise RegistryAuthFailed(
                f"the image registry {self.host} wants credentials for {what}, and none are "
                f"configured for it{detail}"
            )
        if status == 403:
            raise RegistryAuthFailed(
                f"the image registry {self.host} denied {self._auth.credentials_phrase} "
                f"access to {what}{detail}"
            )
        if status == 429 or status >= 500:
            raise RegistryUnavailable(
                f"the image registry {self.host} failed {what} with HTTP {status}{detail}; "
                "try again later"
            )
        if "DIGEST_INVALID" in detail:
            raise DigestMismatch(f"the image registry {self.host} refused {what}{detail}")
        raise ImageRegistryError(
            f"the image registry {self.host} refused {what} with HTTP {status}{detail}"
        )


def _error_detail(response: httpx.Response) -> str:
    """The registry's own error codes and messages, as ``: CODE message`` or nothing."""
    try:
        response.read()
        errors = json.loads(response.content).get("errors") or []
        parts = [f"{item.get('code', '')} {item.get('message', '')}".strip() for item in errors]
    except (ValueError, AttributeError, TypeError, httpx.HTTPError):
        return ""
    text = "; ".join(part for part in parts if part)[:300]
    return f": {text}" if text else ""
