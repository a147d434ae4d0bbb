"""The Notifier port, for Slack: renders cards and lines, and queues them in the outbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from bot.domain.policy import Policy
from bot.domain.promotion import CandidateState, PromotionStep
from bot.services.digests import Digest
from bot.services.promotions import Progress
from bot.services.reminders import Reminder
from bot.services.views import summarize
from bot.store.repositories import UnitOfWork
from handlers.blocks import (
    CONFIRM_TARGETS,
    Message,
    candidate_card,
    failed,
    promoted,
    rolled_back,
    step_message,
)
from handlers.blocks.digest import digest_message, reminder_message


class SlackNotifier:
    def __init__(
        self,
        channel_for: Callable[[str], str],
        policy_for: Callable[[str], Policy],
        confirm_targets: frozenset[str] = CONFIRM_TARGETS,
    ) -> None:
        self._channel_for = channel_for
        self._policy_for = policy_for
        self._confirm_targets = confirm_targets

    def card_changed(self, uow: UnitOfWork, candidate_id: int, now: datetime) -> None:
        row = uow.candidates.get(candidate_id)
        summary = summarize(row, uow.votes.for_candidate(row.id), self._policy_for(row.target_env))
        card = candidate_card(summary, confirm_targets=self._confirm_targets)
        channel = self._channel_for(row.model)
        key = _thread_key(candidate_id)
        # The first call posts the card; every later one (even before the post is delivered,
        # since the outbox keeps the order) updates it to the state at that moment.
        posted = uow.outbox.enqueue(
            "chat.postMessage",
            {**card.payload(), "channel": channel, "_remember_as": "card"},
            ordering_key=key,
            now=now,
            candidate_id=candidate_id,
            dedupe_key=f"card:{candidate_id}",
        )
        if posted is None:
            uow.outbox.enqueue(
                "chat.update",
                {**card.payload(), "channel": channel, "_update_of": "card"},
                ordering_key=key,
                now=now,
                candidate_id=candidate_id,
            )

    def in_thread(self, uow: UnitOfWork, candidate_id: int, text: str, now: datetime) -> None:
        row = uow.candidates.get(candidate_id)
        uow.outbox.enqueue(
            "chat.postMessage",
            {"channel": self._channel_for(row.model), "text": text, "_thread_of": "card"},
            ordering_key=_thread_key(candidate_id),
            now=now,
            candidate_id=candidate_id,
        )

    def progress(
        self, uow: UnitOfWork, candidate_id: int, progress: Progress, now: datetime
    ) -> None:
        line = step_message(progress.step, progress.status, progress.duration_s, progress.detail)
        self._thread_line(uow, candidate_id, line, now)

    def outcome(
        self,
        uow: UnitOfWork,
        candidate_id: int,
        outcome: CandidateState,
        actor: str,
        error: str | None,
        step: PromotionStep | None,
        duration_s: float | None,
        now: datetime,
    ) -> None:
        row = uow.candidates.get(candidate_id)
        summary = summarize(row, uow.votes.for_candidate(row.id), self._policy_for(row.target_env))
        # The card named the champion when the candidate was proposed; another promotion may
        # have replaced it since. The last word names the champion as it is now.
        recorded = uow.champions.current(row.model, row.target_env)
        if recorded is not None and outcome is not CandidateState.PROMOTED:
            summary = replace(summary, champion_version=recorded.version)
        elif recorded is not None and recorded.promotion_id is not None:
            # What the cut-over found under the alias, set by Gatekeeper or by hand.
            cut_over = uow.promotions.finished_steps(recorded.promotion_id)
            found = cut_over.get(PromotionStep.CUT_OVER, {}).get("previous")
            summary = replace(summary, champion_version=found or recorded.previous_version)
        if outcome is CandidateState.PROMOTED:
            line = promoted(summary, duration_s)
        elif outcome is CandidateState.FAILED:
            line = failed(summary, step or PromotionStep.VERIFY, error or "unknown error")
        else:
            line = rolled_back(summary, by=None if actor == "gatekeeper" else actor)
        self._thread_line(uow, candidate_id, line, now)

    def _thread_line(
        self, uow: UnitOfWork, candidate_id: int, line: Message, now: datetime
    ) -> None:
        row = uow.candidates.get(candidate_id)
        uow.outbox.enqueue(
            "chat.postMessage",
            {**line.payload(), "channel": self._channel_for(row.model), "_thread_of": "card"},
            ordering_key=_thread_key(candidate_id),
            now=now,
            candidate_id=candidate_id,
        )

    def privately(self, uow: UnitOfWork, channel: str, user: str, text: str, now: datetime) -> None:
        uow.outbox.enqueue(
            "chat.postEphemeral",
            {"channel": channel, "user": user, "text": text},
            ordering_key=f"ephemeral:{user}",
            now=now,
        )

    def digest(
        self, uow: UnitOfWork, digest: Digest, now: datetime, *, key: str, workspace_url: str | None
    ) -> None:
        message = digest_message(digest, workspace_url=workspace_url)
        uow.outbox.enqueue(
            "chat.postMessage",
            {**message.payload(), "channel": digest.channel},
            ordering_key=f"digest:{digest.channel}",
            now=now,
            dedupe_key=key,
        )

    def reminder(
        self, uow: UnitOfWork, reminder: Reminder, now: datetime, *, workspace_url: str | None
    ) -> bool:
        message = reminder_message(reminder, workspace_url=workspace_url)
        # A user ID as the channel: Slack opens (or reuses) the app's direct message with them.
        queued = uow.outbox.enqueue(
            "chat.postMessage",
            {**message.payload(), "channel": reminder.user},
            ordering_key=f"dm:{reminder.user}",
            now=now,
            candidate_id=reminder.candidate.id,
            dedupe_key=reminder.key,
        )
        return queued is not None


def _thread_key(candidate_id: int) -> str:
    return f"candidate:{candidate_id}"
