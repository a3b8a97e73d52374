"""`run --workers N`: N worker processes on this machine, over the same state.

Each process starts without any thread or event loop of the parent: it is forked from
a fork server that the command forked from itself before starting any thread, loop,
state connection or log file (`zygote`), so the workers find the command's imports
loaded and the workloads' code preloaded, and nobody imports it again (a forkserver
that is a new interpreter cost about 1.2 s of CPU for a mail run). Where that fork is
not possible, multiprocessing's own forkserver serves, and where there is none, a
worker is spawned.

A worker opens the state and the workloads from the same configuration, and claims
jobs until the run has none left (`Worker.drain` with `wait`, so a sibling's jobs are
taken over when it dies). A process dies with its parent: killed with -9, the parent
takes its workers with it (the fork server ends when its parent does, and a worker
when the fork server does), and the next run resumes every owner from the state.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.context
import os
import select
import signal
import sys
import threading
import time
from contextlib import AbstractContextManager
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event

from sqlalchemy.exc import OperationalError

from ..state.database import driver_modules
from ..state.leases import Holder
from ..state.store import open_store
from . import logs, zygote
from .config import Config
from .coordinator import audit_for, run_options, worker_count
from .errors import FatalError, HirondelleError
from .registry import assemble, workload_modules
from .spool import pid_alive
from .worker import Worker

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
# What every worker runs, imported once by the forkserver before it forks any: this module,
# the command line (a worker runs it again as its `__mp_main__`), and what signing in to
# Graph and downloading import on first use (httpx's first connection loads anyio's
# asyncio backend); then the configured workloads' own modules and the state's driver.
COMMAND_LINE = __name__.split(".")[0] + ".cli"
PRELOAD = (
    __name__,
    COMMAND_LINE,
    "aiohttp",
    "azure.core.pipeline.transport._aiohttp",
    "azure.core.rest._aiohttp",
    "httpcore",
    "httpcore._backends.anyio",
    "anyio._backends._asyncio",
)


def _die_with_parent(parent: int) -> None:
    """End this process, as by -9, when `parent` (the run's process) dies, even by -9.

    Linux kills it when the process that started it dies (PR_SET_PDEATHSIG): that is
    `parent` for a spawned worker, but the forkserver for a forked one, and the
    forkserver only ends once its workers have closed their copy of its pipe. So a
    thread also watches `parent` itself (a pidfd, readable once it has exited).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()


def _watch(parent: int) -> None:
    try:
        pidfd = os.pidfd_open(parent)
    except OSError:  # already gone (or no pidfd: then polled)
        pidfd = None
    if pidfd is not None:
        select.select([pidfd], [], [])
    else:
        while pid_alive(parent):
            time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGKILL)


Context = multiprocessing.context.ForkServerContext | multiprocessing.context.SpawnContext


def _context(config: Config) -> Context:
    """`forkserver` with the workers' code preloaded, else `spawn`."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.context.SpawnContext()
    context = multiprocessing.context.ForkServerContext()
    context.set_forkserver_preload(_preload(config))
    return context


def _preload(config: Config) -> list[str]:
    return [*PRELOAD, *workload_modules(config), *driver_modules(config.state_url)]


def forked_server(config: Config, workers: int | None) -> AbstractContextManager[None]:
    """For a command that may start local workers: their fork server, forked from the
    command's process before it starts a thread (`zygote`), for the command's length.
    The command line itself is not imported again: a forked worker finds it loaded."""
    if config.cluster is not None or worker_count(config, workers) < 2:
        return zygote.forked((), wanted=False)
    return zygote.forked([name for name in _preload(config) if name != COMMAND_LINE], wanted=True)


def child_main(
    config: Config,
    run_id: int,
    index: int,
    workers: int,
    level: int,
    parent: int,
    over: Event,
) -> None:
    """The body of one local worker process. `over` is set by the command once it has
    seen the run's jobs end: an idle worker then leaves at once, not at its next look."""
    _die_with_parent(parent)
    logs.setup(level, f"%(asctime)s %(levelname)s worker-{index} %(name)s: %(message)s")
    try:
        asyncio.run(_work(config, run_id, index, workers, over))
    except KeyboardInterrupt:
        sys.exit(130)
    except (HirondelleError, OperationalError) as exc:  # the parent reports the run's end
        detail = " ".join(str(getattr(exc, "orig", None) or exc).split())
        logging.getLogger(__name__).error("worker-%d stops: %s", index, detail)
        sys.exit(3)


async def _work(config: Config, run_id: int, index: int, workers: int, over: Event) -> None:
    store = open_store(config.state_url)
    audit = audit_for(config, run_id)
    try:
        async with assemble(config, store) as assembled:
            options = run_options(config, workers)
            worker = Worker(
                store,
                assembled.workloads,
                options,
                audit,
                Holder.here(f"local-{index}"),
                lease_seconds=config.lease_seconds,
                shared=assembled.shared,
                pool_run=run_id,
                pool_size=workers,
            )
            worker.start()

            async def pause(seconds: float) -> None:
                await asyncio.to_thread(over.wait, seconds)

            try:
                await worker.drain(run_id, wait=True, pause=pause)
            finally:
                await worker.stop()
    finally:
        audit.close()
        store.engine.dispose()


class LocalPool:
    """N worker processes for one run; a dead one is replaced while work remains."""

    def __init__(self, config: Config, run_id: int, count: int) -> None:
        self.config, self.run_id, self.count = config, run_id, count
        self._context = _context(config)
        self._processes: list[BaseProcess] = []
        self._started = 0
        self._level = logs.console_level()
        # Set once the command has seen the run's jobs end: idle workers leave at once.
        self._over = self._context.Event()

    def start(self) -> None:
        for _ in range(self.count):
            self._spawn()

    def _spawn(self) -> None:
        self._started += 1
        process = self._context.Process(
            target=child_main,
            args=(
                self.config,
                self.run_id,
                self._started,
                self.count,
                self._level,
                os.getpid(),
                self._over,
            ),
            name=f"hirondelle-worker-{self._started}",
            daemon=True,
        )
        process.start()
        self._processes.append(process)

    def check(self, open_jobs: int) -> None:
        """Note dead workers and start others while jobs remain, within a budget of
        restarts (twice the pool)."""
        dead = [p for p in self._processes if not p.is_alive()]
        for process in dead:
            self._processes.remove(process)
            if process.exitcode not in (0, None):
                log.warning(
                    "worker %s ended with %s: the others take its owners over",
                    process.name,
                    _exit(process.exitcode),
                )
        if not open_jobs:
            return
        for _ in range(self.count - len(self._processes)):
            if self._started >= 3 * self.count:
                if not self._processes:
                    raise FatalError(
                        "every worker process died, again and again: see the lines above; "
                        "run the same command again to resume"
                    )
                return
            self._spawn()

    async def pause(self, seconds: float) -> None:
        """Wait `seconds`, or until a worker process ends: when the run's last jobs end,
        its workers do, and the command sees it at once rather than on its next look."""
        sentinels = [process.sentinel for process in self._processes]
        if not sentinels:
            await asyncio.sleep(seconds)
            return
        await asyncio.to_thread(multiprocessing.connection.wait, sentinels, seconds)

    def stop(self) -> None:
        """Stop the workers (their running jobs end where they are; the state resumes them)."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        self._processes.clear()
        self._stop_server()

    def wait(self) -> None:
        """Wait for the workers once the run's jobs have ended; the idle ones are told,
        so that none waits for its next look at the run to leave."""
        self._over.set()
        for process in self._processes:
            process.join()
        self._processes.clear()
        self._stop_server()

    def _stop_server(self) -> None:
        """The next pool starts a new server, with the environment of that moment."""
        if self._context.get_start_method() == "forkserver":
            zygote.stop()


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {-code}"
    return f"exit code {code}"
