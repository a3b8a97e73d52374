"""IMAP target settings and connections: TLS always verified, plain text only on loopback."""

from __future__ import annotations

import imaplib
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .target_settings import HostLoginSettings

log = logging.getLogger(__name__)
_T = TypeVar("_T")

SPECIAL_FOLDERS = ("\\Sent", "\\Trash", "\\Drafts", "\\Junk", "\\Archive")


@dataclass(frozen=True, slots=True)
class ImapSettings(HostLoginSettings):
    """The `[targets.mail]` table for `kind = "imap"`. Holds no secret, only where to read it.

    Log in either with a per-user `password_file` (lines `login:password`, or CSV
    `login,password`) or as `master_user` on behalf of each user. `master_login` says how:
    "separator" sends the user name "{login}{master_separator}{master_user}" (Dovecot's
    master users, also through LOGIN); "authzid" authenticates as `master_user` with SASL
    PLAIN and names the user as the authorization identity (RFC 4616 section 2): Cyrus's
    `admins`/`proxyservers`, and Dovecot's master users as well.
    """

    host: str
    port: int = 993
    security: str = "tls"
    ca_file: Path | None = None  # None: the system trust store; verification stays on
    password_file: Path | None = None
    master_user: str | None = None
    master_password_env: str | None = None
    master_password_file: Path | None = None
    master_separator: str = "*"
    master_login: str = "separator"
    timeout: float = 60.0
    max_message_bytes: int | None = None
    batch_messages: int = 50  # MULTIAPPEND batch, in messages
    batch_bytes: int = 16 * 1024 * 1024  # and in bytes
    probe_login: str | None = None  # the login `check` uses with a master user
    config_key: str = "targets.mail"

    def __post_init__(self) -> None:
        self._check_host_logins("IMAP")


def _shutdown(conn: imaplib.IMAP4) -> None:
    """Close the socket, ignoring a connection that is already broken."""
    try:
        conn.shutdown()
    except OSError:
        pass


def connect(settings: ImapSettings) -> imaplib.IMAP4:
    """An open connection, TLS verified against `ca_file` or the system store."""
    if settings.security == "tls":
        return _no_delay(
            imaplib.IMAP4_SSL(
                settings.host,
                settings.port,
                ssl_context=settings.tls(),
                timeout=settings.timeout,
            )
        )
    conn = imaplib.IMAP4(settings.host, settings.port, timeout=settings.timeout)
    if settings.security == "starttls":
        try:
            conn.starttls(ssl_context=settings.tls())
        except BaseException:
            _shutdown(conn)
            raise
    return _no_delay(conn)


def _no_delay(conn: imaplib.IMAP4) -> imaplib.IMAP4:
    """A command is written in pieces (its literals as they are): the last, small piece
    goes out at once instead of waiting for the peer's acknowledgement (Nagle)."""
    try:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass
    return conn
