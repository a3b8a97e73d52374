"""The CalDAV and CardDAV targets: calendars and address books on any DAV server
(Radicale, Nextcloud/SabreDAV, BlueMind, Cyrus...).

A session finds the owner's home the standard way (RFC 6764 `/.well-known/caldav` or
`carddav`, then RFC 5397 `current-user-principal`, then `calendar-home-set` /
`addressbook-home-set`), finds each collection by display name among the home's children
and creates it when missing (MKCALENDAR, or an RFC 5689 extended MKCOL for address books)
under an ASCII slug of its name.

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

import itertools
import ssl
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx

from ..migrator.errors import ConfigError, FatalError, HirondelleError, Refused, Retriable, SkipItem
from ..migrator.model import Capabilities, Container, Entry, Owner, Payload, TargetRef
from . import dav_wire as wire
from .credentials import Credentials, Login, is_loopback
from .dav_wire import CALDAV_KIND, CARDDAV_KIND, DAV, DavKind, DavResponse, qname

VCARD_VERSIONS = ("4.0", "3.0")
MAX_SLUG_ATTEMPTS = 100
_CREATED = (200, 201, 204)


@dataclass(frozen=True, slots=True)
class DavSettings:
    """The `[targets.calendar]` or `[targets.contacts]` table for `kind = "caldav"` /
    `"carddav"`. Holds no secret, only where to read it.

    `vcard_version` is the vCard version the server takes ("3.0" for servers that refuse
    4.0); the contacts mapper reads it from here.
    """

    url: str
    ca_file: Path | None = None  # None: the system trust store; verification stays on
    password_file: Path | None = None
    master_user: str | None = None
    master_password_env: str | None = None
    master_password_file: Path | None = None
    master_separator: str = "*"
    timeout: float = 60.0
    vcard_version: str = "4.0"
    probe_login: str | None = None  # the login `check` uses with a master user
    config_key: str = "targets.calendar"

    def __post_init__(self) -> None:
        for name in ("ca_file", "password_file", "master_password_file"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, Path(value))
        if not self.url.endswith("/"):
            object.__setattr__(self, "url", self.url + "/")
        self._check_url()
        if self.vcard_version not in VCARD_VERSIONS:
            raise ConfigError(self.setting("vcard_version"), f"one of {', '.join(VCARD_VERSIONS)}")
        if self.timeout <= 0:
            raise ConfigError(self.setting("timeout"), "must be a positive number of seconds")
        if (self.password_file is None) == (self.master_user is None):
            raise ConfigError(
                self.setting("password_file"), "set either password_file or master_user"
            )
        if self.master_user and not (self.master_password_env or self.master_password_file):
            raise ConfigError(
                self.setting("master_password_env"),
                "the master user needs master_password_env or master_password_file",
            )

    def _check_url(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(self.setting("url"), f"{self.url!r} is not an http(s) URL")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ConfigError(
                self.setting("url"),
                f"plain http is refused for {parts.hostname}: use https "
                "(http is only for a server on the loopback interface)",
            )

    @property
    def origin(self) -> str:
        """Scheme, host and port of the server ("https://dav.example.org")."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def setting(self, name: str) -> str:
        """The full name of one setting, as the configuration file spells it."""
        return f"{self.config_key}.{name}"

    def ca_hint(self) -> str:
        return f"{self.setting('ca_file')} ({self.ca_file or 'the system trust store'})"


def _content(payload: Payload) -> bytes:
    return payload.blob.read_bytes() if payload.blob is not None else payload.content


class DavSession:
    """One owner's connection to a CalDAV or CardDAV server (`TargetSession`).

    `TargetRef.folder` is the collection's URL path ("/alice%40example.org/work/"),
    `TargetRef.ref` the resource name.
    """

    def __init__(self, dav: wire.DavConnection, kind: DavKind, settings: DavSettings) -> None:
        self._dav = dav
        self.kind = kind
        self._login = dav.login
        self._settings = settings
        self.principal = ""
        self.home = ""
        self._children: list[DavResponse] | None = None

    # -- discovery ----------------------------------------------------------------------------

    def connect(self) -> None:
        """Log in and find the owner's home collection (raises `FatalError` if refused)."""
        self.principal = self._find_principal()
        found = self._dav.propfind(self.principal, 0, self.kind.home_set)
        home = next((r.href_of(self.kind.home_set) for r in found if r.props), None)
        if not home:
            raise FatalError(
                f"{self._login.login} has no {self.kind.name} home on {self._settings.url}: "
                f"check {self._settings.setting('url')}"
            )
        self.home = wire.url_path(home, self._settings.url)
        if not self.home.endswith("/"):
            self.home += "/"

    def _find_principal(self) -> str:
        """current-user-principal through the well-known URL (RFC 6764), else the URL itself."""
        prop = qname(DAV, "current-user-principal")
        for path, follow in (
            (self.kind.well_known, True),
            (urlsplit(self._settings.url).path, False),
        ):
            found = self._dav.propfind(path, 0, prop, ok=(207, 400, 404, 405, 501), follow=follow)
            principal = next((r.href_of(prop) for r in found if r.href_of(prop)), None)
            if principal:
                return wire.url_path(principal, self._settings.url)
        return urlsplit(self._settings.url).path

    def server_classes(self) -> frozenset[str]:
        """The compliance classes the server's OPTIONS answer announces for the home."""
        response = self._dav.send("OPTIONS", self.home, ok=range(200, 300))
        return frozenset(c.strip() for c in response.headers.get("DAV", "").split(",") if c)

    # -- collections --------------------------------------------------------------------------

    def collections(self) -> list[DavResponse]:
        """The home's children (display name and resource type), fetched once per session."""
        if self._children is None:
            props = (qname(DAV, "displayname"), qname(DAV, "resourcetype"))
            found = self._dav.propfind(self.home, 1, *props)
            self._children = [r for r in found if not wire.same_path(r.href, self.home)]
        return self._children

    def ensure_container(self, container: Container) -> str:
        """The collection whose display name is the container's name, created if missing."""
        name = container.path[-1] if container.path else container.source_id
        existing = self._named(name)
        if existing is not None:
            return existing
        base = wire.slug(name, self.kind.fallback_slug)
        for number in itertools.islice(itertools.count(1), MAX_SLUG_ATTEMPTS):
            candidate = base if number == 1 else f"{base}-{number}"
            if candidate in {wire.last_segment(c.href) for c in self.collections()}:
                continue
            path = f"{self.home}{quote(candidate)}/"
            response = self._dav.send(
                self.kind.create_method,
                path,
                ok=(*_CREATED, 403, 405, 409),
                body=self.kind.create_body(name),
                headers={"Content-Type": wire.XML_TYPE},
            )
            self._children = None
            if response.status_code in _CREATED:
                return path
            existing = self._named(name)  # taken meanwhile, perhaps by this very name
            if existing is not None:
                return existing
        raise FatalError(f"cannot create a {self.kind.name} collection for {name!r} in {self.home}")

    def _named(self, name: str) -> str | None:
        for child in self.collections():
            if (
                child.has_type(self.kind.collection_type)
                and child.text(qname(DAV, "displayname")) == name
            ):
                return child.href if child.href.endswith("/") else child.href + "/"
        return None

    # -- resources ----------------------------------------------------------------------------

    def _get(self, folder: str, resource: str) -> str | None:
        """The stored resource's text, None if it does not exist."""
        response = self._dav.send("GET", folder + quote(resource), ok=(200, 404, 410), item=True)
        if response.status_code != 200:
            return None
        return response.content.decode("utf-8", "replace")

    def find(self, folder: str, payload: Payload, exclude: Set[str]) -> TargetRef | None:
        """The payload's resource if it exists, holds the payload's UID and is not excluded."""
        resource = wire.payload_resource(payload)
        if resource in exclude:
            return None
        stored = self._get(folder, resource)
        if stored is None or wire.resource_uid(stored) != wire.payload_uid(payload):
            return None
        return TargetRef(folder, resource)

    def put(self, folder: str, payload: Payload) -> TargetRef:
        """Create the resource (`If-None-Match: *`); an existing one with the same UID is it."""
        resource = wire.payload_resource(payload)
        headers = {"If-None-Match": "*", "Content-Type": self._content_type(payload)}
        response = self._dav.send(
            "PUT",
            folder + quote(resource),
            ok=(*_CREATED, 412),
            body=_content(payload),
            headers=headers,
            item=True,
        )
        if response.status_code == 412:
            stored = self._get(folder, resource)
            if stored is None:
                raise Retriable(f"{folder}{resource} existed, then vanished: try again")
            uid = wire.resource_uid(stored)
            if uid != wire.payload_uid(payload):
                raise Refused(f"{resource} in {folder} already holds another item (UID {uid})")
        return TargetRef(folder, resource)

    def _content_type(self, payload: Payload) -> str:
        return str(payload.attrs.get("content_type") or self.kind.content_type)

    def update(self, ref: TargetRef, payload: Payload) -> TargetRef:
        """Replace the stored resource, guarded by its ETag; write it anew if it is gone."""
        path = ref.folder + quote(ref.ref)
        response = self._dav.send("HEAD", path, ok=(200, 404, 410), item=True)
        if response.status_code != 200:
            return self.put(ref.folder, payload)
        headers = {"Content-Type": self._content_type(payload)}
        etag = response.headers.get("ETag")
        if etag:
            headers["If-Match"] = etag
        response = self._dav.send(
            "PUT", path, ok=(*_CREATED, 412), body=_content(payload), headers=headers, item=True
        )
        if response.status_code == 412:
            raise Retriable(f"{path} changed on the server during the update: try again")
        return ref

    def move(self, ref: TargetRef, folder: str) -> TargetRef:
        """WebDAV MOVE to another collection of the same owner; `SkipItem` if refused."""
        if folder == ref.folder:
            return ref
        destination = self._settings.origin + folder + quote(ref.ref)
        headers = {"Destination": destination, "Overwrite": "F"}
        response = self._dav.send(
            "MOVE",
            ref.folder + quote(ref.ref),
            ok=(*_CREATED, 404, 405, 412, 501, 502),
            headers=headers,
            item=True,
        )
        status = response.status_code
        if status == 404:
            raise SkipItem(f"{ref.ref} is no longer in {ref.folder}: nothing to move")
        if status in (405, 501, 502):
            raise SkipItem(f"the server cannot move {ref.ref} to {folder} ({status})")
        if status == 412:  # an earlier, interrupted move already put it there
            self.remove(ref)
        return TargetRef(folder, ref.ref)

    def remove(self, ref: TargetRef) -> None:
        """DELETE the resource; nothing to do if it is already gone."""
        self._dav.send(
            "DELETE", ref.folder + quote(ref.ref), ok=(200, 202, 204, 404, 410), item=True
        )

    def listing(self, folder: str) -> list[Entry]:
        """Every resource of the collection with its UID (REPORT, else PROPFIND and GET)."""
        headers = {"Depth": "1", "Content-Type": wire.XML_TYPE}
        response = self._dav.send(
            "REPORT", folder, ok=(207, 404, 405, 501), body=self.kind.query_body(), headers=headers
        )
        if response.status_code == 404:
            return []
        if response.status_code != 207:
            return self._listing_one_by_one(folder)
        entries = []
        for found in wire.parse_multistatus(response.content, str(response.url)):
            text = found.text(self.kind.data_prop)
            if text is not None and not wire.same_path(found.href, folder):
                entries.append(self._entry(folder, wire.last_segment(found.href), text))
        return entries

    def _listing_one_by_one(self, folder: str) -> list[Entry]:
        """For servers without the query REPORT: PROPFIND the members, GET each."""
        found = self._dav.propfind(folder, 1, qname(DAV, "resourcetype"), ok=(207, 404))
        entries = []
        for member in found:
            if wire.same_path(member.href, folder) or member.has_type(qname(DAV, "collection")):
                continue
            resource = wire.last_segment(member.href)
            stored = self._get(folder, resource)
            if stored is not None:
                entries.append(self._entry(folder, resource, stored))
        return entries

    @staticmethod
    def _entry(folder: str, resource: str, text: str) -> Entry:
        # size -1: servers may rewrite resources (Radicale re-serialises them)
        return Entry(TargetRef(folder, resource), f"uid:{wire.resource_uid(text) or ''}", -1)

    def close(self) -> None:
        self._dav.close()


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

    def login_for(self, login: str) -> Login:
        """How to log in as `login`: the user's own password, or the master user's."""
        return self.credentials.login_for(login)

    def _session(self, login: Login) -> DavSession:
        settings = self.settings
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None
        )
        client = httpx.Client(
            auth=httpx.BasicAuth(login.auth_user, login.password),
            verify=context,
            timeout=settings.timeout,
            headers={"User-Agent": "hirondelle"},
        )
        dav = wire.DavConnection(client, settings.origin, login, settings.ca_hint())
        return DavSession(dav, self.kind, settings)

    def open(self, owner: Owner) -> DavSession:
        """A session for `owner` (login = target_login, else the UPN), its home discovered."""
        session = self._session(self.login_for(owner.target_login or owner.upn))
        try:
            session.connect()
        except BaseException:
            session.close()
            raise
        return session

    def check(self) -> list[str]:
        """Findings for `doctor`: connection, TLS, login, discovery, server classes."""
        if self.settings.probe_login:
            login = self.login_for(self.settings.probe_login)
        elif self.credentials.passwords:
            login = self.login_for(next(iter(self.credentials.passwords)))
        else:
            return [
                f"set {self.settings.setting('probe_login')} to a login so that "
                f"doctor can log in and check the {self.kind.name} server"
            ]
        session = self._session(login)
        try:
            session.connect()
            classes = session.server_classes()
        except HirondelleError as error:
            return [f"{self.kind.name} {self.settings.url}: {error}"]
        finally:
            session.close()
        return self._findings(classes)

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
