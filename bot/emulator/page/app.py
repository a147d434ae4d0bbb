"""The page's routes on the emulator's own server: the page, its state (long-polled), its actions.

`GET /app/api/state?user=U…&channel=C…&thread=TS&since=N` answers at once when the workspace
changed after version N, else when it next changes (or after `wait` seconds): the page stays
current without reloading. `POST /app/api/{press,press_in_view,submit,close,command,home}`
take JSON and answer with what the page should show about the request (`Outcome`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.emulator.client import InteractionClient
from bot.emulator.page.actions import Actions, BadAction, Outcome
from bot.emulator.page.directory import Person
from bot.emulator.page.screen import WATCHED_KINDS_IGNORED, screen
from bot.emulator.records import Change
from bot.emulator.workspace import Workspace

STATIC = Path(__file__).resolve().parent.parent / "static"
PREFIX = "/app"
LONG_POLL_SECONDS = 20.0
"""How long a state request waits for a change; the script asks again right away."""


class Page:
    """The Slack window of a workspace, for the people who can be switched between."""

    def __init__(
        self,
        workspace: Workspace,
        client: InteractionClient,
        people: Sequence[Person],
        channel: str | None,
    ) -> None:
        self.workspace = workspace
        self.people = list(people)
        self.channel = channel
        self.actions = Actions(workspace, client, workspace.identity.bot_name)
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._waiters_lock = threading.Lock()
        self._closed = False
        self._unsubscribe = workspace.subscribe(self._changed)

    def close(self) -> None:
        """Answer every waiting state request now, so the server can stop without waiting."""
        self._closed = True
        self._unsubscribe()
        self._wake_all()

    def _changed(self, change: Change) -> None:
        if change.kind not in WATCHED_KINDS_IGNORED:
            self._wake_all()

    def _wake_all(self) -> None:
        with self._waiters_lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(event.set)

    async def _wait_for_change(self, since: int, timeout: float) -> None:
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._waiters_lock:
            self._waiters.add(waiter)
        try:
            if self._closed or self._changed_since(since):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            with self._waiters_lock:
                self._waiters.discard(waiter)

    def _changed_since(self, since: int) -> bool:
        if since > self.workspace.version:  # a page left open across emulator restarts
            return True
        return any(c.kind not in WATCHED_KINDS_IGNORED for c in self.workspace.changes_since(since))

    # --- routes --------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        """`/app/…` for the page, and `/` sending a browser there."""
        return [
            Mount(
                PREFIX,
                routes=[
                    Route("/", self._index, methods=["GET"]),
                    Route("/api/state", self._state, methods=["GET"]),
                    Route("/api/{action}", self._act, methods=["POST"]),
                    Mount("/static", StaticFiles(directory=STATIC)),
                ],
            ),
            Route("/", self._to_page, methods=["GET"]),
        ]

    async def _to_page(self, request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/")

    async def _index(self, request: Request) -> Response:
        return FileResponse(STATIC / "page.html", headers={"Cache-Control": "no-store"})

    async def _state(self, request: Request) -> Response:
        query = request.query_params
        user = query.get("user") or (self.people[0].user_id if self.people else "")
        found = self.workspace.user(user)
        if found is None or found.is_bot:
            return _problem(f"no person {user!r} in the workspace")
        try:
            since = int(query["since"]) if "since" in query else None
            wait = min(float(query.get("wait", LONG_POLL_SECONDS)), LONG_POLL_SECONDS)
        except ValueError:
            return _problem("`since` must be a whole number and `wait` a number of seconds")
        if since is not None:
            await self._wait_for_change(since, wait)
        channel = query.get("channel") or self.channel
        state = await run_in_threadpool(
            screen, self.workspace, self.people, user, channel, query.get("thread") or None
        )
        if state["channel"] is None and state["channels"]:
            first = next((c["id"] for c in state["channels"] if not c["dm"]), None)
            if first is not None:
                state = await run_in_threadpool(
                    screen, self.workspace, self.people, user, first, None
                )
        return JSONResponse(state, headers={"Cache-Control": "no-store"})

    async def _act(self, request: Request) -> Response:
        handlers: dict[str, Callable[[dict[str, Any]], Outcome]] = {
            "press": self.actions.press,
            "press_in_view": self.actions.press_in_view,
            "submit": self.actions.submit,
            "close": self.actions.close,
            "command": self.actions.command,
            "home": self.actions.open_home,
        }
        handler = handlers.get(request.path_params["action"])
        if handler is None:
            return _problem(f"no action {request.path_params['action']!r}", 404)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _problem("the body must be JSON")
        if not isinstance(body, dict):
            return _problem("the body must be a JSON object")
        try:
            # The bot answers by calling this server's Web API: block a worker, not the loop.
            outcome = await run_in_threadpool(handler, body)
        except BadAction as error:
            return _problem(str(error))
        return JSONResponse(outcome.to_json())


def _problem(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message}, status_code=status)
