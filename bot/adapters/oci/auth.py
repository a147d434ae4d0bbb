"""Registry authentication: none, basic, a static bearer token, or bearer tokens by challenge.

The challenge flow is Docker's: a registry answers 401 with ``WWW-Authenticate: Bearer
realm=...,service=...,scope=...``; the client asks the realm for a token for that scope (with
its basic credentials, if it has any) and sends the request again with the token.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Generator
from dataclasses import dataclass

import httpx

from bot.adapters.oci.errors import ImageRegistryError, RegistryAuthFailed, RegistryUnavailable

_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s",]+))')
_ESCAPE = re.compile(r"\\(.)")
#: Greedy, so a repository whose path has a component named "blobs" still parses.
_REPOSITORY_PATH = re.compile(r"^/v2/(?P<name>.+)/(?:manifests|blobs|tags)/")
#: The distribution spec's default when a token response says nothing about its lifetime.
_DEFAULT_TOKEN_SECONDS = 60
#: Renew a token this long before it expires: a request must not arrive with a stale one.
_EXPIRY_MARGIN_SECONDS = 10

Flow = Generator[httpx.Request, httpx.Response, None]


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic", "bearer"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """The scheme and parameters of one ``WWW-Authenticate`` value; None if it has no scheme."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {
        match[1].lower(): _ESCAPE.sub(r"\1", match[2]) if match[2] is not None else match[3]
        for match in _PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


def scopes_for(request: httpx.Request) -> frozenset[str]:
    """The token scopes a registry request needs, as the distribution token spec names them."""
    match = _REPOSITORY_PATH.match(request.url.path)
    if match is None:
        return frozenset()
    if request.method in ("GET", "HEAD"):
        actions = "pull"
    elif request.method == "DELETE":
        actions = "delete"
    else:
        actions = "pull,push"
    scopes = {f"repository:{match['name']}:{actions}"}
    mounted_from = request.url.params.get("from")
    if request.method == "POST" and mounted_from:
        scopes.add(f"repository:{mounted_from}:pull")
    return frozenset(scopes)


@dataclass
class _Token:
    value: str
    renew_at: float  # time.monotonic()


@dataclass(frozen=True)
class _Realm:
    url: str
    service: str | None


class RegistryAuth(httpx.Auth):
    """Authenticates every request to one registry, learning how from its challenges.

    A request whose body is a stream cannot be sent twice, so it must not be the one that meets
    a challenge: the registry client pings ``/v2/`` first, and a blob upload opens its session
    (a small POST) before streaming, so the token for the upload's scope is already cached.
    """

    def __init__(
        self,
        base_url: httpx.URL,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
    ) -> None:
        self._host = base_url.netloc.decode("ascii")
        self._origin = _origin(base_url)
        self._username = username
        self._basic: str | None = None
        if username is not None and password is not None:
            pair = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            self._basic = f"Basic {pair}"
        self._static = f"Bearer {token}" if token is not None else None
        self._use_basic = False
        self._realm: _Realm | None = None
        # Plain dict operations only: the worst a race between threads does is fetch a token twice.
        self._tokens: dict[frozenset[str], _Token] = {}

    @property
    def has_credentials(self) -> bool:
        return self._basic is not None or self._static is not None

    @property
    def credentials_phrase(self) -> str:
        if self._static is not None:
            return "the configured bearer token"
        if self._username is not None:
            return f"the credentials of {self._username!r}"
        return "no credentials"

    def auth_flow(self, request: httpx.Request) -> Flow:
        if _origin(request.url) != self._origin:
            # Upload locations and blob redirects may point at storage hosts: the registry's
            # credentials are for the registry alone.
            yield request
            return
        if self._static is not None:
            request.headers["Authorization"] = self._static
            yield request
            return
        scopes = scopes_for(request)
        sent = yield from self._authorize(request, scopes)
        response = yield request
        if response.status_code != 401 or not _replayable(request):
            return
        challenge = _challenge(response)
        if challenge is None:
            return
        if challenge.scheme == "bearer" and challenge.params.get("realm"):
            self._realm = _Realm(challenge.params["realm"], challenge.params.get("service"))
            wanted = scopes | frozenset(challenge.params.get("scope", "").split())
            if not wanted:
                return  # the /v2/ ping: learning the realm was all it was for
            # A token that was sent and refused is stale or too narrow: fetch afresh, once.
            token = yield from self._token(wanted, fresh=sent)
            self._tokens[scopes] = self._tokens[wanted]
            request.headers["Authorization"] = f"Bearer {token}"
            yield request
        elif challenge.scheme == "basic" and self._basic is not None and not sent:
            self._use_basic = True
            request.headers["Authorization"] = self._basic
            yield request

    def _authorize(
        self, request: httpx.Request, scopes: frozenset[str]
    ) -> Generator[httpx.Request, httpx.Response, bool]:
        # Authorize up front once the scheme is known: it saves a round trip per request and is
        # the only way a streamed body gets through.
        if self._realm is not None and scopes:
            token = yield from self._token(scopes, fresh=False)
            request.headers["Authorization"] = f"Bearer {token}"
            return True
        if self._use_basic and self._basic is not None:
            request.headers["Authorization"] = self._basic
            return True
        return False

    def _token(
        self, scopes: frozenset[str], fresh: bool
    ) -> Generator[httpx.Request, httpx.Response, str]:
        cached = self._tokens.get(scopes)
        if cached is not None and not fresh and time.monotonic() < cached.renew_at:
            return cached.value
        assert self._realm is not None  # only asked for once a challenge named the realm
        params = [("service", self._realm.service)] if self._realm.service else []
        params += [("scope", scope) for scope in sorted(scopes)]
        url = httpx.URL(self._realm.url).copy_merge_params(tuple(params))
        headers = {"Authorization": self._basic} if self._basic is not None else {}
        response = yield httpx.Request("GET", url, headers=headers)
        response.read()
        token = self._read_token(response, url)
        self._tokens[scopes] = token
        return token.value

    def _read_token(self, response: httpx.Response, url: httpx.URL) -> _Token:
        where = f"the token service {url.copy_with(query=None)} of the image registry {self._host}"
        if response.status_code in (401, 403):
            raise RegistryAuthFailed(
                f"{where} refused {self.credentials_phrase} "
                f"(HTTP {response.status_code}); check the registry credentials"
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise RegistryUnavailable(f"{where} failed with HTTP {response.status_code}")
        try:
            body = json.loads(response.content)
            value = body.get("token") or body.get("access_token")
            lifetime = int(body.get("expires_in") or _DEFAULT_TOKEN_SECONDS)
        except (ValueError, TypeError, AttributeError):
            value = None
        if response.status_code != 200 or not isinstance(value, str) or not value:
            raise ImageRegistryError(
                f"{where} answered HTTP {response.status_code} without a token"
            )
        margin = min(_EXPIRY_MARGIN_SECONDS, lifetime / 2)
        return _Token(value, time.monotonic() + lifetime - margin)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), url.port or default


def _challenge(response: httpx.Response) -> Challenge | None:
    for header in response.headers.get_list("www-authenticate"):
        challenge = parse_challenge(header)
        if challenge is not None and challenge.scheme in ("bearer", "basic"):
            return challenge
    return None


def _replayable(request: httpx.Request) -> bool:
    try:
        request.content  # noqa: B018 - raises for a streamed body, which is gone once sent
    except httpx.RequestNotRead:
        return False
    return True
