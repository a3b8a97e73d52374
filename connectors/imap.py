"""The IMAP target: mail lands in any IMAP4rev1 server (Dovecot, Cyrus, Stalwart...).

Idempotency rests on three things. APPEND carries the flags and the INTERNALDATE, and the
UIDPLUS `APPENDUID` code (RFC 4315) gives the target ref "<uidvalidity>:<uid>" at once.
`find` recovers what an interrupted attempt wrote: `UID SEARCH HEADER Message-ID`, or a
size search plus a content digest for messages without one. A stored ref is trusted only
while the folder keeps its UIDVALIDITY (RFC 3501 section 2.3.1.1).

Blocking on purpose (stdlib `imaplib`): the engine runs each session in a worker thread.
Certificates are always verified; plain text is accepted only on the loopback interface.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TypeVar

from ..migrator.errors import HirondelleError
from ..migrator.model import Capabilities, Owner
from .credentials import Credentials, read_password_file  # noqa: F401 - re-exported
from .imap_session import ImapSession
from .imap_settings import (
    SPECIAL_FOLDERS,
    ImapSettings,
    connect,
)
from .imap_wire import Login

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_FINDINGS = {
    "UIDPLUS": "no UIDPLUS (RFC 4315): every APPEND is followed by a search for its UID",
    "SPECIAL-USE": "no SPECIAL-USE (RFC 6154): well-known folders get default names (Sent...)",
    "MOVE": "no MOVE (RFC 6851): moves use COPY, \\Deleted and EXPUNGE",
    "MULTIAPPEND": "no MULTIAPPEND (RFC 3502): one round trip per message",
    "LITERAL+": "no LITERAL+ (RFC 7888): two round trips per message",
}


@dataclass
class ImapTarget:
    """The `Target` for IMAP servers: `open(owner)` logs in as the owner's target login."""

    settings: ImapSettings
    capabilities: Capabilities = field(init=False)
    _passwords: dict[str, str] | None = field(init=False, default=None, repr=False)
    _master_password: str | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.capabilities = Capabilities(
            server_assigned_ids=True,
            keeps_timestamps=True,
            max_item_bytes=self.settings.max_message_bytes,
            checksums=False,
            moves=True,
            special_folders=SPECIAL_FOLDERS,
            limit_setting=self.settings.setting("max_message_bytes"),
        )
        settings = self.settings
        self.credentials = Credentials.per_user_or_master(
            settings, authzid=settings.master_login == "authzid"
        )

    def login_for(self, login: str) -> Login:
        """How to log in as `login`: the user's own password, or the master user's."""
        return self.credentials.login_for(login)

    def _session(self, login: Login) -> ImapSession:
        return ImapSession(dial=lambda: connect(self.settings), login=login, settings=self.settings)

    def open(self, owner: Owner) -> ImapSession:
        """A logged-in session for `owner` (login = target_login, else the UPN)."""
        session = self._session(self.login_for(owner.target_login or owner.upn))
        session.connect()
        return session

    def check(self) -> list[str]:
        """Findings for `doctor`: connection, TLS, login, missing extensions."""
        login = self.credentials.probe(self.settings.probe_login)
        if login is None:
            return [
                f"set {self.settings.setting('probe_login')} to a mailbox login so that "
                "doctor can log in and check the server's extensions"
            ]
        session = self._session(login)
        try:
            session.connect()
        except HirondelleError as error:
            return [f"IMAP {self.settings.host}:{self.settings.port}: {error}"]
        try:
            return capability_findings(session.server_caps)
        finally:
            session.close()


def capability_findings(capabilities: frozenset[str]) -> list[str]:
    """What the migration loses on a server lacking some extensions (empty: nothing)."""
    return [text for name, text in _FINDINGS.items() if name not in capabilities]
