"""Pins that a button's value round-trips, and that a tampered one is a clear error, never a crash."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.errors import GatekeeperError
from bot.domain.promotion import CandidateState
from handlers.blocks import Action, ButtonValue, InvalidButtonValue


@pytest.mark.parametrize("state", list(CandidateState))
@pytest.mark.parametrize("candidate_id", [1, 42, 2**31 - 1])
def test_round_trip(candidate_id: int, state: CandidateState) -> None:
    value = ButtonValue(candidate_id, state)
    encoded = value.encode()
    assert len(encoded) <= 2000
    assert ButtonValue.decode(encoded) == value


def test_encoding_is_compact_and_versioned() -> None:
    assert ButtonValue(42, CandidateState.PENDING).encode() == '{"v":1,"id":42,"s":"pending"}'


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "no value"),
        (b'{"v":1,"id":1,"s":"pending"}', "no value"),
        ("", "not JSON"),
        ("approve:42", "not JSON"),
        ('{"v":1,"id":42,"s":"pending"', "not JSON"),
        ("[" * 1500 + "]" * 1500, "more than a button holds"),
        ("[" * 999 + "]" * 999, ""),  # too deep for the parser, or a list: refused either way
        ("[" * 10 + "]" * 10, "not a JSON object"),
        ("x" * 10_000, "more than a button holds"),
        ("[1, 42]", "not a JSON object"),
        ('"42"', "not a JSON object"),
        ('{"v":2,"id":42,"s":"pending"}', "format version 2, expected 1"),
        ('{"id":42,"s":"pending"}', "no format version, expected 1"),
        ('{"v":true,"id":42,"s":"pending"}', "format version"),
        ('{"v":1.0,"id":42,"s":"pending"}', "format version"),
        ('{"v":1,"id":42}', "unexpected or missing fields"),
        ('{"v":1,"id":42,"s":"pending","admin":true}', "unexpected or missing fields"),
        ('{"v":1,"id":-1,"s":"pending"}', "not a positive id"),
        ('{"v":1,"id":0,"s":"pending"}', "not a positive id"),
        ('{"v":1,"id":' + "9" * 30 + ',"s":"pending"}', "not a positive id"),
        # Past the id column's 32 bits (PostgreSQL fails the query rather than find nothing).
        ('{"v":1,"id":2147483648,"s":"pending"}', "not a positive id up to 2147483647"),
        ('{"v":1,"id":"42","s":"pending"}', "not a whole number"),
        ('{"v":1,"id":4.2,"s":"pending"}', "not a whole number"),
        ('{"v":1,"id":true,"s":"pending"}', "not a whole number"),
        ('{"v":1,"id":NaN,"s":"pending"}', "not a whole number"),
        ('{"v":1,"id":42,"s":"promoted!"}', "unknown state 'promoted!'"),
        ('{"v":1,"id":42,"s":["pending"]}', "unknown state"),
        ('{"v":1,"id":42,"s":null}', "unknown state"),
    ],
)
def test_malformed_values_raise_a_clear_error(value: object, problem: str) -> None:
    with pytest.raises(InvalidButtonValue) as raised:
        ButtonValue.decode(value)
    assert problem in raised.value.problem
    message = str(raised.value)
    assert "/promote status" in message
    assert len(message) < 300
    # The one error boundary shows GatekeeperErrors to the person; callers may also catch ValueError.
    assert isinstance(raised.value, GatekeeperError)
    assert isinstance(raised.value, ValueError)


@given(st.text(max_size=3000))
def test_any_text_decodes_or_raises_the_clear_error(value: str) -> None:
    try:
        decoded = ButtonValue.decode(value)
    except InvalidButtonValue:
        return
    assert decoded.candidate_id > 0


@given(
    st.dictionaries(
        st.sampled_from(["v", "id", "s", "x"]),
        st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.none(), st.floats()),
    )
)
def test_any_json_object_decodes_or_raises_the_clear_error(data: dict[str, object]) -> None:
    try:
        decoded = ButtonValue.decode(json.dumps(data))
    except InvalidButtonValue:
        return
    assert (data["id"], data["s"]) == (decoded.candidate_id, decoded.state)


def test_a_value_cannot_be_built_for_no_candidate() -> None:
    with pytest.raises(InvalidButtonValue):
        ButtonValue(0, CandidateState.PENDING)


def test_action_ids_are_distinct_and_short() -> None:
    assert len({a.value for a in Action}) == len(Action)
    assert all(len(a.value) <= 255 for a in Action)
