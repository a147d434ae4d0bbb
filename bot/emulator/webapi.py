"""The Web API over HTTP: Slack's request rules (tokens, bodies, required arguments) and replies.

Order of checks, as Slack runs them: method known → rate limit → body readable → token →
required arguments → the method itself. Every answer is JSON with `ok`; only a rate limit
answers other than 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.emulator.arguments import Arguments, Call
from bot.emulator.errors import SlackError
from bot.emulator.methods import APP_TOKEN_METHODS, HANDLERS
from bot.emulator.records import JSON, CallRecord, ResponseUrlPost
from bot.emulator.reference import MethodReference
from bot.emulator.response_url import apply_response
from bot.emulator.workspace import Workspace

logger = logging.getLogger(__name__)

SCHEDULER_TICK_SECONDS = 0.05


class RateLimits:
    """429s armed on demand: the next `times` calls to a method are refused with Retry-After."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, list[int]] = {}

    def arm(self, method: str, retry_after: int, times: int) -> None:
        with self._lock:
            self._armed.setdefault(method, []).extend([retry_after] * times)

    def take(self, method: str) -> int | None:
        with self._lock:
            pending = self._armed.get(method)
            return pending.pop(0) if pending else None


@dataclass
class _Request:
    args: JSON
    token: str | None
    content_type: str
    warnings: list[str] = field(default_factory=list)
    """Warnings Slack returns to the caller."""
    notes: list[str] = field(default_factory=list)
    """What only the call record shows, to explain an answer."""


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def _multipart(content_type: str, body: bytes) -> JSON:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise SlackError("invalid_form_data")
    fields: JSON = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise SlackError("invalid_form_data")
        payload = part.get_payload(decode=True)
        fields[name] = payload.decode("utf-8") if isinstance(payload, bytes) else ""
    return fields


async def _read(request: Request, reference: MethodReference) -> _Request:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    body = await request.body()
    read = _Request(dict(request.query_params), None, media)
    args = read.args
    header_token = _bearer(request)
    if args.pop("token", None) is not None:
        # Slack stopped reading tokens from query strings for apps made since 2021.
        read.notes.append("token_in_query_string_ignored")
    if media == "application/json":
        if body.strip():
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise SlackError("invalid_json") from None
            if not isinstance(data, dict):
                raise SlackError("invalid_json")
            if "charset" not in content_type.lower():
                read.warnings.append("missing_charset")
            if reference.json_input_supported:
                args.update(data)
            else:
                read.notes.append("json_body_ignored: this method reads only forms")
            if "token" in data:
                args.pop("token", None)
                read.notes.append("token_in_json_body_ignored: send it as a Bearer header")
        read.token = header_token
        return read
    try:
        if media in ("", "application/x-www-form-urlencoded"):
            args.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        elif media == "multipart/form-data":
            args.update(_multipart(content_type, body))
        else:
            raise SlackError("invalid_form_data")
    except (UnicodeDecodeError, ValueError):
        raise SlackError("invalid_form_data") from None
    form_token = args.pop("token", None)
    read.token = header_token or (form_token if isinstance(form_token, str) else None)
    return read


def _check_token(workspace: Workspace, method: str, token: str | None) -> None:
    identity = workspace.identity
    if not token:
        raise SlackError("not_authed")
    if token == identity.bot_token:
        kind = "bot"
    elif identity.app_token is not None and token == identity.app_token:
        kind = "app"
    else:
        raise SlackError("invalid_auth")
    if (method in APP_TOKEN_METHODS) != (kind == "app"):
        raise SlackError("not_allowed_token_type")


def _refusal(error: SlackError) -> JSON:
    body: JSON = {"ok": False, "error": error.code}
    if error.messages:
        body["response_metadata"] = {"messages": error.messages}
    return body


def create_app(
    workspace: Workspace, references: dict[str, MethodReference], rate_limits: RateLimits
) -> Starlette:
    """The emulator's ASGI app: `/api/<method>` and `/response/<id>`."""

    def record(
        method: str, read: _Request | None, request: Request, status: int, body: JSON
    ) -> None:
        workspace.record_call(
            CallRecord(
                method=method,
                args=dict(read.args) if read else {},
                token=read.token if read else _bearer(request),
                http_method=request.method,
                content_type=read.content_type if read else request.headers.get("content-type", ""),
                status=status,
                response=body,
                time=workspace.clock(),
                warnings=tuple(read.warnings + read.notes) if read else (),
            )
        )

    async def web_api(request: Request) -> Response:
        method = request.path_params["method"]
        reference, handler = references.get(method), HANDLERS.get(method)
        if reference is None or handler is None:
            body: JSON = {"ok": False, "error": "unknown_method"}
            record(method, None, request, 200, body)
            return JSONResponse(body)
        retry_after = rate_limits.take(method)
        if retry_after is not None:
            body = {"ok": False, "error": "ratelimited"}
            record(method, None, request, 429, body)
            return JSONResponse(body, status_code=429, headers={"Retry-After": str(retry_after)})
        read: _Request | None = None
        try:
            read = await _read(request, reference)
            _check_token(workspace, method, read.token)
            arguments = Arguments(read.args)
            for name in reference.required:
                if not arguments.present(name):
                    code = reference.missing_argument_error(name)
                    detail = [f"[ERROR] missing required field: {name}"]
                    raise SlackError(code, detail if code == "invalid_arguments" else None)
            call = Call(reference, arguments, workspace, read.warnings)
            body = {"ok": True, **handler(call)}
        except SlackError as error:
            body = _refusal(error)
        except Exception:
            # A bug of the emulator, not of the app: say so in Slack's words and log it.
            logger.exception("emulated %s failed", method)
            body = {"ok": False, "error": "internal_error"}
        if read is not None and read.warnings:
            body["warning"] = ",".join(read.warnings)
            body.setdefault("response_metadata", {})["warnings"] = list(read.warnings)
        record(method, read, request, 200, body)
        return JSONResponse(body)

    async def response_url(request: Request) -> Response:
        url_id = request.path_params["url_id"]
        answer = apply_response(workspace, url_id, await request.body())
        workspace.record_response_post(
            ResponseUrlPost(url_id, answer.payload, answer.status, answer.body, workspace.clock())
        )
        return JSONResponse(answer.body, status_code=answer.status)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def deliver_scheduled() -> None:
            while True:
                workspace.deliver_due()
                await asyncio.sleep(SCHEDULER_TICK_SECONDS)

        task = asyncio.create_task(deliver_scheduled())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return Starlette(
        routes=[
            Route("/api/{method:path}", web_api, methods=["GET", "POST"]),
            Route("/response/{url_id}", response_url, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
