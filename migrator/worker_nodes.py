"""`hirondelle worker`: this machine's Celery nodes, one process per core by default.

With one process the node runs here. With several, each is a child
`hirondelle worker --processes 1` named NAME-1@HOST, NAME-2@HOST...; the parent passes
SIGTERM and Ctrl-C on (each child then gives its running owners back to the queue and
stops), restarts a child that dies while the parent runs, and takes its children with
it when it dies itself, even by kill -9.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from .config import Config

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
RESTART_PAUSE_S = 5.0


def node_names(name: str | None, processes: int) -> list[str]:
    """Celery node names (NAME@HOST): one per process."""
    base, _, host = (name or "hirondelle").partition("@")
    host = host or socket.gethostname()
    if processes == 1:
        return [f"{base}@{host}"]
    return [f"{base}-{n}@{host}" for n in range(1, processes + 1)]


def serve(
    config: Config,
    config_path: Path,
    processes: int,
    name: str | None,
    owners: int,
    verbose: int,
) -> None:
    """Run this machine's nodes until SIGTERM or Ctrl-C."""
    loglevel = ["WARNING", "INFO", "DEBUG"][min(verbose, 2)]
    names = node_names(name, processes)
    if processes == 1:
        from .cluster import run_node

        run_node(config, names[0], owners, loglevel)
        return
    base = [sys.executable, "-m", "hirondelle.cli", "-c", str(config_path)]
    base += ["-v"] * verbose
    commands = {
        node: [*base, "worker", "--processes", "1", "--name", node, "--owners", str(owners)]
        for node in names
    }
    code = Supervisor(commands).run()
    if code:
        raise SystemExit(code)


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class Supervisor:
    """Keeps one child per command alive until told to stop."""

    def __init__(self, commands: dict[str, list[str]]) -> None:
        self.commands = commands
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def run(self) -> int:
        """Until SIGTERM or Ctrl-C (0); or the exit code of a child that stopped on an error
        a restart cannot cure (2: configuration, 3: fatal, e.g. the state unreachable)."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        restart_at: dict[str, float] = {}
        try:
            for node in self.commands:
                self._start(node)
            while not self.stopping:
                time.sleep(0.2)
                for node, child in list(self.children.items()):
                    code = child.poll()
                    if code is None or self.stopping:
                        continue
                    if code in (2, 3):
                        log.error("node %s stopped on an error (exit %d): see above", node, code)
                        return code
                    due = restart_at.get(node)
                    if due is None:
                        log.warning("node %s ended with %s: restarting it", node, code)
                        restart_at[node] = time.monotonic() + RESTART_PAUSE_S
                    elif time.monotonic() >= due:
                        del restart_at[node]
                        self._start(node)
            return 0
        finally:
            for child in self.children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in self.children.values():
                try:
                    child.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _start(self, node: str) -> None:
        # Its own session: Ctrl-C reaches the parent only, which stops the nodes in order.
        self.children[node] = subprocess.Popen(
            self.commands[node], preexec_fn=_die_with_parent, start_new_session=True
        )

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
