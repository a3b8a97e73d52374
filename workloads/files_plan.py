"""The files part of `plan`: per drive, counts, bytes, the largest files, every name or
path the target will rename or refuse, and in SharePoint libraries the Office files
SharePoint may have changed after upload, from one listing of the drive.

The estimate is in SharePoint resource units: about one per downloaded file (the
download), one per folder (no download), plus the listing pages.
"""

from __future__ import annotations

from ..mappings.file_names import NameRules, target_path
from ..mappings.files import LIBRARY_ROLE, drive_findings, sharepoint_findings
from ..migrator.model import Container, Item, Owner
from ..migrator.plan import Finding
from ..migrator.protocols import Source
from .listed_plan import ListedPlanner


class FilesPlanner(ListedPlanner):
    def __init__(
        self,
        source: Source,
        rules: NameRules,
        units_per_second: float,
        large_file_bytes: int | None,
    ) -> None:
        super().__init__(source)
        self.rules = rules
        self.requests_per_second = units_per_second
        self.large_file_bytes = large_file_bytes

    def target_name(self, container: Container) -> str:
        return container.display_path

    def requests(self, container: Container) -> int:
        return self.requests_for(len(self._listed(container)))

    def requests_for(self, items: int) -> int:
        """A drive of `items` items (or a OneDrive as the usage report counts its files)."""
        return items + items // 999 + 2

    def _target(self, container: Container, path: str) -> str:
        """Where the run writes the drive's `path`: its name mapped by the target's rules."""
        drive = self.target_name(container)
        return f"{drive}/{target_path(path, self.rules).path}" if path else drive

    def _findings(self, owner: Owner, container: Container, items: list[Item]) -> list[Finding]:
        rows = drive_findings(items, self.rules, self.large_file_bytes)
        if container.role == LIBRARY_ROLE:
            rows += sharepoint_findings(items)
        found: list[Finding] = []
        for severity, kind, path, detail, size in rows:
            where = f"{container.display_path}/{path}".rstrip("/")
            target = self._target(container, path)
            found.append(Finding(severity, kind, owner.upn, where, detail, target, size))
        return found
