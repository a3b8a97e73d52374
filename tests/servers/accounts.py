"""Accounts on the test servers and the files that name them."""

from __future__ import annotations

import base64
import hashlib
import itertools
import uuid
from dataclasses import dataclass
from pathlib import Path

_counter = itertools.count(1)


@dataclass(frozen=True)
class MailUser:
    """A mailbox on the test server and its password."""

    login: str
    password: str


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for the server: certificate chain and private key."""

    cert_chain: Path
    private_key: Path


def issue_tls(folder: Path, *hosts: str) -> tuple[TlsFiles, Path]:
    """A certificate for `hosts` from a throwaway CA, written into `folder` (made readable
    by the server's user): the server's files, and the CA file a client trusts."""
    import trustme

    authority = trustme.CA()
    cert = authority.issue_cert(*hosts)
    folder.chmod(0o755)
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    cert.private_key_and_cert_chain_pem.write_to_path(str(folder / "chain.pem"))
    authority.cert_pem.write_to_path(str(folder / "ca.pem"))
    return TlsFiles(
        cert_chain=folder / "chain.pem", private_key=folder / "key.pem"
    ), folder / "ca.pem"


def unique_name(prefix: str = "user") -> str:
    """A name no other test of the run gets, e.g. "user12-0a1b2c3d"."""
    return f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:8]}"


def new_password() -> str:
    return f"pw-{uuid.uuid4().hex}"


def sha_htpasswd_line(login: str, password: str) -> str:
    """An htpasswd line in the {SHA} scheme (no salt: tests only)."""
    digest = base64.b64encode(hashlib.sha1(password.encode("utf-8")).digest())
    return f"{login}:{{SHA}}{digest.decode('ascii')}\n"


class PasswordFiles:
    """Writes the `login:password` file a target's settings name."""

    def password_file(self, path: Path, *users: MailUser) -> Path:
        """Write a `login:password` file for the target's settings."""
        path.write_text("".join(f"{u.login}:{u.password}\n" for u in users), encoding="utf-8")
        path.chmod(0o600)  # secret files others can read are refused
        return path
