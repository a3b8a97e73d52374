"""What the WebDAV file test servers share: a folder per user, Basic authentication."""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from hirondelle.tests.servers.accounts import (
    MailUser,
    PasswordFiles,
    new_password,
    sha_htpasswd_line,
)
from hirondelle.tests.servers.process import (
    Server,
    ServerUnavailable,
    answers_http,
    check_running,
    free_port,
    poll,
    running,
    spawn,
)


class WebDavServer(PasswordFiles, Server):
    """A WebDAV file server for one test session: a folder per user, Basic authentication.

    Users are created before the server starts (wsgidav reads its users once): `new_user()`
    hands out one of `spare_users` fresh users, so tests do not see each other's files.
    The user's files are at `url_for(login)`; `path_of(login, relative)` is the same file
    on the server's disk, for assertions on what the protocol cannot show (mtimes).
    """

    name = "webdav"
    owner_uid: int | None = None  # the account the server writes files as (Apache: www-data)
    start_timeout = 20
    stop_timeout = 15

    def __init__(self, *, spare_users: int = 40, start_timeout: float | None = None) -> None:
        super().__init__(start_timeout)
        self._spares = [
            MailUser(f"dav{n}-{uuid.uuid4().hex[:8]}@example.test", new_password())
            for n in range(spare_users)
        ]
        self._users = {spare.login: spare.password for spare in self._spares}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The URL template of a user's files, for `WebDavSettings.url`."""
        return f"http://{self.host}:{self.port}/{{login}}/"

    def url_for(self, login: str) -> str:
        return self.url.replace("{login}", login)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def path_of(self, login: str, relative: str = "") -> Path:
        """Where the server keeps `relative` (a "/"-separated path) of `login` on disk."""
        return self.data_dir.joinpath(login, *[p for p in relative.split("/") if p])

    def new_user(self) -> MailUser:
        with self._lock:
            if not self._spares:
                raise ServerUnavailable(f"{self.name}: no spare user left; raise spare_users")
            return self._spares.pop()

    def htpasswd(self) -> str:
        """The users as htpasswd lines ({SHA} scheme: no salt, tests only)."""
        return "".join(sha_htpasswd_line(login, pw) for login, pw in self._users.items())

    # -- life cycle ---------------------------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write the server's configuration files under `self.root`."""

    def environment(self) -> dict[str, str] | None:
        """The server process's environment (None: this process's)."""
        return None

    def start(self) -> None:
        """Create a folder per user, start the server, return once it answers HTTP."""
        self.root = Path(tempfile.mkdtemp(prefix=f"hirondelle-{self.name}-"))
        self.root.chmod(0o755)
        self.port = free_port()
        for login in self._users:
            (self.data_dir / login).mkdir(parents=True)
        self.prepare()
        if self.owner_uid is not None:
            for directory, _, files in os.walk(self.data_dir):
                for name in [directory, *(os.path.join(directory, f) for f in files)]:
                    os.chown(name, self.owner_uid, self.owner_uid)
        self._process = spawn(
            self.command(),
            self.root / "server.log",
            env=self.environment(),
            new_session=self.own_group,
        )
        deadline = time.monotonic() + self._start_timeout
        poll(self._ready, deadline, f"{self.name} did not start", self.root / "server.log")

    def _ready(self) -> bool:
        check_running(self._process, self.name, self.root / "server.log")
        return answers_http(self.port)


def webdav_server(kind: type[WebDavServer], **options: Any) -> AbstractContextManager[WebDavServer]:
    """Start a WebDAV server of `kind` for the duration of the block."""
    return running(kind(**options))
