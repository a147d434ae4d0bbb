"""Slack's side of Socket Mode: single-use connection tickets, the WebSocket, envelopes and acks."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
import uuid
import weakref
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import ClassVar, Final

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from bot.emulator.records import JSON
from bot.emulator.team import Identity
from bot.emulator.workspace import Workspace

logger = logging.getLogger(__name__)

PATH: Final = "/socket-mode/{ticket}"
DEBUG_HOST: Final = "applink-emulator"
"""What `debug_info.host` names; Slack names the applink server the socket landed on."""
ENVELOPE_TYPES: Final = {"slash_command": "slash_commands", "event_callback": "events_api"}
"""The envelope type for each kind of HTTP request; every other kind is `interactive`."""
ANSWERED_KINDS: Final = frozenset({"slash_command", "view_submission", "block_suggestion"})
"""Kinds whose ack may carry the app's answer (`accepts_response_payload`); Slack ignores the
payload of any other ack, as it ignores the body of an HTTP 200 to a button press."""


@dataclass(frozen=True)
class Sent:
    """One envelope sent to the app, and its ack if one came in time."""

    envelope: JSON
    ack: JSON | None
    """The app's ack message: `envelope_id` and, when it answers, `payload`."""
    elapsed: float
    error: str | None = None
    """`dispatch_failed` when no socket was open, `ack_timeout` when no ack came in time."""

    @property
    def body(self) -> bytes:
        return json.dumps(self.envelope).encode()

    @property
    def answer(self) -> bytes:
        """The ack's `payload` as JSON: what an HTTP response's body would carry (b"" if none)."""
        payload = self.ack.get("payload") if self.ack is not None else None
        return b"" if payload is None else json.dumps(payload).encode()


@dataclass(eq=False)
class _Link:
    """One open WebSocket, served on the emulator's event loop."""

    websocket: WebSocket
    loop: asyncio.AbstractEventLoop
    draining: bool = False
    """Told to reconnect (`disconnect`): Slack sends new envelopes elsewhere when it can."""
    opened: float = field(default_factory=time.monotonic)


class SocketMode:
    """Socket Mode as Slack serves it to the emulated app.

    apps.connections.open issues a single-use URL (`issue_url`); the app connects to it and is
    greeted with `hello`; `deliver` sends an envelope on the newest connection and waits for the
    app's ack; `refresh` sends `disconnect`, as Slack does every few hours, and the app reconnects.
    """

    _served: ClassVar[weakref.WeakKeyDictionary[Workspace, SocketMode]] = (
        weakref.WeakKeyDictionary()
    )
    _served_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self._lock = threading.Lock()
        self._connections_changed = threading.Condition(self._lock)
        self._tickets: set[str] = set()
        self._links: list[_Link] = []
        self._pending: dict[str, Future[JSON]] = {}

    @classmethod
    def of(cls, workspace: Workspace) -> SocketMode:
        """The Socket Mode of `workspace`'s app (apps.connections.open issues its tickets here)."""
        # A Web API method sees only the workspace; this keys Socket Mode to it without a
        # reference back, so a workspace still goes when its emulator does.
        with cls._served_lock:
            found = cls._served.get(workspace)
            if found is None:
                found = cls._served[workspace] = cls(workspace.identity)
            return found

    # --- connecting ----------------------------------------------------------------------------
    def issue_url(self, base_url: str) -> str:
        """A WebSocket URL the app may connect to once: `ws://127.0.0.1:PORT/socket-mode/<ticket>`."""
        ticket = secrets.token_urlsafe(16)
        with self._lock:
            self._tickets.add(ticket)
        base = base_url.replace("http://", "ws://", 1).rstrip("/")
        return base + PATH.format(ticket=ticket)

    def route(self) -> WebSocketRoute:
        """The WebSocket route the issued URLs point at, for the emulator's Starlette app."""
        return WebSocketRoute(PATH, self._serve)

    @property
    def connections(self) -> int:
        """How many sockets the app has open now."""
        with self._lock:
            return len(self._links)

    def wait_for_connections(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until the app has exactly `count` sockets open (TimeoutError if it never does)."""
        with self._connections_changed:
            if not self._connections_changed.wait_for(lambda: len(self._links) == count, timeout):
                raise TimeoutError(
                    f"the app has {len(self._links)} Socket Mode connections, not {count}"
                )

    async def _serve(self, websocket: WebSocket) -> None:
        with self._lock:
            ticket = websocket.path_params["ticket"]
            valid = ticket in self._tickets
            self._tickets.discard(ticket)
        if not valid:
            # Refused before the upgrade (HTTP 403): the app asks apps.connections.open again.
            await websocket.close(code=1008)
            return
        await websocket.accept()
        link = _Link(websocket, asyncio.get_running_loop())
        with self._lock:
            count = len(self._links) + 1
        # Slack says hello before the first envelope, so the link is used only once it has.
        await websocket.send_json(
            {
                "type": "hello",
                "num_connections": count,
                "debug_info": {
                    "host": DEBUG_HOST,
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.identity.app_id},
            }
        )
        with self._connections_changed:
            self._links.append(link)
            self._connections_changed.notify_all()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                raw = message.get("text") or (message.get("bytes") or b"").decode(errors="replace")
                self._acknowledge(raw)
        finally:
            with self._connections_changed:
                self._links.remove(link)
                self._connections_changed.notify_all()

    def _acknowledge(self, raw: str) -> None:
        try:
            ack = json.loads(raw)
        except ValueError:
            ack = None
        envelope_id = ack.get("envelope_id") if isinstance(ack, dict) else None
        if not isinstance(envelope_id, str):
            logger.warning("Socket Mode message that is no ack ignored: %.200s", raw)
            return
        with self._lock:
            waiting = self._pending.pop(envelope_id, None)
        if waiting is None:
            # Late (after the timeout) or never sent: Slack has moved on either way.
            logger.info("ack for no waiting envelope %s ignored", envelope_id)
            return
        waiting.set_result(ack)

    # --- delivering ----------------------------------------------------------------------------
    def deliver(
        self,
        kind: str,
        payload: JSON,
        *,
        timeout: float,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> Sent:
        """Send `payload` (what HTTP would carry for `kind`) in an envelope; wait for the ack.

        Call from any thread but the emulator's own.
        """
        envelope: JSON = {
            "envelope_id": str(uuid.uuid4()),
            "type": ENVELOPE_TYPES.get(kind, "interactive"),
            "payload": payload,
            "accepts_response_payload": kind in ANSWERED_KINDS,
        }
        if envelope["type"] == "events_api":
            # Slack sends both on every event, 0 and "" on the first attempt.
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        started = time.perf_counter()
        link = self._choose_link()
        if link is None:
            return Sent(envelope, None, time.perf_counter() - started, "dispatch_failed")
        waiting: Future[JSON] = Future()
        with self._lock:
            self._pending[envelope["envelope_id"]] = waiting
        try:
            asyncio.run_coroutine_threadsafe(
                link.websocket.send_text(json.dumps(envelope)), link.loop
            ).result(timeout)
            ack = waiting.result(max(0.0, timeout - (time.perf_counter() - started)))
        except TimeoutError:
            return Sent(envelope, None, time.perf_counter() - started, "ack_timeout")
        except Exception:  # the socket closed under the send, or the emulator stopped
            logger.info("Socket Mode envelope not sent", exc_info=True)
            return Sent(envelope, None, time.perf_counter() - started, "dispatch_failed")
        finally:
            with self._lock:
                self._pending.pop(envelope["envelope_id"], None)
        return Sent(envelope, ack, time.perf_counter() - started)

    def _choose_link(self) -> _Link | None:
        with self._lock:
            # The newest socket is the one an app keeps when it replaces an old one.
            ready = [link for link in self._links if not link.draining] or self._links
            return max(ready, key=lambda link: link.opened, default=None)

    def refresh(self, reason: str = "refresh_requested") -> int:
        """Ask every open socket to reconnect (`disconnect`); how many were asked."""
        with self._lock:
            links = list(self._links)
            for link in links:
                link.draining = True
        message = json.dumps(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": DEBUG_HOST}}
        )
        for link in links:
            try:
                asyncio.run_coroutine_threadsafe(
                    link.websocket.send_text(message), link.loop
                ).result(5)
            except Exception:  # closed meanwhile: nothing left to ask
                logger.info("Socket Mode disconnect not sent", exc_info=True)
        return len(links)
