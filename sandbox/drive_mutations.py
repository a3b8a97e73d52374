"""The mutations applied to the sandbox's drives: items created, changed, renamed, moved, deleted.

`DriveMutator` applies a `Mutation`'s file fields to `drive_data.SandboxDrives`,
deterministically from the mutation's seed; every item is touched at most once.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from .drive_data import DriveItem, FileChanges, ItemVersion, SandboxDrives, item_id
from .drive_seed import MIME_TYPES, STEMS
from .tenant_records import take

if TYPE_CHECKING:
    from .tenant import Mutation


CHANGE_KINDS = (
    "file_creates",
    "file_changes",
    "file_renames",
    "file_moves",
    "folder_renames",
    "file_deletions",
    "folder_deletions",
)


class DriveMutator:
    """Applies one `Mutation`'s file fields; every item is touched at most once."""

    def __init__(self, drives: SandboxDrives, mutation: Mutation) -> None:
        self.drives, self.mutation = drives, mutation
        self.rng = random.Random(f"{drives.seed}|files|{mutation.seed}|{drives.seq}")
        self.changes = FileChanges({kind: [] for kind in CHANGE_KINDS})

    def apply(self) -> FileChanges:
        items = [i for d in self._scope() for i in self.drives.items(d)]
        doomed = self._doomed_folders(items)
        gone = {i.id for folder in doomed for i in self._subtree(items, folder)}
        files = [i for i in items if i.kind == "file" and not i.pinned and i.id not in gone]
        homes = [i for i in items if i.kind in ("root", "folder") and i.id not in gone]
        m = self.mutation
        wanted = m.file_changes + m.file_renames + m.file_moves + m.file_deletions
        picks = iter(self.rng.sample(files, min(wanted, len(files))))
        for _ in range(m.file_creates if homes else 0):
            self._create(self.rng.choice(homes))
        for item in take(picks, m.file_changes):
            self._change(item)
        for item in take(picks, m.file_renames):
            self._note(
                "file_renames",
                self.drives.replace(item, name=_renamed(item.name, self.drives.seq + 1)),
            )
        for item in take(picks, m.file_moves):
            self._move(item, homes)
        renamable = [i for i in homes if i.kind == "folder" and not i.pinned]
        for folder in self.rng.sample(renamable, min(m.folder_renames, len(renamable))):
            self._note(
                "folder_renames",
                self.drives.replace(folder, name=f"{folder.name} (renommé {self.drives.seq + 1})"),
            )
        for item in take(picks, m.file_deletions):
            self.changes.by_change["file_deletions"].append(self.drives.delete(item))
        for folder in doomed:
            subtree = sorted(
                self._subtree(items, folder), key=lambda i: -len(self.drives.ancestors(i))
            )
            self.changes.by_change["folder_deletions"] += [self.drives.delete(i) for i in subtree]
        return self.changes

    def _scope(self) -> list[str]:
        if self.mutation.drive:
            return [self.drives.drive(self.mutation.drive).id]
        if self.mutation.user:
            key = self.mutation.user.lower()
            found = self.drives.user_drives.get(key) or self.drives.user_drives.get(
                self.mutation.user
            )
            return [found] if found else []
        return [d.id for d in self.drives.drives]

    def _doomed_folders(self, items: list[DriveItem]) -> list[DriveItem]:
        """Folders to delete: none pinned below them, none inside another one chosen."""
        candidates = [
            f
            for f in items
            if f.kind == "folder" and not any(i.pinned for i in self._subtree(items, f))
        ]
        self.rng.shuffle(candidates)
        chosen: list[DriveItem] = []
        for folder in candidates:
            if len(chosen) == self.mutation.folder_deletions:
                break
            lineage = {a.id for a in self.drives.ancestors(folder)}
            if not any(
                c.id in lineage or folder.id in {a.id for a in self.drives.ancestors(c)}
                for c in chosen
            ):
                chosen.append(folder)
        return chosen

    def _subtree(self, items: list[DriveItem], folder: DriveItem) -> list[DriveItem]:
        inside = [i for i in items if folder.id in {a.id for a in self.drives.ancestors(i)}]
        return [folder, *inside]

    def _create(self, home: DriveItem) -> None:
        stem, extension = self.rng.choice(STEMS)
        sequence = self.drives.seq + 1
        now = self.drives.clock()
        created = self.drives.add_item(
            home.drive_id,
            item_id(self.drives.seed, "created", sequence),
            f"{stem} – nouveau {sequence}{extension}",
            home.id,
            "file",
            now,
            size=int(10 ** self.rng.uniform(2, 5.5)),
            mime_type=MIME_TYPES[extension],
        )
        self._note("file_creates", created)

    def _change(self, item: DriveItem) -> None:
        older = ItemVersion(item.version_id, item.content, item.size, item.modified)
        self._note(
            "file_changes",
            self.drives.replace(
                item,
                content=item.content + 1,
                size=max(1, int(item.size * self.rng.uniform(0.6, 1.6))),
                fs_modified=self.drives.clock(),
                versions=(*item.versions, older),
            ),
        )

    def _move(self, item: DriveItem, homes: list[DriveItem]) -> None:
        places = [h for h in homes if h.drive_id == item.drive_id and h.id != item.parent_id]
        if places:
            self._note(
                "file_moves", self.drives.replace(item, parent_id=self.rng.choice(places).id)
            )

    def _note(self, kind: str, item: DriveItem) -> None:
        self.changes.by_change[kind].append(item.id)


def _renamed(name: str, sequence: int) -> str:
    stem, dot, extension = name.rpartition(".")
    if not dot:
        return f"{name} (renommé {sequence})"
    return f"{stem} (renommé {sequence}).{extension}"
