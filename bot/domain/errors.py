"""Domain errors carry a message meant for the person who caused them.

    GatekeeperError
    ├── InvalidGate              a gate expression that does not parse
    ├── IllegalTransition        a state change the promotion lifecycle does not allow
    └── VoteRefused              a vote that may not be counted
        ├── NotAnApprover
        ├── SelfApprovalForbidden
        ├── AlreadyVoted
        ├── CandidateClosed      not pending (approved, rejected, expired, promoted ...)
        └── CandidateExpired

The error boundary in ``handlers`` shows ``str(error)`` to the person, ephemerally.
"""

from __future__ import annotations


class GatekeeperError(Exception):
    """Base of every error whose message is fit to show a person."""

    #: Set once the person has been told, in the same transaction that recorded the refusal.
    told: bool = False


class InvalidGate(GatekeeperError):
    def __init__(self, expression: str, problem: str) -> None:
        super().__init__(f"gate {expression!r}: {problem}")
        self.expression = expression
        self.problem = problem


class IllegalTransition(GatekeeperError):
    def __init__(self, from_state: str, to_state: str) -> None:
        super().__init__(f"a candidate that is {from_state} cannot become {to_state}")
        self.from_state = from_state
        self.to_state = to_state


class VoteRefused(GatekeeperError):
    """A vote that is not counted; the message says why."""


class NotAnApprover(VoteRefused):
    pass


class SelfApprovalForbidden(VoteRefused):
    pass


class AlreadyVoted(VoteRefused):
    pass


class CandidateClosed(VoteRefused):
    pass


class CandidateExpired(VoteRefused):
    pass
