"""nginx with its dav and dav-ext modules."""

from __future__ import annotations

import shutil
from pathlib import Path

from hirondelle.tests.servers.process import (
    HOST,
    ServerUnavailable,
)
from hirondelle.tests.servers.webdav import WebDavServer


class NginxDavServer(WebDavServer):
    """nginx with its dav module and dav-ext for PROPFIND (Debian `nginx-light`
    `libnginx-mod-http-dav-ext`): no PROPPATCH, no dead properties, no Depth infinity."""

    name = "nginx"

    def command(self) -> list[str]:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists() or not Path(_NGINX_DAV_EXT).exists():
            raise ServerUnavailable(
                "nginx is not installed: apt-get install nginx-light libnginx-mod-http-dav-ext"
            )
        return [binary, "-p", str(self.root), "-c", "nginx.conf", "-e", "error.log"]

    def prepare(self) -> None:
        root = self.root
        (root / "users").write_text(self.htpasswd(), encoding="utf-8")
        temporary = "".join(
            f"  {kind}_temp_path {root}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (root / "nginx.conf").write_text(
            f"daemon off;\nuser root;\nworker_processes 2;\npid {root}/nginx.pid;\n"
            f"load_module {_NGINX_DAV_EXT};\nevents {{}}\n"
            f"http {{\n  access_log off;\n{temporary}"
            f"  server {{\n    listen {HOST}:{self.port};\n    root {self.data_dir};\n"
            "    client_max_body_size 0;\n    location / {\n"
            "      dav_methods PUT DELETE MKCOL COPY MOVE;\n"
            "      dav_ext_methods PROPFIND OPTIONS;\n"
            '      auth_basic "hirondelle";\n'
            f"      auth_basic_user_file {root}/users;\n    }}\n  }}\n}}\n",
            encoding="utf-8",
        )


_NGINX_DAV_EXT = "/usr/lib/nginx/modules/ngx_http_dav_ext_module.so"
