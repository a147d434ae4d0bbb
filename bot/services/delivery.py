"""The outbox's way out: due messages sent to Slack in order per key, once each, never dropped.

A row is claimed and its arguments completed in one short transaction, sent with no
transaction open (Slack may be slow; SQLite must not stay locked meanwhile), and its outcome
recorded in another. Slack's answer decides what happens to a row that was not accepted:

    rate limited (429)      kept; tried again after Retry-After
    transient (5xx, ...)    kept; tried again after an exponential backoff
    permanent (no channel)  kept with last_error and reported; tried again in an hour, after a
                            person had time to fix the channel or the app's membership
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.client import HTTPException
from types import TracebackType
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse
from sqlalchemy import select, update
from sqlalchemy.exc import InterfaceError, OperationalError

from bot.metrics import PERMANENT_FAILURE_MARK, SLACK_API_CALLS, SLACK_API_RETRIES
from bot.store.models import OutboxRow
from bot.store.repositories import UnitOfWork

logger = logging.getLogger(__name__)

METHODS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral", "views.publish"})

#: Slack's errors that say "not now" rather than "never".
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)

FIRST_BACKOFF = timedelta(seconds=2)
MAX_BACKOFF = timedelta(minutes=5)
#: How long a reply waits for its candidate's card to be posted before looking again.
CARD_WAIT = timedelta(seconds=5)
#: How long a message Slack refuses waits before it is tried again.
PERMANENT_BACKOFF = timedelta(hours=1)
#: How long a claimed row is left to its sender; longer than any send, retries included.
CLAIM = timedelta(minutes=5)
#: How long Slack's answer is held, recording it again and again, while the database is away.
#: The row stays claimed meanwhile, so nothing sends it twice; past this the claim runs out.
RECORD_PATIENCE = timedelta(minutes=4)

_REFERENCES = {"_thread_of": "thread_ts", "_update_of": "ts"}
_PRIVATE_KEYS = frozenset({"_remember_as", *_REFERENCES})
_SLACK_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class Undelivered:
    """A message that stays in the outbox for now, and why."""

    outbox_id: int
    method: str
    reason: str
    retry_at: datetime


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery pass did: messages Slack accepted, ones to try again, ones it refused."""

    sent: int = 0
    retried: tuple[Undelivered, ...] = ()
    failed: tuple[Undelivered, ...] = ()

    @property
    def attempted(self) -> int:
        return self.sent + len(self.retried) + len(self.failed)


@dataclass(frozen=True)
class _Message:
    """An outbox row as it is sent: the Web API arguments complete, the private keys gone."""

    outbox_id: int
    method: str
    args: dict[str, Any]
    candidate_id: int | None
    remember_as: str | None
    attempts: int


@dataclass(frozen=True)
class _Setback:
    reason: str
    after: timedelta
    permanent: bool = False
    rate_limited: bool = False

    @property
    def stored(self) -> str:
        """The row's last_error: a refusal for good is marked, so /metrics can count them."""
        return f"{PERMANENT_FAILURE_MARK}{self.reason}" if self.permanent else self.reason


class _Progress:
    def __init__(self) -> None:
        self.sent = 0
        self.retried: list[Undelivered] = []
        self.failed: list[Undelivered] = []

    @property
    def attempted(self) -> int:
        return self.sent + len(self.retried) + len(self.failed)

    def note(self, outbox_id: int, method: str, setback: _Setback, now: datetime) -> None:
        undelivered = Undelivered(outbox_id, method, setback.reason, now + setback.after)
        if setback.permanent:
            logger.error(
                "outbox message %s (%s) cannot be delivered: %s; kept, next try at %s",
                outbox_id,
                method,
                setback.reason,
                undelivered.retry_at.isoformat(),
            )
            self.failed.append(undelivered)
        else:
            logger.info(
                "outbox message %s (%s) not delivered: %s; next try at %s",
                outbox_id,
                method,
                setback.reason,
                undelivered.retry_at.isoformat(),
            )
            self.retried.append(undelivered)

    def report(self) -> DeliveryReport:
        return DeliveryReport(self.sent, tuple(self.retried), tuple(self.failed))


def deliver_due(
    unit_of_work: Callable[[], UnitOfWork],
    client: WebClient,
    now: datetime,
    limit: int = 50,
    *,
    clock: Callable[[], datetime] | None = None,
) -> DeliveryReport:
    """Send up to ``limit`` due outbox messages to Slack, in order per key; keep what fails.

    ``clock`` dates each answer as it comes (else all are dated ``now``): a pass can take longer
    than the Retry-After it is told, and the wait counts from Slack's answer, not the pass's start.
    """
    progress = _Progress()
    while progress.attempted < limit:
        batch = _claim_due(unit_of_work, now, limit - progress.attempted, progress)
        if not batch:
            break
        # Slack limits each method separately; once it says wait, the rest of the batch waits.
        waiting: dict[str, _Setback] = {}
        for message in batch:
            outcome = waiting.get(message.method) or _send(client, message)
            answered = now if clock is None else max(clock(), now)
            if isinstance(outcome, _Setback):
                if outcome.rate_limited:
                    waiting.setdefault(message.method, outcome)
                if not outcome.permanent:
                    SLACK_API_RETRIES.labels(message.method).inc()
                _until_recorded(_record_setback, unit_of_work, message.outbox_id, outcome, answered)
                progress.note(message.outbox_id, message.method, outcome, answered)
            else:
                _until_recorded(_record_sent, unit_of_work, message, outcome, answered)
                progress.sent += 1
    return progress.report()


def _claim_due(
    unit_of_work: Callable[[], UnitOfWork], now: datetime, limit: int, progress: _Progress
) -> list[_Message]:
    """Claim the due head of each ordering key, so no other process sends it meanwhile."""
    claimed: list[_Message] = []
    with unit_of_work() as uow:
        for row in uow.outbox.due(now, limit):
            taken = uow.session.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id == row.id,
                    OutboxRow.delivered_at.is_(None),
                    OutboxRow.deliver_after <= now,
                )
                .values(deliver_after=now + CLAIM)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another process claimed it first
            prepared = _prepare(uow, row)
            if isinstance(prepared, _Setback):
                uow.outbox.retry_later(row, now, prepared.after, prepared.stored)
                progress.note(row.id, row.method, prepared, now)
            else:
                claimed.append(prepared)
        uow.commit()
    return claimed


def _prepare(uow: UnitOfWork, row: OutboxRow) -> _Message | _Setback:
    """The Web API arguments of a row, with the card it refers to filled in."""
    if row.method not in METHODS:
        return _malformed(f"Gatekeeper does not send {row.method}")
    unknown = sorted(k for k in row.payload if k.startswith("_") and k not in _PRIVATE_KEYS)
    if unknown:
        return _malformed(f"unknown outbox key {unknown[0]}")
    args = {k: v for k, v in row.payload.items() if not k.startswith("_")}
    for key, argument in _REFERENCES.items():
        kind = row.payload.get(key)
        if kind is None:
            continue
        if row.candidate_id is None:
            return _malformed(f"{key} needs a candidate")
        posted = uow.slack_messages.find(row.candidate_id, str(kind))
        if posted is None:
            return _Setback(f"waiting for the candidate's {kind} to be posted", CARD_WAIT)
        args["channel"], args[argument] = posted.channel, posted.ts
    remember_as = row.payload.get("_remember_as")
    if remember_as is not None and (row.candidate_id is None or row.method != "chat.postMessage"):
        return _malformed("_remember_as needs a candidate and chat.postMessage")
    return _Message(
        row.id,
        row.method,
        args,
        row.candidate_id,
        None if remember_as is None else str(remember_as),
        row.attempts,
    )


def _malformed(reason: str) -> _Setback:
    return _Setback(reason, PERMANENT_BACKOFF, permanent=True)


def _send(client: WebClient, message: _Message) -> dict[str, Any] | _Setback:
    """Slack's answer to one message: its reply when accepted, else what to do about it."""
    try:
        response = client.api_call(message.method, json=message.args)
    except SlackApiError as error:
        setback = _judge(error.response, message.attempts)
        SLACK_API_CALLS.labels(message.method, _outcome(setback)).inc()
        return setback
    except (SlackClientError, OSError, HTTPException) as error:
        SLACK_API_CALLS.labels(message.method, "unreachable").inc()
        return _Setback(
            f"Slack could not be reached ({type(error).__name__})", _backoff(message.attempts)
        )
    SLACK_API_CALLS.labels(message.method, "ok").inc()
    return response.data if isinstance(response.data, dict) else {}


def _outcome(setback: _Setback) -> str:
    if setback.rate_limited:
        return "rate_limited"
    return "error" if setback.permanent else "unavailable"


def _judge(response: SlackResponse, attempts: int) -> _Setback:
    """Whether Slack's refusal means later (and when) or never."""
    status = response.status_code
    error = response.data.get("error") if isinstance(response.data, dict) else None
    # A proxy's HTML page becomes a long "error" in slack_sdk; the status says more.
    code = error if isinstance(error, str) and _SLACK_ERROR_CODE.fullmatch(error) else None
    if status == 429 or code == "ratelimited":
        seconds = _retry_after(response.headers)
        if seconds is None:
            return _Setback("rate limited by Slack", _backoff(attempts), rate_limited=True)
        return _Setback(
            f"rate limited by Slack for {seconds} s",
            timedelta(seconds=seconds),
            rate_limited=True,
        )
    if status >= 500 or status == 408 or code in TRANSIENT_ERRORS:
        return _Setback(f"Slack answered {code or f'HTTP {status}'}", _backoff(attempts))
    return _Setback(f"Slack answered {code or f'HTTP {status}'}", PERMANENT_BACKOFF, permanent=True)


def _retry_after(headers: dict[str, Any]) -> int | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            first = value[0] if isinstance(value, list) and value else value
            try:
                return max(int(str(first).strip()), 1)
            except ValueError:
                return None
    return None


def _backoff(attempts: int) -> timedelta:
    return min(FIRST_BACKOFF * (1 << min(attempts, 16)), MAX_BACKOFF)


def _until_recorded(record: Callable[..., None], *args: Any) -> None:
    """Record what Slack answered, waiting for a database that went away meanwhile.

    Giving up would leave the row claimed though Slack has the message: its key would wait out
    the claim, and the message would then be sent a second time.
    """
    deadline = time.monotonic() + RECORD_PATIENCE.total_seconds()
    pause = 0.1
    while True:
        try:
            record(*args)
            return
        except (OperationalError, InterfaceError) as error:
            if time.monotonic() >= deadline:
                raise
            logger.warning(
                "recording what Slack answered failed (%s); trying again in %.1f s",
                type(error).__name__,
                pause,
            )
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def _record_sent(
    unit_of_work: Callable[[], UnitOfWork],
    message: _Message,
    reply: dict[str, Any],
    now: datetime,
) -> None:
    with unit_of_work() as uow:
        row = uow.session.get(OutboxRow, message.outbox_id)
        assert row is not None, "outbox rows are never deleted"
        uow.outbox.delivered(row, now)
        if message.remember_as is not None and message.candidate_id is not None:
            _remember(uow, message.candidate_id, message.remember_as, reply)
        uow.commit()


def _remember(uow: UnitOfWork, candidate_id: int, kind: str, reply: dict[str, Any]) -> None:
    channel, ts = reply.get("channel"), reply.get("ts")
    if not isinstance(channel, str) or not isinstance(ts, str):
        logger.warning(
            "Slack's reply names no channel and ts; candidate %s's %s is not remembered",
            candidate_id,
            kind,
        )
        return
    earlier = uow.slack_messages.find(candidate_id, kind)
    if earlier is None:
        uow.slack_messages.remember(candidate_id, kind, channel, ts)
    else:
        # Posted again (the first was deleted, say): what follows belongs to the newest.
        earlier.channel, earlier.ts = channel, ts
        uow.session.flush()


def _record_setback(
    unit_of_work: Callable[[], UnitOfWork], outbox_id: int, setback: _Setback, now: datetime
) -> None:
    with unit_of_work() as uow:
        row = uow.session.get(OutboxRow, outbox_id)
        assert row is not None, "outbox rows are never deleted"
        uow.outbox.retry_later(row, now, setback.after, setback.stored)
        uow.commit()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def deliver_candidate_now(
    unit_of_work: Callable[[], UnitOfWork],
    client: WebClient,
    candidate_id: int,
    *,
    within: float,
    clock: Callable[[], datetime] = _utc_now,
) -> str | None:
    """Deliver what is due until the candidate's messages are sent, for at most ``within`` s.

    For a process that is not the delivery loop (``gatekeeper request``): None once every one
    of the candidate's messages is sent, else why one still waits. What is not sent stays in the
    outbox for the running server or worker; Slack being away never makes the caller hang.
    """
    deadline = time.monotonic() + within
    while True:
        with unit_of_work().reading() as uow:
            waiting = uow.session.execute(
                select(OutboxRow.deliver_after, OutboxRow.last_error).where(
                    OutboxRow.candidate_id == candidate_id, OutboxRow.delivered_at.is_(None)
                )
            ).all()
        if not waiting:
            return None
        now = clock()
        set_back = [error for after, error in waiting if after > now and error is not None]
        if len(set_back) == len(waiting):
            return set_back[0]  # each was tried and put off: no point waiting here for it
        if time.monotonic() >= deadline:
            return f"not delivered within {within:g} s"
        if deliver_due(unit_of_work, client, now, limit=1, clock=clock).attempted == 0:
            time.sleep(0.1)  # claimed by another process, or waiting for its card: look again


class DeliveryLoop:
    """Delivers the outbox on its own thread every ``interval`` seconds, or at once when woken."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        client: WebClient,
        *,
        interval: float = 0.2,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._client = client
        self._interval = interval
        self._clock = clock
        self._woken = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slack-delivery", daemon=True)

    def start(self) -> DeliveryLoop:
        """Start delivering in the background."""
        self._thread.start()
        return self

    def wake(self) -> None:
        """Deliver now rather than at the next tick: something was just enqueued."""
        self._woken.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the pass under way, then stop."""
        self._stopped.set()
        self._woken.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> DeliveryLoop:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stopped.is_set():
            # Cleared before the pass: a wake() during it makes the next pass start at once.
            self._woken.clear()
            try:
                deliver_due(self._unit_of_work, self._client, self._clock(), clock=self._clock)
            except Exception:
                # The database may be away for a moment; the messages wait in it, so go on.
                logger.exception("delivering the outbox failed; trying again shortly")
            self._woken.wait(self._interval)
