"""What a press or a submission means: action and callback IDs, and the typed data a button carries.

A button's ``value`` comes back from Slack as text anyone with a workspace client can alter, so
``ButtonValue.decode`` trusts nothing in it and says in plain words what was wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from bot.domain.errors import GatekeeperError
from bot.domain.promotion import CandidateState

#: Slack's limit on a button's value; private_metadata (3000) is larger, so this bounds both.
MAX_VALUE = 2000
#: Candidate ids are INTEGER (32 bits on PostgreSQL): a larger one names no candidate, and
#: asking the database for it fails instead of finding none.
_MAX_ID = 2**31 - 1


class Action(StrEnum):
    """``action_id`` of every interactive element and ``callback_id`` of every view."""

    APPROVE = "candidate.approve"
    REJECT = "candidate.reject"
    DETAILS = "candidate.details"
    ROLLBACK = "candidate.rollback"
    #: The reason field inside the reject modal.
    REJECT_REASON = "candidate.reject.reason"
    #: Views: the modal's submission arrives as a ``view_submission`` with this callback_id.
    REJECT_MODAL = "candidate.reject_modal"
    DETAILS_MODAL = "candidate.details_modal"


class BlockId(StrEnum):
    """``block_id`` of the blocks whose state or presses a listener reads back."""

    CARD_ACTIONS = "candidate.actions"
    REJECT_REASON = "candidate.reject.reason"


class InvalidButtonValue(GatekeeperError, ValueError):
    """A button value or view metadata that Gatekeeper did not write, or no longer understands."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            "This button's data is damaged or out of date "
            f"({problem}); use /promote status to see the candidate as it is now."
        )
        self.problem = problem


@dataclass(frozen=True)
class ButtonValue:
    """Which candidate a press is about, and the state the pressed card showed.

    The state lets a listener tell a press on a stale card ("approve" on a card still showing
    pending after the candidate was promoted) from a press on a current one.
    """

    VERSION: ClassVar[int] = 1

    candidate_id: int
    state: CandidateState

    def __post_init__(self) -> None:
        if isinstance(self.candidate_id, bool) or not 0 < self.candidate_id <= _MAX_ID:
            raise InvalidButtonValue(
                f"candidate id {self.candidate_id!r} is not a positive id up to {_MAX_ID}"
            )

    def encode(self) -> str:
        return json.dumps(
            {"v": self.VERSION, "id": self.candidate_id, "s": self.state.value},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, value: object) -> ButtonValue:
        """Parse what ``encode`` wrote; anything else raises ``InvalidButtonValue``."""
        if not isinstance(value, str):
            raise InvalidButtonValue("no value")
        if len(value) > MAX_VALUE:
            raise InvalidButtonValue(f"{len(value)} characters, more than a button holds")
        try:
            data: Any = json.loads(value)
        except (ValueError, RecursionError):
            raise InvalidButtonValue("not JSON") from None
        if not isinstance(data, dict):
            raise InvalidButtonValue("not a JSON object")
        version = data.get("v")
        if type(version) is not int or version != cls.VERSION:
            seen = "no format version" if version is None else f"format version {version!s:.20}"
            raise InvalidButtonValue(f"{seen}, expected {cls.VERSION}")
        if set(data) != {"v", "id", "s"}:
            raise InvalidButtonValue("unexpected or missing fields")
        candidate_id = data["id"]
        if type(candidate_id) is not int:
            raise InvalidButtonValue("the candidate id is not a whole number")
        try:
            state = CandidateState(data["s"])
        except ValueError:
            raise InvalidButtonValue(f"unknown state {str(data['s'])[:40]!r}") from None
        return cls(candidate_id, state)
