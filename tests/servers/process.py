"""Launching, readiness and stopping of the test servers: a free port on 127.0.0.1, polling
with a deadline (never a sleep to wait), a stop by PID that waits until the port is closed."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self, TypeVar

HOST = "127.0.0.1"


class ServerUnavailable(RuntimeError):
    """The server cannot run on this machine; the message says what is missing."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((HOST, port)) == 0


def answers_http(port: int) -> bool:
    """True once the server answers an HTTP request (any status)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
    except OSError:
        return False
    finally:
        conn.close()
    return True


def poll(
    condition: Callable[[], bool], deadline: float, what: str, log: Path | None = None
) -> None:
    """Call `condition` until it is true; fail with the server log after `deadline`."""
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise ServerUnavailable(f"{what} (server log: {tail})")
        time.sleep(0.02)  # poll interval, not a wait for readiness


def spawn(
    command: list[str],
    log: Path,
    *,
    append: bool = False,
    env: dict[str, str] | None = None,
    new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a server process in the folder of its `log`, which takes its output."""
    with open(log, "ab" if append else "wb") as output:
        return subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            env=env,
            start_new_session=new_session,
        )


def check_running(process: subprocess.Popen[bytes] | None, name: str, log: Path) -> None:
    """Fail with the end of the server's log if its process has already exited."""
    if process is not None and process.poll() is not None:
        output = log.read_text(errors="replace")[-3000:]
        raise ServerUnavailable(f"{name} exited with {process.returncode}: {output}")


def stop_process(
    process: subprocess.Popen[bytes],
    port: int,
    name: str,
    *,
    timeout: float = 10,
    group: bool = False,
) -> None:
    """SIGTERM (to its whole process group if `group`; SIGKILL after `timeout` seconds) and
    wait until `port` is closed."""
    if group:
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    deadline = time.monotonic() + 10
    poll(lambda: not port_open(port), deadline, f"{name} port stays open")


def remove_root(root: Path) -> None:
    """Remove a server's temporary directory (`Path()`: it never made one)."""
    if root != Path() and root.exists():
        shutil.rmtree(root, ignore_errors=True)


class Server:
    """A server started for tests and stopped by PID; `with` starts and stops it.

    `start` sets `root` (its temporary directory), `port` and `_process`; `stop` ends the
    process (SIGTERM, to its whole group if `own_group`; SIGKILL after `stop_timeout`
    seconds), waits until the port is closed and removes `root`."""

    name = "server"  # in its messages (and in its directory's name where `start` says so)
    start_timeout: float = 15  # seconds `start` waits for it to answer, unless told otherwise
    stop_timeout: float = 10
    own_group = False  # the server's workers outlive their parent: start and stop a group

    def __init__(self, start_timeout: float | None = None) -> None:
        self.host = HOST
        self.port = 0
        self.root = Path()
        self._process: subprocess.Popen[bytes] | None = None
        self._start_timeout = self.start_timeout if start_timeout is None else start_timeout

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server by PID and wait until its port is closed; remove its directory."""
        self._stop_process()
        remove_root(self.root)

    def _stop_process(self) -> None:
        """Stop the running process, if any, keeping the directory and the port number."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(
                process, self.port, self.name, timeout=self.stop_timeout, group=self.own_group
            )

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


S = TypeVar("S", bound=Server)


@contextmanager
def running(server: S) -> Iterator[S]:
    """Start `server` for the duration of the block; stop it even when the start fails."""
    try:
        server.start()
        yield server
    finally:
        server.stop()
