"""Principal discovery and what collections take, against real Radicale and Xandikos.

The redirect tests put a small real HTTP server in front of Radicale: it answers the
well-known URL itself (a redirect of each kind, or a 200 page) and passes every other
request on unchanged, recording what it received.
"""

from __future__ import annotations

import dataclasses
import http.client
import http.server
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import pytest

from hirondelle.connectors import dav_discovery as discovery
from hirondelle.connectors import dav_wire as wire
from hirondelle.connectors.dav import CalDavTarget, CardDavTarget, DavSettings
from hirondelle.connectors.dav_session import DavSession
from hirondelle.migrator.errors import FatalError, Refused
from hirondelle.migrator.model import Container, Owner
from hirondelle.tests.dav.payloads import event
from hirondelle.tests.servers import HOST, DavServer, MailUser, RadicaleServer, XandikosServer

WELL_KNOWN = "/.well-known/caldav"


@dataclass
class FrontServer:
    """A real HTTP server on 127.0.0.1 answering the well-known URL with `status` (and
    `location`), passing everything else to `backend`; `seen` is what it received."""

    backend: DavServer
    status: int
    location: str = "/"
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # host, method, path
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"


def _handler(front: FrontServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            front.seen.append((self.headers.get("Host", ""), self.command, self.path))
            if self.path == WELL_KNOWN:
                self.send_response(front.status)
                if front.status != 200:
                    self.send_header("Location", front.location)
                page = b"<html><body>Calendar server</body></html>"
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            backend = http.client.HTTPConnection(HOST, front.backend.port, timeout=10)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            backend.request(self.command, self.path, body=body, headers=headers)
            answer = backend.getresponse()
            content = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
            backend.close()

        do_GET = do_PROPFIND = do_REPORT = do_PUT = do_OPTIONS = _any
        do_MKCOL = do_MKCALENDAR = do_DELETE = do_HEAD = do_MOVE = _any

    return Handler


@pytest.fixture
def front(request: pytest.FixtureRequest, radicale: RadicaleServer) -> Iterator[FrontServer]:
    status, location = request.param
    state = FrontServer(radicale, status, location)
    server = http.server.ThreadingHTTPServer((HOST, 0), _handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _settings(url: str, server: DavServer, user: MailUser, tmp_path: Path) -> DavSettings:
    return DavSettings(
        url=url,
        password_file=server.password_file(tmp_path / "pw", user),
        ca_file=server.ca_file,
    )


def _open(target: CalDavTarget | CardDavTarget, user: MailUser) -> DavSession:
    return target.open(Owner(upn=user.login, source_id="owner"))


@pytest.mark.parametrize("front", [(s, "/") for s in discovery.REDIRECTS], indirect=True)
def test_each_well_known_redirect_is_followed_as_a_propfind(
    front: FrontServer, radicale: RadicaleServer, tmp_path: Path
) -> None:
    """The configured path leads nowhere: only the followed redirect finds the principal."""
    user = radicale.new_user()
    settings = _settings(front.url + "nowhere/", radicale, user, tmp_path)
    session = _open(CalDavTarget(settings), user)
    assert unquote(session.principal) == f"/{user.login}/"
    assert session.principal_via == f"{WELL_KNOWN} -> {front.status} /"
    assert [m for _, m, p in front.seen[:2]] == ["PROPFIND", "PROPFIND"]  # never a GET
    assert front.seen[1][2] == "/"


@pytest.mark.parametrize("front", [(200, "")], indirect=True)
def test_a_well_known_page_falls_back_to_the_configured_url(
    front: FrontServer, radicale: RadicaleServer, tmp_path: Path
) -> None:
    user = radicale.new_user()
    session = _open(CalDavTarget(_settings(front.url, radicale, user, tmp_path)), user)
    assert unquote(session.principal) == f"/{user.login}/"
    assert session.principal_via == "/"
    assert [(m, p) for _, m, p in front.seen[:2]] == [("PROPFIND", WELL_KNOWN), ("PROPFIND", "/")]


@pytest.mark.parametrize("front", [(307, "http://localhost:{port}/")], indirect=True)
def test_a_redirect_to_another_origin_is_not_followed(
    front: FrontServer, radicale: RadicaleServer, tmp_path: Path
) -> None:
    """The same server under another name is another origin: no credentials go there."""
    front.location = front.location.format(port=front.port)
    user = radicale.new_user()
    session = _open(CalDavTarget(_settings(front.url, radicale, user, tmp_path)), user)
    assert unquote(session.principal) == f"/{user.login}/"
    assert [host for host, _, _ in front.seen if host.startswith("localhost")] == []


@pytest.mark.parametrize("front", [(302, WELL_KNOWN)], indirect=True)
def test_a_redirect_loop_ends(front: FrontServer, radicale: RadicaleServer, tmp_path: Path) -> None:
    user = radicale.new_user()
    session = _open(CalDavTarget(_settings(front.url, radicale, user, tmp_path)), user)
    assert unquote(session.principal) == f"/{user.login}/"
    assert len([p for _, _, p in front.seen if p == WELL_KNOWN]) == 1


# -- Xandikos ---------------------------------------------------------------------------------


def test_xandikos_discovery_vcard_and_components(xandikos: XandikosServer, tmp_path: Path) -> None:
    """Xandikos redirects the well-known URL with a 302, keeps each kind in its own home,
    and lists vCard 3.0 only: the contacts mapper is told 3.0."""
    user = xandikos.new_user()
    settings = _settings(xandikos.url, xandikos, user, tmp_path)
    calendars = _open(CalDavTarget(settings), user)
    assert calendars.principal_via == f"{WELL_KNOWN} -> 302 /"
    assert unquote(calendars.home) == f"/{user.login}/calendars/"
    folder = calendars.ensure_container(Container("calendar", user.login, "c", ("Travail",)))
    assert "VEVENT" in (discovery.components(calendars.described(folder)) or ())
    contacts_settings = dataclasses.replace(settings, config_key="targets.contacts")
    target = CardDavTarget(contacts_settings)
    assert target.vcard_version() == "4.0"  # nothing seen yet
    assert target.check() == []
    assert "vCard: chosen from the first address book" in "; ".join(target.found)
    book = _open(target, user).ensure_container(Container("contacts", user.login, "b", ("Amis",)))
    assert unquote(book) == f"/{user.login}/contacts/amis/"
    assert target.vcard_version() == "3.0"
    fresh = CardDavTarget(contacts_settings)  # another process: told at login already
    _open(fresh, user)
    assert fresh.vcard_version() == "3.0"
    assert target.check() == []
    assert f"the address book {book} lists vCard 3.0" in "; ".join(target.found)
    override = CardDavTarget(dataclasses.replace(contacts_settings, vcard_version="4.0"))
    _open(override, user).ensure_container(Container("contacts", user.login, "b", ("Amis",)))
    assert override.vcard_version() == "4.0"


def test_a_calendar_without_events_refuses_them_with_the_reason(
    radicale: RadicaleServer, tmp_path: Path
) -> None:
    """A collection by the calendar's name that takes tasks only: each event fails, saying
    why; nothing is dropped silently."""
    user = radicale.new_user()
    session = _open(CalDavTarget(_settings(radicale.url, radicale, user, tmp_path)), user)
    root = ET.Element(wire.qname(wire.CALDAV, "mkcalendar"))
    prop = ET.SubElement(
        ET.SubElement(root, wire.qname(wire.DAV, "set")), wire.qname(wire.DAV, "prop")
    )
    ET.SubElement(prop, wire.qname(wire.DAV, "displayname")).text = "Tâches"
    components = ET.SubElement(prop, wire.SUPPORTED_COMPONENTS)
    ET.SubElement(components, wire.qname(wire.CALDAV, "comp")).set("name", "VTODO")
    path = f"{session.home}taches/"
    session._dav.send("MKCALENDAR", path, ok=(201,), body=ET.tostring(root))
    folder = session.ensure_container(Container("calendar", user.login, "t", ("Tâches",)))
    assert folder == path
    with pytest.raises(Refused, match=r"does not take VEVENT \(.*lists VTODO\)"):
        session.put(folder, event("task-list"))


# -- what a collection lists ------------------------------------------------------------------


def _listed(xml: str) -> wire.DavResponse:
    prop = ET.fromstring(f'<p xmlns:C="{wire.CARDDAV}" xmlns:K="{wire.CALDAV}">{xml}</p>')[0]
    return wire.DavResponse("/book/", 207, {prop.tag: prop})


@pytest.mark.parametrize(
    ("xml", "version", "why"),
    [
        (  # RFC 6352's own spelling (Radicale with vobject >= 1)
            '<C:supported-address-data><C:address-data-type content-type="text/vcard" '
            'version="3.0"/><C:address-data-type content-type="text/vcard" version="4.0"/>'
            "</C:supported-address-data>",
            "4.0",
            "lists vCard 3.0, 4.0",
        ),
        (  # Xandikos 0.4 names the element content-type
            '<C:supported-address-data><C:content-type content-type="text/vcard" '
            'version="3.0"/></C:supported-address-data>',
            "3.0",
            "lists vCard 3.0",
        ),
        ("<K:other/>", "3.0", "RFC 6352 section 6.2.2"),  # no property: 3.0 only
    ],
)
def test_the_vcard_version_follows_the_list(xml: str, version: str, why: str) -> None:
    listed = discovery.data_types(_listed(xml), wire.SUPPORTED_ADDRESS_DATA)
    choice = discovery.choose_vcard(listed, "the address book /book/")
    assert choice.version == version and why in choice.why


def test_an_address_book_without_a_known_vcard_is_an_error() -> None:
    xml = (
        '<C:supported-address-data><C:address-data-type content-type="application/vcard+json" '
        'version="4.0"/></C:supported-address-data>'
    )
    listed = discovery.data_types(_listed(xml), wire.SUPPORTED_ADDRESS_DATA)
    with pytest.raises(FatalError, match="application/vcard\\+json 4.0"):
        discovery.choose_vcard(listed, "the address book /book/")


def test_top_components_leave_the_time_zones_out() -> None:
    text = event("x").content.decode()
    assert wire.top_components(text) == ["VEVENT"]
