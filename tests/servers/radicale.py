"""Radicale 3 (CalDAV and CardDAV)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from hirondelle.tests.servers.accounts import (
    TlsFiles,
)
from hirondelle.tests.servers.dav import DavServer
from hirondelle.tests.servers.process import (
    HOST,
    running,
)


class RadicaleServer(DavServer):
    """Radicale 3 (CalDAV and CardDAV), plain htpasswd users read at every login, optional
    TLS. Radicale has no proxy (master user) login."""

    name = "radicale"

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        tls: TlsFiles | None = None,
        max_content_length: int = 1024 * 1024,
        start_timeout: float | None = None,
    ) -> None:
        super().__init__(users, start_timeout=start_timeout)
        self._tls = tls
        self._max_content_length = max_content_length

    def _serves_tls(self) -> bool:
        return self._tls is not None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "radicale", "--config", str(self.root / "radicale.conf")]

    def prepare(self) -> None:
        tls = self._tls
        ssl = (
            f"ssl = True\ncertificate = {tls.cert_chain}\nkey = {tls.private_key}\n" if tls else ""
        )
        (self.root / "radicale.conf").write_text(
            f"[server]\nhosts = {HOST}:{self.port}\n{ssl}"
            f"max_content_length = {self._max_content_length}\ndelay_on_error = 0\n"
            f"[auth]\ntype = htpasswd\nhtpasswd_filename = {self.root / 'users'}\n"
            "htpasswd_encryption = plain\ndelay = 0\n"
            f"[storage]\nfilesystem_folder = {self.root / 'collections'}\n"
            "[rights]\ntype = owner_only\n"
            "[logging]\nlevel = warning\n",
            encoding="utf-8",
        )

    def _user_dir(self, login: str) -> Path:
        return self.root / "collections" / "collection-root" / login

    def _collection_props(self, folder: Path) -> dict[str, str] | None:
        props = folder / ".Radicale.props"
        return json.loads(props.read_text(encoding="utf-8")) if props.exists() else None


def radicale_server(
    users: Mapping[str, str] | None = None, **options: Any
) -> AbstractContextManager[RadicaleServer]:
    """Start a `RadicaleServer` for the duration of the block (options as its constructor)."""
    return running(RadicaleServer(users, **options))
