"""The seeded layout of the sandbox's drives.

`_Layout` builds every user's OneDrive and the seeded SharePoint sites (nested folders,
names targets refuse, a OneNote notebook, a shortcut, a multi-GB file, versions and
sharing, Office documents SharePoint changed after upload) on `drive_data.SandboxDrives`.
Their mutations are `drive_mutations`'s.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .tenant import TenantSpec

from .drive_data import (
    DriveItem,
    Enrichment,
    Grant,
    ItemVersion,
    SandboxDrive,
    SandboxDrives,
    SandboxSite,
    drive_id,
    guid,
    item_id,
)
from .tenant_records import EPOCH, SandboxUser, colleagues

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
MIME_TYPES = {
    ".pdf": "application/pdf",
    ".docx": DOCX,
    ".xlsx": XLSX,
    ".pptx": PPTX,
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".mp4": "video/mp4",
    ".txt": "text/plain",
}
STEMS = (
    ("Rapport annuel", ".pdf"),
    ("Compte rendu", ".docx"),
    ("Budget prévisionnel", ".xlsx"),
    ("Plan de masse", ".png"),
    ("Photo chantier", ".jpg"),
    ("Présentation client", ".pptx"),
    ("Notes de réunion", ".txt"),
    ("Contrat cadre", ".pdf"),
)
_ONEDRIVE_FOLDERS = (
    "Documents",
    "Documents/Projets",
    "Documents/Projets/2024",
    "Documents/Projets/2024/Livrables",
    "Images",
    "Images/Chantier",
    "Bureau",
)
# (URL name, display name, Microsoft 365 group?, ((library, folders), ...))
_SITES = (
    (
        "Finances",
        "Finances",
        False,
        (
            ("Documents", ("Budgets", "Budgets/2024", "Budgets/2024/Trimestre 1", "Factures")),
            ("Archives", ("2022", "2022/Clôture", "2022/Clôture/Annexes", "2023")),
        ),
    ),
    (
        "ProjetHirondelle",
        "Projet Hirondelle",
        True,  # a team: its Documents library holds each channel's files folder
        (
            (
                "Documents",
                (
                    "General",
                    "General/Réunions",
                    "General/Réunions/2024",
                    "Chantier",
                    "Chantier/Plans",
                    "Chantier/Photos",
                ),
            ),
        ),
    ),
)
# Names some target refuses or renames (SharePoint itself refuses some of them today, but
# older libraries and synced Mac folders hold them); each is a file in "À trier".
_PROBLEM_NAMES = (
    "Réunion: ordre du jour.docx",
    "Pourquoi?.txt",
    "Notes*.txt",
    'Citation "finale".docx',
    "<brouillon>.txt",
    "Choix A|B.xlsx",
    "Rapport #3.pdf",
    "Remise 20%.xlsx",
    "Version finale.",
    "CON.txt",
    ".htaccess",
    "desktop.ini",
    "~$lock.docx",
    "Résumé.docx",  # NFC
    "Re\u0301sume\u0301.docx",  # NFD: the same name, decomposed
)
_LIBRARY_PROBLEM_NAMES = ("Budget: 2024?.xlsx", "desktop.ini", "~$Budget.xlsx", "Taux 5%.xlsx")
# Office documents of the Finances library whose downloads SharePoint rewrote after upload
# (`drive_data.Enrichment`): (folder, name, size, enrichment).
_ENRICHED = (
    ("Budgets/2024", "Compte rendu du comité budgétaire.docx", 48_731, Enrichment()),
    ("Budgets/2024", "Suivi des dépenses 2024.xlsx", 23_456, Enrichment()),
    ("Budgets", "Présentation au conseil.pptx", 131_072, Enrichment(grows=False)),
)


def _long_name(target_bytes: int, extension: str) -> str:
    """A name of exactly `target_bytes` UTF-8 bytes, well under 255 characters."""
    stem = "Procès-verbal de l'assemblée générale extraordinaire "
    while len((stem + extension).encode()) < target_bytes - 1:
        stem += "é"
    if len((stem + extension).encode()) < target_bytes:
        stem += "e"
    return stem + extension


class _Layout:
    """Builds the seeded sites, drives and items, in a fixed order."""

    def __init__(self, drives: SandboxDrives, spec: TenantSpec, users: Sequence[SandboxUser]):
        self.drives, self.spec, self.users = drives, spec, list(users)
        self.seed = spec.seed
        self.rng = random.Random(f"{spec.seed}|drives")
        self.shortcut: dict[str, object] | None = None

    def build(self) -> None:
        finances: tuple[SandboxDrive, dict[str, str]] | None = None
        for url_name, display, is_team, libraries in _SITES:
            site = self._site(url_name, display, is_team)
            for library, folders in libraries:
                drive = self._drive(
                    library, "documentLibrary", site.id, site.display_name, None, site
                )
                homes = self._folders(drive, folders)
                self._files(drive, homes)
                for name in _LIBRARY_PROBLEM_NAMES:
                    self._file(drive, drive.root_id, name, pinned=True)
                if url_name == "Finances" and library == "Documents":
                    self._remember_shortcut(drive, homes["Budgets"])
                    finances = (drive, homes)
        for index, user in enumerate(self.users):
            drive = self._drive("OneDrive", "business", user.id, user.display_name, user, None)
            homes = self._folders(drive, _ONEDRIVE_FOLDERS)
            self._files(drive, homes)
            self._showcase(drive, homes)
            large = self.spec.large_file_bytes
            if index == 0 and large > 0:
                home = homes["Images/Chantier"]
                self._file(drive, home, "Tournage chantier.mp4", size=large, pinned=True)
        if finances is not None:  # last: every item seeded before keeps its place and content
            self._enriched(*finances)

    def _enriched(self, drive: SandboxDrive, homes: dict[str, str]) -> None:
        for folder, name, size, enrichment in _ENRICHED:
            item = self._file(drive, homes[folder], name, size=size, pinned=True)
            self.drives.enrich(drive.id, item.id, enrichment)

    def _site(self, url_name: str, display: str, is_team: bool) -> SandboxSite:
        host = self.drives.host
        site_id = f"{host},{guid(self.seed, 'site', url_name)},{guid(self.seed, 'web', url_name)}"
        group = guid(self.seed, "group", url_name) if is_team else None
        created = EPOCH - timedelta(days=1200)
        site = SandboxSite(
            site_id, url_name, display, f"https://{host}/sites/{url_name}", created, group
        )
        self.drives.add_site(site)
        return site

    def _drive(
        self,
        name: str,
        drive_type: str,
        owner_id: str,
        owner_name: str,
        user: SandboxUser | None,
        site: SandboxSite | None,
    ) -> SandboxDrive:
        identifier = drive_id(self.seed, owner_id, name)
        if user is not None:
            personal = user.upn.replace("@", "_").replace(".", "_")
            web_url = f"https://{self.drives.my_host}/personal/{personal}/Documents"
        else:
            assert site is not None
            web_url = f"{site.web_url}/{'Shared Documents' if name == 'Documents' else name}"
        drive = SandboxDrive(
            id=identifier,
            name=name,
            drive_type=drive_type,
            owner_id=owner_id,
            owner_name=owner_name,
            owner_email=user.mail if user else None,
            site_id=site.id if site else None,
            root_id=item_id(self.seed, identifier, "root"),
            web_url=web_url,
            created=EPOCH - timedelta(days=1100),
        )
        self.drives.add_drive(drive, drive.created)
        if user is not None:
            self.drives.user_drives[user.upn.lower()] = drive.id
        return drive

    def _folders(self, drive: SandboxDrive, paths: Sequence[str]) -> dict[str, str]:
        homes = {"": drive.root_id}
        for path in paths:
            parent, _, name = path.rpartition("/")
            homes[path] = self._add(drive, homes[parent], name, "folder", path).id
        return homes

    def _files(self, drive: SandboxDrive, homes: dict[str, str]) -> None:
        """The regular files, spread over the folders; a few with versions or sharing."""
        places = sorted(homes)
        others = colleagues(self.users, drive.owner_id, 2)  # the most a drive shares with
        for number in range(self.spec.files_per_drive):
            stem, extension = STEMS[number % len(STEMS)]
            home = homes[self.rng.choice(places)]
            size = int(10 ** self.rng.uniform(2, 6.4))
            versions = 3 if number < 3 else 1
            grants = self._grants(number, others)
            self._file(drive, home, f"{stem} {number + 1:02d}{extension}", size, versions, grants)
        folder = homes[places[1]]
        self._share_folder(drive, folder, others)

    def _grants(self, number: int, others: Sequence[SandboxUser]) -> tuple[Grant, ...]:
        if number == 0:
            link = Grant(guid(self.seed, "link", number), ("read",), "link", "anonymous", "view")
            return (link,)
        if number == 1:
            group = ("Comptabilité", "comptabilite@" + self.spec.domain)
            return (
                Grant(
                    guid(self.seed, "group"), ("read",), "group", None, None, guid(group), *group
                ),
            )
        if number == 2 and others:
            return (_user_grant(guid(others[0].id, "grant"), ("read",), others[0]),)
        return ()

    def _share_folder(
        self, drive: SandboxDrive, folder: str, others: Sequence[SandboxUser]
    ) -> None:
        grants: list[Grant] = [
            Grant(guid(self.seed, "orglink", drive.id), ("write",), "link", "organization", "edit")
        ]
        grants += [_user_grant(guid(user.id, drive.id), ("write",), user) for user in others[:2]]
        item = self.drives.item(drive.id, folder)
        self.drives._items[drive.id][folder] = dataclasses.replace(item, grants=tuple(grants))

    def _showcase(self, drive: SandboxDrive, homes: dict[str, str]) -> None:
        """Problem names, an empty file, long names and paths, OneNote, a shortcut, a remote."""
        sort = self._add(drive, drive.root_id, "À trier", "folder", "À trier", pinned=True).id
        for name in _PROBLEM_NAMES:
            self._file(drive, sort, name, pinned=True)
        self._file(drive, sort, "Vide.txt", size=0, pinned=True)
        self._file(drive, sort, _long_name(300, ".docx"), pinned=True)
        pending = self._add(drive, sort, "Dossier en cours ", "folder", "pending", pinned=True)
        self._file(drive, pending.id, "Liste.txt", pinned=True)
        parent = sort
        for level in range(4):  # a path over 400 characters
            name = f"Niveau {level + 1} – " + "sous-dossier de classement très détaillé " * 2
            parent = self._add(
                drive, parent, name.strip(), "folder", f"deep{level}", pinned=True
            ).id
        self._file(drive, parent, "Document au bout du chemin.docx", pinned=True)
        self._add(
            drive,
            homes["Documents"],
            "Carnet de notes",
            "package",
            "onenote",
            size=262_144,
            pinned=True,
        )
        if self.shortcut is not None:
            self._add(
                drive,
                drive.root_id,
                "Budgets",
                "remote",
                "shortcut",
                remote=self.shortcut,
                pinned=True,
            )
        self._add(
            drive,
            drive.root_id,
            "Plan partenaire.pdf",
            "remote",
            "external",
            remote=self._external(),
            pinned=True,
        )

    def _remember_shortcut(self, drive: SandboxDrive, folder: str) -> None:
        self.shortcut = {
            "id": folder,
            "name": "Budgets",
            "folder": {"childCount": len(self.drives.children(drive.id, folder))},
            "parentReference": {
                "driveId": drive.id,
                "driveType": "documentLibrary",
                "id": drive.root_id,
            },
            "webUrl": f"{drive.web_url}/Budgets",
        }

    def _external(self) -> dict[str, object]:
        partner = "fabrikam"
        return {
            "id": item_id("external", partner, "plan"),
            "name": "Plan partenaire.pdf",
            "size": 48_213,
            "file": {"mimeType": "application/pdf"},
            "parentReference": {"driveId": drive_id("external", partner), "driveType": "business"},
            "shared": {
                "owner": {
                    "user": {
                        "displayName": "Paul Martin (Fabrikam)",
                        "email": f"paul.martin@{partner}.test",
                    }
                }
            },
            "webUrl": f"https://{partner}-my.sharepoint.com/personal/paul_martin/Documents/Plan%20partenaire.pdf",
        }

    def _file(
        self,
        drive: SandboxDrive,
        parent: str,
        name: str,
        size: int | None = None,
        versions: int = 1,
        grants: tuple[Grant, ...] = (),
        pinned: bool = False,
    ) -> DriveItem:
        extension = name[name.rfind(".") :].lower() if "." in name else ""
        size = int(10 ** self.rng.uniform(2, 5)) if size is None else size
        key = f"{parent}/{name}"
        older = tuple(
            ItemVersion(
                f"{n}.0",
                n,
                int(size * self.rng.uniform(0.5, 1.5)) + 1,
                EPOCH - timedelta(days=60 - n),
            )
            for n in range(1, versions)
        )
        return self._add(
            drive,
            parent,
            name,
            "file",
            key,
            size=size,
            mime_type=MIME_TYPES.get(extension, "application/octet-stream"),
            content=versions,
            versions=older,
            grants=grants,
            pinned=pinned,
        )

    def _add(
        self, drive: SandboxDrive, parent: str, name: str, kind: str, key: str, **fields: object
    ) -> DriveItem:
        created = EPOCH - timedelta(
            days=self.rng.randint(90, 1000), seconds=self.rng.randint(0, 86_399)
        )
        fs_modified = created + timedelta(
            days=self.rng.randint(0, 40), seconds=self.rng.randint(0, 86_399)
        )
        uploaded = fs_modified + timedelta(minutes=self.rng.randint(5, 3000))
        identifier = item_id(self.seed, drive.id, key)
        return self.drives.add_item(
            drive.id,
            identifier,
            name,
            parent,
            kind,
            created,
            modified=uploaded,
            fs_modified=fs_modified,
            **fields,
        )


def _user_grant(grant_id: str, roles: tuple[str, ...], user: SandboxUser) -> Grant:
    """Access given to one user of the tenant (id, display name and mail)."""
    return Grant(grant_id, roles, "user", None, None, user.id, user.display_name, user.mail)
