"""ManageSieve target settings and connections: the greeting, STARTTLS (verified), SASL PLAIN.

The settings log in as the IMAP target's do (`HostLoginSettings`: a per-user
`password_file` or a master user, by the same `master_login` forms), so one Dovecot master
user or one password file serves both tables.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from ..migrator.errors import ConfigError, FatalError, OwnerFailed, Retriable, Unreachable
from ..migrator.model import Capabilities
from .credentials import Login
from .managesieve_wire import ProtocolError, Response, Wire, capabilities_of, sasl_plain
from .target_settings import HostLoginSettings

WHEN_ACTIVE = ("include", "leave")
SCRIPT_NAME = "outlook-rules"  # the script's name unless `script_name` says otherwise
# What both rules targets (ManageSieve, the archive) can do: one script per owner, in one
# place, compared by its bytes; the server's own limit answers PUTSCRIPT (QUOTA/MAXSIZE).
SCRIPT_CAPABILITIES = Capabilities(
    server_assigned_ids=False,
    keeps_timestamps=False,
    max_item_bytes=None,
    checksums=True,
    moves=False,
    single_item=True,
)
# RFC 5804 section 1.6: a script name holds no control character; Dovecot's file storage
# also keeps "/" out (a name is a file name, https://doc.dovecot.org/2.3/configuration_manual/sieve/configuration/).
# Dovecot stores a script as the file "<name>.sieve", and writes it first under a longer
# temporary name: the file system's 255 bytes per file name leave about 200 bytes of UTF-8
# for the name (a longer one is answered TRYLATER at PUTSCRIPT, which would retry forever).
MAX_NAME_BYTES = 200
_NOT_IN_NAMES = frozenset(chr(c) for c in range(0x20)) | {"\x7f", "/"}


@dataclass(frozen=True, slots=True)
class ManageSieveSettings(HostLoginSettings):
    """The `[targets.rules]` table for `kind = "managesieve"`. Holds no secret, only where
    to read it."""

    host: str
    port: int = 4190  # RFC 5804 section 1.8
    security: str = "starttls"  # ManageSieve has no implicit-TLS port; "tls" is for proxies
    ca_file: Path | None = None  # None: the system trust store; verification stays on
    password_file: Path | None = None
    master_user: str | None = None
    master_password_env: str | None = None
    master_password_file: Path | None = None
    master_separator: str = "*"
    master_login: str = "separator"
    timeout: float = 60.0
    script_name: str = SCRIPT_NAME
    when_active: str = "include"  # another script is active: include ours from it, or leave
    probe_login: str | None = None  # the login `doctor` uses with a master user
    external_forwarding: bool = False  # carry forwards outside the tenant's domains
    config_key: str = "targets.rules"

    def __post_init__(self) -> None:
        self._paths("ca_file", "password_file", "master_password_file")
        self._check_host_logins("ManageSieve")
        self._check_timeout()
        name = self.script_name
        size = len(name.encode("utf-8", "replace"))
        if not size or size > MAX_NAME_BYTES or set(name) & _NOT_IN_NAMES or name in (".", ".."):
            raise ConfigError(
                self.setting("script_name"),
                f"{name!r} cannot name a Sieve script (1 to {MAX_NAME_BYTES} bytes in UTF-8, "
                f'no control character, no "/"; this one has {size} bytes)',
            )
        if self.when_active not in WHEN_ACTIVE:
            raise ConfigError(self.setting("when_active"), f"one of {', '.join(WHEN_ACTIVE)}")

    @property
    def where(self) -> str:
        return f"ManageSieve server {self.host}:{self.port}"


def lost(settings: ManageSieveSettings, operation: str, error: BaseException) -> Exception:
    """The engine error for a connection that failed during `operation`."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return FatalError(
            f"the certificate of the {settings.where} was not verified "
            f"({error.verify_message}): check {settings.ca_hint()}"
        )
    return Retriable(f"{settings.where}: connection lost during {operation}: {error}")


def dial(settings: ManageSieveSettings) -> tuple[Wire, dict[str, str]]:
    """A connection past its greeting (and STARTTLS), with the server's capabilities.

    Raises `Unreachable` when no connection can be made, `FatalError` for a certificate
    or a server without STARTTLS, `Retriable` when the connection drops.
    """
    try:
        sock = socket.create_connection((settings.host, settings.port), settings.timeout)
    except OSError as error:
        raise Unreachable(f"{settings.where} cannot be reached: {error}") from error
    wire = None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if settings.security == "tls":
            sock = settings.tls().wrap_socket(sock, server_hostname=settings.host)
        wire = Wire(sock)
        capabilities = _greeting(settings, wire)
        if settings.security == "starttls":
            if "STARTTLS" not in capabilities:
                raise FatalError(
                    f"the {settings.where} offers no STARTTLS: enable TLS on the server, "
                    f'or set {settings.setting("security")} = "plain" (loopback only)'
                )
            _, response = wire.command("STARTTLS")
            _expect(settings, response, "STARTTLS")
            wire.start_tls(settings.tls(), settings.host)
            # RFC 5804 section 2.2: after TLS the server sends its capabilities again
            capabilities = _greeting(settings, wire)
        return wire, capabilities
    except (OSError, ProtocolError) as error:
        (wire.close() if wire is not None else sock.close())
        if isinstance(error, OSError) and not isinstance(error, ssl.SSLError):
            # Nothing was sent yet but the greeting's exchange: a server going down (it
            # accepts, then resets) or not answering is a target to wait for, like one
            # that refuses the connection, not a failure of the owner.
            raise Unreachable(
                f"{settings.where} cannot be reached: the connection was lost during the "
                f"greeting ({error})"
            ) from error
        raise lost(settings, "the greeting", error) from error
    except BaseException:
        (wire.close() if wire is not None else sock.close())
        raise


def _greeting(settings: ManageSieveSettings, wire: Wire) -> dict[str, str]:
    lines, response = wire.read_response()
    _expect(settings, response, "the greeting")
    return capabilities_of(lines)


def _expect(settings: ManageSieveSettings, response: Response, operation: str) -> None:
    if response.status == "BYE" or response.has("TRYLATER"):
        raise Retriable(f"{settings.where} refused {operation} for now: {response.describe()}")
    if not response.ok:
        raise FatalError(f"{settings.where} refused {operation}: {response.describe()}")


def authenticate(
    settings: ManageSieveSettings, wire: Wire, capabilities: dict[str, str], login: Login
) -> None:
    """AUTHENTICATE "PLAIN" with the initial response (RFC 5804 section 2.1); a refusal
    names the credential setting (a master user's refusal stops every owner)."""
    offered = capabilities.get("SASL", "").upper().split()
    if "PLAIN" not in offered:
        raise FatalError(
            f"the {settings.where} offers no SASL PLAIN (it offers: {' '.join(offered) or 'none'})"
        )
    secret = sasl_plain(login.authzid, login.auth_user, login.password)
    try:
        _, response = wire.command("AUTHENTICATE", "PLAIN", secret)
    except (OSError, ProtocolError) as error:
        raise lost(settings, "the login", error) from error
    if response.ok:
        return
    if response.status == "BYE" or response.has("TRYLATER"):
        raise Retriable(f"{settings.where} refused the login for now: {response.describe()}")
    refused = FatalError if login.shared else OwnerFailed
    raise refused(
        f"ManageSieve login refused for {login.login} ({response.describe()}): check {login.hint}"
    )
