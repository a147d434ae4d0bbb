"""Pins the Block Kit limit checker, and the text helpers that keep renderers inside the limits."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.blocks import BlockKitLimitExceeded, check, problems
from handlers.blocks.mrkdwn import ELLIPSIS, clip, escape, mention, pack


def section(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(**extra: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": "Go"},
        "action_id": "go",
        **extra,
    }


def message(*blocks: dict[str, Any], text: str | None = "fallback") -> dict[str, Any]:
    return {"text": text, "blocks": list(blocks)}


def modal(*blocks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Title"},
        "blocks": list(blocks),
        **extra,
    }


def plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


CONFIRM = {
    "title": plain("Sure?"),
    "text": {"type": "mrkdwn", "text": "Really"},
    "confirm": plain("Yes"),
    "deny": plain("No"),
}
INPUT = {
    "type": "input",
    "label": plain("Reason"),
    "element": {"type": "plain_text_input", "action_id": "r"},
}

BAD = [
    (message(*[section()] * 51), "/blocks", "51 blocks, more than 50"),
    (message(text=None), "/text", "missing"),
    (message(text="  "), "/text", "must not be empty"),
    (message(text="x" * 4001), "/text", "more than 4000"),
    ({"text": "t", "blocks": "nope"}, "/blocks", "must be a list"),
    (message(section("x" * 3001)), "/blocks/0/text/text", "more than 3000"),
    (message(section("")), "/blocks/0/text/text", "must not be empty"),
    (message({"type": "section"}), "/blocks/0", "needs text or fields"),
    (message(section(fields=[{"type": "mrkdwn", "text": "f"}] * 11)), "/blocks/0/fields", "11 fields"),
    (message(section(fields=[{"type": "mrkdwn", "text": "f" * 2001}])), "/blocks/0/fields/0/text", "more than 2000"),
    (message({"type": "header", "text": plain("h" * 151)}), "/blocks/0/text/text", "more than 150"),
    (message({"type": "header", "text": {"type": "mrkdwn", "text": "h"}}), "/blocks/0/text/type", "must be plain_text"),
    (message(section(block_id="b" * 256)), "/blocks/0/block_id", "more than 255"),
    (message(section(block_id="a"), section(block_id="a")), "/blocks/1/block_id", "duplicate block_id 'a'"),
    (message({"type": "actions", "elements": [button(text=plain("t" * 76))]}), "/blocks/0/elements/0/text/text", "more than 75"),
    (message({"type": "actions", "elements": [button(value="v" * 2001)]}), "/blocks/0/elements/0/value", "more than 2000"),
    (message({"type": "actions", "elements": [button(action_id="a" * 256)]}), "/blocks/0/elements/0/action_id", "more than 255"),
    (message({"type": "actions", "elements": [button(), button()]}), "/blocks/0/elements/1/action_id", "duplicate action_id 'go'"),
    (message({"type": "actions", "elements": [button(style="loud")]}), "/blocks/0/elements/0/style", "primary or danger"),
    (message({"type": "actions", "elements": []}), "/blocks/0/elements", "non-empty"),
    (message({"type": "actions", "elements": [button(confirm={**CONFIRM, "text": {"type": "mrkdwn", "text": "t" * 301}})]}), "/blocks/0/elements/0/confirm/text/text", "more than 300"),
    (message({"type": "actions", "elements": [button(confirm={**CONFIRM, "confirm": plain("y" * 31)})]}), "/blocks/0/elements/0/confirm/confirm/text", "more than 30"),
    (message({"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}), "/blocks/0/elements", "11 elements"),
    (message(section(accessory=button(value="v" * 2001))), "/blocks/0/accessory/value", "more than 2000"),
    (modal(*[section()] * 101), "/blocks", "101 blocks, more than 100"),
    (modal(section(), title=plain("t" * 25)), "/title/text", "more than 24"),
    ({"type": "modal", "blocks": [section()]}, "/title", "missing"),
    (modal(section(), private_metadata="m" * 3001), "/private_metadata", "more than 3000"),
    (modal(section(), callback_id="c" * 256), "/callback_id", "more than 255"),
    (modal(INPUT), "/submit", "needs a submit button"),
    (modal({**INPUT, "element": {"type": "plain_text_input", "action_id": "r", "max_length": 3001}}, submit=plain("Go")), "/blocks/0/element/max_length", "from 0 to 3000"),
    (modal({**INPUT, "label": plain("l" * 2001)}, submit=plain("Go")), "/blocks/0/label/text", "more than 2000"),
    ({"type": "home", "blocks": [section()], "close": plain("x")}, "/close", "no title, submit or close"),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "pointer", "message_part"), BAD)
def test_each_broken_limit_is_found_where_it_is(
    payload: dict[str, Any], pointer: str, message_part: str
) -> None:
    found = problems(payload)
    assert any(p.pointer == pointer and message_part in p.message for p in found), found
    with pytest.raises(BlockKitLimitExceeded, match=re.escape(pointer)):
        check(payload)


@pytest.mark.parametrize(
    "payload",
    [
        message(*[section()] * 50),
        message(section("x" * 3000, fields=[{"type": "mrkdwn", "text": "f" * 2000}] * 10)),
        modal(*[section()] * 99, INPUT, submit=plain("Go"), private_metadata="m" * 3000),
        {"type": "home", "blocks": [section()] * 100},
        message(
            {
                "type": "actions",
                "elements": [button(text=plain("t" * 75), value="v" * 2000, confirm=CONFIRM)],
            }
        ),
    ],
)
def test_payloads_at_the_limits_pass(payload: dict[str, Any]) -> None:
    assert problems(payload) == []
    check(payload)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a >= b & c < d", "a &gt;= b &amp; c &lt; d"),
        ("ping <!channel> and <!here>", "ping &lt;!channel&gt; and &lt;!here&gt;"),
        ("only <!subteam^S0MLLEADS>, <@U0SRE0001> or <@W0X00001> in <#C0ML00001>", "only <!subteam^S0MLLEADS>, <@U0SRE0001> or <@W0X00001> in <#C0ML00001>"),
        ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;"),
        ("&amp;", "&amp;amp;"),
    ],
)  # fmt: skip
def test_escape_keeps_only_mentions(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


@pytest.mark.parametrize(
    ("slack_id", "rendered"),
    [("U0LEAD001", "<@U0LEAD001>"), ("W0LEAD001", "<@W0LEAD001>"), ("S0MLLEADS", "<!subteam^S0MLLEADS>"), ("<!channel>", "&lt;!channel&gt;")],
)  # fmt: skip
def test_mentions(slack_id: str, rendered: str) -> None:
    assert mention(slack_id) == rendered


_ENTITY_OR_TOKEN = re.compile(r"&[a-z]*$|<[^>]*$")


@given(st.text(alphabet="ab&<>@U1 ", max_size=200), st.integers(min_value=1, max_value=120))
def test_clip_fits_and_never_splits_an_escape_or_a_mention(raw: str, limit: int) -> None:
    text = escape(raw)
    clipped = clip(text, limit)
    assert len(clipped) <= limit
    if clipped != text:
        assert clipped.endswith(ELLIPSIS)
        assert not _ENTITY_OR_TOKEN.search(clipped[: -len(ELLIPSIS)])


@given(
    st.lists(st.text(alphabet="abc &<>", min_size=0, max_size=900), max_size=60),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=60, max_value=3000),
    st.one_of(st.none(), st.integers(min_value=0, max_value=60)),
)
def test_pack_stays_within_blocks_and_counts_what_it_hides(
    lines: list[str], max_blocks: int, limit: int, max_lines: int | None
) -> None:
    texts = pack(lines, heading="*Head*", max_blocks=max_blocks, limit=limit, max_lines=max_lines)
    assert 0 < len(texts) <= max_blocks
    assert all(len(text) <= limit for text in texts)
    joined = "\n".join(texts).split("\n")
    assert joined[0] == "*Head*" or joined[0].startswith("*Head*")
    more = re.fullmatch(rf"{ELLIPSIS} and (\d+) more", joined[-1])
    hidden = int(more.group(1)) if more else 0
    shown = len(joined) - 1 - (1 if more else 0)
    assert shown + hidden == len(lines)
    if max_lines is not None:
        assert shown <= max_lines
