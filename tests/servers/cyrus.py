"""Cyrus IMAP 3.6 (Debian's `cyrus-common`, its `imapd` unpacked by `./test`)."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from hirondelle.connectors.imap_wire import quote
from hirondelle.tests.servers.accounts import (
    MailUser,
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
    remove_root,
    running,
    spawn,
)

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

    name = "Cyrus"
    start_timeout = 20
    delimiter = "."

    def __init__(self, *, altnamespace: bool = True, start_timeout: float | None = None) -> None:
        super().__init__(start_timeout)
        self._altnamespace = altnamespace
        self.master_user = MASTER_USER
        self.master_password = MASTER_PASSWORD
        self._syslog: _SyslogReceiver | None = None

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
        # a session of its own: `master` signals its whole process group when it stops,
        # which would stop another Cyrus of the same test run (and its imapd processes)
        self._process = spawn(command, self.root / "stdout.log", append=True, new_session=True)
        deadline = time.monotonic() + self._start_timeout
        poll(self._greets, deadline, "Cyrus did not start", self.root / "cyrus.log")

    def _greets(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            output = (self.root / "stdout.log").read_text(errors="replace")
            log = (self.root / "cyrus.log").read_text(errors="replace")[-2000:]
            raise ServerUnavailable(f"Cyrus exited with {self._process.returncode}: {output}{log}")
        return greeted(self.port)

    def stop(self) -> None:
        """Stop `master` (it stops its children) and wait until the port is closed."""
        self._stop_process()
        if self._syslog is not None:
            self._syslog.close()
            self._syslog = None
        remove_root(self.root)

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
        user = MailUser(f"{unique_name()}@example.test", new_password())
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


def cyrus_server(**options: Any) -> AbstractContextManager[CyrusServer]:
    """Start a `CyrusServer` for the duration of the block (options as its constructor)."""
    return running(CyrusServer(**options))
