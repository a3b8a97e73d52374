"""The Maildir++ / mbox archive target, on a temporary directory."""

from __future__ import annotations

import mailbox
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hirondelle.connectors import archive as archive_module
from hirondelle.connectors.archive import (
    ArchiveSession,
    ArchiveTarget,
    folder_of_dir_name,
    maildir_dir_name,
    message_base,
)
from hirondelle.connectors.mbox_format import asctime, with_state
from hirondelle.mappings.mail import fingerprint_of
from hirondelle.migrator.errors import FatalError, SkipItem
from hirondelle.migrator.model import Container, Owner, Payload, TargetRef
from hirondelle.tests.servers import DovecotServer

OWNER = Owner(upn="alice@contoso.test", source_id="u-1", target_login="alice@example.test")
WHEN = datetime(2021, 6, 1, 8, 30, tzinfo=UTC)


def container(path: tuple[str, ...], roles: tuple[str | None, ...] = ()) -> Container:
    return Container("mail", OWNER.upn, "/".join(path), path, None, roles)


def message(
    source_id: str,
    body: str = "Bonjour\r\n",
    flags: tuple[str, ...] = (),
    when: datetime = WHEN,
    message_id: str | None = None,
) -> Payload:
    header = f"Message-ID: <{message_id}>\r\n" if message_id else ""
    content = f"{header}Subject: test\r\n\r\n{body}".encode()
    return Payload(
        source_id, content, fingerprint_of(content), {"flags": flags, "internal_date": when}
    )


@pytest.fixture
def target(tmp_path: Path) -> ArchiveTarget:
    return ArchiveTarget(tmp_path / "archive", durable=False)


@pytest.fixture
def session(target: ArchiveTarget) -> Iterator[ArchiveSession]:
    session = target.open(OWNER)
    yield session
    session.close()


def cur_files(session: ArchiveSession, folder: str) -> list[str]:
    return sorted(os.listdir(session.folder_dir(folder) / "cur"))


def test_capabilities_and_check(target: ArchiveTarget) -> None:
    capabilities = target.capabilities
    assert not capabilities.server_assigned_ids and capabilities.keeps_timestamps
    assert capabilities.max_item_bytes is None and capabilities.checksums and capabilities.moves
    assert target.check() == []


def test_check_reports_unwritable_root(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert ArchiveTarget(blocker / "archive").check() != []


def test_unusable_login_is_fatal(target: ArchiveTarget) -> None:
    with pytest.raises(FatalError):
        target.open(Owner(upn="../escape", source_id="x"))


def test_layout_is_maildir_plus_plus_with_utf7_names(session: ArchiveSession) -> None:
    inbox = session.ensure_container(container(("Bo\u00eete de r\u00e9ception",), ("inbox",)))
    child = session.ensure_container(
        container(("Bo\u00eete de r\u00e9ception", "\u00c9t\u00e9 2024", "v1.2"), ("inbox",))
    )
    sent = session.ensure_container(container(("\u00c9l\u00e9ments envoy\u00e9s",), ("sentitems",)))
    emoji = session.ensure_container(container(("Clients \U0001f4bc", "a/b"), ()))
    assert (inbox, sent) == ("INBOX", "Sent")
    assert child == "INBOX/\u00c9t\u00e9 2024/v1\u20242"
    assert emoji == "Clients \U0001f4bc/a\u2215b"
    maildir = session.maildir
    assert (maildir / "cur").is_dir() and (maildir / "tmp").is_dir()
    assert (maildir / ".INBOX.&AMk-t&AOk- 2024.v1&ICQ-2" / "new").is_dir()
    assert (maildir / ".INBOX.&AMk-t&AOk- 2024" / "maildirfolder").exists()
    assert (maildir / ".Sent" / "cur").is_dir()
    assert (maildir / ".Clients &2D3cvA-.a&IhU-b" / "cur").is_dir()
    assert set(session.folders()) >= {"INBOX", "Sent", child, emoji}
    assert session.ensure_container(container(("Clients \U0001f4bc", "a/b"))) == emoji


def test_role_alone_is_enough(session: ArchiveSession) -> None:
    bare = Container("mail", OWNER.upn, "id", ("Courrier ind\u00e9sirable",), "junkemail")
    assert session.ensure_container(bare) == "Junk"


def test_dir_names_round_trip() -> None:
    for folder in ["INBOX", "INBOX/Projets", "Sent", "Caf\u00e9/\U0001f600 x&y"]:
        assert folder_of_dir_name(maildir_dir_name(folder)) == folder
    assert maildir_dir_name("inbox") == ""


@pytest.mark.parametrize(
    ("flags", "suffix"),
    [
        ((), ":2,"),
        (("\\Seen",), ":2,S"),
        (("\\Seen", "\\Flagged", "\\Draft", "\\Answered"), ":2,DFRS"),
        (("\\Deleted", "\\Seen"), ":2,ST"),
        (("$Forwarded",), ":2,Pa"),
        (("\\Seen", "Projet_X", "=C3=89quipe"), ":2,Sab"),
        (("\\Recent",), ":2,"),
    ],
)
def test_flag_letters(session: ArchiveSession, flags: tuple[str, ...], suffix: str) -> None:
    folder = session.ensure_container(container(("Inbox",), ("inbox",)))
    ref = session.put(folder, message("m-1", flags=flags))
    assert cur_files(session, folder) == [ref.ref + suffix]


def test_keywords_file_is_written_as_dovecot_does(session: ArchiveSession) -> None:
    folder = session.ensure_container(container(("Inbox",), ("inbox",)))
    first = session.put(folder, message("m-1", flags=("Projet_X",)))
    second = session.put(folder, message("m-2", flags=("Urgent", "Projet_X")))
    keywords = (session.folder_dir(folder) / "dovecot-keywords").read_text()
    assert keywords == "0 Projet_X\n1 Urgent\n"
    assert cur_files(session, folder) == sorted([first.ref + ":2,a", second.ref + ":2,ab"])


def test_more_than_26_keywords_are_a_declared_gap(session: ArchiveSession) -> None:
    folder = session.ensure_container(container(("Inbox",), ("inbox",)))
    many = tuple(f"k{i}" for i in range(30))
    ref = session.put(folder, message("m-1", flags=("\\Seen", *many)))
    [name] = cur_files(session, folder)
    assert name == ref.ref + ":2,S" + "".join(chr(ord("a") + i) for i in range(26))


def test_file_is_named_from_source_id_and_dated(session: ArchiveSession) -> None:
    folder = session.ensure_container(container(("Inbox",), ("inbox",)))
    payload = message("AAMkAGVm==", body="x" * 1000 + "\r\n")
    ref = session.put(folder, payload)
    assert ref == TargetRef(folder, message_base("AAMkAGVm=="))
    path = session.folder_dir(folder) / "cur" / (ref.ref + ":2,")
    assert path.read_bytes() == payload.content
    assert path.stat().st_mtime == WHEN.timestamp()
    assert os.listdir(session.folder_dir(folder) / "tmp") == []


def test_second_put_never_doubles(session: ArchiveSession) -> None:
    folder = session.ensure_container(container(("Inbox",), ("inbox",)))
    first = session.put(folder, message("m-1"))
    assert session.find(folder, message("m-1"), frozenset()) == first
    second = session.put(folder, message("m-1", flags=("\\Seen",)))
    assert second == first
    assert cur_files(session, folder) == [first.ref + ":2,S"]


def test_find_honours_exclude_and_unknown_items(session: ArchiveSession) -> None:
    folder = session.ensure_container(container(("Inbox",), ("inbox",)))
    one = session.put(folder, message("m-1", message_id="same@x"))
    two = session.put(folder, message("m-2", message_id="same@x"))
    assert one != two and len(cur_files(session, folder)) == 2
    assert session.find(folder, message("m-1"), frozenset({one.ref})) is None
    assert session.find(folder, message("m-3"), frozenset()) is None


def test_find_after_crash_in_a_new_session(target: ArchiveTarget) -> None:
    first = target.open(OWNER)
    folder = first.ensure_container(container(("Inbox",), ("inbox",)))
    ref = first.put(folder, message("m-1"))
    second = target.open(OWNER)  # the first session was never closed
    assert second.find(folder, message("m-1"), frozenset()) == ref


def test_crash_between_tmp_write_and_rename_leaves_nothing_in_cur(
    session: ArchiveSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = session.ensure_container(container(("Inbox",), ("inbox",)))

    def crash(*args: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(archive_module.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        session.put(folder, message("m-1"))
    monkeypatch.undo()
    assert cur_files(session, folder) == []
    assert os.listdir(session.folder_dir(folder) / "new") == []
    assert session.find(folder, message("m-1"), frozenset()) is None
    ref = session.put(folder, message("m-1"))  # the retry lands normally
    assert cur_files(session, folder) == [ref.ref + ":2,"]


def test_update_renames_to_new_flags(session: ArchiveSession) -> None:
    folder = session.ensure_container(container(("Inbox",), ("inbox",)))
    ref = session.put(folder, message("m-1"))
    later = datetime(2022, 1, 2, tzinfo=UTC)
    assert session.update(ref, message("m-1", flags=("\\Seen", "\\Flagged"), when=later)) == ref
    assert cur_files(session, folder) == [ref.ref + ":2,FS"]
    assert (session.folder_dir(folder) / "cur" / (ref.ref + ":2,FS")).stat().st_mtime == (
        later.timestamp()
    )
    with pytest.raises(SkipItem):
        session.update(TargetRef(folder, "gone"), message("m-1"))


def test_move_keeps_flags_and_keywords(session: ArchiveSession) -> None:
    inbox = session.ensure_container(container(("Inbox",), ("inbox",)))
    other = session.ensure_container(container(("Classement",)))
    session.put(other, message("m-0", flags=("Other",)))  # takes letter "a" there
    ref = session.put(inbox, message("m-1", flags=("\\Seen", "Projet_X")))
    moved = session.move(ref, other)
    assert moved == TargetRef(other, ref.ref)
    assert cur_files(session, inbox) == []
    assert ref.ref + ":2,Sb" in cur_files(session, other)
    assert session.move(ref, other) == moved  # retried after a crash: already there
    with pytest.raises(SkipItem):
        session.move(TargetRef(inbox, "gone"), other)


def test_remove_is_idempotent(session: ArchiveSession) -> None:
    folder = session.ensure_container(container(("Inbox",), ("inbox",)))
    ref = session.put(folder, message("m-1"))
    session.remove(ref)
    session.remove(ref)
    session.remove(TargetRef("Never/Created", "nothing"))
    assert cur_files(session, folder) == []


def test_listing_gives_fingerprints_and_sizes(session: ArchiveSession) -> None:
    folder = session.ensure_container(container(("Inbox",), ("inbox",)))
    with_id = message("m-1", message_id="abc@x", flags=("\\Seen",))
    without = message("m-2", body="no id\r\n")
    empty = Payload("m-3", b"", "sha256:" + "0" * 64, {})
    refs = [session.put(folder, p) for p in (with_id, without, empty)]
    listed = {e.ref: e for e in session.listing(folder)}
    assert set(listed) == set(refs)
    assert listed[refs[0]].fingerprint == "mid:abc@x"
    assert listed[refs[1]].fingerprint == without.fingerprint
    assert [listed[r].size for r in refs] == [len(with_id.content), len(without.content), 0]


def test_mbox_holds_the_same_messages_in_date_order(target: ArchiveTarget) -> None:
    session = target.open(OWNER)
    folder = session.ensure_container(
        container(("Bo\u00eete de r\u00e9ception", "Projets", "2024/2025"), ("inbox",))
    )
    bodies = {
        "late": ("Late\r\n", datetime(2023, 1, 1, tzinfo=UTC)),
        "early": (
            "From the start\r\n>From quoted\r\n\r\nFrom again\r\n",
            datetime(2020, 1, 1, tzinfo=UTC),
        ),
        "middle": ("\u00e9t\u00e9 8-bit\r\n", datetime(2021, 5, 6, 7, 8, 9, tzinfo=UTC)),
    }
    payloads = {k: message(k, body=b, when=w) for k, (b, w) in bodies.items()}
    for payload in payloads.values():
        session.put(folder, payload)
    session.close()
    path = session.mbox_path(folder)
    assert path == session.mbox_dir / "INBOX" / "Projets" / "2024\u22152025.mbox"
    box = mailbox.mbox(path)
    found = [without_state(mboxrd_unquote(box.get_bytes(key))) for key in box.keys()]
    assert found == [payloads[k].content for k in ("early", "middle", "late")]
    assert [box.get_message(k).get_from() for k in box.keys()][1] == (
        "MAILER-DAEMON Thu May  6 07:08:09 2021"
    )
    box.close()
    assert not list(path.parent.glob(".*.tmp"))


def mboxrd_unquote(content: bytes) -> bytes:
    return re.sub(rb"(?m)^>(>*From )", rb"\1", content)


def without_state(content: bytes) -> bytes:
    """The message as put: the state headers the mbox adds first taken off."""
    return re.sub(rb"\A(?:(?:X-IMAPbase|Status|X-Status|X-Keywords): [^\r\n]*\r?\n)+", b"", content)


def test_mbox_carries_flags_and_keywords_as_dovecot_and_python_read_them(
    target: ArchiveTarget, dovecot: DovecotServer
) -> None:
    session = target.open(OWNER)
    folder = session.ensure_container(container(("Inbox",), ("inbox",)))
    states = [
        ("\\Seen", "\\Flagged"),
        ("\\Answered", "\\Draft", "$Forwarded", "Projet"),
        (),
    ]
    for number, flags in enumerate(states):
        # a Status header of the source's own must not override the state written
        content = f"Subject: m{number}\r\nStatus: RO\r\nX-UID: 9\r\n\r\nbody\r\n".encode()
        when = datetime(2021, 1, 1 + number, tzinfo=UTC)
        attrs = {"flags": flags, "internal_date": when}
        session.put(folder, Payload(f"m{number}", content, fingerprint_of(content), attrs))
    session.close()
    path = session.mbox_path(folder)

    box = mailbox.mbox(path)
    assert [box.get_message(k).get_flags() for k in box.keys()] == ["ROF", "OAT", "O"]
    box.close()
    # Dovecot serving a copy as a user's INBOX (mbox storage) shows the same flags; the
    # copy sits where Dovecot's mail user can reach it
    home = Path(tempfile.mkdtemp(dir=dovecot.root))
    home.chmod(0o755)
    served = home / "INBOX.mbox"
    shutil.copyfile(path, served)
    vmail = pwd.getpwnam("vmail")
    for each in (home, served):
        os.chown(each, vmail.pw_uid, vmail.pw_gid)
    fetched = subprocess.run(
        [
            "doveadm", "-c", str(dovecot.root / "dovecot.conf"),
            "-o", f"mail_location=mbox:{home}:INBOX={served}",
            "fetch", "-u", dovecot.new_user().login, "flags", "mailbox", "INBOX", "ALL",
        ],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    shown = [set(line.split()[1:]) for line in fetched.stdout.splitlines() if line]
    assert shown == [
        {"\\Seen", "\\Flagged"},
        {"\\Answered", "\\Draft", "$Forwarded", "Projet"},
        set(),
    ]


def test_mbox_is_rebuilt_only_when_the_folder_changed(target: ArchiveTarget) -> None:
    session = target.open(OWNER)
    folder = session.ensure_container(container(("Inbox",), ("inbox",)))
    ref = session.put(folder, message("m-1"))
    session.close()
    path = session.mbox_path(folder)
    first = path.stat().st_mtime_ns
    target.open(OWNER).close()
    assert path.stat().st_mtime_ns == first
    again = target.open(OWNER)
    again.remove(ref)
    again.close()
    assert path.read_bytes() == b""


def test_asctime_is_locale_free() -> None:
    assert asctime(datetime(2024, 3, 5, 9, 12, 44, tzinfo=UTC)) == "Tue Mar  5 09:12:44 2024"


def test_durable_writes(tmp_path: Path) -> None:
    session = ArchiveTarget(tmp_path).open(OWNER)
    folder = session.ensure_container(container(("Inbox",), ("inbox",)))
    ref = session.put(folder, message("m-1", flags=("Projet_X",)))
    session.update(ref, message("m-1", flags=("\\Seen",)))
    session.close()
    assert cur_files(session, folder) == [ref.ref + ":2,S"]
    assert session.mbox_path(folder).read_bytes().startswith(b"From MAILER-DAEMON ")


@pytest.mark.parametrize(
    "content",
    [
        b"Subject: a\r\nDate: x\n\nStatus: the deployment went fine\nX-Keywords: budget\n",
        b"Subject: a\n\r\nX-Keywords: a\n b\nbody\n",
        b"\nStatus: a body without headers\n",
        b"Subject: a\rStatus: CR only\r\rbody",
        b"no header block at all, Status: kept",
    ],
)
def test_mbox_state_headers_never_take_a_body_line(content: bytes) -> None:
    """Mixed line endings, no headers, CR only: only header-block lines are replaced."""
    written = with_state(content, ["\\Seen"])
    assert written.startswith(b"Status: RO")
    body = (
        re.split(rb"\n\r?\n", content, maxsplit=1)[-1]
        if b"\n\n" in content or b"\n\r\n" in content
        else content
    )
    assert written.endswith(body)
