"""Dovecot 2.3: a throwaway IMAP server on a free 127.0.0.1 port, with Pigeonhole's Sieve.

`DovecotServer` writes a configuration into a fresh temporary directory, starts
`dovecot -F` (root is needed: mail belongs to the `vmail` system user), waits until the
IMAP greeting arrives, and stops by PID, waiting for the port to close. Users live in a
passwd-file that Dovecot re-reads when it changes, so tests add users while it runs;
a master user (`admin`) can log in as any of them ("alice@example.test*admin").

The same server speaks ManageSieve (RFC 5804) on `sieve_port` and LMTP (RFC 2033) on
`lmtp_port`; LMTP delivery runs each user's active Sieve script (`~/sieve/<name>.sieve`,
the active one linked from `~/.dovecot.sieve`). What Sieve sends (vacation replies,
redirects) goes to a script standing in for sendmail that keeps each message in `outbox/`:

    with dovecot_server(users={"alice@example.test": "alicepw"}) as server:
        user = server.new_user(quota_bytes=10_000)
        messages = server.read_mailbox(user.login, "INBOX")
        server.put_sieve(user.login, "main", 'require "fileinto"; fileinto "Junk";')
        server.deliver(user.login, b"From: bob@example.org\r\n...")
        replies = server.sent()
"""

from __future__ import annotations

import os
import pwd
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
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
    port_open,
    running,
    spawn,
)

PIGEONHOLE = {
    "dovecot-sieve": "/usr/lib/dovecot/modules/lib90_sieve_plugin.so",
    "dovecot-managesieved": "/usr/lib/dovecot/managesieve",
    "dovecot-lmtpd": "/usr/lib/dovecot/lmtp",
}

# Stands in for sendmail(8) when Sieve sends a message (vacation, redirect): Dovecot runs
# `sendmail_path -i -f <envelope sender> -- <recipients>` with the message on stdin
# (https://doc.dovecot.org/2.3/settings/core/#core_setting-sendmail_path). Each message is
# kept as outbox/<n>.eml, its arguments in outbox/<n>.args, written before the .eml appears.
SENDMAIL_SCRIPT = """#!/bin/sh
name="$(date +%s%N)-$$"
printf '%s\\n' "$@" > "{outbox}/$name.args"
cat > "{outbox}/$name.tmp" && mv "{outbox}/$name.tmp" "{outbox}/$name.eml"
"""


@dataclass(frozen=True)
class SentMessage:
    """A message Sieve sent (a vacation reply, a redirect): envelope and bytes."""

    sender: str  # the envelope sender ("" for the null sender "<>")
    recipients: tuple[str, ...]
    content: bytes


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
        self.sieve_port = 0
        self.lmtp_port = 0
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
        missing = [package for package, path in PIGEONHOLE.items() if not Path(path).exists()]
        if missing:
            raise ServerUnavailable(f"apt-get install {' '.join(missing)}")
        vmail = ensure_vmail()
        self.root = Path(tempfile.mkdtemp(prefix="hirondelle-dovecot-"))
        self.root.chmod(0o755)
        for folder in ("mail", "outbox"):
            (self.root / folder).mkdir()
            os.chown(self.root / folder, vmail.pw_uid, vmail.pw_gid)
        sendmail = self.root / "sendmail"
        sendmail.write_text(SENDMAIL_SCRIPT.format(outbox=self.root / "outbox"), "utf-8")
        sendmail.chmod(0o755)
        self.port = free_port()
        self.tls_port = free_port() if self._tls else None
        self.sieve_port = free_port()
        self.lmtp_port = free_port()
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
        # the master process opens every listener before it forks: one greeting says all are up
        return greeted(self.port) and port_open(self.sieve_port) and port_open(self.lmtp_port)

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

    # -- Sieve, delivery and what Sieve sends ---------------------------------------------------

    def home(self, login: str) -> Path:
        """The user's home: `sieve/` holds the scripts, `.dovecot.sieve` links to the active
        one, `.dovecot.sieve.log` holds the runtime errors of delivery."""
        return self.root / "mail" / login

    def doveadm(self, *arguments: str, stdin: bytes = b"") -> bytes:
        """Run `doveadm` on this server; its error text on failure (AssertionError)."""
        done = subprocess.run(
            ["doveadm", "-c", str(self.root / "dovecot.conf"), *arguments],
            input=stdin,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"doveadm {' '.join(arguments)}: {done.returncode} {done.stderr.decode()}"
            )
        return done.stdout

    def put_sieve(self, login: str, name: str, script: str, *, active: bool = True) -> None:
        """Store a Sieve script for `login` (compiled: a script Pigeonhole refuses fails with
        its error text), active unless told otherwise."""
        flags = ("-a",) if active else ()
        self.doveadm("sieve", "put", *flags, "-u", login, name, stdin=script.encode("utf-8"))

    def sieve_scripts(self, login: str) -> dict[str, bool]:
        """The scripts of `login`: name -> active."""
        listed = self.doveadm("sieve", "list", "-u", login).decode("utf-8")
        scripts = {}
        for line in filter(None, listed.splitlines()):
            name, active = line.removesuffix(" ACTIVE"), line.endswith(" ACTIVE")
            scripts[name] = active
        return scripts

    def sieve_script(self, login: str, name: str) -> str:
        """The text of one script of `login`, as stored."""
        return (self.home(login) / "sieve" / f"{name}.sieve").read_text("utf-8")

    def deliver(self, recipient: str, message: bytes, sender: str = "sender@example.org") -> None:
        """Deliver `message` to `recipient` through LMTP, which runs the active Sieve script;
        fails when the recipient is refused or the data is not accepted."""
        with smtplib.LMTP(HOST, self.lmtp_port, timeout=30) as lmtp:
            refused = lmtp.sendmail(sender, [recipient], message)
        assert not refused, refused

    def sent(self, recipient: str | None = None) -> list[SentMessage]:
        """What Sieve sent so far (vacation replies, redirects), oldest first; only what
        went to `recipient` if given."""
        messages = []
        for eml in sorted((self.root / "outbox").glob("*.eml")):
            arguments = eml.with_suffix(".args").read_text("utf-8").splitlines()
            # sendmail_path -i -f <sender> -- <recipient>...
            sender = arguments[arguments.index("-f") + 1] if "-f" in arguments else ""
            recipients = arguments[arguments.index("--") + 1 :] if "--" in arguments else []
            sender = "" if sender == "<>" else sender
            if recipient is None or recipient in recipients:
                messages.append(SentMessage(sender, tuple(recipients), eml.read_bytes()))
        return messages

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
            f"protocols = imap sieve lmtp\nlisten = {HOST}\n"
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
            f"{self._sieve_config()}"
        )

    def _sieve_config(self) -> str:
        """ManageSieve and LMTP listeners, Sieve on delivery, sendmail replaced by the
        script that keeps what is sent in outbox/."""
        listener = "  inet_listener {} {{\n    address = {}\n    port = {}\n  }}\n}}\n"
        return (
            "service managesieve-login {\n"
            f"{listener.format('sieve', HOST, self.sieve_port)}"
            "service lmtp {\n"
            f"{listener.format('lmtp', HOST, self.lmtp_port)}"
            "protocol sieve {\n  mail_max_userip_connections = 100\n}\n"
            "protocol lmtp {\n  mail_plugins = $mail_plugins sieve\n"
            "  postmaster_address = postmaster@example.test\n}\n"
            f"sendmail_path = {self.root}/sendmail\n"
            "plugin {\n  sieve = file:~/sieve;active=~/.dovecot.sieve\n}\n"
        )


def dovecot_server(
    users: Mapping[str, str] | None = None, **options: Any
) -> AbstractContextManager[DovecotServer]:
    """Start a `DovecotServer` for the duration of the block (options as its constructor)."""
    return running(DovecotServer(users, **options))
