"""lighttpd 1.4 with mod_webdav."""

from __future__ import annotations

import shutil
from pathlib import Path

from hirondelle.tests.servers.process import (
    HOST,
    ServerUnavailable,
)
from hirondelle.tests.servers.webdav import WebDavServer


class LighttpdDavServer(WebDavServer):
    """lighttpd 1.4 with mod_webdav (Debian `lighttpd lighttpd-mod-webdav`): dead
    properties and locks in SQLite; refuses `Depth: infinity` with 403 by default."""

    name = "lighttpd"

    def command(self) -> list[str]:
        binary = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
        if not Path(binary).exists() or not Path("/usr/lib/lighttpd/mod_webdav.so").exists():
            raise ServerUnavailable(
                "lighttpd is not installed: apt-get install lighttpd lighttpd-mod-webdav"
            )
        return [binary, "-D", "-f", str(self.root / "lighttpd.conf")]

    def prepare(self) -> None:
        root = self.root
        (root / "users").write_text(self.htpasswd(), encoding="utf-8")
        (root / "lighttpd.conf").write_text(
            'server.modules = ("mod_auth", "mod_authn_file", "mod_webdav")\n'
            f'server.document-root = "{self.data_dir}"\nserver.bind = "{HOST}"\n'
            f'server.port = {self.port}\nserver.errorlog = "{root}/error.log"\n'
            'server.max-request-size = 0\nauth.backend = "htpasswd"\n'
            f'auth.backend.htpasswd.userfile = "{root}/users"\n'
            'auth.require = ("/" => ("method" => "basic", "realm" => "hirondelle", '
            '"require" => "valid-user"))\n'
            'webdav.activate = "enable"\nwebdav.is-readonly = "disable"\n'
            f'webdav.sqlite-db-name = "{root}/webdav.sqlite"\n',
            encoding="utf-8",
        )
