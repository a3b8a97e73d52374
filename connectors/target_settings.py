"""What the settings of the network targets (IMAP, ManageSieve, CalDAV/CardDAV, WebDAV,
Matrix) share:
setting names as the configuration file spells them, the CA file and its TLS context,
and the checks every one of them makes the same way (an http(s) URL, plain text only on
loopback, a positive timeout, a password file or a master user).

The settings stay frozen dataclasses of their own (their fields are the configuration's
table); these bases hold behaviour only, no field, so that each table keeps its fields in
the order it documents them.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from ..migrator.errors import ConfigError
from .credentials import is_loopback, tls_context

SECURITY_MODES = ("tls", "starttls", "plain")  # how a host-and-port target's TLS starts
MASTER_LOGIN_FORMS = ("separator", "authzid")  # how a master user names the user it acts for


class TargetSettings:
    """Behaviour shared by a target's settings; the dataclass declares the fields."""

    __slots__ = ()
    config_key: str
    ca_file: Path | None
    timeout: float

    def setting(self, name: str) -> str:
        """The full name of one setting, as the configuration file spells it."""
        return f"{self.config_key}.{name}"

    def ca_hint(self) -> str:
        """The CA setting and its value, for a certificate error."""
        return f"{self.setting('ca_file')} ({self.ca_file or 'the system trust store'})"

    def tls(self) -> ssl.SSLContext:
        """The verifying TLS context: `ca_file`, else the system trust store."""
        return tls_context(str(self.ca_file) if self.ca_file else None)

    def _paths(self, *names: str) -> None:
        """Turn the named settings given as strings (a TOML table) into paths."""
        for name in names:
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, Path(value))

    def _check_http_url(
        self,
        name: str,
        url: str,
        shown: str | None = None,
        what: str = "an http(s) URL",
        server: str = "a server",
    ) -> SplitResult:
        """`url`'s parts, refused unless http(s) with a host, and plain http off loopback.
        `shown` is the value named in the refusal (default: `url`)."""
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(self.setting(name), f"{shown or url!r} is not {what}")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ConfigError(
                self.setting(name),
                f"plain http is refused for {parts.hostname}: use https "
                f"(http is only for {server} on the loopback interface)",
            )
        return parts

    def _check_security(
        self, security: str, host: str, modes: tuple[str, ...], protocol: str
    ) -> None:
        """`security` is one of `modes`; "plain" is refused off the loopback interface."""
        if security not in modes:
            raise ConfigError(self.setting("security"), f"one of {', '.join(modes)}")
        if security == "plain" and not is_loopback(host):
            raise ConfigError(
                self.setting("security"),
                f"plain text {protocol} is refused for {host}: use tls or starttls "
                "(plain is only for a server on the loopback interface)",
            )

    def _check_timeout(self) -> None:
        if self.timeout <= 0:
            raise ConfigError(self.setting("timeout"), "must be a positive number of seconds")


class MasterLoginSettings(TargetSettings):
    """Settings that log in with a per-user `password_file` or as a `master_user` for
    everyone (IMAP, CalDAV/CardDAV; see `Credentials.per_user_or_master`)."""

    __slots__ = ()
    password_file: Path | None
    master_user: str | None
    master_password_env: str | None
    master_password_file: Path | None
    master_separator: str

    def _check_login_choice(self) -> None:
        if (self.password_file is None) == (self.master_user is None):
            raise ConfigError(
                self.setting("password_file"), "set either password_file or master_user"
            )

    def _check_master_login(self, master_login: str, forms: tuple[str, ...]) -> None:
        """`master_login` (how a master user acts for a user) is one of `forms`."""
        if master_login not in forms:
            raise ConfigError(self.setting("master_login"), f"one of {', '.join(forms)}")

    def _check_master_password(self) -> None:
        if self.master_user and not (self.master_password_env or self.master_password_file):
            raise ConfigError(
                self.setting("master_password_env"),
                "the master user needs master_password_env or master_password_file",
            )

    def _check_logins(self) -> None:
        """A password file or a master user, and the master user's password."""
        self._check_login_choice()
        self._check_master_password()


class HostLoginSettings(MasterLoginSettings):
    """Settings of a mail-side server reached by host and port (IMAP, ManageSieve): a
    `security` mode, and the `master_login` form of a master user (Dovecot's master users
    serve both)."""

    __slots__ = ()
    host: str
    security: str
    master_login: str

    def _check_host_logins(self, protocol: str) -> None:
        """`security` (plain text on loopback only) and the logins; `protocol` names
        the server in the refusal of plain text."""
        self._check_security(self.security, self.host, SECURITY_MODES, protocol)
        self._check_logins()
        self._check_master_login(self.master_login, MASTER_LOGIN_FORMS)
