"""What the CalDAV/CardDAV test servers share: users, life cycle, reading back."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from hirondelle.tests.servers.accounts import (
    MailUser,
    PasswordFiles,
    new_password,
    unique_name,
)
from hirondelle.tests.servers.process import (
    HOST,
    Server,
    answers_http,
    check_running,
    free_port,
    poll,
    port_open,
    running,
    spawn,
)


class DavServer(PasswordFiles, Server):
    """A CalDAV/CardDAV server for one test session, in its own temporary directory.

    Users are added while it runs (the server reads its users file again when it changes);
    `collections()` and `resources()` read back what it stored, straight from its storage
    folder, keyed by the collection's path under the user's folder. `ca_file` is the CA
    to trust when the server made its own (None: plain http, or a CA the test holds).
    """

    name = "dav"

    def __init__(
        self, users: Mapping[str, str] | None = None, *, start_timeout: float | None = None
    ) -> None:
        super().__init__(start_timeout)
        self._users = dict(users or {})
        self._lock = threading.Lock()
        self.ca_file: Path | None = None
        self._users_mtime_ns = 0

    @property
    def url(self) -> str:
        """The server root, e.g. "http://127.0.0.1:PORT/"."""
        return f"{'https' if self._serves_tls() else 'http'}://{HOST}:{self.port}/"

    def _serves_tls(self) -> bool:
        return False

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write the configuration files into `root` before the start."""

    def start(self) -> None:
        """Write the configuration, start the server, return once it answers."""
        self.root = Path(tempfile.mkdtemp(prefix=f"hirondelle-{self.name}-"))
        self.port = free_port()
        self._write_users()
        self.prepare()
        log = self.root / f"{self.name}.log"
        self._process = spawn(self.command(), log)
        deadline = time.monotonic() + self._start_timeout
        poll(self._ready, deadline, f"{self.name} did not start", log)

    def _ready(self) -> bool:
        check_running(self._process, self.name, self.root / f"{self.name}.log")
        return port_open(self.port) if self.url.startswith("https") else answers_http(self.port)

    # -- users --------------------------------------------------------------------------------

    def _user_line(self, login: str, password: str) -> str:
        return f"{login}:{password}\n"

    def _write_users(self) -> None:
        lines = "".join(self._user_line(login, pw) for login, pw in self._users.items())
        path = self.root / "users"
        fresh = path.with_suffix(".new")
        fresh.write_text(lines, encoding="utf-8")
        # Xandikos reads the file again when its mtime changes; two writes within one clock
        # tick of the file system would share an mtime, so each write moves it forward.
        self._users_mtime_ns = max(time.time_ns(), self._users_mtime_ns + 1_000_000)
        os.utime(fresh, ns=(self._users_mtime_ns, self._users_mtime_ns))
        fresh.replace(path)  # never a half-written users file

    def new_user(self) -> MailUser:
        """A fresh, unique user: tests do not see each other's calendars."""
        login = f"{unique_name()}@example.test"
        return self.add_user(login, new_password())

    def add_user(self, login: str, password: str) -> MailUser:
        """A user of the given login (the server reads its users file again)."""
        with self._lock:
            self._users[login] = password
            self._write_users()
        return MailUser(login, password)

    # -- reading back (straight from the storage folder) --------------------------------------

    def _user_dir(self, login: str) -> Path:
        raise NotImplementedError

    def _collection_props(self, folder: Path) -> dict[str, str] | None:
        raise NotImplementedError

    def collections(self, login: str) -> dict[str, dict[str, str]]:
        """Every collection of `login`: its path under the user's folder and its properties
        ("D:displayname", "tag": "VCALENDAR" or "VADDRESSBOOK")."""
        user_dir = self._user_dir(login)
        if not user_dir.is_dir():
            return {}
        found = {}
        for child in sorted(user_dir.rglob("*")):
            hidden = any(part.startswith(".") for part in child.relative_to(user_dir).parts)
            props = None if hidden or not child.is_dir() else self._collection_props(child)
            if props is not None:
                found[child.relative_to(user_dir).as_posix()] = props
        return found

    def resources(self, login: str, collection: str) -> dict[str, bytes]:
        """Every stored resource of one collection: file name -> exact stored bytes."""
        folder = self._user_dir(login) / collection
        if not folder.is_dir():
            return {}
        return {
            path.name: path.read_bytes()
            for path in sorted(folder.iterdir())
            if path.is_file() and not path.name.startswith(".")
        }


def dav_server(kind: type[DavServer], **options: Any) -> AbstractContextManager[DavServer]:
    """Start a DAV server of `kind` for the duration of the block."""
    return running(kind(**options))
