"""The archive target: each owner's mail as standard files, Maildir++ and mbox.

Layout, per owner (the target login, else the UPN), under the bag's payload (`archive_bag`)::

    <root>/data/<login>/Maildir/                 INBOX (cur/ new/ tmp/)
    <root>/data/<login>/Maildir/.INBOX.Projets/  a child of INBOX (Maildir++: "." between
                                                 levels, names in modified UTF-7, as Dovecot
                                                 writes them)
    <root>/data/<login>/Maildir/.Sent/           well-known folders get Sent/Trash/Drafts/
                                                 Junk/Archive
    <root>/data/<login>/mbox/INBOX.mbox          the same folders as mboxrd files, rebuilt
    <root>/data/<login>/mbox/INBOX/Projets.mbox  on close()

A message file is named `<digest of the source id>:2,<flags>` (the Maildir "info" with
D draft, F flagged, P passed ($Forwarded), R replied, S seen, T trashed, then one lowercase
letter per keyword as listed in the folder's `dovecot-keywords` file; $Forwarded is also
written as a keyword, since Dovecot reads nothing from "P"). It is written under
tmp/ and renamed into cur/, so no half message is ever visible; its mtime is the message's
internal date. The same source id always maps to the same file, so a second put replaces
instead of doubling. Folder names are the mailbox names an IMAP server with "/" as
delimiter shows for them ("INBOX/Projets"): that is the `TargetRef.folder`.

Importing the archive:
- Maildir, for Dovecot and the suites built on it (BlueMind's import takes Maildir too):
  either serve a copy directly (`mail_location = maildir:<root>/data/%u/Maildir`, files owned by
  the mail user), or merge into a live mailbox with
  `doveadm import -u <user> maildir:<root>/data/<login>/Maildir "" all`. Folder names, flags,
  keywords (up to 26 per folder) and internal dates (the file mtimes) come along; this
  layout was checked against Dovecot 2.3 serving it over IMAP.
- mbox, for Thunderbird (ImportExportTools NG, "Import mbox file") and La Suite Messages'
  mbox import: one `.mbox` file per folder, in date order, each message's flags and keywords
  in its `Status:`, `X-Status:` and `X-Keywords:` headers (see `mbox_format`).

Declared gaps: a folder may hold at most 26 distinct keywords (the letters a-z Dovecot uses
in Maildir names), further keywords are dropped; a folder whose Maildir++ directory name
would exceed 255 bytes is refused with `SkipItem`; mbox cannot carry a message that does not
end with a newline byte for byte (one newline is added before the separator).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..mappings.mail import fingerprint_of
from ..mappings.mail_folders import (
    FALLBACK_NAMES,
    INBOX,
    imap_utf7_decode,
    imap_utf7_encode,
    join_folder,
    split_folder,
    target_folder,
)
from ..migrator.errors import SkipItem
from ..migrator.model import Capabilities, Container, Entry, Owner, Payload, TargetRef
from .archive_root import ArchiveRoot, login_dir_name
from .archive_write import sync_dir, write_atomically
from .mbox_format import asctime, imap_base, mboxrd_quote, with_state

FOLDER_DELIMITER = "/"  # between levels of a mailbox name (`TargetRef.folder`)
MAILDIR_DELIMITER = "."  # between levels of a Maildir++ directory name
MAX_DIR_NAME_BYTES = 255
MAX_KEYWORDS = 26
KEYWORDS_FILE = "dovecot-keywords"

# System flags and their Maildir info letters (https://cr.yp.to/proto/maildir.html).
FLAG_LETTERS = {
    "\\Draft": "D",
    "\\Flagged": "F",
    "$Forwarded": "P",
    "\\Answered": "R",
    "\\Seen": "S",
    "\\Deleted": "T",
}
LETTER_FLAGS = {letter: flag for flag, letter in FLAG_LETTERS.items()}
# Dovecot reads no flag from "P": it keeps $Forwarded as a keyword, so it is written both ways.
KEYWORD_TOO = frozenset({"$Forwarded"})


def message_base(source_id: str) -> str:
    """The file base name (and `TargetRef.ref`) of a source item: a digest of its id."""
    return hashlib.sha256(source_id.encode("utf-8")).hexdigest()[:40]


# -- folder names and directories -----------------------------------------------------------


def _canonical(segments: tuple[str, ...]) -> tuple[str, ...]:
    """INBOX is case-insensitive at the top level (RFC 3501 section 5.1)."""
    if segments and segments[0].casefold() == INBOX.casefold():
        return (INBOX, *segments[1:])
    return segments


def _file_segment(segment: str) -> str:
    """A mailbox level made safe as a file name: no "", "." or ".." (no path traversal)."""
    if segment.strip(".") == "":
        return segment.replace(".", "\u2024") or "Unnamed"
    return segment.replace("\0", "_")


def maildir_dir_name(folder: str) -> str:
    """The Maildir++ directory of a mailbox name: "" for INBOX, ".INBOX.Projets" otherwise."""
    segments = _canonical(split_folder(folder, FOLDER_DELIMITER))
    if segments == (INBOX,):
        return ""
    encoded = imap_utf7_encode(join_folder(segments, MAILDIR_DELIMITER))
    return MAILDIR_DELIMITER + encoded


def folder_of_dir_name(name: str) -> str:
    """The mailbox name of a Maildir++ directory (the inverse of `maildir_dir_name`)."""
    if not name:
        return INBOX
    segments = split_folder(imap_utf7_decode(name[1:]), MAILDIR_DELIMITER)
    return join_folder(segments, FOLDER_DELIMITER)


@dataclass(frozen=True, slots=True)
class MaildirFile:
    """One message file: its path, base name (the ref) and Maildir info letters."""

    path: Path
    base: str
    letters: str

    @classmethod
    def parse(cls, path: Path) -> MaildirFile:
        base, _, info = path.name.partition(":")
        return cls(path, base, info[2:] if info.startswith("2,") else "")


# -- keywords ---------------------------------------------------------------------------------


def read_keywords(folder_dir: Path) -> list[str]:
    """The folder's keywords by letter index (Dovecot's `dovecot-keywords`: "<n> <name>")."""
    keywords: list[str] = []
    try:
        lines = (folder_dir / KEYWORDS_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return keywords
    for line in lines:
        index, _, name = line.partition(" ")
        if index.isdigit() and name and int(index) < MAX_KEYWORDS:
            keywords.extend([""] * (int(index) + 1 - len(keywords)))
            keywords[int(index)] = name
    return keywords


def _is_keyword(flag: str) -> bool:
    return bool(flag) and not flag.startswith("\\") and not any(c.isspace() for c in flag)


def flags_to_letters(flags: Sequence[str], folder_dir: Path, durable: bool) -> str:
    """Maildir info letters for `flags`, registering new keywords in the folder's file."""
    system = sorted({FLAG_LETTERS[f] for f in flags if f in FLAG_LETTERS})
    wanted = [f for f in flags if f in KEYWORD_TOO or (f not in FLAG_LETTERS and _is_keyword(f))]
    if not wanted:
        return "".join(system)
    keywords = read_keywords(folder_dir)
    added = [k for k in dict.fromkeys(wanted) if k not in keywords]
    room = MAX_KEYWORDS - len(keywords)
    if added and room > 0:
        keywords.extend(added[:room])
        lines = "".join(f"{i} {k}\n" for i, k in enumerate(keywords) if k)
        write_atomically(folder_dir / KEYWORDS_FILE, [lines.encode("utf-8")], durable)
    letters = {chr(ord("a") + keywords.index(k)) for k in wanted if k in keywords}
    return "".join(system) + "".join(sorted(letters))


def letters_to_flags(letters: str, folder_dir: Path) -> tuple[str, ...]:
    """The flags and keywords that Maildir info letters stand for in this folder."""
    return flags_of_letters(letters, read_keywords(folder_dir))


def flags_of_letters(letters: str, keywords: Sequence[str]) -> tuple[str, ...]:
    """The flags and keywords that Maildir info letters stand for, given the folder's
    keywords by letter index (`read_keywords`)."""
    flags = [LETTER_FLAGS[c] for c in letters if c in LETTER_FLAGS]
    for c in letters:
        index = ord(c) - ord("a")
        if 0 <= index < len(keywords) and keywords[index] and keywords[index] not in flags:
            flags.append(keywords[index])
    return tuple(flags)


# -- the target -------------------------------------------------------------------------------


class ArchiveTarget(ArchiveRoot):
    """Writes each owner's mail under `root` as Maildir++ and mbox files (see module doc)."""

    capabilities = Capabilities(
        server_assigned_ids=False,
        keeps_timestamps=True,
        max_item_bytes=None,
        checksums=True,
        moves=True,
        special_folders=tuple(FALLBACK_NAMES),
    )

    def open(self, owner: Owner) -> ArchiveSession:
        return ArchiveSession(self.directory(login_dir_name(owner)), self.durable)


class ArchiveSession:
    """One owner's archive. Used by one thread at a time, as `TargetSession` says."""

    def __init__(self, owner_dir: Path, durable: bool = True) -> None:
        self.owner_dir = owner_dir
        self.maildir = owner_dir / "Maildir"
        self.mbox_dir = owner_dir / "mbox"
        self.durable = durable

    # -- folders --

    def folder_dir(self, folder: str) -> Path:
        """The Maildir directory of a mailbox name."""
        name = maildir_dir_name(folder)
        if len(name.encode("utf-8")) > MAX_DIR_NAME_BYTES:
            raise SkipItem(f"folder {folder!r} is too deep or long for a Maildir++ name")
        return self.maildir / name if name else self.maildir

    def _make_folder(self, folder: str) -> Path:
        folder_dir = self.folder_dir(folder)
        for sub in ("cur", "new", "tmp"):
            (folder_dir / sub).mkdir(parents=True, exist_ok=True)
        if folder_dir != self.maildir:
            (folder_dir / "maildirfolder").touch(exist_ok=True)
        return folder_dir

    def ensure_container(self, container: Container) -> str:
        """Create the container's Maildir folder (and its parents); return its name."""
        roles = container.path_roles or (None,) * (len(container.path) - 1) + (container.role,)
        segments = target_folder(container.path, roles, {})
        folder = join_folder(segments, FOLDER_DELIMITER)
        for depth in range(1, len(segments) + 1):
            self._make_folder(join_folder(segments[:depth], FOLDER_DELIMITER))
        return folder

    def folders(self) -> list[str]:
        """Every mailbox name present in this owner's Maildir."""
        if not self.maildir.is_dir():
            return []
        names = [""] + sorted(
            p.name for p in self.maildir.iterdir() if p.name.startswith(".") and p.is_dir()
        )
        folders = []
        for name in names:
            if (self.maildir / name / "cur").is_dir():
                try:
                    folders.append(folder_of_dir_name(name))
                except ValueError:  # not written by us: not valid modified UTF-7
                    continue
        return folders

    # -- message files --

    def _files(self, folder_dir: Path, ordered: bool = True) -> Iterator[MaildirFile]:
        for sub in ("cur", "new"):
            try:
                entries: Iterable[os.DirEntry[str]] = os.scandir(folder_dir / sub)
            except FileNotFoundError:
                continue
            if ordered:
                entries = sorted(entries, key=lambda e: e.name)
            for entry in entries:
                if not entry.name.startswith(".") and entry.is_file():
                    yield MaildirFile.parse(Path(entry.path))

    def _locate(self, folder_dir: Path, base: str) -> MaildirFile | None:
        found = [f for f in self._files(folder_dir) if f.base == base]
        for duplicate in found[1:]:  # left by a crash between replace and unlink
            duplicate.path.unlink(missing_ok=True)
        return found[0] if found else None

    def _sync_dir(self, directory: Path) -> None:
        if self.durable:
            sync_dir(directory)

    # -- TargetSession --

    def find(self, folder: str, payload: Payload, exclude: Set[str]) -> TargetRef | None:
        """The file an earlier put wrote for this source id, whatever its flags."""
        base = message_base(payload.source_id)
        if base in exclude or self._locate(self.folder_dir(folder), base) is None:
            return None
        return TargetRef(folder, base)

    def put(self, folder: str, payload: Payload) -> TargetRef:
        """Write the message under tmp/, then rename it into cur/ (replacing an older copy)."""
        folder_dir = self._make_folder(folder)
        base = message_base(payload.source_id)
        letters = flags_to_letters(payload.attrs.get("flags", ()), folder_dir, self.durable)
        final = folder_dir / "cur" / f"{base}:2,{letters}"
        temporary = folder_dir / "tmp" / f"{base}.{os.getpid()}_{uuid.uuid4().hex}"
        self._write_message(temporary, payload)
        previous = self._locate(folder_dir, base)
        os.replace(temporary, final)
        if previous is not None and previous.path != final:
            previous.path.unlink(missing_ok=True)
        self._sync_dir(final.parent)
        return TargetRef(folder, base)

    def _write_message(self, temporary: Path, payload: Payload) -> None:
        try:
            with open(temporary, "xb") as stream:
                stream.write(payload.content)
                if self.durable:
                    stream.flush()
                    os.fsync(stream.fileno())
            self._stamp(temporary, payload)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    @staticmethod
    def _stamp(path: Path, payload: Payload) -> None:
        moment = payload.attrs.get("internal_date")
        if isinstance(moment, datetime):
            stamp = moment.timestamp() if moment.tzinfo else moment.replace(tzinfo=UTC).timestamp()
            os.utime(path, (stamp, stamp))

    def _require(self, ref: TargetRef) -> MaildirFile:
        found = self._locate(self.folder_dir(ref.folder), ref.ref)
        if found is None:
            raise SkipItem(f"message {ref.ref} is no longer in archive folder {ref.folder!r}")
        return found

    def update(self, ref: TargetRef, payload: Payload) -> TargetRef:
        """Rename the file to the payload's flag letters and restamp its date."""
        current = self._require(ref)
        folder_dir = current.path.parent.parent
        letters = flags_to_letters(payload.attrs.get("flags", ()), folder_dir, self.durable)
        final = folder_dir / "cur" / f"{current.base}:2,{letters}"
        if final != current.path:
            os.replace(current.path, final)
            self._sync_dir(final.parent)
        self._stamp(final, payload)
        return TargetRef(ref.folder, current.base)

    def move(self, ref: TargetRef, folder: str) -> TargetRef:
        """Rename the file into another folder, translating its keyword letters."""
        target_dir = self._make_folder(folder)
        current = self._locate(self.folder_dir(ref.folder), ref.ref)
        if current is None:
            if self._locate(target_dir, ref.ref) is not None:  # moved before a crash
                return TargetRef(folder, ref.ref)
            raise SkipItem(f"message {ref.ref} is no longer in archive folder {ref.folder!r}")
        flags = letters_to_flags(current.letters, current.path.parent.parent)
        letters = flags_to_letters(flags, target_dir, self.durable)
        os.replace(current.path, target_dir / "cur" / f"{current.base}:2,{letters}")
        self._sync_dir(target_dir / "cur")
        return TargetRef(folder, current.base)

    def remove(self, ref: TargetRef) -> None:
        """Delete the message file; nothing to do when it is already gone."""
        try:
            folder_dir = self.folder_dir(ref.folder)
        except SkipItem:
            return
        found = self._locate(folder_dir, ref.ref)
        if found is not None:
            found.path.unlink(missing_ok=True)

    def listing(self, folder: str) -> list[Entry]:
        """Every message of the folder with its fingerprint and size."""
        return list(self._entries(folder, self._files(self.folder_dir(folder))))

    def listing_stream(self, folder: str) -> Iterator[Entry]:
        """`listing` in directory order, one file at a time (a folder of a million
        messages is never held whole)."""
        return self._entries(folder, self._files(self.folder_dir(folder), ordered=False))

    @staticmethod
    def _entries(folder: str, files: Iterable[MaildirFile]) -> Iterator[Entry]:
        for message in files:
            content = message.path.read_bytes()
            yield Entry(TargetRef(folder, message.base), fingerprint_of(content), len(content))

    def close(self) -> None:
        """Rebuild the mbox file of every folder changed since its mbox was written."""
        for folder in self.folders():
            if self._mbox_is_stale(folder):
                self.write_mbox(folder)

    # -- mbox --

    def mbox_path(self, folder: str) -> Path:
        """Where the folder's mbox goes: mbox/<levels joined with "/">.mbox."""
        segments = _canonical(split_folder(folder, FOLDER_DELIMITER))
        *parents, leaf = (_file_segment(s) for s in segments)
        return self.mbox_dir.joinpath(*parents, f"{leaf}.mbox")

    def _mbox_is_stale(self, folder: str) -> bool:
        try:
            written = self.mbox_path(folder).stat().st_mtime_ns
        except FileNotFoundError:
            return True
        folder_dir = self.folder_dir(folder)
        changed = max((folder_dir / sub).stat().st_mtime_ns for sub in ("cur", "new"))
        return written <= changed

    def write_mbox(self, folder: str) -> Path:
        """Write the folder's messages, oldest first, as one mboxrd file (atomically)."""
        files = list(self._files(self.folder_dir(folder)))
        files.sort(key=lambda f: (f.path.stat().st_mtime_ns, f.base))
        path = self.mbox_path(folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        chunks = self._mbox_chunks(files, folder, self.folder_dir(folder))
        write_atomically(path, chunks, self.durable)
        return path

    @staticmethod
    def _mbox_chunks(
        files: Sequence[MaildirFile], folder: str, folder_dir: Path
    ) -> Iterator[bytes]:
        by_letter = read_keywords(folder_dir)  # once per folder, not once per message
        keywords = [k for k in by_letter if k]
        base = imap_base(folder, len(files), keywords) if keywords else None
        for message in files:
            try:
                content = message.path.read_bytes()
                stamp = message.path.stat().st_mtime
            except FileNotFoundError:  # removed meanwhile
                continue
            moment = datetime.fromtimestamp(stamp, UTC)
            flags = flags_of_letters(message.letters, by_letter)
            yield f"From MAILER-DAEMON {asctime(moment)}\n".encode("ascii")
            yield mboxrd_quote(with_state(content, flags, base))
            base = None
            yield b"\n" if content.endswith(b"\n") else b"\n\n"
