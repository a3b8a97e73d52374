"""Apache 2.4 with mod_dav_fs."""

from __future__ import annotations

import os
import pwd
import shutil
import time
from pathlib import Path

from hirondelle.tests.servers.process import (
    HOST,
    ServerUnavailable,
    poll,
    spawn,
)
from hirondelle.tests.servers.webdav import WebDavServer


class ApacheDavServer(WebDavServer):
    """Apache 2.4 with mod_dav_fs (`apache2 -DFOREGROUND -f CONF`, run as www-data).

    Keeps Apache's defaults that matter to clients: `DavDepthInfinity Off` (a PROPFIND with
    `Depth: infinity` is refused with 403) and no writable `getlastmodified`.
    """

    name = "apache"
    refuse: str | None = None  # a regular expression: writes to matching paths get 403
    _MODULES = (
        "mpm_event",
        "authn_core",
        "authn_file",
        "authz_core",
        "authz_user",
        "auth_basic",
        "dav",
        "dav_fs",
    )

    def command(self) -> list[str]:
        binary = shutil.which("apache2") or "/usr/sbin/apache2"
        if not Path(binary).exists():
            raise ServerUnavailable("apache2 is not installed: apt-get install apache2")
        if os.geteuid() != 0:
            raise ServerUnavailable("the Apache test server must start as root")
        return [binary, "-DFOREGROUND", "-f", str(self.root / "apache2.conf")]

    def prepare(self) -> None:
        www = pwd.getpwnam("www-data")
        self.owner_uid = www.pw_uid
        for name in ("run", "lock"):
            (self.root / name).mkdir(exist_ok=True)
            os.chown(self.root / name, www.pw_uid, www.pw_gid)
        (self.root / "users").write_text(self.htpasswd(), encoding="utf-8")
        modules = "".join(
            f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so\n" for m in self._MODULES
        )
        root, data = self.root, self.data_dir
        (self.root / "apache2.conf").write_text(
            f'ServerRoot "{root}"\nDefaultRuntimeDir "{root}/run"\nPidFile "{root}/run/pid"\n'
            f"Listen {HOST}:{self.port}\nServerName {HOST}\nUser www-data\nGroup www-data\n"
            f'{modules}ErrorLog "{root}/error.log"\nLogLevel warn\n'
            f'DAVLockDB "{root}/lock/DAVLock"\nLimitRequestBody 0\nTimeout 60\n'
            f'DocumentRoot "{data}"\n<Directory "{data}">\n  Dav On\n  AuthType Basic\n'
            f'  AuthName "hirondelle"\n  AuthBasicProvider file\n  AuthUserFile "{root}/users"\n'
            "  Require valid-user\n  Options None\n  AllowOverride None\n</Directory>\n"
            + self._refusal(),
            encoding="utf-8",
        )

    def _refusal(self) -> str:
        """A server that refuses some writes, as a full or locked-down one does."""
        if self.refuse is None:
            return ""
        return (
            f'<LocationMatch "{self.refuse}">\n  <Limit PUT MOVE COPY MKCOL>\n'
            "    Require all denied\n  </Limit>\n</LocationMatch>\n"
        )

    def restart(self, refuse: str | None) -> None:
        """Start again on the same port and data with another refusal rule."""
        self._stop_process()
        self.refuse = refuse
        self.prepare()
        self._process = spawn(self.command(), self.root / "server.log", append=True)
        deadline = time.monotonic() + self._start_timeout
        poll(self._ready, deadline, f"{self.name} did not restart", self.root / "server.log")
