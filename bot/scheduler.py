"""The worker's clock: digests, reminders and expiry, on schedules kept in the database.

APScheduler 3 keeps the jobs in ``scheduler_jobs``, so a run missed while no worker was up is
still due when one starts. Every job coalesces: however many runs were missed, one runs.
A digest late by more than ``DIGEST_GRACE`` is skipped for the next one (yesterday's 09:00
digest at 15:00 helps nobody); reminders and expiry always catch up, once.

Exactly one process schedules at a time (``bot.store.scheduler_lock``): the others stand by and
take over when the holder stops. Each run is idempotent besides: a digest is keyed by its
scheduled time, a reminder by candidate, person and period, and expiry goes by state.

Defaults when gatekeeper.yaml leaves a schedule out: reminders hourly (``DEFAULT_REMINDERS``),
expiry every five minutes (``DEFAULT_EXPIRY``), both in UTC. Polling MLflow for versions no
webhook announced runs every ``intake.poll_every``, only when that is set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import Engine

from bot.config import GatekeeperConfig
from bot.config.schema import Schedule
from bot.services.digests import models_in, post_digest
from bot.services.expiry import expire_due
from bot.services.reminders import send_reminders
from bot.store.scheduler_lock import SchedulerLock

if TYPE_CHECKING:
    from bot.bootstrap import Gatekeeper

logger = logging.getLogger(__name__)

DEFAULT_REMINDERS = Schedule(cron="0 * * * *")
DEFAULT_EXPIRY = Schedule(cron="*/5 * * * *")
#: Seconds a digest may run late (after downtime) and still be posted.
DIGEST_GRACE = 3600
#: Seconds between looks at the lock: how soon a standby takes over, and a loser stops.
CHECK_EVERY = 2.0


@dataclass(frozen=True)
class Run:
    """What a job is handed when it runs: the process's parts, and the time it stands for."""

    gatekeeper: Gatekeeper
    scheduled_at: datetime


@dataclass(frozen=True)
class JobSpec:
    """A job as configured: stored under ``id``; ``func`` is a textual reference to a function
    taking ``*args`` and ``run: Run | None = None`` (see ``handed``)."""

    id: str
    func: str
    trigger: BaseTrigger
    args: tuple[str, ...] = ()
    #: Seconds late a run may still start; None: however late, once.
    misfire_grace_time: int | None = None


def job_specs(config: GatekeeperConfig) -> list[JobSpec]:
    """Every job gatekeeper.yaml asks for, defaults filled in."""
    specs: list[JobSpec] = []
    seen: dict[str, int] = {}
    for digest in config.schedules.digests:
        n = seen[digest.channel] = seen.get(digest.channel, 0) + 1
        job_id = f"digest:{digest.channel}" + (f":{n}" if n > 1 else "")
        specs.append(
            JobSpec(
                job_id, f"{__name__}:run_digest", digest.trigger(), (digest.channel,), DIGEST_GRACE
            )
        )
    reminders = config.schedules.reminders or DEFAULT_REMINDERS
    expiry = config.schedules.expiry or DEFAULT_EXPIRY
    specs.append(JobSpec("reminders", f"{__name__}:run_reminders", reminders.trigger()))
    specs.append(JobSpec("expiry", f"{__name__}:run_expiry", expiry.trigger()))
    if config.intake.poll_every is not None:
        every = IntervalTrigger(seconds=config.intake.poll_every.total_seconds(), timezone=UTC)
        specs.append(JobSpec("intake-poll", f"{__name__}:run_intake_poll", every))
    return specs


def run_digest(channel: str, *, run: Run | None = None) -> None:
    """Post the digest of ``channel`` for the run scheduled at ``run.scheduled_at``."""
    run = handed(run)
    gatekeeper = run.gatekeeper
    config = gatekeeper.config
    channels = {name: model.channel for name, model in config.models.items()}
    scheduled = run.scheduled_at.astimezone(UTC).isoformat()
    post_digest(
        gatekeeper.unit_of_work,
        gatekeeper.notifier,
        config.policy_for,
        channel,
        models_in(channel, channels),
        config.promotion_path,
        now=gatekeeper.now(),
        key=f"digest:{channel}:{scheduled}",
        workspace_url=workspace_url(gatekeeper.slack),
    )
    gatekeeper.delivery.wake()


def run_reminders(*, run: Run | None = None) -> None:
    """Remind approvers of candidates that waited longer than their policy's remind_after."""
    gatekeeper = handed(run).gatekeeper
    sent = send_reminders(
        gatekeeper.unit_of_work,
        gatekeeper.notifier,
        gatekeeper.config.policy_for,
        gatekeeper.membership,
        now=gatekeeper.now(),
        workspace_url=workspace_url(gatekeeper.slack),
    )
    if sent:
        logger.info("queued %d reminder(s)", len(sent))
        gatekeeper.delivery.wake()


def run_expiry(*, run: Run | None = None) -> None:
    """Expire candidates nobody decided on in time."""
    gatekeeper = handed(run).gatekeeper
    expired = expire_due(gatekeeper.unit_of_work, gatekeeper.notifier, now=gatekeeper.now())
    if expired:
        logger.info("expired candidate(s) %s", ", ".join(f"#{i}" for i in expired))
        gatekeeper.delivery.wake()


def run_intake_poll(*, run: Run | None = None) -> None:
    """Offer versions MLflow registered that no webhook announced (``intake.poll_every``)."""
    gatekeeper = handed(run).gatekeeper
    proposed = gatekeeper.intake.poll(gatekeeper.now())
    if proposed:
        logger.info("polling MLflow proposed %d candidate(s)", proposed)


def handed(run: Run | None) -> Run:
    """The ``Run`` a job was handed. Optional in jobs' signatures only because APScheduler checks
    them against the stored arguments, before ``_JobRunner`` adds it."""
    if run is None:
        raise RuntimeError("a scheduled job runs only through bot.scheduler's _JobRunner")
    return run


def workspace_url(slack: WebClient) -> str | None:
    """The workspace's address (``auth.test``), for links to threads; None if Slack is away."""
    try:
        url = slack.auth_test().get("url")
    except (SlackApiError, SlackClientError, OSError) as error:
        logger.warning("auth.test failed (%s); the message links no threads", type(error).__name__)
        return None
    return url if isinstance(url, str) and url else None


class _JobRunner(ThreadPoolExecutor):  # type: ignore[misc]
    """Runs jobs on threads, handing each a ``Run``: no global registry of the running process,
    and the scheduled time a run stands for, which makes its messages idempotent."""

    def __init__(self, gatekeeper: Gatekeeper) -> None:
        super().__init__(max_workers=2)
        self._gatekeeper = gatekeeper

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        state = job.__getstate__()
        state["kwargs"] = {**job.kwargs, "run": Run(self._gatekeeper, run_times[-1])}
        handed = Job.__new__(Job)
        handed.__setstate__(state)
        handed._scheduler, handed._jobstore_alias = job._scheduler, job._jobstore_alias
        super()._do_submit_job(handed, run_times)


class _JobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's store, kept on the process's engine, and deaf once shut down.

    A BackgroundScheduler looks for due jobs once more after ``shutdown`` (its loop wakes and
    checks only for "paused"); it would hand them to its stopped executor, fail, and still move
    their next run on, losing a run. Closed, the store has nothing due.
    """

    _closed = False

    def get_due_jobs(self, now: datetime) -> list[Job]:
        return [] if self._closed else super().get_due_jobs(now)

    def shutdown(self) -> None:
        # The engine is the process's, disposed with it.
        self._closed = True


def build_scheduler(gatekeeper: Gatekeeper, engine: Engine) -> BackgroundScheduler:
    """A scheduler (not started) whose jobs live in ``scheduler_jobs``."""
    return BackgroundScheduler(
        jobstores={"default": _JobStore(engine=engine, tablename="scheduler_jobs")},
        executors={"default": _JobRunner(gatekeeper)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=UTC,
    )


def sync_jobs(scheduler: BackgroundScheduler, specs: Sequence[JobSpec]) -> None:
    """Make the stored jobs match ``specs``: add new ones, remove ones no longer configured,
    replace changed ones. Unchanged ones keep their next run time, so that runs missed while
    nobody scheduled are still due (and coalesce into one)."""
    stored: dict[str, Job] = {job.id: job for job in scheduler.get_jobs()}
    for spec in specs:
        job = stored.pop(spec.id, None)
        if job is not None and _unchanged(job, spec):
            continue
        scheduler.add_job(
            spec.func,
            spec.trigger,
            args=spec.args,
            id=spec.id,
            name=spec.id,
            replace_existing=True,
            misfire_grace_time=spec.misfire_grace_time,
            coalesce=True,
            max_instances=1,
        )
        logger.info("scheduled %s: %s", spec.id, _schedule(spec.trigger))
    for job_id in stored:
        scheduler.remove_job(job_id)
        logger.info("unscheduled %s: no longer configured", job_id)


def _unchanged(job: Job, spec: JobSpec) -> bool:
    return (
        job.func_ref == spec.func
        and tuple(job.args) == spec.args
        and job.misfire_grace_time == spec.misfire_grace_time
        and _schedule(job.trigger) == _schedule(spec.trigger)
    )


def _schedule(trigger: BaseTrigger) -> str:
    """What makes two triggers fire alike (an interval's start, recomputed each time, aside)."""
    return f"{trigger} {getattr(trigger, 'timezone', '')}"


class Scheduling:
    """Runs the jobs in this process while it holds the lock; stands by while another does."""

    def __init__(
        self,
        gatekeeper: Gatekeeper,
        specs: Sequence[JobSpec],
        lock: SchedulerLock,
        *,
        check_every: float = CHECK_EVERY,
    ) -> None:
        self._gatekeeper = gatekeeper
        self._specs = tuple(specs)
        self._lock = lock
        self._check_every = check_every
        self._scheduler: BackgroundScheduler | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduling", daemon=True)
        #: Set while this process runs the jobs (for health checks and tests).
        self.active = threading.Event()

    def start(self) -> Scheduling:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the jobs under way, stop, and hand the lock over."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._check()
            except Exception:
                # The database may be away for a moment; a lock that cannot be checked is lost.
                logger.exception("checking the scheduler's lock failed; trying again shortly")
                self._end(release=False)
            self._stopped.wait(self._check_every)
        self._end(release=True)

    def _check(self) -> None:
        if self._scheduler is None:
            if self._lock.acquire():
                self._begin()
        elif not self._lock.keep():
            logger.warning("another process took over the schedule; standing by")
            self._end(release=False)

    def _begin(self) -> None:
        scheduler = build_scheduler(self._gatekeeper, self._gatekeeper.engine)
        scheduler.start(paused=True)
        try:
            sync_jobs(scheduler, self._specs)
        except BaseException:
            scheduler.shutdown(wait=False)
            raise
        scheduler.resume()
        self._scheduler = scheduler
        self.active.set()
        logger.info("this process runs the schedule (%d jobs)", len(self._specs))

    def _end(self, *, release: bool) -> None:
        scheduler, self._scheduler = self._scheduler, None
        self.active.clear()
        if scheduler is not None:
            scheduler.shutdown(wait=release)
        if release:
            try:
                self._lock.release()
            except Exception:
                logger.exception("releasing the scheduler's lock failed; it expires by itself")
