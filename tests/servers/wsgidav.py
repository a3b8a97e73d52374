"""wsgidav 4 on cheroot."""

from __future__ import annotations

import json
import sys
from typing import Any

from hirondelle.tests.servers.process import (
    HOST,
)
from hirondelle.tests.servers.webdav import WebDavServer


class WsgiDavServer(WebDavServer):
    """wsgidav 4 on cheroot, configured to keep mtimes: `getlastmodified` is writable by
    PROPPATCH (`mutable_live_props`) and, when `honor_mtime_header`, `X-OC-Mtime` is obeyed."""

    name = "wsgidav"

    def __init__(self, *, honor_mtime_header: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.honor_mtime_header = honor_mtime_header

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "wsgidav.server.server_cli",
            "--config",
            str(self.root / "wsgidav.yaml"),
        ]

    def prepare(self) -> None:
        config = {
            "host": HOST,
            "port": self.port,
            "provider_mapping": {"/": str(self.data_dir)},
            "http_authenticator": {
                "domain_controller": None,
                "accept_basic": True,
                "accept_digest": False,
                "default_to_digest": False,
            },
            "simple_dc": {
                "user_mapping": {
                    "*": {login: {"password": pw} for login, pw in self._users.items()}
                }
            },
            "honor_mtime_header": self.honor_mtime_header,
            "mutable_live_props": ["{DAV:}getlastmodified"],
            "hotfixes": {"emulate_win32_lastmod": True},
            "dir_browser": {"enable": False},
            "verbose": 1,
            "logging": {"enable": False},
        }
        # JSON is YAML: wsgidav reads it with its YAML loader
        (self.root / "wsgidav.yaml").write_text(json.dumps(config), encoding="utf-8")
