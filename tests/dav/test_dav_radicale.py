"""The CalDAV and CardDAV targets against a real Radicale: discovery, collections, writes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import unquote

import pytest
import trustme

from hirondelle.connectors.dav import CalDavTarget, CardDavTarget, DavSettings
from hirondelle.connectors.dav_session import DavSession
from hirondelle.connectors.dav_wire import resource_uid
from hirondelle.migrator.errors import FatalError, OwnerFailed, Refused, SkipItem, Unreachable
from hirondelle.migrator.model import Container, Owner, Payload, TargetRef
from hirondelle.tests.dav.payloads import contact, event
from hirondelle.tests.servers import (
    MailUser,
    RadicaleServer,
    TlsFiles,
    free_port,
    radicale_server,
)


def calendar(name: str, role: str | None = None) -> Container:
    return Container("calendar", "owner@example.test", f"id-{name}", (name,), role)


def address_book(name: str) -> Container:
    return Container("contacts", "owner@example.test", f"id-{name}", (name,))


def settings_for(server: RadicaleServer, tmp_path: Path, *users: MailUser) -> DavSettings:
    return DavSettings(url=server.url, password_file=server.password_file(tmp_path / "pw", *users))


@pytest.fixture
def user(radicale: RadicaleServer) -> MailUser:
    return radicale.new_user()


@pytest.fixture
def settings(radicale: RadicaleServer, user: MailUser, tmp_path: Path) -> DavSettings:
    return settings_for(radicale, tmp_path, user)


def open_caldav(settings: DavSettings, user: MailUser) -> DavSession:
    return CalDavTarget(settings).open(Owner(upn=user.login, source_id="owner"))


def open_carddav(settings: DavSettings, user: MailUser) -> DavSession:
    contacts = dataclasses.replace(settings, config_key="targets.contacts")
    return CardDavTarget(contacts).open(Owner(upn=user.login, source_id="owner"))


def collection_name(folder: str) -> str:
    return unquote(folder.rstrip("/").rpartition("/")[2])


def test_discovery_finds_the_owners_home(settings: DavSettings, user: MailUser) -> None:
    session = open_caldav(settings, user)
    assert unquote(session.principal) == f"/{user.login}/"
    assert unquote(session.home) == f"/{user.login}/"
    assert open_carddav(settings, user).home == session.home


def test_calendar_is_created_once_with_its_display_name(
    radicale: RadicaleServer, settings: DavSettings, user: MailUser
) -> None:
    session = open_caldav(settings, user)
    folder = session.ensure_container(calendar("Calendrier", role="default"))
    assert session.ensure_container(calendar("Calendrier")) == folder
    assert open_caldav(settings, user).ensure_container(calendar("Calendrier")) == folder
    collections = radicale.collections(user.login)
    assert collections == {
        "calendrier": {"D:displayname": "Calendrier", "tag": "VCALENDAR"},
    }


def test_address_book_is_created_by_extended_mkcol(
    radicale: RadicaleServer, settings: DavSettings, user: MailUser
) -> None:
    session = open_carddav(settings, user)
    folder = session.ensure_container(address_book("Contacts"))
    assert session.ensure_container(address_book("Contacts")) == folder
    props = radicale.collections(user.login)[collection_name(folder)]
    assert props["tag"] == "VADDRESSBOOK" and props["D:displayname"] == "Contacts"


def test_calendars_and_address_books_with_one_name_stay_apart(
    settings: DavSettings, user: MailUser
) -> None:
    calendars = open_caldav(settings, user)
    books = open_carddav(settings, user)
    book = books.ensure_container(address_book("Famille"))
    agenda = calendars.ensure_container(calendar("Famille"))
    assert agenda != book
    assert calendars.ensure_container(calendar("Famille")) == agenda


def test_unicode_names_get_unique_ascii_slugs(
    radicale: RadicaleServer, settings: DavSettings, user: MailUser
) -> None:
    session = open_caldav(settings, user)
    names = ["Été 2024", "Ete 2024", "ETE-2024", "🚀", "日本語", "Équipe/Projet ☂"]
    folders = [session.ensure_container(calendar(name)) for name in names]
    assert len(set(folders)) == len(names)
    for folder in folders:
        assert collection_name(folder).isascii()
    later = open_caldav(settings, user)
    assert [later.ensure_container(calendar(name)) for name in names] == folders
    displayed = {p["D:displayname"] for p in radicale.collections(user.login).values()}
    assert displayed == set(names)


def test_put_is_idempotent_and_stored_as_given(
    radicale: RadicaleServer, settings: DavSettings, user: MailUser
) -> None:
    session = open_caldav(settings, user)
    folder = session.ensure_container(calendar("Travail"))
    payload = event("event-1")
    ref = session.put(folder, payload)
    assert ref == TargetRef(folder, payload.attrs["resource"])
    assert session.put(folder, payload) == ref  # 412: the same UID is already there
    stored = radicale.resources(user.login, collection_name(folder))
    assert list(stored) == [payload.attrs["resource"]]
    assert resource_uid(stored[ref.ref].decode()) == "event-1@example.test"
    assert "Réunion d'équipe" in stored[ref.ref].decode()


def test_find_after_a_new_session(settings: DavSettings, user: MailUser) -> None:
    crashed = open_caldav(settings, user)
    folder = crashed.ensure_container(calendar("Travail"))
    payload = event("event-2")
    ref = crashed.put(folder, payload)
    resumed = open_caldav(settings, user)
    assert resumed.find(folder, payload, frozenset()) == ref
    assert resumed.find(folder, payload, frozenset({ref.ref})) is None
    assert resumed.find(folder, event("never-written"), frozenset()) is None


def test_same_resource_with_another_uid_is_refused(settings: DavSettings, user: MailUser) -> None:
    session = open_caldav(settings, user)
    folder = session.ensure_container(calendar("Travail"))
    session.put(folder, event("event-3"))
    impostor = event("event-3", uid="someone-else@example.test")
    assert session.find(folder, impostor, frozenset()) is None
    with pytest.raises(Refused, match="another item"):
        session.put(folder, impostor)


def test_uid_conflict_and_invalid_data_are_refused(settings: DavSettings, user: MailUser) -> None:
    session = open_caldav(settings, user)
    folder = session.ensure_container(calendar("Travail"))
    session.put(folder, event("first", uid="shared@example.test"))
    with pytest.raises(Refused, match="no-uid-conflict"):
        session.put(folder, event("second", uid="shared@example.test"))
    broken = dataclasses.replace(event("broken"), content=b"not a calendar")
    with pytest.raises(Refused, match="400"):
        session.put(folder, broken)
    assert [e.fingerprint for e in session.listing(folder)] == ["uid:shared@example.test"]


def test_too_large_is_refused(settings: DavSettings, user: MailUser) -> None:
    session = open_caldav(settings, user)
    folder = session.ensure_container(calendar("Travail"))
    with pytest.raises(Refused, match="413"):
        session.put(folder, event("huge", description="x" * (2 * 1024 * 1024)))


def test_update_replaces_the_content(
    radicale: RadicaleServer, settings: DavSettings, user: MailUser
) -> None:
    session = open_caldav(settings, user)
    folder = session.ensure_container(calendar("Travail"))
    ref = session.put(folder, event("event-4"))
    assert session.update(ref, event("event-4", summary="Réunion déplacée")) == ref
    (stored,) = radicale.resources(user.login, collection_name(folder)).values()
    assert "Réunion déplacée" in stored.decode()
    session.remove(ref)
    assert session.update(ref, event("event-4")) == ref  # gone meanwhile: written anew
    assert [e.ref for e in session.listing(folder)] == [ref]


def test_remove_twice_and_listing(settings: DavSettings, user: MailUser) -> None:
    session = open_caldav(settings, user)
    folder = session.ensure_container(calendar("Travail"))
    payloads = [event(f"listed-{n}") for n in range(3)]
    refs = [session.put(folder, payload) for payload in payloads]
    listed = {entry.ref: entry.fingerprint for entry in session.listing(folder)}
    assert listed == {ref: p.fingerprint for ref, p in zip(refs, payloads, strict=True)}
    session.remove(refs[0])
    session.remove(refs[0])
    assert sorted(e.ref.ref for e in session.listing(folder)) == sorted(r.ref for r in refs[1:])
    assert session.listing(session.ensure_container(calendar("Vide"))) == []
    assert session.listing(session.home + "missing/") == []


def test_contacts_round_trip(
    radicale: RadicaleServer, settings: DavSettings, user: MailUser
) -> None:
    session = open_carddav(settings, user)
    folder = session.ensure_container(address_book("Contacts"))
    card = contact("contact-1")
    ref = session.put(folder, card)
    assert session.put(folder, card) == ref
    assert open_carddav(settings, user).find(folder, card, frozenset()) == ref
    assert [(e.ref, e.fingerprint) for e in session.listing(folder)] == [(ref, card.fingerprint)]
    stored = radicale.resources(user.login, collection_name(folder))[ref.ref].decode()
    assert "FN:Émile Zola" in stored


def test_move_between_calendars(settings: DavSettings, user: MailUser) -> None:
    session = open_caldav(settings, user)
    source = session.ensure_container(calendar("Source"))
    destination = session.ensure_container(calendar("Destination"))
    payload = event("moved")
    moved = session.move(session.put(source, payload), destination)
    assert moved == TargetRef(destination, payload.attrs["resource"])
    assert session.listing(source) == []
    assert session.find(destination, payload, frozenset()) == moved
    with pytest.raises(SkipItem, match="no longer"):
        session.move(TargetRef(source, payload.attrs["resource"]), destination)


def test_a_wrong_password_fails_that_owner_and_names_the_setting(
    radicale: RadicaleServer, user: MailUser, tmp_path: Path
) -> None:
    wrong = MailUser(user.login, "not-the-password")
    settings = settings_for(radicale, tmp_path, wrong)
    with pytest.raises(OwnerFailed, match="targets.calendar.password_file") as raised:
        open_caldav(settings, user)
    assert "not-the-password" not in str(raised.value)
    assert CalDavTarget(settings).check() != []


def test_an_owner_without_a_password_fails_alone(settings: DavSettings) -> None:
    with pytest.raises(OwnerFailed, match="no password for nobody@example.test"):
        CalDavTarget(settings).open(Owner(upn="nobody@example.test", source_id="x"))


def test_check_reports_nothing_for_radicale(settings: DavSettings) -> None:
    assert CalDavTarget(settings).check() == []
    assert CardDavTarget(settings).check() == []


def test_a_server_down_is_unreachable_and_retriable(user: MailUser, tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text(f"{user.login}:{user.password}\n", encoding="utf-8")
    path.chmod(0o600)
    settings = DavSettings(url=f"http://127.0.0.1:{free_port()}/", password_file=path)
    with pytest.raises(Unreachable):  # a Retriable the engine waits out
        open_caldav(settings, user)


def test_tls_is_verified_against_the_ca_file(tmp_path: Path) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    certificate.private_key_and_cert_chain_pem.write_to_path(tmp_path / "server.pem")
    authority.cert_pem.write_to_path(tmp_path / "ca.pem")
    tls = TlsFiles(tmp_path / "server.pem", tmp_path / "server.pem")
    with radicale_server(tls=tls) as server:
        user = server.new_user()
        trusted = DavSettings(
            url=server.url,
            ca_file=tmp_path / "ca.pem",
            password_file=server.password_file(tmp_path / "pw", user),
        )
        assert server.url.startswith("https://")
        folder = open_caldav(trusted, user).ensure_container(calendar("Chiffré"))
        assert folder.endswith("/")
        untrusted = dataclasses.replace(trusted, ca_file=None)
        with pytest.raises(FatalError, match="targets.calendar.ca_file"):
            open_caldav(untrusted, user)


def test_blob_payload_is_read_from_disk(
    settings: DavSettings, user: MailUser, tmp_path: Path
) -> None:
    from hirondelle.migrator.model import Blob

    session = open_caldav(settings, user)
    folder = session.ensure_container(calendar("Travail"))
    payload = event("spooled")
    spool = tmp_path / "spooled.ics"
    spool.write_bytes(payload.content)
    spooled = Payload(
        payload.source_id,
        b"",
        payload.fingerprint,
        payload.attrs,
        Blob(spool, len(payload.content)),
    )
    ref = session.put(folder, spooled)
    assert session.find(folder, payload, frozenset()) == ref
