"""Dovecot 2.3: a throwaway IMAP server on a free 127.0.0.1 port.

`DovecotServer` writes a configuration into a fresh temporary directory, starts
`dovecot -F` (root is needed: mail belongs to the `vmail` system user), waits until the
IMAP greeting arrives, and stops by PID, waiting for the port to close. Users live in a
passwd-file that Dovecot re-reads when it changes, so tests add users while it runs;
a master user (`admin`) can log in as any of them ("alice@example.test*admin").

    with dovecot_server(users={"alice@example.test": "alicepw"}) as server:
        user = server.new_user(quota_bytes=10_000)
        messages = server.read_mailbox(user.login, "INBOX")
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from hirondelle.tests.servers.accounts import (
    MailUser,
    TlsFiles,
    new_password,
    unique_name,
)
from hirondelle.tests.servers.imap import (
    MASTER_PASSWORD,
    MASTER_USER,
    STANDARD_SPECIAL_USE,
    ImapReadBack,
    greeted,
)
from hirondelle.tests.servers.process import (
    HOST,
    ServerUnavailable,
    free_port,
    poll,
    running,
    spawn,
)


def ensure_vmail() -> pwd.struct_passwd:
    """The `vmail` system user, added when missing. Test processes that start Dovecot at
    the same moment (pytest-xdist workers) may both add it: useradd's exit status 9 ("user
    already exists", useradd(8)) means another one did."""
    try:
        return pwd.getpwnam("vmail")
    except KeyError:
        added = subprocess.run(
            ["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", "vmail"],
            capture_output=True,
            text=True,
        )
        if added.returncode not in (0, 9):
            raise ServerUnavailable(f"useradd vmail failed: {added.stderr.strip()}") from None
        return pwd.getpwnam("vmail")


class DovecotServer(ImapReadBack):
    """A Dovecot 2.3 IMAP server for one test session, in its own temporary directory."""

    name = "Dovecot"
    master_login = "separator"  # "login*admin"; Dovecot takes the SASL authzid form too

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        quotas: Mapping[str, int] | None = None,
        max_message_bytes: int | None = None,
        tls: TlsFiles | None = None,
        special_use: Mapping[str, str] = STANDARD_SPECIAL_USE,
        start_timeout: float | None = None,
        spare_users: int = 300,
    ) -> None:
        super().__init__(start_timeout)
        self.tls_port: int | None = None
        self.master_user = MASTER_USER
        self.master_password = MASTER_PASSWORD
        self._users = dict(users or {})
        self._spares = [
            MailUser(f"spare{n}-{uuid.uuid4().hex[:8]}@example.test", new_password())
            for n in range(spare_users)
        ]
        self._users.update((spare.login, spare.password) for spare in self._spares)
        self._quotas = dict(quotas or {})
        self._max_message_bytes = max_message_bytes
        self._tls = tls
        self._special_use = dict(special_use)
        self._lock = threading.Lock()
        self._users_stamp = 0
        self._binary = "dovecot"

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Write the configuration, start Dovecot, return once it greets clients."""
        binary = shutil.which("dovecot") or (
            "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
        )
        if binary is None:
            raise ServerUnavailable("dovecot is not installed: apt-get install dovecot-imapd")
        if os.geteuid() != 0:
            raise ServerUnavailable("the Dovecot test server must run as root")
        vmail = ensure_vmail()
        self.root = Path(tempfile.mkdtemp(prefix="hirondelle-dovecot-"))
        self.root.chmod(0o755)
        (self.root / "mail").mkdir()
        os.chown(self.root / "mail", vmail.pw_uid, vmail.pw_gid)
        self.port = free_port()
        self.tls_port = free_port() if self._tls else None
        self._write_secrets()
        (self.root / "dovecot.conf").write_text(self._config(), encoding="utf-8")
        self._binary = binary
        self._launch()

    def _launch(self) -> None:
        command = [self._binary, "-F", "-c", str(self.root / "dovecot.conf")]
        self._process = spawn(command, self.root / "stdout.log", append=True)
        deadline = time.monotonic() + self._start_timeout
        poll(self._greets, deadline, "Dovecot did not start", self.root / "dovecot.log")

    def pause(self) -> None:
        """Stop the server as a crash or a restart would, keeping its mail and its port."""
        self._stop_process()

    def resume(self) -> None:
        """Start it again after `pause`, on the same port with the same mail."""
        self._launch()

    def _greets(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            output = (self.root / "stdout.log").read_text(errors="replace")
            raise ServerUnavailable(f"dovecot exited with {self._process.returncode}: {output}")
        return greeted(self.port)

    # -- users --------------------------------------------------------------------------------

    def add_user(
        self,
        login: str,
        password: str,
        quota_bytes: int | None = None,
        max_message_bytes: int | None = None,
    ) -> MailUser:
        """Add a mailbox while the server runs; returns once Dovecot accepts its login.

        Dovecot looks at the passwd-file at most once a second, so this can take a second;
        `new_user()` without limits is instant (it hands out a spare user).
        """
        with self._lock:
            self._users[login] = password
            line = self._user_line(login, password, quota_bytes, max_message_bytes)
            with open(self.root / "users", "a", encoding="utf-8") as users:
                users.write(line)
            # Dovecot re-reads the file when its mtime (in whole seconds) changes
            self._users_stamp = max(int(time.time()), self._users_stamp + 1)
            os.utime(self.root / "users", (self._users_stamp, self._users_stamp))
        deadline = time.monotonic() + 5
        poll(lambda: self._accepts(login, password), deadline, f"{login} cannot log in")
        return MailUser(login, password)

    def _accepts(self, login: str, password: str) -> bool:
        """True once Dovecot's auth process knows `login` (asked without a login attempt,
        since failed logins are answered slowly)."""
        lookup = subprocess.run(
            ["doveadm", "-c", str(self.root / "dovecot.conf"), "user", "-f", "uid", login],
            capture_output=True,
            check=False,
        )
        return lookup.returncode == 0

    def new_user(
        self, quota_bytes: int | None = None, max_message_bytes: int | None = None
    ) -> MailUser:
        """A fresh, unique mailbox: tests do not see each other's mail."""
        if quota_bytes is None and max_message_bytes is None:
            with self._lock:
                if self._spares:
                    return self._spares.pop()
        login = f"{unique_name()}@example.test"
        return self.add_user(login, new_password(), quota_bytes, max_message_bytes)

    @staticmethod
    def _user_line(
        login: str, password: str, quota_bytes: int | None, max_message_bytes: int | None
    ) -> str:
        extra = []
        if quota_bytes is not None:
            extra.append(f"userdb_quota_rule=*:bytes={quota_bytes}")
        if max_message_bytes is not None:
            extra.append(f"userdb_quota_max_mail_size={max_message_bytes}")
        return f"{login}:{{PLAIN}}{password}::::::{' '.join(extra)}\n"

    def _write_secrets(self) -> None:
        dovecot = pwd.getpwnam("dovecot")
        lines = [
            self._user_line(login, password, self._quotas.get(login), None)
            for login, password in self._users.items()
        ]
        for name, text in (
            ("users", "".join(lines)),
            ("master", f"{self.master_user}:{{PLAIN}}{self.master_password}\n"),
        ):
            path = self.root / name
            path.write_text(text, encoding="utf-8")
            os.chown(path, dovecot.pw_uid, dovecot.pw_gid)
            path.chmod(0o640)

    # -- configuration ------------------------------------------------------------------------

    def _config(self) -> str:
        root = self.root
        mailboxes = "".join(
            f'  mailbox "{name}" {{\n    special_use = {attribute}\n    auto = subscribe\n  }}\n'
            for attribute, name in self._special_use.items()
        )
        limit = f"  quota_max_mail_size = {self._max_message_bytes}\n"
        tls = self._tls
        ssl = (
            f"ssl = yes\nssl_cert = <{tls.cert_chain}\nssl_key = <{tls.private_key}\n"
            if tls
            else "ssl = no\n"
        )
        return (
            f"protocols = imap\nlisten = {HOST}\n"
            f"base_dir = {root}/run\nstate_dir = {root}/state\nlog_path = {root}/dovecot.log\n"
            f"{ssl}disable_plaintext_auth = no\nauth_mechanisms = plain login\n"
            "auth_failure_delay = 0\nauth_master_user_separator = *\n"
            f"mail_location = maildir:{root}/mail/%u/Maildir\n"
            "mail_plugins = $mail_plugins quota\n"
            f"namespace inbox {{\n  inbox = yes\n  separator = /\n{mailboxes}}}\n"
            "passdb {\n  driver = passwd-file\n  master = yes\n  pass = yes\n"
            f"  args = scheme=PLAIN username_format=%u {root}/master\n}}\n"
            "passdb {\n  driver = passwd-file\n"
            f"  args = scheme=PLAIN username_format=%u {root}/users\n}}\n"
            "userdb {\n  driver = passwd-file\n"
            f"  args = username_format=%u {root}/users\n"
            f"  default_fields = uid=vmail gid=vmail home={root}/mail/%u\n}}\n"
            "plugin {\n  quota = count:User quota\n  quota_vsizes = yes\n"
            f"{limit if self._max_message_bytes else ''}}}\n"
            "service imap-login {\n"
            f"  inet_listener imap {{\n    address = {HOST}\n    port = {self.port}\n  }}\n"
            f"  inet_listener imaps {{\n    address = {HOST}\n    port = {self.tls_port or 0}\n"
            f"    ssl = {'yes' if tls else 'no'}\n  }}\n}}\n"
            # no brute-force penalty after the tests' deliberately failed logins
            "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n"
            "protocol imap {\n  mail_max_userip_connections = 100\n"
            "  mail_plugins = $mail_plugins imap_quota\n}\n"
        )


def dovecot_server(
    users: Mapping[str, str] | None = None, **options: Any
) -> AbstractContextManager[DovecotServer]:
    """Start a `DovecotServer` for the duration of the block (options as its constructor)."""
    return running(DovecotServer(users, **options))
