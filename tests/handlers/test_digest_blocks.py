"""The digest stays one message inside Block Kit's limits however much waits; reminders say what
waits and where."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.blockkit import MESSAGE_BLOCKS_MAX, message_problems
from bot.domain.promotion import CandidateState
from bot.services.digests import (
    DIGEST_LINES,
    Digest,
    DigestEntry,
    EnvironmentDigest,
    ThreadRef,
    lines_per_environment,
)
from bot.services.reminders import Reminder
from handlers.blocks.digest import digest_message, permalink, reminder_message
from tests.conftest import NOW

WORKSPACE = "https://acme.slack.com/"


def entry(n: int, target: str = "production", **changes: object) -> DigestEntry:
    values: dict[str, object] = {
        "id": n,
        "model": "churn-classifier",
        "version": str(n),
        "source_env": "staging" if target == "production" else "dev",
        "target_env": target,
        "state": CandidateState.PENDING,
        "requester": "U0DS00001",
        "author": None,
        "created_at": NOW - timedelta(hours=n),
        "expires_at": None,
        "approvals": ("U0LEAD001",),
        "approvals_required": 2,
        "waiting_for": ("S0MLLEADS", "U0SRE0001"),
        "blocked_by": (),
        "override_by": frozenset(),
        "thread": ThreadRef("C0ML00001", f"1764230400.{n:06d}"),
    }
    values.update(changes)
    return DigestEntry(**values)  # type: ignore[arg-type]


def digest(*environments: tuple[str, list[DigestEntry]]) -> Digest:
    """The digest ``read_digest`` would make of these candidates: all counted, its choice shown."""
    quotas = lines_per_environment([len(entries) for _, entries in environments])
    return Digest(
        "C0ML00001",
        NOW,
        tuple(
            EnvironmentDigest(
                env,
                sum(e.state is CandidateState.PENDING for e in entries),
                sum(e.state is CandidateState.BLOCKED for e in entries),
                tuple(entries[:quota]),
            )
            for (env, entries), quota in zip(environments, quotas, strict=True)
        ),
    )


def texts(message_blocks: list[dict[str, object]]) -> str:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(str(node["text"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message_blocks)
    return "\n".join(found)


def candidate_lines(message_blocks: list[dict[str, object]]) -> list[str]:
    return [line for line in texts(message_blocks).splitlines() if line.startswith("• ")]


def test_an_empty_digest_says_nothing_waits() -> None:
    message = digest_message(digest(), workspace_url=WORKSPACE)

    assert message_problems(message.payload()) == []
    assert "nothing waits" in message.text
    assert candidate_lines(message.blocks) == []


def test_one_pending_candidate_shows_its_votes_who_it_waits_for_and_a_link_to_its_thread() -> None:
    message = digest_message(digest(("production", [entry(7)])), workspace_url=WORKSPACE)

    assert message_problems(message.payload()) == []
    [line] = candidate_lines(message.blocks)
    assert (
        "<https://acme.slack.com/archives/C0ML00001/p1764230400000007|churn-classifier v7>" in line
    )
    assert "`staging` → `production`" in line
    assert "1 of 2 approvals, waiting for <!subteam^S0MLLEADS>, <@U0SRE0001>" in line
    assert f"<!date^{int((NOW - timedelta(hours=7)).timestamp())}^{{ago}}|" in line
    assert message.text == "Gatekeeper digest: 1 waiting (1 in production)"


def test_without_the_workspace_url_or_a_posted_card_a_line_names_the_candidate_in_plain_text() -> (
    None
):
    unposted = entry(8, thread=None)
    message = digest_message(digest(("production", [entry(7), unposted])), workspace_url=None)

    lines = candidate_lines(message.blocks)
    assert [line.split(" `")[0] for line in lines] == [
        "• *churn-classifier v7* (#7)",
        "• *churn-classifier v8* (#8)",
    ]
    assert "<http" not in texts(message.blocks)


def test_a_blocked_candidate_says_why_and_who_may_override() -> None:
    blocked = entry(
        3,
        state=CandidateState.BLOCKED,
        blocked_by=("accuracy >= champion: 0.88 < 0.91", "freeze: weekend"),
        override_by=frozenset({"S0MLOPS"}),
    )
    message = digest_message(digest(("production", [blocked])), workspace_url=WORKSPACE)

    [line] = candidate_lines(message.blocks)
    assert "⛔ blocked: accuracy &gt;= champion: 0.88 &lt; 0.91 (+1 more)" in line
    assert "<!subteam^S0MLOPS> may override" in line
    assert "0 pending, 1 blocked" not in texts(message.blocks)
    assert "(1 blocked)" in texts(message.blocks)


def test_forty_candidates_are_all_shown_within_limits() -> None:
    entries = [entry(n) for n in range(1, DIGEST_LINES + 1)]
    message = digest_message(digest(("production", entries)), workspace_url=WORKSPACE)

    assert message_problems(message.payload()) == []
    assert len(candidate_lines(message.blocks)) == DIGEST_LINES
    assert "more in" not in texts(message.blocks)


def test_ten_thousand_candidates_fit_one_message_and_the_rest_are_counted_per_environment() -> None:
    staging = [entry(n, "staging") for n in range(1, 9_991)]
    production = [entry(n, "production") for n in range(9_991, 10_001)]
    message = digest_message(
        digest(("staging", staging), ("production", production)), workspace_url=WORKSPACE
    )

    assert message_problems(message.payload()) == []
    assert len(message.blocks) <= MESSAGE_BLOCKS_MAX
    lines = candidate_lines(message.blocks)
    assert len(lines) == DIGEST_LINES
    # Production's ten are not crowded out by staging's thousands.
    assert sum("→ `production`" in line for line in lines) == 10
    assert sum("→ `staging`" in line for line in lines) == DIGEST_LINES - 10
    body = texts(message.blocks)
    assert f"… and {9_990 - (DIGEST_LINES - 10):,} more in `staging`" in body
    assert "more in `production`" not in body
    assert "*10,000* pending · *0* blocked" in body
    assert message.text == "Gatekeeper digest: 10,000 waiting (9,990 in staging, 10 in production)"


def test_counts_are_the_digests_own_not_those_of_the_lines_it_shows() -> None:
    staging = tuple(entry(n, "staging") for n in range(1, DIGEST_LINES - 9))
    blocked = tuple(entry(n, state=CandidateState.BLOCKED) for n in range(41, 51))
    message = digest_message(
        Digest(
            "C0ML00001",
            NOW,
            (
                EnvironmentDigest("staging", 9_970, 20, staging),
                EnvironmentDigest("production", 0, 10, blocked),
            ),
        ),
        workspace_url=WORKSPACE,
    )

    assert message_problems(message.payload()) == []
    assert len(candidate_lines(message.blocks)) == DIGEST_LINES
    body = texts(message.blocks)
    assert "*9,970* pending · *30* blocked" in body
    assert "(9,970 pending, 20 blocked)" in body
    assert f"… and {9_990 - (DIGEST_LINES - 10):,} more in `staging`" in body
    assert "(10 blocked)" in body
    assert "more in `production`" not in body
    assert message.text == "Gatekeeper digest: 10,000 waiting (9,990 in staging, 10 in production)"


def test_huge_names_and_many_environments_still_fit() -> None:
    long_reason = "x" * 5000
    environments = [
        (
            f"env{e}",
            [
                entry(
                    n,
                    f"env{e}",
                    model="m" * 255,
                    state=CandidateState.BLOCKED,
                    blocked_by=(long_reason,),
                    waiting_for=tuple(f"U{n:08d}{k}" for k in range(50)),
                )
                for n in range(30)
            ],
        )
        for e in range(12)
    ]
    message = digest_message(digest(*environments), workspace_url=WORKSPACE)

    assert message_problems(message.payload()) == []
    assert "… and 120 more in 4 other environments" in texts(message.blocks)


def test_permalink_follows_slacks_form() -> None:
    assert (
        permalink("https://acme.slack.com", ThreadRef("C0ML00001", "1764230400.000100"))
        == "https://acme.slack.com/archives/C0ML00001/p1764230400000100"
    )


@pytest.mark.parametrize("url", [WORKSPACE, None])
def test_a_reminder_names_the_candidate_its_votes_and_where_to_decide(url: str | None) -> None:
    message = reminder_message(Reminder("U0SRE0001", 1, entry(7)), workspace_url=url)

    assert message_problems(message.payload()) == []
    assert message.text == (
        "Reminder: churn-classifier v7 (staging → production) waits for your approval"
    )
    body = texts(message.blocks)
    assert "*churn-classifier v7*" in body
    assert "1 of 2 approvals so far" in body
    if url:
        assert re.search(r"<https://acme\.slack\.com/archives/C0ML00001/p\d+\|Open its card>", body)
    else:
        assert "`/promote status 7`" in body
