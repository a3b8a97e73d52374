"""Several machines: Celery workers take owner jobs from a broker; the state is the truth.

`hirondelle run` with a `[cluster]` queues its jobs in the state (PostgreSQL) and sends
one Celery task per job through the broker (Redis or RabbitMQ: only the URL differs).
A task names a run and a job. The `hirondelle worker` that receives it claims that job
from the state (or, if someone else has it, any other claimable job of the run),
runs it, and goes on claiming until the run has nothing left to claim. Tasks are
acknowledged after they ran (`acks_late`), but the state, not the broker, says what is
done: a task that arrives twice, late or for a finished job claims nothing.

What the broker may lose (a restart without persistence, a worker killed with the
tasks it had reserved) is sent again by a sweep: a claimable job (queued, or whose
holder's lease expired) that no task has reached for a lease period is dispatched
again, as many as the live workers have idle slots. The command that follows a run
sweeps; so does every worker, for runs started with `--detach`.

Each worker process keeps one event loop in a thread of its own, where one `Worker`
moves several owners at once; Celery's threads pool hands it tasks, `run.owner_concurrency`
at a time.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import CancelledError, Future
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import delete, select, update

from ..state import leases
from ..state.jobs import Jobs
from ..state.leases import Holder
from ..state.schema import INCOMPLETE, Run, StateLock, WorkerRow, utcnow
from ..state.store import Store, open_store
from . import logs
from .audit import AuditLog
from .config import Config
from .coordinator import audit_for, default_workers, run_options
from .errors import ConfigError, FatalError
from .registry import assemble
from .worker import Worker

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)
TASK = "hirondelle.owner"
T = TypeVar("T")


def celery_app(config: Config) -> Celery:
    """The Celery application of a configuration's `[cluster]`."""
    if config.cluster is None:
        raise ConfigError("cluster", "is not configured")
    try:
        from celery import Celery
    except ModuleNotFoundError:
        raise ConfigError(
            "cluster", "needs the cluster extra: pip install 'hirondelle[cluster]'"
        ) from None
    app = Celery("hirondelle", broker=config.cluster.broker(), set_as_current=False)
    app.conf.update(
        task_acks_late=True,  # acknowledged once run: a lost worker's task comes back
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
    )
    app.task(name=TASK, bind=True, acks_late=True)(_owner_task)
    return app


def queue_of(config: Config, store: Store) -> str:
    """The queue of this state's tasks: `[cluster] queue`, else one named for the state,
    so that two states sharing a broker never exchange tasks."""
    assert config.cluster is not None
    return config.cluster.queue or f"hirondelle-{store.identity()}"


def send(config: Config, store: Store, run_id: int, job_ids: Sequence[int]) -> None:
    """One task per job, through the broker."""
    if not job_ids:
        return
    app = celery_app(config)
    assert config.cluster is not None
    state, queue = store.identity(), queue_of(config, store)
    try:
        with app.producer_or_acquire() as producer:
            for job_id in job_ids:
                app.send_task(
                    TASK,
                    args=[state, run_id, job_id],
                    queue=queue,
                    producer=producer,
                    retry=True,
                    retry_policy={"max_retries": 5, "interval_start": 0.5, "interval_step": 1},
                )
    except Exception as exc:  # noqa: BLE001 - kombu raises its transport's own errors
        where = config.cluster.broker_url
        raise FatalError(f"cannot send tasks to the broker {where}: {exc}") from None
    finally:
        app.close()


def dispatch_run(config: Config, store: Store, run_id: int) -> None:
    """Send one task per queued job of the run, and note when."""
    jobs = Jobs(store, config.lease_seconds)
    ids = [job.id for job in jobs.of_run(run_id)]
    jobs.mark_dispatched(ids)  # before sending: a claim never waits on this transaction
    send(config, store, run_id, ids)


class Sweeper:
    """Sends again the tasks of claimable jobs no task reached for a lease period."""

    def __init__(self, config: Config, store: Store, jobs: Jobs) -> None:
        self.config, self.store, self.jobs = config, store, jobs
        self.every = max(2.0, config.lease_seconds / 2)
        self._last = time.monotonic()

    def sweep(self, run_id: int, *, now: bool = False) -> None:
        """Send again what needs it (at most once a half-lease, unless `now`)."""
        if not now and time.monotonic() - self._last < self.every:
            return
        self._last = time.monotonic()
        idle = idle_slots(self.store, self.config.lease_seconds)
        ids = self.jobs.to_dispatch(run_id, idle, self.config.lease_seconds)
        if ids:
            log.info("run %d: %d job(s) sent again (a lost task or holder)", run_id, len(ids))
            send(self.config, self.store, run_id, ids)


_last_warning = 0.0


def warn_without_workers(config: Config, store: Store, every: float = 60.0) -> None:
    """Say so, once a minute, while no `hirondelle worker` is alive to take the owners."""
    global _last_warning
    if time.monotonic() - _last_warning < every:
        return
    with store.session() as s:
        live = leases.live_workers(s, "cluster", config.lease_seconds)
    if not live:
        _last_warning = time.monotonic()
        log.warning(
            "no hirondelle worker is alive for this state: the owners wait in the queue; "
            "start `hirondelle worker` on the worker machines"
        )


def idle_slots(store: Store, lease_seconds: float) -> int:
    """Owners the live cluster workers could take on now."""
    with store.session() as s:
        at = leases.now(s)
        rows = s.scalars(
            select(WorkerRow).where(
                WorkerRow.kind == "cluster",
                WorkerRow.stopped_at.is_(None),
                WorkerRow.heartbeat_at > at - lease_seconds,
            )
        )
        return sum(max(0, row.capacity - row.busy) for row in rows)


# -- the worker side ------------------------------------------------------------------


class Node:
    """One Celery worker process: an event loop thread running one `Worker`."""

    def __init__(self, config: Config, name: str, capacity: int) -> None:
        self.config, self.capacity = config, capacity
        base, _, host = name.partition("@")
        # A node named for this machine checks its dead peers' processes; one named for
        # another host (a test's stand-in machine) waits for their leases to expire.
        here = host in ("", socket.gethostname())
        self.holder = Holder.here(base or "worker", None if here else host)
        self._audits: dict[int, AuditLog] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="owners", daemon=True)
        self._ready = threading.Event()
        self._stopping = False
        self._store: Store | None = None
        self._worker: Worker | None = None
        self._opened: Any = None
        self._sweeper: threading.Thread | None = None
        self.identity = self.queue = ""

    def start(self) -> None:
        self._thread.start()
        self._call(self._open())
        self._sweeper = threading.Thread(target=self._sweep_loop, name="sweep", daemon=True)
        self._sweeper.start()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()

    async def _open(self) -> None:
        self._store = open_store(self.config.state_url)
        self.identity = self._store.identity()
        self.queue = queue_of(self.config, self._store)
        self._opened = assemble(self.config, self._store)
        assembled = await self._opened.__aenter__()
        self._worker = Worker(
            self._store,
            assembled.workloads,
            run_options(self.config, default_workers()),  # the machine's memory, shared
            AuditLog(None, 0),
            self.holder,
            kind="cluster",
            capacity=self.capacity,
            lease_seconds=self.config.lease_seconds,
            shared=assembled.shared,
        )
        self._worker.start()

    def run_task(self, state: str, run_id: int, job_id: int) -> bool:
        """Run the job (or others of its run) to the end; False if this node is stopping
        or the task is another state's."""
        if self._stopping or self._worker is None or self._store is None:
            return False
        if state != self.identity:
            log.error(
                "a task of another state (%s) reached this worker of state %s: two states "
                "share [cluster] queue %s; give each its own queue",
                state,
                self.identity,
                self.queue,
            )
            time.sleep(1.0)
            return False
        with self._store.session() as s:
            status = s.scalar(select(Run.status).where(Run.id == run_id))
        if status != "running":
            return True  # finished, interrupted or superseded: nothing to do
        worker = self._worker
        try:
            self._call(self._drain(worker, run_id, job_id))
        except CancelledError:  # this node stops: the job went back to the queue
            return False
        if self._stopping:
            return False
        finish_detached(self.config, self._store, run_id)
        return True

    def _detached(self, run_id: int) -> bool:
        assert self._store is not None
        with self._store.session() as s:
            run = s.get(Run, run_id)
            return run is not None and bool((run.options or {}).get("detached"))

    async def _drain(self, worker: Worker, run_id: int, job_id: int) -> None:
        # One run at a time holds the state: its audit lines go to this machine's file.
        if run_id not in self._audits:
            for audit in self._audits.values():
                audit.close()
            self._audits = {run_id: audit_for(self.config, run_id, f"-{socket.gethostname()}")}
        worker.engine.audit = self._audits[run_id]
        await worker.drain(run_id, wait=False, concurrency=1, prefer=job_id)

    def _sweep_loop(self) -> None:
        every = max(2.0, self.config.lease_seconds / 2)
        while not self._stopping:
            time.sleep(every)
            if self._store is None:
                continue
            try:
                store = self._store
                with store.session() as s:
                    runs = list(s.scalars(select(Run.id).where(Run.status == "running")))
                sweeper = Sweeper(self.config, store, Jobs(store, self.config.lease_seconds))
                for run_id in runs:  # a followed run is swept by the command following it
                    if self._detached(run_id):
                        sweeper.sweep(run_id, now=True)
                        finish_detached(self.config, store, run_id)
            except Exception:  # the next sweep tries again
                log.warning("sweep failed", exc_info=True)

    def stop(self) -> None:
        """Give running jobs back (queued again), close connections, stop the loop."""
        if self._stopping:
            return
        self._stopping = True
        if self._worker is not None:
            self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)

    async def _close(self) -> None:
        assert self._worker is not None
        await self._worker.stop()
        if self._opened is not None:
            await self._opened.__aexit__(None, None, None)
        if self._store is not None:
            self._store.engine.dispose()
        for audit in self._audits.values():
            audit.close()


def finish_detached(config: Config, store: Store, run_id: int) -> None:
    """A detached run: after a fatal error its queued owners are not started; once its last
    job ended, its summary is recorded (failed after a fatal error) and the lock freed."""
    jobs = Jobs(store, config.lease_seconds)
    with store.session() as s:
        run = s.get(Run, run_id)
        if run is None or run.status != "running" or not (run.options or {}).get("detached"):
            return
        lock = s.get(StateLock, leases.LOCK_NAME)
        if lock is None or lock.run_id != run_id or lock.pid != 0:
            return  # the command is still queueing its jobs: not handed over yet
    stopper = jobs.stopped(run_id)
    if stopper is not None:
        jobs.interrupt(run_id)  # the running ones end on their own
    if jobs.open_count(run_id):
        return
    from .coordinator import RunResult

    tallies = jobs.tallies(run_id, list(config.targets))
    holders = {job.holder for job in jobs.of_run(run_id) if job.holder}
    result = RunResult(run_id, tallies, None, len(holders), outstanding=jobs.outstanding(run_id))
    summary = result.as_dict()
    if stopper is not None:
        summary["stopped_by"] = {
            "workload": stopper.workload,
            "owner": stopper.owner,
            "error": stopper.error,
        }
    with store.writing() as s, s.begin():
        done = s.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == "running")
            .values(
                status="failed" if stopper else "done" if result.ok else INCOMPLETE,
                summary=summary,
                finished_at=utcnow(),
            )
        )
        if done.rowcount:  # type: ignore[attr-defined]  # an UPDATE's result is a CursorResult
            s.execute(delete(StateLock).where(StateLock.run_id == run_id))


_NODE: Node | None = None


def _owner_task(task: Any, state: str, run_id: int, job_id: int) -> None:
    """The Celery task: run a job of a run (and whatever else of it is claimable)."""
    from celery.exceptions import Reject

    node = _NODE
    if node is None or not node.run_task(state, run_id, job_id):
        raise Reject("this worker is stopping", requeue=True)


def run_node(config: Config, name: str, capacity: int, loglevel: str) -> None:
    """Serve tasks in this process until told to stop (SIGTERM or Ctrl-C: warm shutdown)."""
    global _NODE
    from celery import signals

    logs.install_redaction()
    app = celery_app(config)
    assert config.cluster is not None
    node = Node(config, name, capacity)
    node.start()
    _NODE = node

    def stopping(**_: Any) -> None:
        node.stop()

    signals.worker_shutting_down.connect(stopping, weak=False)
    argv = [
        "worker",
        "--pool=threads",
        f"--concurrency={capacity}",
        f"--hostname={name}",
        f"--queues={node.queue}",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    try:
        app.worker_main(argv)
    finally:
        node.stop()
        _NODE = None
