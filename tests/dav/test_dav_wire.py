"""Pure parts of the DAV targets: settings, multistatus, UIDs, slugs and the error table."""

from __future__ import annotations

import dataclasses
import ssl
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hirondelle.connectors import dav_wire as wire
from hirondelle.connectors.dav import CalDavTarget, DavSettings
from hirondelle.connectors.imap_wire import Login
from hirondelle.migrator.errors import (
    ConfigError,
    FatalError,
    OwnerFailed,
    Refused,
    Retriable,
    Unreachable,
)
from hirondelle.migrator.model import Owner
from hirondelle.migrator.registry import settings_of

CONTEXT = wire.FailureContext(
    operation="PUT /alice/work/x.ics",
    login="alice@example.test",
    auth_hint="targets.calendar.password_file (/etc/pw)",
    ca_hint="targets.calendar.ca_file (ca.pem)",
    item_scoped=True,
)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "passwords"
    path.write_text("alice@example.test:s3cret\n", encoding="utf-8")
    path.chmod(0o600)
    return path


# -- settings ---------------------------------------------------------------------------------


def test_plain_http_is_refused_off_loopback(password_file: Path) -> None:
    with pytest.raises(ConfigError, match="plain http") as raised:
        DavSettings(url="http://dav.example.org/", password_file=password_file)
    assert raised.value.setting == "targets.calendar.url"
    contacts = "targets.contacts"
    with pytest.raises(ConfigError) as raised:
        DavSettings(url="http://dav.example.org/", password_file=password_file, config_key=contacts)
    assert raised.value.setting == "targets.contacts.url"
    for url in ("http://127.0.0.1:5232/", "http://[::1]:5232", "https://dav.example.org/dav/"):
        assert DavSettings(url=url, password_file=password_file).url.endswith("/")


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"url": "ftp://dav.example.org/"}, "url"),
        ({"vcard_version": "2.1"}, "vcard_version"),
        ({"timeout": 0}, "timeout"),
        ({"password_file": None}, "password_file"),
        ({"password_file": None, "master_user": "admin"}, "master_password_env"),
    ],
)
def test_bad_settings_name_the_setting(
    password_file: Path, options: dict[str, object], setting: str
) -> None:
    values: dict[str, Any] = {"url": "https://dav.example.org/", "password_file": password_file}
    values.update(options)
    with pytest.raises(ConfigError) as raised:
        DavSettings(**values)
    assert raised.value.setting == f"targets.calendar.{setting}"


def test_settings_from_a_toml_table(password_file: Path) -> None:
    table = {"url": "https://dav.example.org", "password_file": password_file}
    settings = settings_of(DavSettings, table, "targets.contacts")
    assert settings.password_file == password_file
    assert settings.setting("url") == "targets.contacts.url"
    assert settings.origin == "https://dav.example.org"


def test_master_user_logs_in_on_behalf_of_the_owner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAV_MASTER", "master-secret")
    settings = DavSettings(
        url="https://dav.example.org/", master_user="admin", master_password_env="DAV_MASTER"
    )
    login = CalDavTarget(settings).login_for("alice@example.test")
    assert login.auth_user == "alice@example.test*admin"
    assert login.password == "master-secret"
    assert "master-secret" not in repr(login)
    assert "targets.calendar.master_password_env" in login.hint
    monkeypatch.delenv("DAV_MASTER")
    with pytest.raises(ConfigError, match="DAV_MASTER"):
        CalDavTarget(settings)


def test_check_without_a_known_login_asks_for_probe_login() -> None:
    settings = DavSettings(
        url="https://dav.example.org/", master_user="admin", master_password_env="HOME"
    )
    (finding,) = CalDavTarget(settings).check()
    assert "targets.calendar.probe_login" in finding


def test_owner_without_password_fails_alone(password_file: Path) -> None:
    target = CalDavTarget(DavSettings(url="https://dav.example.org/", password_file=password_file))
    with pytest.raises(OwnerFailed, match="bob@example.test"):
        target.open(Owner(upn="bob@example.test", source_id="b"))


# -- multistatus, UIDs, slugs -----------------------------------------------------------------

MULTISTATUS = b"""<?xml version="1.0" encoding="utf-8"?>
<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
  <d:response>
    <d:href>https://dav.example.org/cal/alice/work/</d:href>
    <d:propstat><d:prop><d:displayname>Travail</d:displayname>
      <d:resourcetype><d:collection/><c:calendar/></d:resourcetype></d:prop>
      <d:status>HTTP/1.1 200 OK</d:status></d:propstat>
    <d:propstat><d:prop><d:getetag/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status>
    </d:propstat>
  </d:response>
  <d:response><d:href>r%C3%A9union.ics</d:href><d:status>HTTP/1.1 404 Not Found</d:status>
  </d:response>
</d:multistatus>"""


def test_parse_multistatus_keeps_found_properties_and_makes_paths() -> None:
    work, missing = wire.parse_multistatus(MULTISTATUS, "https://dav.example.org/cal/alice/work/")
    assert work.href == "/cal/alice/work/"
    assert work.text(wire.qname(wire.DAV, "displayname")) == "Travail"
    assert work.has_type(wire.qname(wire.CALDAV, "calendar"))
    assert not work.has_type(wire.qname(wire.CARDDAV, "addressbook"))
    assert wire.qname(wire.DAV, "getetag") not in work.props
    assert missing.href == "/cal/alice/work/r%C3%A9union.ics" and missing.status == 404
    assert wire.last_segment(missing.href) == "réunion.ics"
    assert wire.same_path("/cal/alice/work", "/cal/alice/wor%6B/")


def test_unreadable_multistatus_is_retriable() -> None:
    with pytest.raises(Retriable):
        wire.parse_multistatus(b"<multistatus", "https://dav.example.org/")


def test_resource_uid_reads_the_item_not_the_timezone_or_alarm() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nEND:VTIMEZONE\r\n"
        "BEGIN:VEVENT\r\nBEGIN:VALARM\r\nUID:alarm-1\r\nEND:VALARM\r\n"
        "UID:040000008200E00074C5B7101A82E0080000000\r\n 0123456789\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    assert wire.resource_uid(text) == "040000008200E00074C5B7101A82E00800000000123456789"
    assert wire.resource_uid("BEGIN:VCARD\nVERSION:4.0\nUID:urn:uuid:42\nEND:VCARD\n") == (
        "urn:uuid:42"
    )
    assert wire.resource_uid("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n") is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Été 2024", "ete-2024"),
        ("Équipe/Projet ☂", "equipe-projet"),
        ("🚀", "calendar"),
        ("日本語", "calendar"),
        ("x" * 80, "x" * 60),
    ],
)
def test_slug(name: str, expected: str) -> None:
    assert wire.slug(name, "calendar") == expected


def test_bodies_are_well_formed_and_escape_names() -> None:
    body = wire.mkcalendar_body("R&D <équipe>")
    assert "R&amp;D &lt;équipe&gt;".encode() in body
    for document in (
        body,
        wire.mkcol_addressbook_body("Contacts"),
        wire.calendar_query_body(),
        wire.addressbook_query_body(),
        wire.propfind_body(wire.qname(wire.DAV, "displayname")),
    ):
        assert document.startswith(b"<?xml")


# -- the error table --------------------------------------------------------------------------


def response(
    status: int, content: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, content=content, headers=headers)


PRECONDITION = (
    b'<?xml version="1.0"?><D:error xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    b"<C:valid-calendar-data/></D:error>"
)


@pytest.mark.parametrize(
    ("status", "content", "expected"),
    [
        (401, b"", FatalError),
        (403, b"Forbidden", FatalError),
        (403, PRECONDITION, Refused),
        (507, b"", OwnerFailed),
        (413, b"", Refused),
        (415, b"", Refused),
        (400, b"Bad Request", Refused),
        (409, PRECONDITION, Refused),
        (429, b"", Retriable),
        (500, b"", Retriable),
        (503, b"", Retriable),
        (408, b"", Retriable),
    ],
)
def test_error_table(status: int, content: bytes, expected: type[Exception]) -> None:
    assert type(wire.error_for_status(response(status, content), CONTEXT)) is expected


def test_auth_refusal_names_the_password_setting() -> None:
    error = wire.error_for_status(response(401), CONTEXT)
    assert "targets.calendar.password_file" in str(error)
    assert isinstance(error, FatalError)  # a master user: nobody can go on
    own = dataclasses.replace(CONTEXT, shared_login=False)
    assert isinstance(wire.error_for_status(response(401), own), OwnerFailed)  # that user only
    collection = wire.FailureContext("PROPFIND /", "alice", "hint", "ca", item_scoped=False)
    assert isinstance(wire.error_for_status(response(403, PRECONDITION), collection), FatalError)
    assert isinstance(wire.error_for_status(response(400), collection), FatalError)


def test_reason_quotes_the_precondition_or_short_text() -> None:
    assert "valid-calendar-data" in str(wire.error_for_status(response(403, PRECONDITION), CONTEXT))
    assert "quota" in str(wire.error_for_status(response(413, b"over quota"), CONTEXT))
    html = wire.server_reason(response(500, b"<html><body>" + b"x" * 5000 + b"</body></html>"))
    assert html == "500 Internal Server Error"


# the body SabreDAV 1.8 sends with every refusal (Nextcloud's SabreDAV 4 sends the same)
SABRE_NOT_FOUND = b"""<?xml version="1.0" encoding="utf-8"?>
<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">
  <s:exception>Sabre\\DAV\\Exception\\NotFound</s:exception>
  <s:message>File with name Dossier could not be located</s:message>
  <s:sabredav-version>1.8.12</s:sabredav-version>
</d:error>"""


def test_sabredav_details_give_the_message_and_are_no_precondition() -> None:
    refused = response(403, SABRE_NOT_FOUND.replace(b"NotFound", b"Forbidden"))
    assert wire.preconditions(refused) == []
    # a bare 403 on an item is a refused login, whatever SabreDAV's details say
    assert isinstance(wire.error_for_status(refused, CONTEXT), FatalError)
    reason = wire.server_reason(response(404, SABRE_NOT_FOUND))
    assert reason == "404 Not Found (File with name Dossier could not be located)"


def test_retry_after_seconds_and_dates() -> None:
    seconds = wire.error_for_status(response(429, headers={"Retry-After": "7"}), CONTEXT)
    assert isinstance(seconds, Retriable) and seconds.retry_after == 7
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    dated = wire.error_for_status(response(503, headers={"Retry-After": later}), CONTEXT)
    assert isinstance(dated, Retriable) and 20 < (dated.retry_after or 0) <= 30
    plain = wire.error_for_status(response(502), CONTEXT)
    assert isinstance(plain, Retriable) and plain.retry_after is None


def test_transport_errors() -> None:
    verify = ssl.SSLCertVerificationError("certificate verify failed")
    verify.verify_message = "self-signed certificate"
    connect = httpx.ConnectError("TLS failed")
    connect.__cause__ = verify
    fatal = wire.error_for_exception(connect, CONTEXT)
    assert isinstance(fatal, FatalError) and "targets.calendar.ca_file" in str(fatal)
    assert isinstance(wire.error_for_exception(httpx.ReadTimeout("slow"), CONTEXT), Retriable)
    assert isinstance(
        wire.error_for_exception(httpx.RemoteProtocolError("reset"), CONTEXT), Retriable
    )
    assert wire.error_for_exception(httpx.InvalidURL("bad"), CONTEXT) is None
    refused = wire.error_for_exception(httpx.ConnectError("Connection refused"), CONTEXT)
    assert isinstance(refused, Unreachable)  # nothing was sent: the engine waits


def test_the_password_travels_only_in_the_auth_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401)

    login = Login("alice@example.test", "alice@example.test", "s3cret", "targets.calendar.x")
    client = httpx.Client(
        transport=httpx.MockTransport(handler), auth=httpx.BasicAuth("alice@example.test", "s3cret")
    )
    connection = wire.DavConnection(client, "https://dav.example.org", login, "ca")
    with pytest.raises(OwnerFailed) as raised:
        connection.propfind("/", 0, wire.qname(wire.DAV, "current-user-principal"))
    assert "s3cret" not in str(raised.value)
    assert seen[0].headers["Authorization"].startswith("Basic ")
    assert b"s3cret" not in seen[0].content
