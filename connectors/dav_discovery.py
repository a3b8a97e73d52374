"""How a CalDAV/CardDAV session finds the owner's principal, and what a collection takes.

Principal (RFC 6764 section 6, RFC 4791 section 6, RFC 6352 section 7, RFC 5397): a
PROPFIND of `current-user-principal` on the well-known URL (`/.well-known/caldav` or
`carddav`), then on the configured URL, then the configured URL itself. RFC 6764 section 5
has the server redirect the well-known URL "using one of the available mechanisms provided
by HTTP (e.g., using a 301, 303, or 307 response)" and clients handle redirects: Radicale
and Nextcloud send 301, Xandikos 302. HTTP clients turn a 302 or 303 (and a 301 after a
POST) into a GET (RFC 9110 section 15.4), which a DAV server answers with a 200 page; so
redirects (301, 302, 303, 307, 308) are followed here, by hand, keeping the PROPFIND and its
body, a few hops at most and on the configured origin only: the Basic credentials are never
sent to another host. A well-known URL that answers anything but a multistatus naming a
principal (a 200 page, a 404...) falls back to the configured URL.

What a collection takes: `supported-address-data` (RFC 6352 section 6.2.2) for the vCard
versions, `supported-calendar-data` and `supported-calendar-component-set` (RFC 4791
sections 5.2.3, 5.2.4) for the calendar components. An absent property has the meaning the
RFCs give it: vCard 3.0 only, and every component.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from ..migrator.errors import FatalError
from . import dav_wire as wire
from .dav_wire import (
    CALDAV,
    DAV,
    SUPPORTED_CALENDAR_DATA,
    SUPPORTED_COMPONENTS,
    DavResponse,
    qname,
)

REDIRECTS = (301, 302, 303, 307, 308)
MAX_HOPS = 5
CURRENT_USER_PRINCIPAL = qname(DAV, "current-user-principal")
VCARD_PREFERENCE = ("4.0", "3.0")  # the versions the contacts mapper writes, best first
RFC_DEFAULT_VCARD = "3.0"  # RFC 6352 section 6.2.2: no property means vCard 3.0 only


@dataclass(frozen=True, slots=True)
class Principal:
    """The owner's principal path and how it was found (for `doctor`)."""

    path: str
    via: str


def find_principal(dav: wire.DavConnection, well_known: str, configured: str) -> Principal:
    """The principal from the well-known URL, else from the configured URL path, else
    that path itself."""
    notes = []
    for start in (well_known, configured):
        found, trail = _propfind_following(dav, start)
        principal = next((r.href_of(CURRENT_USER_PRINCIPAL) for r in found), None)
        if principal:
            return Principal(wire.url_path(principal, dav.origin + configured), trail)
        notes.append(f"{trail}: no current-user-principal")
    return Principal(configured, "; ".join(notes) + f"; the configured path {configured} is used")


def _propfind_following(dav: wire.DavConnection, path: str) -> tuple[list[DavResponse], str]:
    """PROPFIND `current-user-principal` at `path`, following same-origin redirects with the
    same method and body; the multistatus (or []) and the trail of what answered."""
    trail = [path]
    seen = {path}
    for _ in range(MAX_HOPS):
        response = dav.send(
            "PROPFIND",
            path,
            ok=range(200, 600),  # any answer: the caller falls back (401 again reports there)
            body=wire.propfind_body(CURRENT_USER_PRINCIPAL),
            headers={"Depth": "0", "Content-Type": wire.XML_TYPE},
        )
        status = response.status_code
        if status == 207:
            return wire.parse_multistatus(response.content, str(response.url)), " -> ".join(trail)
        location = response.headers.get("Location")
        if status not in REDIRECTS or not location:
            return [], f"{' -> '.join(trail)} answered {status}"
        target = urlsplit(urljoin(dav.origin + path, location))
        if f"{target.scheme}://{target.netloc}" != dav.origin:
            where = f"{target.scheme}://{target.netloc}"
            return [], f"{' -> '.join(trail)} redirected to {where}: not followed (another origin)"
        path = target.path + (f"?{target.query}" if target.query else "")
        trail.append(f"{status} {path}")
        if path in seen:
            return [], f"{' -> '.join(trail)}: a redirect loop"
        seen.add(path)
    return [], f"{' -> '.join(trail)}: more than {MAX_HOPS} redirects"


# -- what a collection takes ------------------------------------------------------------------


def data_types(found: DavResponse, prop: str) -> list[tuple[str, str]] | None:
    """The (content type, version) pairs a `supported-*-data` property lists; None when the
    server did not give the property.

    RFC 6352 names the elements `address-data-type`; Xandikos 0.4 names them `content-type`:
    every child with a `content-type` attribute is read.
    """
    element = found.props.get(prop)
    if element is None:
        return None
    return [
        (child.get("content-type", "").lower(), child.get("version", ""))
        for child in element
        if child.get("content-type")
    ]


def components(found: DavResponse) -> frozenset[str] | None:
    """The calendar components a collection takes; None when it does not say (all)."""
    element = found.props.get(SUPPORTED_COMPONENTS)
    if element is None:
        return None
    return frozenset(c.get("name", "").upper() for c in element.iter(qname(CALDAV, "comp")))


@dataclass(frozen=True, slots=True)
class VcardChoice:
    """The vCard version written to a server and why (for `doctor` and refusals)."""

    version: str
    why: str


def choose_vcard(listed: list[tuple[str, str]] | None, where: str) -> VcardChoice:
    """The best version the contacts mapper writes among those the address book lists."""
    if listed is None:
        return VcardChoice(
            RFC_DEFAULT_VCARD,
            f"{where} lists no supported-address-data, which means vCard 3.0 only "
            "(RFC 6352 section 6.2.2)",
        )
    versions = [version for kind, version in listed if kind == "text/vcard"]
    shown = ", ".join(versions) or "none"
    for version in VCARD_PREFERENCE:
        if version in versions:
            return VcardChoice(version, f"{where} lists vCard {shown}")
    listed_text = ", ".join(f"{kind} {version}".strip() for kind, version in listed)
    raise FatalError(
        f"{where} takes none of vCard {' or '.join(VCARD_PREFERENCE)} "
        f"(its supported-address-data lists {listed_text or 'nothing'}): "
        "contacts cannot be written there"
    )


def missing_components(found: DavResponse, needed: Collection[str]) -> list[str]:
    """The components of `needed` the calendar collection says it does not take."""
    taken = components(found)
    return [] if taken is None else sorted(set(needed) - taken)


def calendar_takes_icalendar(found: DavResponse) -> bool:
    """False when `supported-calendar-data` lists formats but not iCalendar 2.0."""
    listed = data_types(found, SUPPORTED_CALENDAR_DATA)
    return not listed or any(
        kind == "text/calendar" and version in ("2.0", "") for kind, version in listed
    )
