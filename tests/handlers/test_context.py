"""`Origin.of` reads who and where from any payload, and only IDs shaped as Slack's."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.context import Origin


def test_a_press_and_a_slash_command_name_their_person_channel_and_team() -> None:
    press = {
        "user": {"id": "U0LEAD001", "team_id": "T0GATEKPR"},
        "channel": {"id": "C0ML00001"},
        "team": {"id": "T0GATEKPR"},
    }
    command = {"user_id": "U0LEAD001", "channel_id": "C0ML00001", "team_id": "T0GATEKPR"}
    modal = {"user": {"id": "U0LEAD001", "team_id": "T0GATEKPR"}, "container": {}}

    assert Origin.of(press) == Origin("U0LEAD001", "C0ML00001", "T0GATEKPR")
    assert Origin.of(command) == Origin("U0LEAD001", "C0ML00001", "T0GATEKPR")
    assert Origin.of(modal) == Origin("U0LEAD001", None, "T0GATEKPR")


@pytest.mark.parametrize(
    "body",
    [
        {"team": "0", "user": "U0LEAD001", "channel": ["C0ML00001"]},
        {"team": True, "user": None, "container": 7},
        {"user": {"id": 42, "team_id": {"id": "T0GATEKPR"}}, "channel": {"id": None}},
        {"user_id": ["U0LEAD001"], "channel_id": {}, "team_id": 1.5},
    ],
)
def test_parts_of_the_wrong_type_read_as_absent(body: dict[str, Any]) -> None:
    assert Origin.of(body) == Origin("", None, None)


@pytest.mark.parametrize(
    "odd",
    ["U0LEAD001\x00", "u0lead001", "U0\ud800", "U" * 33, "", " U0LEAD001", "<@U0LEAD001>"],
)
def test_ids_not_shaped_as_slacks_read_as_absent(odd: str) -> None:
    # They are stored (votes, the audit log, the outbox) and sent back to Slack: PostgreSQL
    # keeps no NUL, no database a lone surrogate, and the columns are 32 to 64 wide.
    press = {"user": {"id": odd, "team_id": odd}, "channel": {"id": odd}, "team": {"id": odd}}
    command = {"user_id": odd, "channel_id": odd, "team_id": odd}

    assert Origin.of(press) == Origin("", None, None)
    assert Origin.of(command) == Origin("", None, None)
