"""Two workers on one database: each approved candidate is promoted by one of them, once.

The runner promotes only while its process holds the schedule's lock, so the worker that
stands by never resumes a promotion the other is still running.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.bootstrap import Gatekeeper, build
from bot.config import load_settings, parse_config
from bot.domain.candidates import Bundle, Candidate
from bot.domain.policy import Verdict, VerdictKind
from bot.domain.promotion import CandidateState, PromotionStep, StepStatus
from bot.emulator import SlackEmulator
from bot.services.promotions import Progress, Promoted, Report
from bot.store.database import make_engine
from bot.store.models import Base
from bot.store.scheduler_lock import Lease, holder_id
from tests.conftest import NOW

CHANNEL = "C0ML00001"
TOKEN = "xoxb-one-promoter"
CONFIG = parse_config({
    "environments": {"staging": {"mlflow": "http://127.0.0.1:1"},
                     "production": {"mlflow": "http://127.0.0.1:2"}},
    "promotion_path": ["staging", "production"],
    "models": {"churn-classifier": {"channel": CHANNEL}},
    "policies": {"production": {"approvals": 0}},
})  # fmt: skip


class SlowEngine:
    """Takes its time over each step, and notes every promotion it was asked to run."""

    def __init__(self, calls: list[int], lock: threading.Lock, crash: bool = False) -> None:
        self.calls, self.lock, self.crash = calls, lock, crash

    def promote(self, candidate_id: int, report: Report) -> Promoted:
        with self.lock:
            self.calls.append(candidate_id)
        for step in PromotionStep:
            if self.crash and step is PromotionStep.COPY_MODEL:
                # Not a step failing (that would be StepFailed): the process giving out.
                raise RuntimeError("the worker's machine went away")
            report(Progress(step, StepStatus.RUNNING))
            time.sleep(0.3)
            report(Progress(step, StepStatus.SUCCEEDED, 0.3))
        return Promoted("2")

    def roll_back(self, model: str, environment: str, to_version: str, report: Report) -> None:
        raise AssertionError("not asked for here")


@pytest.fixture
def workers(database_url: str) -> Iterator[Callable[..., tuple[Gatekeeper, list[int]]]]:
    with SlackEmulator(bot_token=TOKEN) as slack:
        slack.workspace.add_channel(CHANNEL, "ml-models")
        calls: list[int] = []
        guard = threading.Lock()
        started: list[Gatekeeper] = []

        def start(crash: bool = False) -> tuple[Gatekeeper, list[int]]:
            settings = load_settings(
                slack_bot_token=TOKEN, slack_api_url=slack.api_url, database_url=database_url
            )
            gatekeeper = build(settings, CONFIG, promotion_engine=SlowEngine(calls, guard, crash))
            gatekeeper.slack = WebClient(token=TOKEN, base_url=slack.api_url)
            gatekeeper.delivery.start()
            gatekeeper.start_working()
            started.append(gatekeeper)
            return gatekeeper, calls

        yield start
        for gatekeeper in started:
            gatekeeper.close()


def approved(gatekeeper: Gatekeeper, version: str = "2") -> int:
    candidate = Candidate(
        "churn-classifier", version, "staging", "production", {"accuracy": 0.93}, Bundle()
    )
    with gatekeeper.unit_of_work() as uow:
        row = uow.candidates.add(
            candidate, Verdict(VerdictKind.AUTO_APPROVE, ()), actor="test", now=NOW
        )
        uow.commit()
        return row.id


def state(gatekeeper: Gatekeeper, candidate_id: int) -> CandidateState:
    with gatekeeper.unit_of_work().reading() as uow:
        return CandidateState(uow.candidates.get(candidate_id).state)


def test_two_workers_promote_each_candidate_once(
    workers: Callable[..., tuple[Gatekeeper, list[int]]],
) -> None:
    first, calls = workers()
    second, _ = workers()
    ids = [approved(first, "2"), approved(first, "3")]

    deadline = time.monotonic() + 30
    while any(state(first, i) is not CandidateState.PROMOTED for i in ids):
        assert time.monotonic() < deadline, f"not promoted in 30 s: {calls}"
        time.sleep(0.1)
    time.sleep(2.5)  # a pass or more of the other runner, had it been allowed to run

    assert sorted(calls) == ids  # each promotion run once, by one of the two
    runners = [g for g in (first, second) if g.scheduling and g.scheduling.active.is_set()]
    assert len(runners) == 1


def test_the_standby_finishes_what_a_stopped_worker_left(
    workers: Callable[..., tuple[Gatekeeper, list[int]]],
) -> None:
    first, calls = workers(crash=True)
    deadline = time.monotonic() + 10
    while not (first.scheduling and first.scheduling.active.is_set()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second, _ = workers()
    candidate = approved(first)
    while not calls:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1)
    assert state(first, candidate) is CandidateState.PROMOTING  # left halfway
    assert second.scheduling is not None
    assert not second.scheduling.active.is_set()

    first.close()  # the lock is released: the standby takes over, and resumes the promotion

    deadline = time.monotonic() + 30
    while state(second, candidate) is not CandidateState.PROMOTED:
        assert time.monotonic() < deadline, f"the standby did not take over: {calls}"
        time.sleep(0.1)
    assert calls[0] == candidate
    assert calls[-1] == candidate
    assert second.scheduling.active.is_set()


def test_a_lease_left_by_a_process_that_is_gone_is_taken_at_once(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'lease.db'}")
    Base.metadata.create_all(engine)
    exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    host = holder_id().partition(":")[0]
    now = datetime.now(UTC)

    # Held by a worker of another host: whether it still runs cannot be told from here, so
    # the lease is waited out.
    assert Lease(engine, "elsewhere:42:00000000", clock=lambda: now).acquire()
    assert not Lease(engine, holder_id(), clock=lambda: now + timedelta(seconds=1)).acquire()
    later = now + timedelta(minutes=1)
    # Held by a process of this host whose pid no longer runs: taken at once.
    assert Lease(engine, f"{host}:{exited.stdout.strip()}:0dead000", clock=lambda: later).acquire()
    assert Lease(engine, holder_id(), clock=lambda: later + timedelta(seconds=1)).acquire()
    # Held by this process, which runs: nobody else takes it before it expires.
    assert not Lease(engine, f"{host}:1:00000000", clock=lambda: later).acquire()
    engine.dispose()
