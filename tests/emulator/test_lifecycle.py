"""Starting, stopping, watching, and the Slack references the emulator is built from."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.emulator import Change, SlackEmulator
from bot.emulator.facts import MISSING_ARGUMENT_ERRORS
from bot.emulator.methods import HANDLERS
from bot.emulator.reference import load_references

from .conftest import CHANNEL

SHARED_REFERENCES = Path(__file__).resolve().parents[3] / "shared" / "slack-ref" / "methods"
SHIPPED_REFERENCES = Path(__file__).resolve().parents[2] / "bot" / "emulator" / "slack_ref"


def test_starts_in_well_under_a_second_and_leaves_nothing_behind() -> None:
    threads_before = set(threading.enumerate())
    started = time.perf_counter()
    with SlackEmulator() as slack:
        startup = time.perf_counter() - started
        port = int(slack.api_url.rsplit(":", 1)[1].split("/")[0])
        assert WebClient(token="xoxb-test", base_url=slack.api_url).auth_test()["ok"]
    assert startup < 1.0
    assert set(threading.enumerate()) == threads_before
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass  # nobody listens any more
    with socket.socket() as again:
        # Free for the next server (REUSEADDR, as servers bind, steps over closed connections).
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
        again.listen()


def test_two_emulators_run_side_by_side() -> None:
    with SlackEmulator() as one, SlackEmulator(team_id="T0OTHER01") as two:
        assert one.api_url != two.api_url
        assert (
            WebClient(token="xoxb-test", base_url=two.api_url).auth_test()["team_id"] == "T0OTHER01"
        )


def test_answers_exactly_the_methods_it_has_references_for() -> None:
    assert set(HANDLERS) == set(load_references())


def test_every_missing_argument_code_is_one_the_method_may_answer() -> None:
    references = load_references()
    for method, codes in MISSING_ARGUMENT_ERRORS.items():
        for argument, code in codes.items():
            assert argument in references[method].required, (method, argument)
            assert references[method].missing_argument_error(argument) == code


@pytest.mark.skipif(
    not SHARED_REFERENCES.is_dir(),
    reason=f"needs {SHARED_REFERENCES} (shared/slack-ref beside the checkout)",
)
def test_shipped_references_are_the_shared_ones() -> None:
    shared = {p.name: p.read_bytes() for p in SHARED_REFERENCES.iterdir()}
    shipped = {p.name: p.read_bytes() for p in SHIPPED_REFERENCES.iterdir()}
    assert shipped == shared


@pytest.mark.skipif(
    not SHARED_REFERENCES.is_dir(),
    reason=f"needs {SHARED_REFERENCES} (shared/slack-ref beside the checkout)",
)
def test_references_can_be_loaded_from_another_folder() -> None:
    with SlackEmulator(reference_dir=SHARED_REFERENCES) as slack:
        assert set(slack.references) == set(HANDLERS)


def test_an_empty_reference_folder_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Slack method references"):
        SlackEmulator(reference_dir=tmp_path)


def test_wait_for_returns_the_predicates_value(slack: SlackEmulator, web: WebClient) -> None:
    threading.Timer(0.05, lambda: web.chat_postMessage(channel=CHANNEL, text="later")).start()
    messages = slack.wait_for(lambda ws: ws.messages(CHANNEL), timeout=5)
    assert [m.text for m in messages] == ["later"]


def test_wait_for_times_out_clearly(slack: SlackEmulator) -> None:
    with pytest.raises(TimeoutError, match="did not reach the expected state"):
        slack.wait_for(lambda ws: ws.messages(CHANNEL), timeout=0.05)


def test_changes_are_numbered_and_announced(slack: SlackEmulator, web: WebClient) -> None:
    seen: list[Change] = []
    unsubscribe = slack.workspace.subscribe(seen.append)
    mark = slack.workspace.version
    ts = web.chat_postMessage(channel=CHANNEL, text="card")["ts"]
    web.chat_update(channel=CHANNEL, ts=ts, text="card, approved")
    unsubscribe()
    web.chat_delete(channel=CHANNEL, ts=ts)

    kinds = [c.kind for c in slack.workspace.changes_since(mark)]
    assert kinds == ["message_posted", "api_called", "message_updated", "api_called",
                     "message_deleted", "api_called"]  # fmt: skip
    assert [c.kind for c in seen] == kinds[:4]
    assert [c.seq for c in slack.workspace.changes_since(mark)] == list(range(mark + 1, mark + 7))


def test_snapshots_do_not_change_under_the_reader(slack: SlackEmulator, web: WebClient) -> None:
    ts = web.chat_postMessage(channel=CHANNEL, text="before")["ts"]
    snapshot = slack.workspace.messages(CHANNEL)
    web.chat_update(channel=CHANNEL, ts=ts, text="after")
    assert snapshot[0].text == "before"
