"""RabbitMQ for the cluster tests (the other broker Celery takes)."""

from __future__ import annotations

import os
import pwd
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
    port_open,
    running,
)


class RabbitMqServer(Server):
    """A private RabbitMQ node (Debian's `rabbitmq-server`) on a free 127.0.0.1 port, run as
    the `rabbitmq` system user; the `guest` account works from loopback. Erlang's port mapper
    (`epmd`), which the node starts when none runs, is left running: other nodes share it."""

    name = "RabbitMQ"
    start_timeout = 90

    def url(self, user: str = "guest") -> str:
        return f"amqp://{user}@{HOST}:{self.port}//"

    def start(self) -> None:
        binary = "/usr/lib/rabbitmq/bin/rabbitmq-server"
        if not Path(binary).exists():
            raise ServerUnavailable(
                "rabbitmq-server is not installed: apt-get install rabbitmq-server"
            )
        account = pwd.getpwnam("rabbitmq")
        self.root = Path(tempfile.mkdtemp(prefix="hirondelle-rabbitmq-"))
        self.port = free_port()
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq.conf").write_text("loopback_users.guest = true\n")
        for path in (self.root, self.root / "enabled_plugins", self.root / "rabbitmq.conf"):
            os.chown(path, account.pw_uid, account.pw_gid)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "RABBITMQ_NODENAME": f"hirondelle{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq"),
        }
        with open(self.root / "server.log", "wb") as log:
            self._process = subprocess.Popen(
                [binary],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=account.pw_uid,
                group=account.pw_gid,
                start_new_session=True,
            )
        deadline = time.monotonic() + self._start_timeout
        poll(self._ready, deadline, "RabbitMQ did not start", self.root / "server.log")

    def _ready(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise ServerUnavailable(f"rabbitmq-server exited with {self._process.returncode}")
        return port_open(self.port) and b"completed" in (self.root / "server.log").read_bytes()

    def _stop_process(self) -> None:
        """Its whole process group (the node's Erlang processes), SIGKILL after 60 seconds."""
        process, self._process = self._process, None
        if process is not None:
            try:
                os.killpg(process.pid, 15)
                process.wait(timeout=60)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, 9)
                process.wait()
            deadline = time.monotonic() + 30
            poll(lambda: not port_open(self.port), deadline, "RabbitMQ port stays open")


def rabbitmq_server() -> AbstractContextManager[RabbitMqServer]:
    return running(RabbitMqServer())
