"""Every target the contract runs, each built against its real server (the session's
fixture) with a fresh owner. Adding a target to the contract is adding one entry to
`SUBJECTS`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hirondelle.migrator.model import Owner, TargetRef

from .items import (
    ChatItems,
    ChatsItems,
    DavItems,
    FilesItems,
    MailItems,
    RulesItems,
    new_chat_owner,
    new_team,
)
from .subject import Stored, TargetUnderTest

Factory = Callable[[pytest.FixtureRequest, Path], TargetUnderTest]


@dataclass(frozen=True)
class Subject:
    """One registered target kind of one workload, on one server."""

    workload: str
    kind: str
    build: Factory


# -- mail --------------------------------------------------------------------------------------


def _imap(server_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> TargetUnderTest:
    """Dovecot with per-user passwords; Cyrus through its administrator (SASL authzid)."""
    from hirondelle.connectors.imap import ImapSettings, ImapTarget
    from hirondelle.tests.servers import ImapReadBack

    server: ImapReadBack = request.getfixturevalue(server_name)
    user = server.new_user()
    if server_name == "dovecot":
        login: dict[str, object] = {
            "password_file": server.password_file(tmp_path / "passwords", user)
        }
    else:
        secret = tmp_path / "master"
        secret.write_text(server.master_password + "\n", encoding="utf-8")
        secret.chmod(0o600)
        login = {
            "master_user": server.master_user,
            "master_password_file": secret,
            "master_login": server.master_login,
        }
    settings = ImapSettings(
        host=server.host,
        port=server.port,
        security="plain",
        max_message_bytes=256 * 1024,
        **login,  # type: ignore[arg-type]  # the login keywords of ImapSettings
    )

    def read_back(ref: TargetRef) -> Stored:
        uid = int(ref.ref.partition(":")[2])
        (message,) = [m for m in server.read_mailbox(user.login, ref.folder) if m.uid == uid]
        return Stored(flags=message.flags, date=message.internal_date)

    owner = Owner(upn=user.login, source_id="imap-owner")
    return TargetUnderTest(
        f"imap-{server_name}",
        "mail",
        "imap",
        ImapTarget(settings),
        owner,
        MailItems(owner, tmp_path),
        read_back,
    )


def _mail_archive(request: pytest.FixtureRequest, tmp_path: Path) -> TargetUnderTest:
    from hirondelle.connectors.archive import (
        ArchiveSession,
        ArchiveTarget,
        MaildirFile,
        letters_to_flags,
    )

    target = ArchiveTarget(tmp_path / "archive", durable=False)
    owner = Owner(upn="carol@example.test", source_id="archive-owner")

    def read_back(ref: TargetRef) -> Stored:
        session = target.open(owner)
        assert isinstance(session, ArchiveSession)
        (path,) = (session.folder_dir(ref.folder) / "cur").glob(f"{ref.ref}:2,*")
        found = MaildirFile.parse(path)
        flags = frozenset(letters_to_flags(found.letters, found.path.parent.parent))
        date = datetime.fromtimestamp(found.path.stat().st_mtime).astimezone()
        return Stored(flags=flags, date=date)

    items = MailItems(owner, tmp_path)
    return TargetUnderTest("mail-archive", "mail", "archive", target, owner, items, read_back)


# -- calendar and contacts ---------------------------------------------------------------------


def _dav(
    kind: str, server_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> TargetUnderTest:
    from hirondelle.connectors.dav import CalDavTarget, CardDavTarget, DavSettings
    from hirondelle.tests.servers import DavServer

    server: DavServer = request.getfixturevalue(server_fixture)
    user = server.new_user()
    workload = "calendar" if kind == "caldav" else "contacts"
    settings = DavSettings(
        url=server.url,
        password_file=server.password_file(tmp_path / "passwords", user),
        ca_file=server.ca_file,
        config_key=f"targets.{workload}",
    )
    owner = Owner(upn=user.login, source_id=f"{kind}-owner")
    target = CalDavTarget(settings) if kind == "caldav" else CardDavTarget(settings)
    return TargetUnderTest(
        f"{kind}-{server_fixture}",
        workload,
        kind,
        target,
        owner,
        DavItems(owner, tmp_path, workload),
        sizes_listed=False,  # the listing reads no content: the server may rewrite it
    )


def _dav_archive(workload: str, request: pytest.FixtureRequest, tmp_path: Path) -> TargetUnderTest:
    from hirondelle.connectors.archive_dav import IcsArchiveTarget, VcfArchiveTarget

    owner = Owner(upn="carol@example.test", source_id="archive-owner")
    kind = IcsArchiveTarget if workload == "calendar" else VcfArchiveTarget
    target = kind(tmp_path, durable=False)
    name = "ics-archive" if workload == "calendar" else "vcf-archive"
    items = DavItems(owner, tmp_path, workload)
    return TargetUnderTest(name, workload, "archive", target, owner, items)


# -- files -------------------------------------------------------------------------------------


def _file_on_disk(path: Path) -> Stored:
    return Stored(date=datetime.fromtimestamp(path.stat().st_mtime, UTC), content=path.read_bytes())


def _webdav(
    fixture: str, keeps_times: bool, request: pytest.FixtureRequest, tmp_path: Path
) -> TargetUnderTest:
    from hirondelle.connectors.webdav import WebDavSettings, WebDavTarget
    from hirondelle.tests.servers import WebDavServer

    server: WebDavServer = request.getfixturevalue(fixture)
    user = server.new_user()
    passwords = server.password_file(tmp_path / "passwords", user)
    target = WebDavTarget(WebDavSettings(url=server.url, password_file=passwords))
    owner = Owner(upn=user.login, source_id=f"{fixture}-owner")

    def read_back(ref: TargetRef) -> Stored:
        return _file_on_disk(server.path_of(user.login, f"{ref.folder}/{ref.ref}"))

    return TargetUnderTest(
        f"webdav-{fixture.removesuffix('_dav')}",
        "files",
        "webdav",
        target,
        owner,
        FilesItems(owner, tmp_path),
        read_back,
        server_keeps_times=keeps_times,
    )


def _files_archive(request: pytest.FixtureRequest, tmp_path: Path) -> TargetUnderTest:
    from hirondelle.connectors.archive_files import FilesArchiveTarget

    target = FilesArchiveTarget(tmp_path / "archive", durable=False)
    owner = Owner(upn="carol@example.test", source_id="archive-owner")

    def read_back(ref: TargetRef) -> Stored:
        return _file_on_disk(target.payload / owner.upn / ref.folder / ref.ref)

    items = FilesItems(owner, tmp_path)
    return TargetUnderTest("files-archive", "files", "archive", target, owner, items, read_back)


# -- chat --------------------------------------------------------------------------------------


def _matrix(
    mode: str, request: pytest.FixtureRequest, tmp_path: Path, workload: str = "chat"
) -> TargetUnderTest:
    """The application service (puppets, kept timestamps) or a plain bot account, for a
    team's channels or (workload "chats") a user's Teams chats."""
    from hirondelle.connectors.matrix import MatrixSettings, MatrixTarget
    from hirondelle.tests.servers import SYNAPSE_AS_TOKEN, MatrixAccount, SynapseServer

    server: SynapseServer = request.getfixturevalue("synapse")
    token = tmp_path / f"{mode}-token"
    if mode == "appservice":
        token.write_text(SYNAPSE_AS_TOKEN, encoding="utf-8")
        settings = MatrixSettings(server.url, server.server_name, as_token_file=token)
    else:
        bot: MatrixAccount = request.getfixturevalue("synapse_bot")
        token.write_text(bot.access_token, encoding="utf-8")
        settings = MatrixSettings(
            server.url,
            server.server_name,
            mode="bot",
            access_token_file=token,
            room_alias_prefix="tchap_",
            bot_rate=1000.0,
        )
    token.chmod(0o600)
    owner = new_team() if workload == "chat" else new_chat_owner()
    items = ChatItems(owner, tmp_path) if workload == "chat" else ChatsItems(owner, tmp_path)
    return TargetUnderTest(
        f"matrix-{mode}" if workload == "chat" else f"matrix-chats-{mode}",
        workload,
        "matrix",
        MatrixTarget(settings),
        owner,
        items,
        sizes_listed=False,  # a room's history gives no stored size
        put_twice_same_ref=True,  # each event's transaction id: sent once
        over_limit_reason="size limit",  # the homeserver's 413 M_TOO_LARGE
    )


def _chat_archive(
    request: pytest.FixtureRequest, tmp_path: Path, workload: str = "chat"
) -> TargetUnderTest:
    from hirondelle.connectors.archive_chat import ChatArchiveTarget

    owner = new_team() if workload == "chat" else new_chat_owner()
    items = ChatItems(owner, tmp_path) if workload == "chat" else ChatsItems(owner, tmp_path)
    return TargetUnderTest(
        "chat-archive" if workload == "chat" else "chats-archive",
        workload,
        "archive",
        ChatArchiveTarget(tmp_path / "archive"),
        owner,
        items,
        sizes_listed=False,  # listed from the channel's lines, not their bytes
    )


# -- rules -------------------------------------------------------------------------------------


def _managesieve(request: pytest.FixtureRequest, tmp_path: Path) -> TargetUnderTest:
    """Dovecot's Pigeonhole, with per-user passwords."""
    from hirondelle.connectors.managesieve import ManageSieveSettings, ManageSieveTarget
    from hirondelle.tests.servers import DovecotServer

    server: DovecotServer = request.getfixturevalue("dovecot")
    user = server.new_user()
    settings = ManageSieveSettings(
        host=server.host,
        port=server.sieve_port,
        security="plain",
        password_file=server.password_file(tmp_path / "passwords", user),
    )

    def read_back(ref: TargetRef) -> Stored:
        return Stored(content=server.sieve_script(user.login, ref.ref).encode("utf-8"))

    owner = Owner(upn=user.login, source_id="managesieve-owner")
    target = ManageSieveTarget(settings)
    items = RulesItems(owner, tmp_path)
    return TargetUnderTest(
        "managesieve-dovecot", "rules", "managesieve", target, owner, items, read_back
    )


def _sieve_archive(request: pytest.FixtureRequest, tmp_path: Path) -> TargetUnderTest:
    from hirondelle.connectors.archive_sieve import SieveArchiveTarget

    target = SieveArchiveTarget(tmp_path / "archive", durable=False)
    owner = Owner(upn="carol@example.test", source_id="archive-owner")

    def read_back(ref: TargetRef) -> Stored:
        return Stored(content=(target.payload / owner.upn / f"{ref.ref}.sieve").read_bytes())

    items = RulesItems(owner, tmp_path)
    return TargetUnderTest("sieve-archive", "rules", "archive", target, owner, items, read_back)


_chats_matrix = functools.partial(_matrix, workload="chats")
_chats_archive = functools.partial(_chat_archive, workload="chats")


def _entry(
    workload: str, kind: str, build: Callable[..., TargetUnderTest], *args: object
) -> Subject:
    return Subject(workload, kind, functools.partial(build, *args))


SUBJECTS: dict[str, Subject] = {
    "imap-dovecot": _entry("mail", "imap", _imap, "dovecot"),
    "imap-cyrus": _entry("mail", "imap", _imap, "cyrus"),
    "mail-archive": _entry("mail", "archive", _mail_archive),
    "caldav-radicale": _entry("calendar", "caldav", _dav, "caldav", "radicale"),
    "caldav-xandikos": _entry("calendar", "caldav", _dav, "caldav", "xandikos"),
    "ics-archive": _entry("calendar", "archive", _dav_archive, "calendar"),
    "carddav-radicale": _entry("contacts", "carddav", _dav, "carddav", "radicale"),
    "carddav-xandikos": _entry("contacts", "carddav", _dav, "carddav", "xandikos"),
    "vcf-archive": _entry("contacts", "archive", _dav_archive, "contacts"),
    "webdav-apache": _entry("files", "webdav", _webdav, "apache_dav", False),
    "webdav-rclone": _entry("files", "webdav", _webdav, "rclone_dav", True),
    "webdav-wsgidav": _entry("files", "webdav", _webdav, "wsgidav_dav", True),
    "webdav-sabre": _entry("files", "webdav", _webdav, "sabre_dav", False),
    "webdav-lighttpd": _entry("files", "webdav", _webdav, "lighttpd_dav", False),
    "webdav-nginx": _entry("files", "webdav", _webdav, "nginx_dav", True),
    "files-archive": _entry("files", "archive", _files_archive),
    "matrix-appservice": _entry("chat", "matrix", _matrix, "appservice"),
    "matrix-bot": _entry("chat", "matrix", _matrix, "bot"),
    "chat-archive": _entry("chat", "archive", _chat_archive),
    "matrix-chats-appservice": _entry("chats", "matrix", _chats_matrix, "appservice"),
    "matrix-chats-bot": _entry("chats", "matrix", _chats_matrix, "bot"),
    "chats-archive": _entry("chats", "archive", _chats_archive),
    "managesieve-dovecot": _entry("rules", "managesieve", _managesieve),
    "sieve-archive": _entry("rules", "archive", _sieve_archive),
}


def names_of(workload: str | None = None) -> list[str]:
    """The subjects of `workload` (every one when None), in a stable order."""
    return [name for name, s in SUBJECTS.items() if workload in (None, s.workload)]


CONTRACT_TARGETS: frozenset[tuple[str, str]] = frozenset(
    (subject.workload, subject.kind) for subject in SUBJECTS.values()
)
"""Every (workload, target kind) pair the contract runs, for the registry's own check."""
