"""The files benchmark's sandbox: one user's OneDrive of a chosen shape, served over HTTPS.

    python -m hirondelle.bench._files_sandbox --files 5000 --large-bytes 0 --seed 7

`hirondelle sandbox serve` only shapes mail; this serves a tenant generated from a
`TenantSpec` with one user, no mail, `files_per_drive` small files and (when
`large_file_bytes` is not 0) one large file in that user's OneDrive, throttling off.
The seeded SharePoint libraries exist too; the benchmark's users CSV leaves them out.
Every file's QuickXorHash is computed before the banner is printed, so the first
delta listing (inside the measured run) does not pay for hashing gigabytes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from hirondelle.sandbox.drive_data import DriveItem, SandboxDrives
from hirondelle.sandbox.server import Limits, serve_forever
from hirondelle.sandbox.tenant import Tenant, TenantSpec


@dataclass(frozen=True)
class DriveShape:
    """The OneDrive under test: how many small files, how big the large one (0: none)."""

    files: int
    large_bytes: int = 0
    seed: int = 7

    def spec(self) -> TenantSpec:
        return TenantSpec(
            seed=self.seed,
            users=1,
            messages=0,
            large_messages=0,
            files_per_drive=self.files,
            large_file_bytes=self.large_bytes,
            events_per_user=0,
            contacts_per_user=0,
        )

    def argv(self) -> list[str]:
        """The command line of a sandbox child serving this shape (a `SandboxCommand`)."""
        return [
            sys.executable,
            "-m",
            "hirondelle.bench._files_sandbox",
            "--files",
            str(self.files),
            "--large-bytes",
            str(self.large_bytes),
            "--seed",
            str(self.seed),
        ]


def onedrive_files(tenant: Tenant) -> Iterator[tuple[str, DriveItem]]:
    """(path from the drive root, item) of every regular file of the first user's OneDrive.

    OneNote packages and remote items are left out: hirondelle skips them by design.
    """
    drives: SandboxDrives = tenant.drives
    drive = drives.user_drives[tenant.users[0].id]
    for item in drives.items(drive):
        if item.kind == "file":
            yield drives.path(item), item


def prehash(tenant: Tenant) -> int:
    """Compute (and cache) the QuickXorHash of every file under test; returns their count."""
    count = 0
    for _, item in onedrive_files(tenant):
        tenant.drives.quick_xor(item)
        count += 1
    return count


def parse_args(argv: Sequence[str] | None) -> DriveShape:
    parser = argparse.ArgumentParser(prog="python -m hirondelle.bench._files_sandbox")
    parser.add_argument("--files", type=int, required=True, help="small files in the OneDrive")
    parser.add_argument("--large-bytes", type=int, default=0, help="size of the large file")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.files < 0 or args.large_bytes < 0:
        parser.error("--files and --large-bytes must not be negative")
    return DriveShape(args.files, args.large_bytes, args.seed)


def main(argv: Sequence[str] | None = None) -> None:
    """Generate the tenant, hash its files, then serve until SIGINT (throttling off)."""
    shape = parse_args(argv)
    tenant = Tenant.generate(shape.spec())
    prehash(tenant)
    serve_forever(tenant, host="127.0.0.1", port=0, tls=True, limits=Limits(enabled=False))


if __name__ == "__main__":
    main()
