"""Runs the emulator on loopback in a background thread, started and stopped by a `with` block."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import uvicorn
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from bot.emulator.client import InteractionClient
from bot.emulator.clock import Clock, system_clock
from bot.emulator.page import Page, Person
from bot.emulator.records import CallRecord
from bot.emulator.reference import MethodReference, load_references
from bot.emulator.socket_mode import SocketMode
from bot.emulator.team import Identity
from bot.emulator.webapi import RateLimits, create_app
from bot.emulator.workspace import Workspace

T = TypeVar("T")


class BackgroundServer:
    """Serves an ASGI app with uvicorn on its own thread, on a port the OS picks."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the server is not running")
        port: int = self._socket.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/"

    def start(self, timeout: float = 5.0) -> None:
        """Bind, serve, and return once the app accepts requests."""
        # Binding here rather than in uvicorn gives the port before the thread starts.
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
        # and without it every response waits 40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._requested_port))
        self._socket = sock
        # log_config=None: uvicorn must not reconfigure the logging of the process it runs in.
        config = uvicorn.Config(
            self._app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=1,
            # Slack pings Socket Mode clients. Pinging often also lets slack_sdk's client close
            # at once: it closes between two reads, which otherwise wait 3 s for a frame.
            ws_ping_interval=0.5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="slack-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the Slack emulator did not start")
            time.sleep(0.002)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, wait for the thread to end and free the port."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None


class SlackEmulator:
    """A local stand-in for Slack's Web API that answers as strictly as Slack.

    ``with SlackEmulator() as slack:`` point the app's Web API client at ``slack.api_url``,
    set up people and channels through ``slack.workspace``, act as a person through
    ``slack.client(request_url)`` (or, to an app in Socket Mode, ``slack.socket_client()``),
    and assert on ``slack.workspace`` and ``slack.calls``.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0GATEKPR",
        bot_token: str = "xoxb-test",
        signing_secret: str = "emulator-signing-secret",
        app_token: str | None = "xapp-test",
        identity: Identity | None = None,
        clock: Clock = system_clock,
        reference_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.identity = identity or Identity(
            team_id=team_id, bot_token=bot_token, signing_secret=signing_secret, app_token=app_token
        )
        self.references: dict[str, MethodReference] = load_references(reference_dir)
        self.workspace = Workspace(self.identity, clock)
        self._rate_limits = RateLimits()
        self.socket_mode = SocketMode.of(self.workspace)
        """Socket Mode's side of Slack: open connections, `refresh()`."""
        app = create_app(self.workspace, self.references, self._rate_limits)
        # Slack serves Socket Mode's WebSockets apart from its Web API; here they share a port.
        app.router.routes.append(self.socket_mode.route())
        self._app = app
        self._server = BackgroundServer(app, host, port)
        self._clients: list[InteractionClient] = []
        self._page: Page | None = None
        self._page_routes: list[BaseRoute] = []

    def start(self) -> SlackEmulator:
        self._server.start()
        self.workspace.base_url = self._server.url
        return self

    def stop(self) -> None:
        if self._page is not None:
            self._page.close()
        for client in self._clients:
            client.close()
        self._server.stop()

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/`."""
        return self._server.url

    @property
    def api_url(self) -> str:
        """`http://127.0.0.1:PORT/api/`: what SLACK_API_URL (WebClient's base_url) is set to."""
        return f"{self._server.url}api/"

    @property
    def calls(self) -> list[CallRecord]:
        """Every Web API call received, oldest first."""
        return self.workspace.calls

    def rate_limit(self, method: str, retry_after: int = 2, times: int = 1) -> None:
        """Answer the next `times` calls to `method` with HTTP 429 and `Retry-After`."""
        self._rate_limits.arm(method, retry_after, times)

    def wait_for(self, predicate: Callable[[Workspace], T], timeout: float = 5.0) -> T:
        """Block until `predicate(workspace)` holds; return its value (TimeoutError if never)."""
        return self.workspace.wait_for(predicate, timeout)

    def client(self, request_url: str, **options: Any) -> InteractionClient:
        """A person's Slack client sending signed requests to the app at `request_url`."""
        client = InteractionClient(self.workspace, request_url, **options)
        self._clients.append(client)
        return client

    def socket_client(self, **options: Any) -> InteractionClient:
        """A person's Slack client reaching the app over its open Socket Mode connection."""
        client = InteractionClient(self.workspace, socket_mode=self.socket_mode, **options)
        self._clients.append(client)
        return client

    def open_page(
        self, *, request_url: str | None, people: Sequence[Person], channel: str | None = None
    ) -> str:
        """Serve the web page showing the workspace as `people` see it; return its URL.

        People missing from the workspace are added. `request_url` is the app's `/slack/events`
        (None: the app is in Socket Mode). `channel` is shown first (default: the first one).
        """
        for person in people:
            if self.workspace.user(person.user_id) is None:
                self.workspace.add_user(person.user_id, person.name)
        person_client = self.client(request_url) if request_url else self.socket_client()
        page = Page(self.workspace, person_client, people, channel)
        if self._page is not None:
            self._page.close()
        routes = self._app.router.routes
        routes[:] = [r for r in routes if all(r is not old for old in self._page_routes)]
        # Matched in order: "/" goes to the page before anything of the Web API is tried.
        self._page, self._page_routes = page, page.routes()
        routes[:0] = self._page_routes
        return f"{self.base_url}app/"
