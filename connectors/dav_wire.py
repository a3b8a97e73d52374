"""WebDAV wire details shared by the CalDAV and CardDAV targets: XML bodies, multistatus
parsing, resource UIDs, collection slugs, and the one table that sorts failures.

Namespaces and elements follow RFC 4918 (WebDAV), RFC 4791 (CalDAV), RFC 6352 (CardDAV),
RFC 5689 (extended MKCOL) and RFC 5397 (current-user-principal).
"""

from __future__ import annotations

import re
import ssl
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urljoin, urlsplit

import httpx
import urllib3
from urllib3.exceptions import ConnectTimeoutError

from ..migrator.errors import (
    FatalError,
    HirondelleError,
    OwnerFailed,
    Refused,
    Retriable,
    SkipItem,
    Unreachable,
)
from ..migrator.model import Payload
from .imap_wire import Login

DAV = "DAV:"
SABRE = "http://sabredav.org/ns"  # SabreDAV's own details in a DAV:error body
CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
_PREFIXES = {DAV: "D", CALDAV: "C", CARDDAV: "CR"}
for _uri, _prefix in _PREFIXES.items():
    ET.register_namespace(_prefix, _uri)

ITEM_COMPONENTS = frozenset({"VEVENT", "VTODO", "VJOURNAL", "VCARD"})
_SLUG_DROP = re.compile(r"[^a-z0-9]+")
MAX_SLUG = 60
MAX_REASON = 300
XML_TYPE = "application/xml; charset=utf-8"


def qname(namespace: str, name: str) -> str:
    """ElementTree's "{namespace}name" spelling of an XML element."""
    return f"{{{namespace}}}{name}"


SUPPORTED_ADDRESS_DATA = qname(CARDDAV, "supported-address-data")  # RFC 6352 6.2.2
SUPPORTED_CALENDAR_DATA = qname(CALDAV, "supported-calendar-data")  # RFC 4791 5.2.4
SUPPORTED_COMPONENTS = qname(CALDAV, "supported-calendar-component-set")  # RFC 4791 5.2.3


# -- request bodies ---------------------------------------------------------------------------


def _document(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def propfind_body(*props: str) -> bytes:
    """A PROPFIND asking for `props` (qnames)."""
    root = ET.Element(qname(DAV, "propfind"))
    prop = ET.SubElement(root, qname(DAV, "prop"))
    for name in props:
        ET.SubElement(prop, name)
    return _document(root)


def _set_props(root: ET.Element, displayname: str) -> ET.Element:
    prop = ET.SubElement(ET.SubElement(root, qname(DAV, "set")), qname(DAV, "prop"))
    ET.SubElement(prop, qname(DAV, "displayname")).text = displayname
    return prop


def mkcalendar_body(displayname: str) -> bytes:
    """MKCALENDAR (RFC 4791 section 5.3.1) setting the calendar's display name."""
    root = ET.Element(qname(CALDAV, "mkcalendar"))
    _set_props(root, displayname)
    return _document(root)


def mkcol_addressbook_body(displayname: str) -> bytes:
    """Extended MKCOL (RFC 5689) creating an address book (RFC 6352 section 6.3.1)."""
    root = ET.Element(qname(DAV, "mkcol"))
    prop = _set_props(root, displayname)
    kind = ET.SubElement(prop, qname(DAV, "resourcetype"))
    ET.SubElement(kind, qname(DAV, "collection"))
    ET.SubElement(kind, qname(CARDDAV, "addressbook"))
    return _document(root)


def calendar_query_body() -> bytes:
    """REPORT calendar-query (RFC 4791 section 7.8) for every resource with its data."""
    root = ET.Element(qname(CALDAV, "calendar-query"))
    prop = ET.SubElement(root, qname(DAV, "prop"))
    ET.SubElement(prop, qname(DAV, "getetag"))
    ET.SubElement(prop, qname(CALDAV, "calendar-data"))
    calendar = ET.SubElement(
        ET.SubElement(root, qname(CALDAV, "filter")), qname(CALDAV, "comp-filter")
    )
    calendar.set("name", "VCALENDAR")
    return _document(root)


def addressbook_query_body() -> bytes:
    """REPORT addressbook-query (RFC 6352 section 8.6); an empty filter matches every card."""
    root = ET.Element(qname(CARDDAV, "addressbook-query"))
    prop = ET.SubElement(root, qname(DAV, "prop"))
    ET.SubElement(prop, qname(DAV, "getetag"))
    ET.SubElement(prop, qname(CARDDAV, "address-data"))
    ET.SubElement(root, qname(CARDDAV, "filter"))
    return _document(root)


# -- multistatus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DavResponse:
    """One <response> of a multistatus: its href (a URL path) and the properties found."""

    href: str
    status: int | None = None  # the response-level status, when the server gives one
    props: dict[str, ET.Element] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        element = self.props.get(name)
        return None if element is None else (element.text or "")

    def href_of(self, name: str) -> str | None:
        """The first <href> inside property `name` (principal, home set)."""
        element = self.props.get(name)
        found = None if element is None else element.find(qname(DAV, "href"))
        return None if found is None or not found.text else found.text.strip()

    def has_type(self, name: str) -> bool:
        """True if <resourcetype> lists `name` (a qname)."""
        kind = self.props.get(qname(DAV, "resourcetype"))
        return kind is not None and kind.find(name) is not None


def _status_code(text: str | None) -> int | None:
    parts = (text or "").split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def parse_multistatus(content: bytes, base: str) -> list[DavResponse]:
    """The responses of a 207 body; hrefs are made URL paths relative to `base`'s origin.

    Only properties in a propstat with a 2xx status are kept.
    """
    try:
        root = ET.fromstring(content)
    except ET.ParseError as error:
        raise Retriable(f"the DAV server sent an unreadable multistatus: {error}") from None
    responses = []
    for node in root.iter(qname(DAV, "response")):
        href = node.findtext(qname(DAV, "href"), "").strip()
        props: dict[str, ET.Element] = {}
        for propstat in node.iter(qname(DAV, "propstat")):
            code = _status_code(propstat.findtext(qname(DAV, "status")))
            prop = propstat.find(qname(DAV, "prop"))
            if prop is not None and code is not None and 200 <= code < 300:
                props.update((child.tag, child) for child in prop)
        status = _status_code(node.findtext(qname(DAV, "status")))
        responses.append(DavResponse(url_path(href, base), status, props))
    return responses


def url_path(href: str, base: str) -> str:
    """The path of `href` (absolute or relative to `base`), percent-encoding kept."""
    return urlsplit(urljoin(base, href)).path or "/"


def same_path(left: str, right: str) -> bool:
    """True if two URL paths name the same resource (encoding and final "/" aside)."""
    return unquote(left).rstrip("/") == unquote(right).rstrip("/")


def last_segment(path: str) -> str:
    """The decoded last segment of a URL path ("/a/b%20c/" -> "b c")."""
    return unquote(path.rstrip("/").rpartition("/")[2])


# -- resources --------------------------------------------------------------------------------


def _unfolded(text: str) -> list[str]:
    """Content lines with RFC 5545 / RFC 6350 folding undone."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw:
            lines.append(raw)
    return lines


def resource_uid(text: str) -> str | None:
    """The UID of the first event, task, journal or card of an iCalendar / vCard text."""
    stack: list[str] = []
    for line in _unfolded(text):
        name, _, value = line.partition(":")
        name = name.partition(";")[0].upper()
        if name == "BEGIN":
            stack.append(value.strip().upper())
        elif name == "END" and stack:
            stack.pop()
        elif name == "UID" and stack and stack[-1] in ITEM_COMPONENTS:
            return value.strip()
    return None


def top_components(text: str) -> list[str]:
    """The components directly inside the VCALENDAR ("VEVENT"...), VTIMEZONE left out."""
    found: list[str] = []
    depth = 0
    for line in _unfolded(text):
        name, _, value = line.partition(":")
        name = name.partition(";")[0].upper()
        if name == "BEGIN":
            depth += 1
            component = value.strip().upper()
            if depth == 2 and component != "VTIMEZONE" and component not in found:
                found.append(component)
        elif name == "END":
            depth -= 1
    return found


def payload_uid(payload: Payload) -> str:
    """The UID the mapper gave the payload (its "uid" attribute, else its fingerprint)."""
    uid = payload.attrs.get("uid")
    return str(uid) if uid else payload.fingerprint.removeprefix("uid:")


def payload_resource(payload: Payload) -> str:
    """The resource name the mapper gave the payload; `SkipItem` if it is not a plain name."""
    resource = str(payload.attrs.get("resource") or "")
    if not resource or "/" in resource or "\0" in resource or resource.startswith("."):
        raise SkipItem(f"the mapper named no usable resource ({resource!r})")
    return resource


def slug(name: str, fallback: str) -> str:
    """An ASCII collection name for a display name ("Été 2024" -> "ete-2024")."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return _SLUG_DROP.sub("-", ascii_name.lower()).strip("-")[:MAX_SLUG].strip("-") or fallback


# -- the error table --------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureContext:
    """What a failure message names: the operation, the login and the settings to check."""

    operation: str  # "PUT /alice/calendar/x.ics"
    login: str
    auth_hint: str  # the password setting and its value
    ca_hint: str  # the CA setting and its value
    item_scoped: bool = False  # a refusal concerns this item only (PUT...)
    shared_login: bool = True  # a master user or service account: refused, nobody goes on


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _error_body(response: httpx.Response) -> ET.Element | None:
    """The DAV:error element a refusal carries (RFC 4918 16), None when it has none."""
    content = response.content[:4096]
    if b"<" not in content:
        return None
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return None
    return root if root.tag == qname(DAV, "error") else None


def preconditions(response: httpx.Response) -> list[str]:
    """The names of the conditions a DAV:error body reports ("no-uid-conflict"...). SabreDAV
    (Nextcloud's DAV engine) adds its exception class, message and version to every error
    body in its own namespace: those are details, not conditions."""
    body = _error_body(response)
    if body is None:
        return []
    return [
        child.tag.rpartition("}")[2] for child in body if not child.tag.startswith(f"{{{SABRE}}}")
    ]


def server_reason(response: httpx.Response) -> str:
    """The server's reason: its status, plus DAV preconditions and SabreDAV's message, or
    its short plain text."""
    reason = f"{response.status_code} {response.reason_phrase}".strip()
    body = _error_body(response)
    if body is not None:
        message = " ".join((body.findtext(qname(SABRE, "message")) or "").split())
        details = [*preconditions(response), *([message] if message else [])]
        return (f"{reason} ({', '.join(details)})" if details else reason)[:MAX_REASON]
    if b"<" in response.content[:4096]:
        return reason  # an HTML or XML page: nothing short to quote
    text = " ".join(response.content[:1024].decode("utf-8", "replace").split())
    if text and text.lower() != response.reason_phrase.lower():
        reason = f"{reason}: {text}"
    return reason[:MAX_REASON]


def error_for_status(response: httpx.Response, context: FailureContext) -> HirondelleError:
    """The one place an HTTP status becomes retry, skip or stop.

    401 and 403 stop the run (the login is wrong or lacks rights), except a 403 that
    names a precondition on an item (RFC 4791 section 5.3.2.1: invalid data, UID
    conflict), which skips that item.
    """
    status = response.status_code
    reason = server_reason(response)
    where = f"{context.operation} as {context.login}"
    item_refusal = context.item_scoped and bool(preconditions(response))
    if status == 401 or (status == 403 and not item_refusal):
        refused = FatalError if context.shared_login else OwnerFailed
        return refused(
            f"{where}: the server refused the login ({reason}): check {context.auth_hint}"
        )
    if status == 507:
        return OwnerFailed(f"{where}: the server has no storage left ({reason})")
    if status in (408, 425, 429) or status >= 500:
        return Retriable(f"{where}: {reason}", _retry_after(response.headers.get("Retry-After")))
    if context.item_scoped and 400 <= status < 500:
        return Refused(f"the server refused the item ({reason})")
    return FatalError(f"{where}: unexpected answer {reason}")


def error_for_exception(error: Exception, context: FailureContext) -> HirondelleError | None:
    """The engine error for a transport failure raised by httpx or urllib3, None if not one."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return FatalError(
                f"the DAV server's certificate was not verified ({cause.verify_message}): "
                f"check {context.ca_hint}"
            )
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | ConnectTimeoutError):
        # No connection, so nothing was sent: the engine waits for the server.
        return Unreachable(f"{context.operation} as {context.login}: no connection ({error})")
    if isinstance(error, httpx.TransportError | urllib3.exceptions.HTTPError):
        return Retriable(f"{context.operation} as {context.login} failed: {error!r}")
    return None


@dataclass(frozen=True)
class DavKind:
    """What differs between CalDAV and CardDAV."""

    name: str
    well_known: str
    home_set: str  # qname of the home-set property
    collection_type: str  # qname in <resourcetype>
    data_prop: str  # qname of the REPORT's data property
    compliance: str  # the class the DAV header of OPTIONS announces
    create_method: str
    create_body: Callable[[str], bytes]
    query_body: Callable[[], bytes]
    content_type: str
    fallback_slug: str
    # What a collection of this kind says it takes (read with its display name)
    collection_props: tuple[str, ...] = ()


CALDAV_KIND = DavKind(
    name="CalDAV",
    well_known="/.well-known/caldav",
    home_set=qname(CALDAV, "calendar-home-set"),
    collection_type=qname(CALDAV, "calendar"),
    data_prop=qname(CALDAV, "calendar-data"),
    compliance="calendar-access",
    create_method="MKCALENDAR",
    create_body=mkcalendar_body,
    query_body=calendar_query_body,
    content_type="text/calendar; charset=utf-8",
    fallback_slug="calendar",
    collection_props=(SUPPORTED_CALENDAR_DATA, SUPPORTED_COMPONENTS),
)
CARDDAV_KIND = DavKind(
    name="CardDAV",
    well_known="/.well-known/carddav",
    home_set=qname(CARDDAV, "addressbook-home-set"),
    collection_type=qname(CARDDAV, "addressbook"),
    data_prop=qname(CARDDAV, "address-data"),
    compliance="addressbook",
    create_method="MKCOL",
    create_body=mkcol_addressbook_body,
    query_body=addressbook_query_body,
    content_type="text/vcard; charset=utf-8",
    fallback_slug="addressbook",
    collection_props=(SUPPORTED_ADDRESS_DATA,),
)


class DavConnection:
    """One logged-in HTTP client to a DAV server; every answer goes through the error table.

    The password only ever travels in the client's Basic authentication header.
    """

    def __init__(self, client: httpx.Client, origin: str, login: Login, ca_hint: str) -> None:
        self.client = client
        self.origin = origin  # "https://dav.example.org": paths are appended to it
        self.login = login
        self.ca_hint = ca_hint

    def _context(self, operation: str, item_scoped: bool) -> FailureContext:
        return FailureContext(
            operation=operation,
            login=self.login.login,
            auth_hint=self.login.hint,
            ca_hint=self.ca_hint,
            item_scoped=item_scoped,
            shared_login=self.login.shared,
        )

    def send(
        self,
        method: str,
        path: str,
        *,
        ok: Collection[int],
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        item: bool = False,
    ) -> httpx.Response:
        """One request; a status outside `ok` or a transport failure raises the sorted error.

        `item` says that a refusal concerns one item (a PUT...), so it skips that item.
        """
        context = self._context(f"{method} {path}", item)
        try:
            response = self.client.request(
                method, self.origin + path, content=body, headers=headers, follow_redirects=False
            )
        except httpx.HTTPError as error:
            mapped = error_for_exception(error, context)
            if mapped is None:
                raise
            raise mapped from error
        if response.status_code not in ok:
            raise error_for_status(response, context)
        return response

    def propfind(
        self, path: str, depth: int, *props: str, ok: Collection[int] = (207,)
    ) -> list[DavResponse]:
        """The multistatus of a PROPFIND; [] when the status is another one of `ok`."""
        headers = {"Depth": str(depth), "Content-Type": XML_TYPE}
        body = propfind_body(*props)
        response = self.send("PROPFIND", path, ok=ok, body=body, headers=headers)
        if response.status_code != 207:
            return []
        return parse_multistatus(response.content, str(response.url))

    def close(self) -> None:
        self.client.close()
