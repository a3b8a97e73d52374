"""The local workers' fork server, forked from the command's own process.

multiprocessing's `forkserver` is a new interpreter that imports the workers' code once
more (about 1.2 s of CPU for a mail run, a quarter of what a run of empty mailboxes
costs). Forked from the command instead, before the command starts any thread, event
loop, state connection or log file, it holds everything the command has imported at no
cost, and still serves multiprocessing's own protocol: a worker is forked from it as
from the forkserver, with none of the command's threads, loops or open state.

The server is put in the place of multiprocessing's own (`multiprocessing.forkserver`
keeps it in private fields: `_forkserver_pid`, `_forkserver_address`,
`_forkserver_alive_fd`); where that is not possible, or where a thread already runs,
nothing is forked and multiprocessing starts its own server when the first worker is
asked for, as before.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import multiprocessing.util
import os
import signal
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

log = logging.getLogger(__name__)


def _server() -> Any:
    """multiprocessing's fork server record, when it has the fields this module sets
    (private ones: typed as Any), else None."""
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    fields = ("_forkserver_pid", "_forkserver_address", "_forkserver_alive_fd", "_stop")
    if server is None or not all(hasattr(server, name) for name in fields):
        return None
    return server


def start(preload: Iterable[str]) -> bool:
    """Import `preload` here, then fork the fork server from this process; False (nothing
    forked) where a thread already runs, a server is already there, this platform has
    no forkserver, or the fork is refused."""
    server = _server()
    if (
        server is None
        or "forkserver" not in multiprocessing.get_all_start_methods()
        or server._forkserver_pid is not None
        or threading.active_count() != 1
    ):
        return False
    for name in preload:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.freeze()  # what is here now, the workers too, before they touch it (see `forked`)
    connection: Any = multiprocessing.connection  # `arbitrary_address` is not in its stubs
    address = connection.arbitrary_address("AF_UNIX")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(address)
        if not multiprocessing.util.is_abstract_socket_namespace(address):
            os.chmod(address, 0o600)
        listener.listen()
        # the server ends when this process closes its end of `alive` (or dies)
        alive_r, alive_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:  # no process to spare now: multiprocessing may try later
            os.close(alive_r)
            os.close(alive_w)
            log.debug("no fork server forked from the command: %s", exc)
            return False
        if pid == 0:  # pragma: no cover - the fork server itself (the tests observe it)
            _serve(listener.fileno(), alive_r, alive_w)
        os.close(alive_r)
    server._forkserver_address = address
    server._forkserver_alive_fd = alive_w
    server._forkserver_pid = pid
    log.debug("local workers' fork server %d forked from the command", pid)
    return True


def _serve(listener_fd: int, alive_r: int, alive_w: int) -> None:
    """The fork server's body; never returns into the command's code."""
    code = 0
    try:
        os.close(alive_w)
        # A worker starts as a fresh interpreter would: SIGTERM ends it (the command
        # raises on it), Ctrl-C raises KeyboardInterrupt, no wakeup fd, no log handler
        # (each worker sets its own up).
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        multiprocessing.forkserver.main(listener_fd, alive_r, [])
    except SystemExit as exc:  # the command closed `alive`
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # noqa: BLE001 - nothing may unwind into the command's frames
        code = 1
    finally:
        os._exit(code)


def stop() -> None:
    """Stop the fork server (whichever started it) and wait for it, so that its CPU time
    and its workers' count in this process's own (`wait4`)."""
    server = _server()
    if server is not None:
        server._stop()


@contextlib.contextmanager
def forked(preload: Iterable[str], wanted: bool) -> Iterator[None]:
    """A fork server forked from this process for the length of the block, when
    `wanted`; stopped at the end whether or not a worker was asked for.

    What the command holds by then, its modules above all, lives as long as it does:
    it is moved out of the garbage collector's sight (`gc.freeze`, before the fork, as
    https://docs.python.org/3/library/gc.html#gc.freeze advises), so that neither a
    collection in a worker nor one in the command walks it again. The collections
    Python runs when the command exits walked it for about 0.3 s of CPU after a mail
    run; a full collection, for 70 ms.
    """
    started = wanted and start(preload)
    if not started:
        gc.freeze()
    try:
        yield
    finally:
        if started:
            stop()
