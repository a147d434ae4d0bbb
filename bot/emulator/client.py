"""Sends the app what Slack sends it, signed as Slack signs it (or over its Socket Mode
connection), and applies what Slack would do with the app's answer (a slash command's reply, a
view submission's `response_action`)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.emulator import facts
from bot.emulator.clock import Clock, system_clock
from bot.emulator.payloads import (
    action,
    event_envelope,
    find_element,
    interaction_envelope,
    view_state,
)
from bot.emulator.records import JSON, View
from bot.emulator.replies import apply_command_reply, apply_submission_reply
from bot.emulator.signing import Forgery, sign
from bot.emulator.socket_mode import SocketMode
from bot.emulator.workspace import Workspace

FORM = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
RETRIED_KINDS = frozenset({"event_callback", "url_verification"})
"""Slack retries only Events API deliveries."""


@dataclass(frozen=True)
class Delivery:
    """One request sent to the app, and what came back."""

    kind: str
    body: bytes
    """Exactly the bytes sent (after any forgery)."""
    headers: dict[str, str]
    """Empty over Socket Mode: Slack signs only HTTP requests."""
    status: int | None
    """None when no answer came (timeout, connection refused); 200 for a Socket Mode ack."""
    response_body: bytes
    """The HTTP response's body, or a Socket Mode ack's `payload` as JSON."""
    response_headers: dict[str, str]
    elapsed: float
    error: str | None = None
    """What Slack would make of it: `operation_timeout` (`ack_timeout` over Socket Mode),
    `dispatch_failed`, `http_status_401`, or a rule the app's answer broke (an invalid
    `response_action`, blocks over the limits)."""
    trigger_id: str | None = None
    response_url: str | None = None
    retry_num: int = 0

    @property
    def text(self) -> str:
        return self.response_body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.response_body) if self.response_body.strip() else None


class InteractionClient:
    """A person using Slack, as the app sees them: commands, button presses, submissions, events.

    Delivered as signed HTTP requests to `request_url`, or, given `socket_mode`, as envelopes
    over the app's open Socket Mode connection (unsigned, as Slack sends them).
    """

    def __init__(
        self,
        workspace: Workspace,
        request_url: str | None = None,
        *,
        socket_mode: SocketMode | None = None,
        signing_secret: str | None = None,
        team_id: str | None = None,
        timeout: float = facts.REQUEST_TIMEOUT_SECONDS,
        clock: Clock = system_clock,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if (request_url is None) == (socket_mode is None):
            raise ValueError("give the app's request URL or its Socket Mode, one of the two")
        self.workspace = workspace
        self.request_url = request_url
        self.socket_mode = socket_mode
        self.timeout = timeout
        self.signing_secret = signing_secret or workspace.identity.signing_secret
        self.team_id = team_id or workspace.identity.team_id
        """Which team the payloads claim to come from (another one, to test refusals)."""
        self.clock = clock
        """The signing clock: the app checks timestamps against real time, not the emulator's."""
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> InteractionClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- sending -------------------------------------------------------------------------------
    def send(
        self,
        kind: str,
        body: bytes,
        content_type: str,
        *,
        forgery: Forgery | None = None,
        retry_num: int = 0,
        retry_reason: str = "http_timeout",
        extra_headers: dict[str, str] | None = None,
    ) -> Delivery:
        """Sign and post any body (the typed methods below build the usual ones)."""
        if self.request_url is None:
            raise ValueError("this client reaches the app over Socket Mode, not HTTP")
        headers, sent = sign(self.signing_secret, body, now=self.clock(), forgery=forgery)
        headers["Content-Type"] = content_type
        if retry_num:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        headers.update(extra_headers or {})
        started = time.perf_counter()
        status, response_body, response_headers, error = None, b"", {}, None
        try:
            response = self._http.post(self.request_url, content=sent, headers=headers)
            status, response_body = response.status_code, response.content
            response_headers = dict(response.headers)
            error = None if status == 200 else f"http_status_{status}"
        except httpx.TimeoutException:
            error = "operation_timeout"
        except httpx.TransportError:
            error = "dispatch_failed"
        return Delivery(
            kind,
            sent,
            headers,
            status,
            response_body,
            response_headers,
            time.perf_counter() - started,
            error,
            retry_num=retry_num,
        )

    def _deliver(
        self, kind: str, payload: JSON, body: bytes, content_type: str, forgery: Forgery | None
    ) -> Delivery:
        """`payload` over Socket Mode when the app is in it, else `body` (its HTTP form) signed."""
        if self.socket_mode is None:
            return self.send(kind, body, content_type, forgery=forgery)
        if forgery is not None:
            raise ValueError("Socket Mode carries no signature to forge")
        return self._over_socket(kind, payload)

    def _over_socket(
        self, kind: str, payload: JSON, retry_num: int = 0, retry_reason: str = ""
    ) -> Delivery:
        assert self.socket_mode is not None
        sent = self.socket_mode.deliver(
            kind, payload, timeout=self.timeout, retry_attempt=retry_num, retry_reason=retry_reason
        )
        # The ack's payload stands where an HTTP response body would, and is applied the same way.
        headers = {"content-type": JSON_TYPE} if sent.answer else {}
        status = None if sent.ack is None else 200
        return Delivery(
            kind, sent.body, {}, status, sent.answer, headers, sent.elapsed, sent.error,
            retry_num=retry_num,
        )  # fmt: skip

    def _interaction(self, payload: JSON, forgery: Forgery | None) -> Delivery:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        delivery = self._deliver(str(payload["type"]), payload, body, FORM, forgery)
        return replace(
            delivery, trigger_id=payload.get("trigger_id"), response_url=payload.get("response_url")
        )

    # --- what a person does --------------------------------------------------------------------
    def slash_command(
        self,
        user: str,
        command: str,
        text: str = "",
        *,
        channel: str,
        forgery: Forgery | None = None,
    ) -> Delivery:
        """Type `/command text` in a channel."""
        found = self.workspace.channel(channel)
        if found is None:
            raise LookupError(f"no channel {channel} in the workspace")
        person = self.workspace.user(user)
        trigger_id = self.workspace.issue_trigger(user)
        response_url = self.workspace.issue_response_url(user, found.id)
        form = {
            "token": self.workspace.identity.verification_token,
            "team_id": self.team_id,
            "team_domain": self.workspace.identity.team_domain,
            "channel_id": found.id,
            "channel_name": "directmessage" if found.is_im else found.name,
            "user_id": user,
            "user_name": person.name if person else user,
            "command": command,
            "text": text,
            "api_app_id": self.workspace.identity.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        delivery = self._deliver("slash_command", form, urlencode(form).encode(), FORM, forgery)
        delivery = replace(delivery, trigger_id=trigger_id, response_url=response_url)
        if forgery is None:
            problem = apply_command_reply(self.workspace, delivery, user, found.id, command)
            delivery = replace(delivery, error=delivery.error or problem)
        return delivery

    def click(
        self,
        user: str,
        channel: str,
        ts: str,
        action_id: str,
        *,
        block_id: str | None = None,
        value: Any = None,
        confirm: bool = True,
        forgery: Forgery | None = None,
    ) -> Delivery | None:
        """Press a button (or choose `value` in a menu) on a message or an ephemeral message.

        Returns None when the element asks for confirmation and the person cancels.
        """
        message = self.workspace.message(channel, ts)
        ephemeral = next((e for e in self.workspace.ephemerals(channel, user) if e.ts == ts), None)
        if message is None and ephemeral is None:
            raise LookupError(f"{user} sees no message {ts} in {channel}")
        blocks = (
            message.blocks if message is not None else ephemeral.blocks if ephemeral else None
        ) or []
        found_block, element = find_element(blocks, action_id, block_id)
        if element.get("confirm") and not confirm:
            return None
        container: JSON = {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": message is None,
        }
        if message is not None and message.is_reply:
            container["thread_ts"] = message.thread_ts
        found_channel = self.workspace.channel(channel)
        payload = interaction_envelope(self.workspace, "block_actions", user, self.team_id)
        payload.update(
            container=container,
            trigger_id=self.workspace.issue_trigger(user),
            channel={"id": channel, "name": found_channel.name if found_channel else channel},
        )
        if message is not None:
            payload["message"] = message.to_slack()
        payload.update(
            state={"values": {}},
            response_url=self.workspace.issue_response_url(
                user, channel, original_ts=ts, original_is_ephemeral=message is None
            ),
            actions=[action(element, found_block, self.workspace.next_ts(), value)],
        )
        return self._interaction(payload, forgery)

    def click_in_view(
        self,
        user: str,
        view_id: str,
        action_id: str,
        *,
        block_id: str | None = None,
        value: Any = None,
        confirm: bool = True,
        forgery: Forgery | None = None,
    ) -> Delivery | None:
        """Press a button (or choose in a menu) in an open modal or on the Home tab."""
        view = self._visible_view(user, view_id)
        found_block, element = find_element(view.blocks, action_id, block_id)
        if element.get("confirm") and not confirm:
            return None
        payload = interaction_envelope(self.workspace, "block_actions", user, self.team_id)
        payload.update(
            container={"type": "view", "view_id": view.id},
            trigger_id=self.workspace.issue_trigger(user),
            view=view.to_slack(),
            actions=[action(element, found_block, self.workspace.next_ts(), value)],
        )
        return self._interaction(payload, forgery)

    def submit_view(
        self,
        user: str,
        view_id: str,
        values: dict[str, dict[str, Any]] | None = None,
        *,
        forgery: Forgery | None = None,
    ) -> Delivery:
        """Fill in a modal's inputs ({block_id: {action_id: value}}) and press its submit button."""
        view = self._visible_view(user, view_id)
        if view.type != "modal" or self.workspace.modals(user)[-1].id != view_id:
            raise LookupError(f"{view_id} is not the modal on top of {user}'s screen")
        if view.definition.get("submit") is None:
            raise LookupError(f"{view_id} has no submit button")
        self.workspace.set_view_state(view_id, view_state(view, values or {}))
        submitted = self.workspace.view(view_id)
        assert submitted is not None
        payload = interaction_envelope(self.workspace, "view_submission", user, self.team_id)
        payload.update(
            trigger_id=self.workspace.issue_trigger(user),
            view=submitted.to_slack(),
            response_urls=[],
        )
        delivery = self._interaction(payload, forgery)
        if forgery is None:
            problem = apply_submission_reply(self.workspace, delivery, submitted)
            delivery = replace(delivery, error=delivery.error or problem)
        return delivery

    def close_view(
        self, user: str, view_id: str, *, forgery: Forgery | None = None
    ) -> Delivery | None:
        """Press a modal's close button; the app hears of it only with `notify_on_close`."""
        view = self._visible_view(user, view_id)
        self.workspace.close_view(view_id)
        if not view.definition.get("notify_on_close"):
            return None
        payload = interaction_envelope(self.workspace, "view_closed", user, self.team_id)
        payload.update(view=view.to_slack(), is_cleared=False)
        return self._interaction(payload, forgery)

    def send_event(self, event: JSON, *, forgery: Forgery | None = None) -> Delivery:
        """Deliver an Events API event (wrapped in its `event_callback` envelope)."""
        event = {**event, "event_ts": event.get("event_ts") or self.workspace.next_ts()}
        envelope = event_envelope(self.workspace, event, self.team_id)
        body = json.dumps(envelope).encode()
        return self._deliver("event_callback", envelope, body, JSON_TYPE, forgery)

    def open_home(self, user: str, *, forgery: Forgery | None = None) -> Delivery:
        """Open the app's Home tab (`app_home_opened`)."""
        event: JSON = {
            "type": "app_home_opened",
            "user": user,
            "channel": self.workspace.dm_channel(user).id,
            "tab": "home",
        }
        home = self.workspace.home(user)
        if home is not None:
            event["view"] = home.to_slack()
        return self.send_event(event, forgery=forgery)

    def verify_url(
        self,
        challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        *,
        forgery: Forgery | None = None,
    ) -> Delivery:
        """Slack's `url_verification` handshake; `error` is set unless the app echoes it."""
        if self.socket_mode is not None:
            raise ValueError("Slack verifies request URLs only, not Socket Mode apps")
        body = {
            "token": self.workspace.identity.verification_token,
            "challenge": challenge,
            "type": "url_verification",
        }
        delivery = self.send(
            "url_verification", json.dumps(body).encode(), JSON_TYPE, forgery=forgery
        )
        if delivery.status == 200 and challenge not in delivery.text:
            delivery = replace(delivery, error="challenge_not_echoed")
        return delivery

    def retry(self, delivery: Delivery, reason: str | None = None) -> Delivery:
        """Send an event again as Slack retries it: same body, fresh signature, retry headers
        (over Socket Mode: same payload, new envelope, `retry_attempt` and `retry_reason`)."""
        if delivery.kind not in RETRIED_KINDS:
            raise ValueError(f"Slack does not retry {delivery.kind} requests")
        if self.socket_mode is not None:
            payload = json.loads(delivery.body)["payload"]
            retry_num = delivery.retry_num + 1
            return self._over_socket(delivery.kind, payload, retry_num, reason or "timeout")
        return self.send(
            delivery.kind,
            delivery.body,
            delivery.headers["Content-Type"],
            retry_num=delivery.retry_num + 1,
            retry_reason=reason or "http_timeout",
        )

    def _visible_view(self, user: str, view_id: str) -> View:
        view = self.workspace.view(view_id)
        if view is None or view.user != user or view.closed:
            raise LookupError(f"{user} has no open view {view_id}")
        return view
