"""The contract every calendar and contacts target keeps (`TargetSession`), run against the
CalDAV and CardDAV targets on a real Radicale and a real Xandikos, and against the .ics /
.vcf archives.

Gaps a target declares are skipped with "declared gap: ...".
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hirondelle.migrator.errors import ItemError, Refused
from hirondelle.migrator.model import Container, Owner, Payload
from hirondelle.migrator.protocols import Target, TargetSession
from hirondelle.tests.dav.payloads import contact, event

_ids = itertools.count(1)


@dataclass
class DavUnderTest:
    """One target with a fresh owner and the payload kind it carries."""

    name: str
    target: Target
    owner: Owner
    workload: str
    make: Callable[..., Payload]
    sessions: list[TargetSession] = field(default_factory=list)

    def session(self) -> TargetSession:
        """A new session for the owner, closed after the test."""
        session = self.target.open(self.owner)
        self.sessions.append(session)
        return session

    def payload(self, **options: str) -> Payload:
        return self.make(f"source-{next(_ids)}", **options)

    def container(self, name: str) -> Container:
        return Container(self.workload, self.owner.upn, f"id-{name}", (name,))

    def close(self) -> None:
        for session in self.sessions:
            session.close()


def _dav(
    kind: str, server_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> DavUnderTest:
    from hirondelle.connectors.dav import CalDavTarget, CardDavTarget, DavSettings
    from hirondelle.tests.servers import DavServer

    server: DavServer = request.getfixturevalue(server_fixture)
    user = server.new_user()
    key = "targets.calendar" if kind == "caldav" else "targets.contacts"
    settings = DavSettings(
        url=server.url,
        password_file=server.password_file(tmp_path / "passwords", user),
        ca_file=server.ca_file,
        config_key=key,
    )
    owner = Owner(upn=user.login, source_id=f"{kind}-owner")
    if kind == "caldav":
        return DavUnderTest(kind, CalDavTarget(settings), owner, "calendar", event)
    return DavUnderTest(kind, CardDavTarget(settings), owner, "contacts", contact)


def _archive(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> DavUnderTest:
    from hirondelle.connectors.archive_dav import IcsArchiveTarget, VcfArchiveTarget

    owner = Owner(upn="carol@example.test", source_id="archive-owner")
    if kind == "ics":
        return DavUnderTest(
            kind, IcsArchiveTarget(tmp_path, durable=False), owner, "calendar", event
        )
    return DavUnderTest(kind, VcfArchiveTarget(tmp_path, durable=False), owner, "contacts", contact)


FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], DavUnderTest]] = {
    "caldav-radicale": lambda request, path: _dav("caldav", "radicale", request, path),
    "carddav-radicale": lambda request, path: _dav("carddav", "radicale", request, path),
    "caldav-xandikos": lambda request, path: _dav("caldav", "xandikos", request, path),
    "carddav-xandikos": lambda request, path: _dav("carddav", "xandikos", request, path),
    "ics-archive": lambda request, path: _archive("ics", request, path),
    "vcf-archive": lambda request, path: _archive("vcf", request, path),
}


@pytest.fixture(params=sorted(FACTORIES))
def dav_subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DavUnderTest]:
    """Each calendar and contacts target in turn, with an owner who has nothing yet."""
    under_test = FACTORIES[request.param](request, tmp_path)
    try:
        yield under_test
    finally:
        under_test.close()


UNICODE_NAMES = ["Calendrier", "Été 2024", "Ete 2024", "2024/2025", "🚀 Fusée", "Ça & là", "日本語"]


def test_unicode_collection_names(dav_subject: DavUnderTest) -> None:
    session = dav_subject.session()
    stored = {}
    for name in UNICODE_NAMES:
        folder = session.ensure_container(dav_subject.container(name))
        assert session.ensure_container(dav_subject.container(name)) == folder  # idempotent
        payload = dav_subject.payload()
        stored[folder] = (payload, session.put(folder, payload))
    assert len(stored) == len(UNICODE_NAMES), "two source collections landed in one"
    later = dav_subject.session()
    for name, (folder, (payload, ref)) in zip(UNICODE_NAMES, stored.items(), strict=True):
        assert later.ensure_container(dav_subject.container(name)) == folder
        assert later.find(folder, payload, frozenset()) == ref
        assert [entry.ref for entry in later.listing(folder)] == [ref]


def test_second_put_finds_the_same(dav_subject: DavUnderTest) -> None:
    session = dav_subject.session()
    folder = session.ensure_container(dav_subject.container("Projets"))
    payload = dav_subject.payload()
    ref = session.put(folder, payload)
    assert session.put(folder, payload) == ref
    assert session.find(folder, payload, frozenset()) == ref
    assert [entry.ref for entry in session.listing(folder)] == [ref]


def test_find_after_crash_uses_a_new_session(dav_subject: DavUnderTest) -> None:
    crashed = dav_subject.session()
    folder = crashed.ensure_container(dav_subject.container("Projets"))
    payloads = [dav_subject.payload(), dav_subject.payload()]
    refs = [crashed.put(folder, payload) for payload in payloads]
    # no close(): the process died after the write, before the state recorded the ref
    resumed = dav_subject.session()
    assert [resumed.find(folder, p, frozenset()) for p in payloads] == refs
    assert resumed.find(folder, payloads[0], frozenset({refs[0].ref})) is None


def test_not_found_and_remove(dav_subject: DavUnderTest) -> None:
    session = dav_subject.session()
    folder = session.ensure_container(dav_subject.container("Projets"))
    assert session.find(folder, dav_subject.payload(), frozenset()) is None
    kept, gone = dav_subject.payload(), dav_subject.payload()
    session.put(folder, kept)
    ref = session.put(folder, gone)
    session.remove(ref)
    session.remove(ref)  # already gone: no error
    assert session.find(folder, gone, frozenset()) is None
    assert [entry.fingerprint for entry in session.listing(folder)] == [kept.fingerprint]


def test_another_uid_under_the_same_resource_is_refused(dav_subject: DavUnderTest) -> None:
    session = dav_subject.session()
    folder = session.ensure_container(dav_subject.container("Projets"))
    payload = dav_subject.payload()
    ref = session.put(folder, payload)
    impostor = dav_subject.make(payload.source_id, uid="urn:uuid:another")
    assert session.find(folder, impostor, frozenset()) is None
    with pytest.raises(Refused):  # a failure kept visible, never a skip
        session.put(folder, impostor)
    assert session.find(folder, payload, frozenset()) == ref


def test_update_replaces_the_item(dav_subject: DavUnderTest) -> None:
    session = dav_subject.session()
    folder = session.ensure_container(dav_subject.container("Projets"))
    payload = dav_subject.payload()
    ref = session.put(folder, payload)
    changed = dav_subject.make(payload.source_id, **_changed(dav_subject))
    assert session.update(ref, changed) == ref
    assert session.find(folder, changed, frozenset()) == ref
    (entry,) = session.listing(folder)
    assert entry.fingerprint == changed.fingerprint
    assert entry.size in (changed.size, -1)  # -1: the server rewrites what it stores


def _changed(subject: DavUnderTest) -> dict[str, str]:
    return {"summary": "Déplacée"} if subject.workload == "calendar" else {"name": "Émile Z."}


def test_listing_uids_and_sizes(dav_subject: DavUnderTest) -> None:
    session = dav_subject.session()
    folder = session.ensure_container(dav_subject.container("Listing"))
    payloads = [dav_subject.payload() for _ in range(3)]
    refs = [session.put(folder, payload) for payload in payloads]
    listed = {entry.ref: entry for entry in session.listing(folder)}
    assert set(listed) == set(refs)
    for ref, payload in zip(refs, payloads, strict=True):
        assert listed[ref].fingerprint == payload.fingerprint
        assert listed[ref].size in (payload.size, -1)
    assert session.listing(session.ensure_container(dav_subject.container("Vide"))) == []


def test_move(dav_subject: DavUnderTest) -> None:
    if not dav_subject.target.capabilities.moves:
        pytest.skip("declared gap: moves is False")
    session = dav_subject.session()
    source = session.ensure_container(dav_subject.container("Source"))
    destination = session.ensure_container(dav_subject.container("Classé été"))
    payload = dav_subject.payload()
    moved = session.move(session.put(source, payload), destination)
    assert moved.folder == destination
    assert session.listing(source) == []
    assert session.find(destination, payload, frozenset()) == moved


def test_empty_content_is_refused_or_stored(dav_subject: DavUnderTest) -> None:
    session = dav_subject.session()
    folder = session.ensure_container(dav_subject.container("Projets"))
    empty = dataclasses.replace(dav_subject.payload(), content=b"")
    try:
        ref = session.put(folder, empty)
    except ItemError:
        assert session.listing(folder) == []
    else:
        assert [entry.ref for entry in session.listing(folder)] == [ref]
