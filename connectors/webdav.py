"""The WebDAV files target: OneDrive and SharePoint drives into Nextcloud, Twake Drive
(cozy-stack) or any RFC 4918 server (Apache mod_dav, rclone, wsgidav, SabreDAV, lighttpd...).

Layout, under each user's URL (`url` with "{login}" filled in)::

    <folder>/OneDrive/Docs/2024/Rapport.docx         a user's OneDrive
    <folder>/<site>/<library>/...                    a SharePoint library (`site_login`'s space)

`TargetRef.folder` is the drive's collection relative to the user's URL ("Microsoft 365/
OneDrive"); `TargetRef.ref` the item's path under it, each name cleaned by the profile's
`NameRules` (`mappings.file_names.target_path`). Refs are paths: a folder MOVE moves its
subtree, and the engine rewrites the refs under it.

Profiles:
- `generic`: a file is PUT to "<dir>/.<name>.hirondelle-part" then MOVEd (Overwrite: T)
  onto its final path, so no half file is ever visible there; folders by MKCOL one level
  at a time, parents first. The mtime goes with the PUT as `X-OC-Mtime` (rclone honours
  it) and as the request's `Date` (nginx's dav module gives it to the file:
  https://nginx.org/en/docs/http/ngx_http_dav_module.html, "dav_methods"); the first file
  of a session shows whether it was kept, else `getlastmodified` is set by PROPPATCH where
  the server accepts it (wsgidav with `mutable_live_props`), else it is lost (Apache,
  SabreDAV, lighttpd). `listing` asks for `Depth: infinity`, and walks with `Depth: 1` where
  refused (Apache's `DavDepthInfinity Off`, lighttpd) or silently cut to one level (SabreDAV).
  A large file still downloading (a live payload, `migrator.feed`) is PUT to its part
  file as its bytes arrive; the MOVE waits for the download's verdict and happens only
  if the checked content is the one streamed (a second download that won is uploaded
  again from its spool file; a failed one deletes the part file and raises).
- `nextcloud`: naming rules read from the server's capabilities; a file up to
  `chunk_bytes` is one PUT straight to its final path (Nextcloud writes a part file and
  renames it itself) with `X-OC-Mtime` and `OC-Checksum: SHA256:<hex>`; a larger one goes
  through chunked upload v2 (`webdav_chunked`). `listing` fingerprints come from
  `oc:checksums`.
- `twake-drive`: cozy-stack refuses `Depth: infinity` and keeps no dead properties: parents
  first, no PROPPATCH, modification times not kept (declared).

Blocking on purpose (urllib3's pool, `webdav_chunked.DavHttp`): the engine runs each
session in a worker thread; a batch of files is uploaded `uploads` at a time
(`webdav_batch`). Certificates are always verified; plain http is accepted only on
loopback.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..mappings.file_names import NEXTCLOUD, NameRules, rules_from_nextcloud_capabilities
from ..migrator.errors import ConfigError, FatalError, HirondelleError, Retriable
from ..migrator.model import Capabilities, Owner
from .credentials import Credentials, Login
from .target_settings import TargetSettings
from .webdav_chunked import MAX_CHUNK_BYTES, MIN_CHUNK_BYTES, DavHttp
from .webdav_files import PROFILES
from .webdav_session import WebDavSession

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WebDavSettings(TargetSettings):
    """The `[targets.files]` table for `kind = "webdav"`. Holds no secret, only where to
    read it: per-user `password_file` (`login:password` lines), or one service account
    `login` with `password_env` or `password_file` (its password on the first line)."""

    url: str  # may hold "{login}": "https://cloud.example/remote.php/dav/files/{login}/"
    folder: str = "Microsoft 365"  # the collection under which drives go
    profile: str = "generic"  # "generic" | "nextcloud" | "twake-drive"
    ca_file: Path | None = None  # None: the system trust store; verification stays on
    password_file: Path | None = None
    login: str | None = None
    password_env: str | None = None
    timeout: float = 60.0
    chunk_bytes: int = 10 * 1024 * 1024  # Nextcloud chunked upload: files above, chunk size
    max_upload_bytes: int | None = None  # larger files are skipped; None: no limit
    uploads: int = 4  # files of one owner uploaded at once (each on its own connection)
    site_login: str | None = None  # the target login owning SharePoint sites' libraries
    probe_login: str | None = None  # the login `doctor` checks with
    config_key: str = "targets.files"

    def __post_init__(self) -> None:
        self._paths("ca_file", "password_file")
        if not self.url.endswith("/"):
            object.__setattr__(self, "url", self.url + "/")
        if self.profile not in PROFILES:
            raise ConfigError(self.setting("profile"), f"one of {', '.join(PROFILES)}")
        self._check_url()
        self._check_timeout()
        if self.uploads < 1:
            raise ConfigError(self.setting("uploads"), "must be 1 or more")
        if self.max_upload_bytes is not None and self.max_upload_bytes <= 0:
            raise ConfigError(self.setting("max_upload_bytes"), "must be positive (or unset)")
        if self.profile == "nextcloud" and not (
            MIN_CHUNK_BYTES <= self.chunk_bytes <= MAX_CHUNK_BYTES
        ):
            raise ConfigError(self.setting("chunk_bytes"), "Nextcloud takes 5 MiB to 5 GiB")
        if self.login is None and self.password_file is None:
            raise ConfigError(self.setting("password_file"), "set password_file or login")
        if self.login is not None and not (self.password_env or self.password_file):
            raise ConfigError(
                self.setting("password_env"), "the service login needs password_env or file"
            )

    def _check_url(self) -> None:
        parts = self._check_http_url("url", self.url.replace("{login}", "login"), self.url)
        if self.profile == "nextcloud" and "/remote.php/dav/files/" not in parts.path:
            raise ConfigError(
                self.setting("url"),
                "Nextcloud needs the DAV files URL: https://HOST/remote.php/dav/files/{login}/",
            )

    def url_for(self, login: str) -> str:
        return self.url.replace("{login}", quote(login, safe="@"))


# -- the target -------------------------------------------------------------------------------


class WebDavTarget:
    """The `Target` for WebDAV file servers: `open(owner)` logs in as the owner's target
    login (a site's libraries go to `site_login`), or as the service `login` for all."""

    def __init__(self, settings: WebDavSettings) -> None:
        self.settings = settings
        self.profile = PROFILES[settings.profile]
        self.capabilities = Capabilities(
            server_assigned_ids=False,
            keeps_timestamps=self.profile.mtime_header is not False,
            max_item_bytes=settings.max_upload_bytes,
            checksums=self.profile.chunked,
            moves=False,  # between drives: the engine writes the item afresh
            live_content=not (self.profile.direct_put or self.profile.chunked),
            limit_setting=settings.setting("max_upload_bytes"),
        )
        if settings.login is None:
            assert settings.password_file is not None
            self.credentials = Credentials.per_user(settings, settings.password_file)
        else:  # one service account for everyone: its password from the env or a file
            self.credentials = Credentials.shared(
                settings,
                "login",
                settings.login,
                "password_env",
                settings.password_env,
                "password_file",
                settings.password_file,
                None,
            )
        self._rules: NameRules | None = None
        self.rules_note = ""  # why the naming rules are the preset's, for `doctor`
        self._lock = threading.Lock()

    def target_login(self, owner: Owner) -> str:
        """Whose space the owner's drives go to."""
        if owner.target_login:
            return owner.target_login
        if owner.upn.startswith("site:"):
            if not self.settings.site_login:
                raise FatalError(
                    f"SharePoint site {owner.display_name or owner.upn} has no target login: "
                    f"set {self.settings.setting('site_login')}"
                )
            return self.settings.site_login
        return owner.upn

    def login_for(self, login: str) -> Login:
        """How to authenticate for `login`'s space: its own password, or the service's."""
        return self.credentials.login_for(login)

    def _http(self, login: Login) -> DavHttp:
        settings = self.settings
        url_hint = f"{settings.setting('url')} ({settings.url})"
        return DavHttp(
            settings.url,
            login,
            settings.ca_hint(),
            url_hint,
            tls=settings.tls(),
            timeout=settings.timeout,
            connections=max(4, settings.uploads),
        )

    def open(self, owner: Owner) -> WebDavSession:
        """A session on the owner's target space, its login checked with one PROPFIND
        (Depth 0) of the space, so a refused password fails the owner before any work."""
        login = self.login_for(self.target_login(owner))
        http = self._http(login)
        try:
            session = self._session(http, login)
            http.propfind(session.base_url, "0")
            return session
        except BaseException:
            http.close()
            raise

    def _session(self, http: DavHttp, login: Login) -> WebDavSession:
        base_url = self.settings.url_for(login.login)
        uploads_url = None
        if self.profile.chunked:
            server = base_url[: base_url.index("/remote.php/")]
            uploads_url = f"{server}/remote.php/dav/uploads/{quote(login.auth_user, safe='@')}/"
        return WebDavSession(http, self.settings, base_url, self.rules(http), uploads_url)

    def rules(self, http: DavHttp) -> NameRules:
        """The profile's naming rules; Nextcloud's as its server publishes them (read once)."""
        if not self.profile.chunked:
            return self.profile.rules
        with self._lock:
            if self._rules is None:
                self._rules = self._nextcloud_rules(http)
            return self._rules

    def _nextcloud_rules(self, http: DavHttp) -> NameRules:
        base_url = self.settings.url_for(http.login.login)
        server = base_url[: base_url.index("/remote.php/")]
        url = f"{server}/ocs/v1.php/cloud/capabilities?format=json"
        headers = {"OCS-APIRequest": "true", "Accept": "application/json"}
        try:
            response = http.send("GET", url, ok=(200,), headers=headers)
            return rules_from_nextcloud_capabilities(response.text)
        except (Retriable, ValueError) as error:
            self.rules_note = f"Nextcloud capabilities unreadable ({error}): default rules used"
            log.warning("%s", self.rules_note)
            return NEXTCLOUD

    def check(self) -> list[str]:
        """Findings for `doctor`: reachability, login, capabilities, modification times."""
        settings = self.settings
        login = (
            settings.probe_login
            or settings.login
            or next(iter(self.credentials.passwords or {}), None)
        )
        if login is None:
            return [f"set {settings.setting('probe_login')} so that doctor can log in"]
        try:
            session = self.open(Owner(upn=login, source_id="doctor", target_login=login))
        except HirondelleError as error:
            return [f"WebDAV {settings.url}: {error}"]
        try:
            return [note for note in (self.rules_note, *session.findings()) if note]
        except HirondelleError as error:
            return [f"WebDAV {settings.url}: {error}"]
        finally:
            session.close()
