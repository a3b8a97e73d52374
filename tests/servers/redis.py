"""Redis for the cluster tests (the broker): `redis-server` without persistence on a free
port; `restart()` stops it and starts it again on the same port (what a broker restart
loses, a run must not)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path

from hirondelle.tests.servers.process import (
    HOST,
    Server,
    ServerUnavailable,
    free_port,
    poll,
    remove_root,
    running,
)


def _pong(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(Server):
    """A `redis-server` without persistence, for one test session (or one test)."""

    name = "Redis"
    stop_timeout = 15

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerUnavailable("redis-server is not installed: apt-get install redis-server")
        if self.root == Path():
            self.root = Path(tempfile.mkdtemp(prefix="hirondelle-redis-"))
            self.port = free_port()
        self._process = subprocess.Popen(
            [
                binary,
                "--bind",
                HOST,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--logfile",
                str(self.root / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self._start_timeout
        poll(lambda: _pong(self.port), deadline, "Redis did not start", self.root / "redis.log")

    def stop(self, remove: bool = True) -> None:
        self._stop_process()
        if remove:
            remove_root(self.root)

    def restart(self) -> None:
        """Stop and start again on the same port: everything queued is lost."""
        self.stop(remove=False)
        self.start()


def redis_server() -> AbstractContextManager[RedisServer]:
    return running(RedisServer())
