"""How targets authenticate: one password per user from a file, or one shared account;
and where they may do it in clear text (loopback only).

The shared account is a master user that logs in *as* each user (Dovecot's
`user*master`, some DAV servers) or a service account that acts for all of them
(a WebDAV service login). Secrets come from an environment variable or a file,
never from the configuration itself, and never show in a repr or a traceback.
"""

from __future__ import annotations

import csv
import functools
import ipaddress
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..migrator.errors import ConfigError, OwnerFailed
from ..migrator.secret_files import read_secret_text

if TYPE_CHECKING:
    from .target_settings import MasterLoginSettings, TargetSettings


class Secret(str):
    """A string that never shows itself in a repr or a traceback's locals."""

    def __repr__(self) -> str:
        return "'***'"


@dataclass(frozen=True)
class Login:
    """Who to authenticate as for one user's space, and which setting to fix if refused."""

    login: str  # the user whose space it is
    auth_user: str  # the user name sent (the login, "login*master", or a service account)
    password: str = field(repr=False)
    hint: str = ""  # e.g. "targets.mail.password_file (/etc/hirondelle/passwords)"
    authzid: str = ""  # SASL authorization identity: the user a master user acts for

    @property
    def shared(self) -> bool:
        """A master user or service account: refused, it stops every owner, not one."""
        return self.auth_user != self.login


def read_password_file(path: Path, setting: str) -> dict[str, str]:
    """login -> password from `login:password` lines or CSV `login,password` rows.

    Blank lines, lines starting with "#" and a `login,password` header are ignored. The
    separator is the first ":" or "," of the line, so a password may hold either.
    """
    text = read_secret_text(path, setting)
    passwords: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        colon, comma = line.find(":"), line.find(",")
        if comma >= 0 and (colon < 0 or comma < colon):
            row = next(csv.reader([line]))
            login, password = row[0], ",".join(row[1:])
        else:
            login, _, password = line.partition(":")
        login = login.strip()
        if login.lower() == "login" and password.strip().lower() == "password":
            continue
        passwords[login] = Secret(password)
    return passwords


def read_secret(env: str | None, file: Path | None, env_setting: str, file_setting: str) -> Secret:
    """A secret from the named environment variable, else the first line of a file."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(env_setting, f"environment variable {env} is not set")
        return Secret(value)
    if file is None:
        raise ConfigError(env_setting, f"set {env_setting} or {file_setting}")
    lines = read_secret_text(file, file_setting).splitlines()
    return Secret(lines[0] if lines else "")


def is_loopback(host: str) -> bool:
    """Plain-text protocols (IMAP without TLS, http) are allowed to these hosts only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Credentials:
    """Answers `login_for(login)` for a target, from either kind of credential."""

    def __init__(
        self,
        passwords: dict[str, str] | None,
        password_hint: str,
        shared_user: str | None = None,
        shared_password: str | None = None,
        shared_hint: str = "",
        separator: str | None = None,
        authzid: bool = False,
    ) -> None:
        self.passwords = passwords
        self._password_hint = password_hint
        self._shared = (shared_user, shared_password, shared_hint, separator)
        self._authzid = authzid

    @classmethod
    def per_user(cls, settings: TargetSettings, path: Path) -> Credentials:
        setting = settings.setting("password_file")
        return cls(read_password_file(path, setting), f"{setting} ({path})")

    @classmethod
    def shared(
        cls,
        settings: TargetSettings,
        user_key: str,
        user: str,
        env_key: str,
        env: str | None,
        file_key: str,
        file: Path | None,
        separator: str | None,
        authzid: bool = False,
    ) -> Credentials:
        """A master user (`separator` set: it logs in as `login<sep>user`; `authzid`: as
        itself, naming the user as SASL authorization identity) or a service account
        (neither: it logs in as itself for everyone)."""
        password = read_secret(env, file, settings.setting(env_key), settings.setting(file_key))
        secret_key = env_key if env else file_key
        hint = f"{settings.setting(user_key)} ({user}) and {settings.setting(secret_key)}"
        return cls(None, "", user, password, hint, None if authzid else separator, authzid)

    @classmethod
    def per_user_or_master(
        cls, settings: MasterLoginSettings, authzid: bool = False
    ) -> Credentials:
        """`password_file`, else `master_user` with `master_password_env`/`_file` (the
        settings of the IMAP and DAV targets); `authzid`: see `shared`."""
        if settings.password_file is not None:
            return cls.per_user(settings, settings.password_file)
        assert settings.master_user is not None
        return cls.shared(
            settings,
            "master_user",
            settings.master_user,
            "master_password_env",
            settings.master_password_env,
            "master_password_file",
            settings.master_password_file,
            settings.master_separator,
            authzid=authzid,
        )

    def probe(self, probe_login: str | None) -> Login | None:
        """The login `doctor` checks with: `probe_login`, else the password file's first;
        None when there is neither (a master user needs a `probe_login`)."""
        if probe_login:
            return self.login_for(probe_login)
        if self.passwords:
            return self.login_for(next(iter(self.passwords)))
        return None

    def login_for(self, login: str) -> Login:
        if self.passwords is not None:
            password = self.passwords.get(login)
            if password is None:
                raise OwnerFailed(f"no password for {login} in {self._password_hint}")
            return Login(login=login, auth_user=login, password=password, hint=self._password_hint)
        user, password, hint, separator = self._shared
        assert user is not None and password is not None
        if self._authzid:
            return Login(login=login, auth_user=user, password=password, hint=hint, authzid=login)
        auth_user = user if separator is None else f"{login}{separator}{user}"
        return Login(login=login, auth_user=auth_user, password=password, hint=hint)


@functools.lru_cache(maxsize=8)
def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying client context, made once per CA file and shared by every connection
    of every target: reading the system's certificate store cost more CPU than an IMAP
    connection's login."""
    return ssl.create_default_context(cafile=ca_file)
