"""The ManageSieve target (RFC 5804): each user's inbox rules and automatic replies as one
Sieve script (RFC 5228) on Dovecot/Pigeonhole, Cyrus, Stalwart...

The script is checked (CHECKSCRIPT), stored (PUTSCRIPT) and made active (SETACTIVE) unless
the user already has an active script: then `when_active` says whether that script gets
an `include` of ours or ours stays inactive (see `managesieve_session`). The server's
Sieve extensions (its SIEVE capability, sent before any login) are read once and handed to
the mapping, which keeps as comments what the server cannot run.

Blocking on purpose: the engine runs each session in a worker thread. Certificates are
always verified; plain text is accepted only on the loopback interface.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ..migrator.errors import HirondelleError
from ..migrator.model import Capabilities, Owner
from .credentials import Credentials, Login
from .managesieve_session import ManageSieveSession
from .managesieve_settings import SCRIPT_CAPABILITIES, ManageSieveSettings, dial

__all__ = ["ManageSieveSession", "ManageSieveSettings", "ManageSieveTarget"]

DIAL_FAILURE_SECONDS = 60.0  # a failed read of the extensions is not tried again before

# What the migrated scripts lose on a server without an extension (for `doctor`).
_LOST_WITHOUT = {
    "fileinto": "rules that move messages to a folder",
    "imap4flags": "rules that flag or mark messages as read",
    "copy": "rules that copy messages to a folder",
    "mailbox": "folders created on delivery (:create)",
    "vacation": "automatic replies",
    "date": "the scheduled window of automatic replies",
    "relational": "the scheduled window of automatic replies",
    "envelope": "conditions on the sender and recipients of the envelope",
    "body": "conditions on the message body",
}


@dataclass
class ManageSieveTarget:
    """The `Target` for ManageSieve servers: `open(owner)` logs in as the owner's login."""

    settings: ManageSieveSettings
    capabilities: Capabilities = field(default=SCRIPT_CAPABILITIES, init=False)
    _extensions: frozenset[str] | None = field(init=False, default=None, repr=False)
    _known: bool = field(init=False, default=False, repr=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)
    _dialing: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)
    _failure: tuple[float, HirondelleError] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.credentials = Credentials.per_user_or_master(
            self.settings, authzid=self.settings.master_login == "authzid"
        )

    @property
    def placement(self) -> str:
        """The settings that decide where the script goes: part of each item's version, so
        that changing one writes every script again (`connectors.graph.rules`)."""
        return f"{self.settings.script_name}\n{self.settings.when_active}"

    def login_for(self, login: str) -> Login:
        return self.credentials.login_for(login)

    def open(self, owner: Owner) -> ManageSieveSession:
        """A logged-in session for `owner` (login = target_login, else the UPN)."""
        session = ManageSieveSession(self, self.login_for(owner.target_login or owner.upn))
        session.connect()
        return session

    def learned(self, capabilities: dict[str, str]) -> None:
        """Keep the server's Sieve extensions from a greeting (the first one wins)."""
        with self._lock:
            if not self._known:
                sieve = capabilities.get("SIEVE")
                self._extensions = frozenset(sieve.split()) if sieve is not None else None
                self._known = True

    def server_extensions(self) -> frozenset[str] | None:
        """The server's Sieve extensions (its SIEVE capability), read once; None when the
        server does not list them. Needs no login: the greeting carries them.

        Blocking (the rules source calls it from a worker thread before the mapping needs
        it). One caller dials at a time; a failed dial is remembered for
        `DIAL_FAILURE_SECONDS`, during which every caller gets the same error at once, so
        that a server that does not answer costs one `timeout`, not one per owner."""
        with self._dialing:
            if self._known:
                return self._extensions
            if self._failure is not None and time.monotonic() < self._failure[0]:
                raise type(self._failure[1])(str(self._failure[1]))
            try:
                wire, capabilities = dial(self.settings)
            except HirondelleError as error:
                failed = type(error)(
                    f"the Sieve extensions of the {self.settings.where} could not be read "
                    f"({error}); tried again after {DIAL_FAILURE_SECONDS:.0f} s"
                )
                self._failure = (time.monotonic() + DIAL_FAILURE_SECONDS, failed)
                raise failed from error
            wire.close()
            self._failure = None
            self.learned(capabilities)
        return self._extensions

    def check(self) -> list[str]:
        """Findings for `doctor`: connection, TLS, missing extensions, login."""
        try:
            extensions = self.server_extensions()
        except HirondelleError as error:
            return [str(error)]
        findings = []
        if extensions is not None:
            needed = dict(_LOST_WITHOUT)
            if self.settings.when_active == "include":
                needed["include"] = (
                    f"the include of {self.settings.script_name!r} from a user's active script "
                    f'(set {self.settings.setting("when_active")} = "leave")'
                )
            findings += [
                f"{self.settings.where} has no Sieve {name!r}: {lost} are not carried"
                for name, lost in needed.items()
                if name not in extensions
            ]
        login = self.credentials.probe(self.settings.probe_login)
        if login is None:
            findings.append(
                f"set {self.settings.setting('probe_login')} to a user login so that doctor "
                "can check the ManageSieve login"
            )
            return findings
        session = ManageSieveSession(self, login)
        try:
            session.connect()
        except HirondelleError as error:
            findings.append(str(error))
        finally:
            session.close()
        return findings
