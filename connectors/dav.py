"""The CalDAV and CardDAV targets: calendars and address books on any DAV server
(Radicale, Nextcloud/SabreDAV, BlueMind, Cyrus...).

A session finds the owner's home the standard way (RFC 6764 `/.well-known/caldav` or
`carddav`, then RFC 5397 `current-user-principal`, then `calendar-home-set` /
`addressbook-home-set`; see `dav_discovery`), finds each collection by display name among
the home's children and creates it when missing (MKCALENDAR, or an RFC 5689 extended MKCOL
for address books) under an ASCII slug of its name.

What a collection takes decides what is written: the vCard version is the best one the
address books list in `supported-address-data` (the `vcard_version` setting overrides it),
and an event whose component the calendar does not list in
`supported-calendar-component-set` is refused with that reason, never dropped.

Idempotency: every resource is named after its source id by the mapper
(`payload.attrs["resource"]`) and created with `If-None-Match: *`, so a rerun or a resumed
write meets a 412 instead of a duplicate; the stored resource's UID tells whether it is
the same item. Updates carry `If-Match` with the stored ETag.

Declared gaps: servers may rewrite what they store (Radicale re-serialises every
resource), so listed sizes are -1 and verify compares UIDs. Proxy login (`master_user`)
sends "<login><master_separator><master_user>" as the Basic user name, which only servers
with such a proxy login accept; Radicale has none, use `password_file` with it.

Blocking on purpose (httpx's sync client): the engine runs each session in a worker thread.
Certificates are always verified; plain http is accepted only on the loopback interface.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..migrator.errors import ConfigError, HirondelleError
from ..migrator.model import Capabilities, Owner
from . import dav_discovery as discovery
from . import dav_wire as wire
from .credentials import Credentials, Login
from .dav_discovery import VcardChoice
from .dav_session import DavSession
from .dav_wire import CALDAV_KIND, CARDDAV_KIND, DavKind
from .http_client import http_client
from .target_settings import MasterLoginSettings

VCARD_VERSIONS = discovery.VCARD_PREFERENCE


@dataclass(frozen=True, slots=True)
class DavSettings(MasterLoginSettings):
    """The `[targets.calendar]` or `[targets.contacts]` table for `kind = "caldav"` /
    `"carddav"`. Holds no secret, only where to read it.

    `vcard_version`, when set, overrides the vCard version read from the server's
    `supported-address-data` ("3.0" for a server that lists 4.0 but mangles it).
    """

    url: str
    ca_file: Path | None = None  # None: the system trust store; verification stays on
    password_file: Path | None = None
    master_user: str | None = None
    master_password_env: str | None = None
    master_password_file: Path | None = None
    master_separator: str = "*"
    timeout: float = 60.0
    vcard_version: str | None = None  # None: the best one the server lists
    probe_login: str | None = None  # the login `check` uses with a master user
    config_key: str = "targets.calendar"

    def __post_init__(self) -> None:
        self._paths("ca_file", "password_file", "master_password_file")
        if not self.url.endswith("/"):
            object.__setattr__(self, "url", self.url + "/")
        self._check_http_url("url", self.url)
        if self.vcard_version is not None and self.vcard_version not in VCARD_VERSIONS:
            raise ConfigError(self.setting("vcard_version"), f"one of {', '.join(VCARD_VERSIONS)}")
        self._check_timeout()
        self._check_logins()

    @property
    def origin(self) -> str:
        """Scheme, host and port of the server ("https://dav.example.org")."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


class DavTarget:
    """A `Target` for one DAV flavour; `open(owner)` logs in as the owner's target login."""

    kind: DavKind = CALDAV_KIND
    capabilities = Capabilities(
        server_assigned_ids=False,
        keeps_timestamps=False,
        max_item_bytes=None,
        checksums=False,
        moves=True,
    )

    def __init__(self, settings: DavSettings) -> None:
        self.settings = settings
        self.credentials = Credentials.per_user_or_master(settings)
        self._vcard: VcardChoice | None = None  # learned from the first address book seen
        self._vcard_lock = threading.Lock()
        self.found: list[str] = []  # what the last `check` found, for doctor

    def vcard_version(self) -> str:
        """The vCard version the contacts mapper writes: the setting, else the one the
        server's address books take (4.0 until one was seen)."""
        if self.settings.vcard_version:
            return self.settings.vcard_version
        with self._vcard_lock:
            return self._vcard.version if self._vcard else VCARD_VERSIONS[0]

    def _learn_vcard(self, choice: VcardChoice) -> None:
        with self._vcard_lock:
            if self._vcard is None:
                self._vcard = choice

    def login_for(self, login: str) -> Login:
        """How to log in as `login`: the user's own password, or the master user's."""
        return self.credentials.login_for(login)

    def _session(self, login: Login) -> DavSession:
        settings = self.settings
        client = http_client(settings, login=login)
        dav = wire.DavConnection(client, settings.origin, login, settings.ca_hint())
        return DavSession(dav, self.kind, settings, self._learn_vcard)

    def open(self, owner: Owner) -> DavSession:
        """A session for `owner` (login = target_login, else the UPN), its home discovered."""
        session = self._session(self.login_for(owner.target_login or owner.upn))
        try:
            session.connect()
            if self.kind is CARDDAV_KIND and self._vcard is None:
                session.learn_vcard()
        except BaseException:
            session.close()
            raise
        return session

    def check(self) -> list[str]:
        """Findings for `doctor`: connection, TLS, login, discovery, server classes."""
        login = self.credentials.probe(self.settings.probe_login)
        if login is None:
            return [
                f"set {self.settings.setting('probe_login')} to a login so that "
                f"doctor can log in and check the {self.kind.name} server"
            ]
        session = self._session(login)
        try:
            session.connect()
            classes = session.server_classes()
            self.found = self._found(session, login.login)
        except HirondelleError as error:
            return [f"{self.kind.name} {self.settings.url}: {error}"]
        finally:
            session.close()
        return self._findings(classes)

    def _found(self, session: DavSession, login: str) -> list[str]:
        """What discovery found for `login`: principal, home, what the collections take."""
        found = [
            f"principal of {login}: {session.principal} (through {session.principal_via})",
            f"home: {session.home}",
        ]
        books = [c for c in session.collections() if c.has_type(self.kind.collection_type)]
        if self.kind is CARDDAV_KIND:
            if books:
                choice = session.vcard_choice(books[0].href)
                found.append(f"vCard {choice.version} ({choice.why})")
            elif self.settings.vcard_version:
                setting = self.settings.setting("vcard_version")
                found.append(f"vCard {self.settings.vcard_version} (set by {setting})")
            else:
                found.append(
                    "vCard: chosen from the first address book created "
                    "(none exists yet for this login)"
                )
            return found
        if not books:
            found.append("no calendar yet: components are read from the first one created")
        for calendar in books:
            taken = discovery.components(calendar)
            shown = ", ".join(sorted(taken)) if taken is not None else "any (not listed)"
            found.append(f"calendar {calendar.href} takes {shown}")
        return found

    def _findings(self, classes: frozenset[str]) -> list[str]:
        findings = []
        if self.kind.compliance not in classes:
            findings.append(
                f"{self.settings.url} does not announce {self.kind.compliance} (DAV header): "
                f"is it a {self.kind.name} server?"
            )
        if self.kind is CARDDAV_KIND and "extended-mkcol" not in classes:
            findings.append(
                "no extended MKCOL (RFC 5689): address books cannot be created, "
                "create them on the server first"
            )
        return findings


class CalDavTarget(DavTarget):
    """Calendars (one collection per Graph calendar) on a CalDAV server."""

    kind = CALDAV_KIND


class CardDavTarget(DavTarget):
    """Address books (one collection per Graph contact folder) on a CardDAV server."""

    kind = CARDDAV_KIND
