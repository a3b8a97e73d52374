"""SabreDAV on PHP's built-in server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hirondelle.tests.servers.process import (
    HOST,
    ServerUnavailable,
)
from hirondelle.tests.servers.webdav import WebDavServer

# SabreDAV (Nextcloud's DAV engine) behind PHP's built-in server: a root collection over
# the data folder (Sabre's plain FS nodes: nothing but the files on disk), Basic
# authentication against the same {SHA} htpasswd lines as the other servers.
_SABRE_SERVER_PHP = r"""<?php
require 'Sabre/autoload.php';

class HtpasswdSha extends Sabre\DAV\Auth\Backend\AbstractBasic {
    protected function validateUserPass($username, $password) {
        foreach (file(__DIR__ . '/users', FILE_IGNORE_NEW_LINES) as $line) {
            list($login, $hash) = explode(':', $line, 2);
            if ($login === $username) {
                return hash_equals($hash, '{SHA}' . base64_encode(sha1($password, true)));
            }
        }
        return false;
    }
}

$server = new Sabre\DAV\Server(new Sabre\DAV\FS\Directory(__DIR__ . '/data'));
$server->setBaseUri('/');
$server->addPlugin(new Sabre\DAV\Auth\Plugin(new HtpasswdSha(), 'hirondelle'));
$server->exec();
"""


class SabreDavServer(WebDavServer):
    """SabreDAV (Debian `php-sabre-dav`) served by `php -S`: the DAV engine Nextcloud builds
    on, here on a plain folder. It keeps no mtime (`getlastmodified` is a
    protected property, X-OC-Mtime is Nextcloud's own code) and cuts a PROPFIND with
    `Depth: infinity` to one level without saying so."""

    name = "sabredav"
    own_group = True

    def command(self) -> list[str]:
        binary = shutil.which("php")
        if binary is None or not Path("/usr/share/php/Sabre/autoload.php").exists():
            raise ServerUnavailable(
                "SabreDAV is not installed: apt-get install php-cli php-sabre-dav"
            )
        return [binary, "-d", "display_errors=0", "-S", f"{HOST}:{self.port}", "server.php"]

    def environment(self) -> dict[str, str]:
        # the built-in server answers one request at a time unless given workers
        return {**os.environ, "PHP_CLI_SERVER_WORKERS": "4"}

    def prepare(self) -> None:
        (self.root / "users").write_text(self.htpasswd(), encoding="utf-8")
        (self.root / "server.php").write_text(_SABRE_SERVER_PHP, encoding="utf-8")
