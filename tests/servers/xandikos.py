"""Xandikos (CalDAV and CardDAV) from its own virtualenv (`.ci/install-xandikos`)."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

from hirondelle.tests.servers.accounts import (
    sha_htpasswd_line,
)
from hirondelle.tests.servers.dav import DavServer
from hirondelle.tests.servers.process import (
    HOST,
    ServerUnavailable,
)

XANDIKOS_VENV_ENV = "HIRONDELLE_XANDIKOS_VENV"


def xandikos_command() -> Path:
    """The `xandikos` of its own virtualenv (`.ci/install-xandikos`), or `ServerUnavailable`
    saying how to install it."""
    default = Path.home() / ".cache" / "hirondelle" / "xandikos-venv"
    command = Path(os.environ.get(XANDIKOS_VENV_ENV) or default) / "bin" / "xandikos"
    if not command.exists():
        raise ServerUnavailable(
            f"Xandikos is not installed at {command} (${XANDIKOS_VENV_ENV}): "
            "run .ci/install-xandikos to create its virtualenv"
        )
    return command


class XandikosServer(DavServer):
    """Xandikos (CalDAV and CardDAV, git-backed) in its multi-user mode: each login's
    principal is "/<login>/", its homes "/<login>/calendars/" and "/<login>/contacts/".

    Xandikos checks Basic credentials itself against an htpasswd file (`{SHA}` entries,
    read again when the file changes), but only over https (`--htpasswd` requires
    `--autocert`): `--autocert` reuses the certificate it finds in its state folder, so a
    throwaway CA's certificate for 127.0.0.1 is put there and `ca_file` names that CA.
    """

    name = "xandikos"

    def prepare(self) -> None:
        import trustme

        authority = trustme.CA()
        certs = self.root / "state" / "certs"
        certs.mkdir(parents=True)
        issued = authority.issue_cert(HOST)
        issued.private_key_pem.write_to_path(str(certs / "selfsigned.key"))
        issued.cert_chain_pems[0].write_to_path(str(certs / "selfsigned.crt"))
        self.ca_file = self.root / "ca.pem"
        authority.cert_pem.write_to_path(str(self.ca_file))

    def command(self) -> list[str]:
        return [
            str(xandikos_command()),
            "multi-user",
            "-d",
            str(self.root / "data"),
            "--state-dir",
            str(self.root / "state"),
            "-l",
            HOST,
            "-p",
            str(self.port),
            "--autocert",
            "--htpasswd",
            str(self.root / "users"),
            "--no-detect-systemd",
        ]

    def _serves_tls(self) -> bool:
        return True

    def _user_line(self, login: str, password: str) -> str:
        return sha_htpasswd_line(login, password)

    def _user_dir(self, login: str) -> Path:
        return self.root / "data" / login

    def _collection_props(self, folder: Path) -> dict[str, str] | None:
        config = folder / ".xandikos"
        if not config.exists():
            return None
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(config, encoding="utf-8")
        section = parser["DEFAULT"]
        tag = {"calendar": "VCALENDAR", "addressbook": "VADDRESSBOOK"}.get(section.get("type", ""))
        return {"D:displayname": section.get("displayname", ""), "tag": tag or ""}
