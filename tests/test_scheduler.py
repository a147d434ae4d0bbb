"""The schedule: jobs kept in the database, missed runs coalesced into one, and exactly one
process running them however many start, handing over when the holder stops."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk import WebClient
from sqlalchemy import select

from bot.bootstrap import Gatekeeper, build
from bot.config import GatekeeperConfig, load_settings, parse_config
from bot.domain.candidates import Bundle, Candidate
from bot.domain.policy import Verdict, VerdictKind
from bot.emulator import SlackEmulator
from bot.scheduler import (
    DIGEST_GRACE,
    JobSpec,
    Run,
    Scheduling,
    build_scheduler,
    handed,
    job_specs,
    sync_jobs,
)
from bot.store.models import AuditRow, OutboxRow
from bot.store.scheduler_lock import Lease, SchedulerLock, scheduler_lock
from tests.conftest import NOW

CHANNEL = "C0ML00001"
TOKEN = "xoxb-scheduler-test"
RECORD = "tests.test_scheduler:record_run"


def record_run(label: str, *, run: Run | None = None) -> None:
    """A job that writes down who ran it, for which scheduled time: the database is shared by
    every scheduler, so it sees what each of them did."""
    run = handed(run)
    with run.gatekeeper.unit_of_work() as uow:
        uow.audit.append(
            run.gatekeeper.settings.slack_api_url,  # tells the schedulers apart (see `worker`)
            "test.job_ran",
            label,
            {"scheduled_at": run.scheduled_at.astimezone(UTC).isoformat()},
            at=datetime.now(UTC),
        )
        uow.commit()


def config(**schedules: object) -> GatekeeperConfig:
    return parse_config({
        "environments": {env: {"mlflow": f"http://127.0.0.1:{port}"}
                         for env, port in (("staging", 1), ("production", 2))},
        "promotion_path": ["staging", "production"],
        "models": {"churn-classifier": {"channel": CHANNEL}},
        "policies": {"production": {"approvals": 2, "approvers": ["U0SRE0001", "S0MLLEADS"]}},
        "schedules": schedules,
    })  # fmt: skip


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(bot_token=TOKEN) as emulator:
        emulator.workspace.add_user("U0SRE0001", "sam")
        emulator.workspace.add_channel(CHANNEL, "ml-models")
        yield emulator


@pytest.fixture
def worker(slack: SlackEmulator) -> Iterator[Callable[..., Gatekeeper]]:
    """A Gatekeeper on ``url`` as a worker builds it; each has its own engine and delivery."""
    built: list[Gatekeeper] = []

    def make(
        url: str, name: str = "a", gatekeeper_yaml: GatekeeperConfig | None = None
    ) -> Gatekeeper:
        settings = load_settings(
            slack_bot_token=TOKEN,
            # The same stand-in either way; the query string names the worker in record_run.
            slack_api_url=f"{slack.api_url}?{name}",
            database_url=url,
        )
        gatekeeper = build(settings, gatekeeper_yaml or config())
        gatekeeper.slack = WebClient(token=TOKEN, base_url=slack.api_url)
        built.append(gatekeeper)
        return gatekeeper

    yield make
    for gatekeeper in built:
        gatekeeper.close()


def pending_candidate(gatekeeper: Gatekeeper) -> None:
    candidate = Candidate(
        "churn-classifier", "7", "staging", "production", {"accuracy": 0.93}, Bundle()
    )
    with gatekeeper.unit_of_work() as uow:
        uow.candidates.add(
            candidate,
            Verdict(VerdictKind.NEEDS_APPROVAL, ("needs 2",)),
            actor="U0DS00001",
            now=NOW,
        )
        uow.commit()


def runs(gatekeeper: Gatekeeper, label: str) -> list[tuple[str, str]]:
    """(who ran it, scheduled time) for each run of the job labelled ``label``, in order."""
    with gatekeeper.unit_of_work() as uow:
        rows = uow.session.scalars(
            select(AuditRow)
            .where(AuditRow.action == "test.job_ran", AuditRow.subject == label)
            .order_by(AuditRow.seq)
        ).all()
        return [(row.actor.rpartition("?")[2], row.details["scheduled_at"]) for row in rows]


def digest_keys(gatekeeper: Gatekeeper) -> list[str]:
    with gatekeeper.unit_of_work() as uow:
        keys = uow.session.scalars(
            select(OutboxRow.dedupe_key).where(OutboxRow.ordering_key == f"digest:{CHANNEL}")
        ).all()
        return [key for key in keys if key]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.05)


def leave_job_overdue(gatekeeper: Gatekeeper, specs: list[JobSpec], by: timedelta) -> None:
    """Store the jobs as a worker left them, then pretend it was down: next runs ``by`` ago."""
    scheduler = build_scheduler(gatekeeper, gatekeeper.engine)
    scheduler.start(paused=True)
    sync_jobs(scheduler, specs)
    for spec in specs:
        scheduler.modify_job(spec.id, next_run_time=datetime.now(UTC) - by)
    scheduler.shutdown()


def test_runs_missed_during_downtime_coalesce_into_one(
    database_url: str, worker: Callable[..., Gatekeeper]
) -> None:
    gatekeeper = worker(database_url)
    pending_candidate(gatekeeper)
    hourly = IntervalTrigger(hours=1)
    specs = [
        JobSpec("digest:" + CHANNEL, "bot.scheduler:run_digest", hourly, (CHANNEL,), DIGEST_GRACE),
        JobSpec("expiry-ish", RECORD, hourly, ("catch-up",)),
    ]
    # Down for four and a half hours: five runs of each were missed, the last 30 minutes ago.
    leave_job_overdue(gatekeeper, specs, by=timedelta(hours=4, minutes=30))

    scheduling = Scheduling(gatekeeper, specs, scheduler_lock(gatekeeper.engine), check_every=0.1)
    scheduling.start()
    wait_for(lambda: len(runs(gatekeeper, "catch-up")) >= 1 and len(digest_keys(gatekeeper)) >= 1)
    time.sleep(1.0)  # time enough for any further (wrong) run
    scheduling.stop()

    [(_, scheduled)] = runs(gatekeeper, "catch-up")
    late = datetime.now(UTC) - datetime.fromisoformat(scheduled)
    assert timedelta(minutes=29) < late < timedelta(minutes=31)  # the last missed run, once
    [key] = digest_keys(gatekeeper)
    assert key.startswith(f"digest:{CHANNEL}:")


def test_a_digest_missed_by_more_than_its_grace_is_skipped_while_other_jobs_catch_up(
    sqlite_url: str, worker: Callable[..., Gatekeeper]
) -> None:
    gatekeeper = worker(sqlite_url)
    pending_candidate(gatekeeper)
    daily = IntervalTrigger(days=1)
    specs = [
        JobSpec("digest:" + CHANNEL, "bot.scheduler:run_digest", daily, (CHANNEL,), DIGEST_GRACE),
        JobSpec("expiry-ish", RECORD, daily, ("catch-up",)),
    ]
    leave_job_overdue(gatekeeper, specs, by=timedelta(hours=3))

    scheduling = Scheduling(gatekeeper, specs, scheduler_lock(gatekeeper.engine), check_every=0.1)
    scheduling.start()
    wait_for(lambda: len(runs(gatekeeper, "catch-up")) == 1)
    time.sleep(0.5)
    scheduling.stop()

    assert digest_keys(gatekeeper) == []  # three hours late: wait for tomorrow's
    scheduler = build_scheduler(gatekeeper, gatekeeper.engine)
    scheduler.start(paused=True)
    next_digest = scheduler.get_job("digest:" + CHANNEL).next_run_time
    scheduler.shutdown()
    assert timedelta(hours=20) < next_digest - datetime.now(UTC) < timedelta(hours=22)


def test_jobs_are_kept_across_restarts_and_follow_the_config(
    database_url: str, worker: Callable[..., Gatekeeper]
) -> None:
    before = config(
        digests=[{"channel": CHANNEL, "cron": "0 9 * * mon-fri", "timezone": "Europe/Berlin"},
                 {"channel": "C0GONE001", "cron": "0 9 * * *"}],
    )  # fmt: skip
    gatekeeper = worker(database_url)
    scheduler = build_scheduler(gatekeeper, gatekeeper.engine)
    scheduler.start(paused=True)
    sync_jobs(scheduler, job_specs(before))
    kept_next = scheduler.get_job(f"digest:{CHANNEL}").next_run_time
    scheduler.shutdown()

    after = config(
        digests=[{"channel": CHANNEL, "cron": "0 9 * * mon-fri", "timezone": "Europe/Berlin"},
                 {"channel": "C0NEW0001", "cron": "30 8 * * *", "timezone": "Asia/Tokyo"}],
        reminders={"cron": "0 10 * * mon-fri", "timezone": "Europe/Berlin"},
    )  # fmt: skip
    restarted = worker(database_url, "b")
    scheduler = build_scheduler(restarted, restarted.engine)
    scheduler.start(paused=True)
    stored = {job.id: job for job in scheduler.get_jobs()}
    assert set(stored) == {f"digest:{CHANNEL}", "digest:C0GONE001", "reminders", "expiry"}
    sync_jobs(scheduler, job_specs(after))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    scheduler.shutdown()

    assert set(jobs) == {f"digest:{CHANNEL}", "digest:C0NEW0001", "reminders", "expiry"}
    assert jobs[f"digest:{CHANNEL}"].next_run_time == kept_next  # unchanged: kept as stored
    assert str(jobs["digest:C0NEW0001"].trigger.timezone) == "Asia/Tokyo"
    assert str(jobs["reminders"].trigger) == str(CronTrigger.from_crontab("0 10 * * mon-fri"))
    assert jobs["reminders"].next_run_time.astimezone(jobs["reminders"].trigger.timezone).hour == 10
    # Left out of the config: hourly reminders and expiry every five minutes.
    assert str(jobs["expiry"].trigger) == str(CronTrigger.from_crontab("*/5 * * * *"))
    assert jobs["digest:C0NEW0001"].misfire_grace_time == DIGEST_GRACE
    assert jobs["expiry"].misfire_grace_time is None


def every_two_seconds() -> list[JobSpec]:
    trigger = CronTrigger(second="*/2")
    return [
        JobSpec("digest:" + CHANNEL, "bot.scheduler:run_digest", trigger, (CHANNEL,), DIGEST_GRACE),
        JobSpec("tick", RECORD, trigger, ("tick",)),
    ]


def start_both(
    url: str, worker: Callable[..., Gatekeeper], lock: Callable[[Gatekeeper, str], SchedulerLock]
) -> tuple[Gatekeeper, Scheduling, Gatekeeper, Scheduling]:
    first, second = worker(url, "a"), worker(url, "b")
    pending_candidate(first)
    schedulings = []
    for gatekeeper, name in ((first, "a"), (second, "b")):
        gatekeeper.delivery.start()
        scheduling = Scheduling(
            gatekeeper, every_two_seconds(), lock(gatekeeper, name), check_every=0.2
        )
        schedulings.append(scheduling.start())
    return first, schedulings[0], second, schedulings[1]


def test_two_workers_on_postgresql_post_each_digest_once(
    postgres_url: str, slack: SlackEmulator, worker: Callable[..., Gatekeeper]
) -> None:
    first, a, _second, b = start_both(postgres_url, worker, lambda g, _: scheduler_lock(g.engine))
    deadline = time.monotonic() + 7
    while time.monotonic() < deadline:
        assert not (a.active.is_set() and b.active.is_set())
        time.sleep(0.05)
    a.stop()
    b.stop()
    wait_for(lambda: len(slack.workspace.messages(CHANNEL)) == len(digest_keys(first)))

    ticks = runs(first, "tick")
    assert len(ticks) >= 3
    assert len({who for who, _ in ticks}) == 1  # one scheduler ran every job
    assert len({at for _, at in ticks}) == len(ticks)  # each scheduled time once
    keys = digest_keys(first)
    assert len(keys) >= 3
    digests = slack.workspace.messages(CHANNEL)
    assert len(digests) == len(keys)
    assert all(m.text == "Gatekeeper digest: 1 waiting (1 in production)" for m in digests)


def test_a_standby_takes_over_when_the_holder_stops(
    database_url: str, worker: Callable[..., Gatekeeper]
) -> None:
    def lock(gatekeeper: Gatekeeper, name: str) -> SchedulerLock:
        if gatekeeper.engine.dialect.name == "postgresql":
            return scheduler_lock(gatekeeper.engine)
        return Lease(gatekeeper.engine, name, ttl=timedelta(seconds=3))

    first, a, _second, b = start_both(database_url, worker, lock)
    wait_for(lambda: a.active.is_set() or b.active.is_set())
    holder, standby = (a, b) if a.active.is_set() else (b, a)
    wait_for(lambda: len(runs(first, "tick")) >= 2)
    assert not standby.active.is_set()

    holder.stop()
    wait_for(standby.active.is_set, timeout=5)
    before = len(runs(first, "tick"))
    wait_for(lambda: len(runs(first, "tick")) >= before + 2)
    standby.stop()

    ticks = runs(first, "tick")
    assert len({who for who, _ in ticks}) == 2  # the first holder, then the standby
    first_holder = ticks[0][0]
    switch = next(i for i, (who, _) in enumerate(ticks) if who != first_holder)
    assert all(who != first_holder for who, _ in ticks[switch:])  # no going back
    assert len({at for _, at in ticks}) == len(ticks)  # no scheduled time run twice
