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
import time
from collections.abc import Iterator, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

from ..mappings.file_names import (
    GENERIC,
    NEXTCLOUD,
    TWAKE_DRIVE,
    NameRules,
    rules_from_nextcloud_capabilities,
    target_name,
    target_path,
    twin_path,
)
from ..migrator.errors import (
    ConfigError,
    FatalError,
    HirondelleError,
    ItemError,
    Refused,
    Retriable,
    SkipItem,
)
from ..migrator.feed import StreamAbandoned
from ..migrator.model import Capabilities, Container, Entry, Owner, Payload, TargetRef
from .credentials import Credentials, Login
from .target_settings import TargetSettings
from .webdav_batch import put_at_once
from .webdav_chunked import (
    MAX_CHUNK_BYTES,
    MIN_CHUNK_BYTES,
    ChunkedUpload,
    DavHttp,
    Resource,
    all_succeeded,
    content_stream,
    decoded_path,
    getlastmodified_body,
)

log = logging.getLogger(__name__)

PART_SUFFIX = ".hirondelle-part"
_WRITTEN = (200, 201, 204)
_LOCKED = 423
LOCKED_FIRST_PAUSE_S = 0.05  # a PUT answered 423 is sent again after 0.05, 0.1... s
LOCKED_LAST_PAUSE_S = 1.6  # ... up to this pause, about 3 s in all


@dataclass(frozen=True)
class Profile:
    """What one kind of WebDAV server does and refuses."""

    name: str
    rules: NameRules
    mtime_header: bool | None  # X-OC-Mtime (or Date) honoured: True, False, None = find out
    proppatch_mtime: bool | None  # getlastmodified writable by PROPPATCH: same
    depth_infinity: bool
    direct_put: bool  # the server writes a part file itself: PUT to the final path
    chunked: bool  # Nextcloud chunked upload v2


PROFILES: dict[str, Profile] = {
    "generic": Profile("generic", GENERIC, None, None, True, False, False),
    "nextcloud": Profile("nextcloud", NEXTCLOUD, True, False, True, True, True),
    "twake-drive": Profile("twake-drive", TWAKE_DRIVE, False, False, False, False, False),
}


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


def _is_folder(payload: Payload) -> bool:
    return payload.attrs.get("kind") == "folder"


def _size(payload: Payload) -> int:
    """The file's size: its content's, or the listed one of an attributes-only payload."""
    size = payload.attrs.get("size")
    has_content = payload.blob is not None or payload.fingerprint
    return size if not has_content and isinstance(size, int) else payload.size


def _unix_mtime(payload: Payload) -> int | None:
    moment = payload.attrs.get("mtime")
    if not isinstance(moment, datetime):
        return None
    seconds = int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    return seconds if seconds >= 0 else None


def _fingerprint(checksums: str) -> str:
    for checksum in checksums.split():
        kind, _, digest = checksum.partition(":")
        if kind.upper() == "SHA256" and digest:
            return f"sha256:{digest.lower()}"
    return ""


def _is_part(path: str) -> bool:
    name = path.rpartition("/")[2]
    return name.startswith(".") and name.endswith(PART_SUFFIX)


def _join(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


# -- the session ------------------------------------------------------------------------------


class NameTaken(Exception):
    """The final path already holds another item's file."""


class WebDavSession:
    """One owner's drives on the server (`TargetSession`). Used by one thread at a time.

    `mtime_header` / `proppatch_mtime` are what the session learnt about keeping
    modification times (True, False, or None until the first file shows it).
    """

    def __init__(
        self,
        http: DavHttp,
        settings: WebDavSettings,
        base_url: str,
        rules: NameRules,
        uploads_url: str | None = None,
    ) -> None:
        self.http = http
        self.base_url = base_url  # the user's root, ending with "/"
        self.settings = settings
        self.profile = profile = PROFILES[settings.profile]
        self.rules = rules
        self.uploads_url = uploads_url
        self.mtime_header = profile.mtime_header
        self.proppatch_mtime = profile.proppatch_mtime
        self._base_path = decoded_path(base_url)
        self._depth_infinity = profile.depth_infinity
        self._collections: set[str] = set()  # paths known to exist, relative to the root
        self._rules_under: dict[str, NameRules] = {}  # the naming rules under each drive folder
        self._uploads: ThreadPoolExecutor | None = None  # for `put_many`, made on first need

    # -- paths --

    def url(self, path: str, collection: bool = False) -> str:
        """The URL of `path` (relative to the user's root, "/" between levels). A
        collection's ends with "/", the form RFC 4918 5.2 tells clients to use: nginx
        refuses MKCOL, MOVE and DELETE of a folder named without it (409 or 400)."""
        ending = "/" if collection and path else ""
        return self.base_url + quote(path, safe="/") + ending

    def _relative(self, resource: Resource) -> str | None:
        if resource.path == self._base_path:
            return ""
        prefix = self._base_path + "/"
        return resource.path[len(prefix) :] if resource.path.startswith(prefix) else None

    def _mapped(self, folder: str, payload: Payload) -> TargetRef:
        source_path = payload.attrs.get("path")
        if not isinstance(source_path, str) or not source_path.strip("/"):
            raise SkipItem(f"item {payload.source_id} has no source path")
        # Nextcloud counts a path from the user's root; other servers from the URL's root
        rules = self._rules_under.get(folder)
        if rules is None:
            prefix = folder if self.profile.name == "nextcloud" else _join(self._base_path, folder)
            rules = self._rules_under[folder] = self.rules.under(prefix)
        mapped = target_path(source_path, rules)
        if mapped.refused is not None:
            raise SkipItem(f"{source_path}: {mapped.refused}")
        return TargetRef(folder, mapped.path)

    @staticmethod
    def _path(ref: TargetRef) -> str:
        if any(part in ("", ".", "..") for part in ref.ref.split("/")):
            raise SkipItem(f"WebDAV ref {ref.ref!r} is not a relative path")
        return _join(ref.folder, ref.ref)

    # -- collections --

    def ensure_container(self, container: Container) -> str:
        """Create `<folder>/<drive path>` level by level (405: it exists); return it."""
        names = [*self.settings.folder.split("/"), *container.path]
        folder = "/".join(target_name(name, self.rules) for name in names if name.strip())
        if folder not in self._collections:
            found = self._stat(folder)
            if found is not None and found.is_collection:
                self._collections.add(folder)
        self._make_collections(folder, None)
        return folder

    def _make_collections(self, path: str, item: str | None) -> None:
        """MKCOL every missing level of `path`, parents first (405 means it exists)."""
        levels = path.split("/") if path else []
        for depth in range(1, len(levels) + 1):
            level = "/".join(levels[:depth])
            if level not in self._collections:
                self.http.send("MKCOL", self.url(level, True), ok=(201, 405), item=item)
                self._collections.add(level)

    def _forget(self, path: str) -> None:
        self._collections = {
            known
            for known in self._collections
            if known != path and not known.startswith(path + "/")
        }

    def _stat(self, path: str) -> Resource | None:
        listed = self.http.propfind(self.url(path), "0")
        return listed[0] if listed else None

    # -- writing --

    def put_many(self, folder: str, payloads: Sequence[Payload]) -> list[TargetRef | ItemError]:
        """`put` each payload, up to `uploads` files at once (see `webdav_batch`)."""
        mapped: dict[int, TargetRef] = {}  # each payload's ref, mapped once for both uses

        def path_of(payload: Payload) -> str:
            mapped[id(payload)] = ref = self._mapped(folder, payload)
            return self._path(ref)

        return put_at_once(
            lambda payload: self._put(folder, payload, mapped.get(id(payload))),
            payloads,
            self._upload_pool() if len(payloads) > 1 else None,
            path_of,
            alone_first=self.mtime_header is None,
        )

    def _upload_pool(self) -> ThreadPoolExecutor | None:
        if self.settings.uploads < 2:
            return None
        if self._uploads is None:
            self._uploads = ThreadPoolExecutor(
                self.settings.uploads, thread_name_prefix="webdav-upload"
            )
        return self._uploads

    def put(self, folder: str, payload: Payload) -> TargetRef:
        """MKCOL a folder, or upload a file so that it appears whole at its final path."""
        return self._put(folder, payload, None)

    def _put(self, folder: str, payload: Payload, ref: TargetRef | None) -> TargetRef:
        ref = ref or self._mapped(folder, payload)
        path = self._path(ref)
        with self._forgetting_on_retry():
            self._make_collections(_parent(path), path)
            if _is_folder(payload):
                self._make_collections(path, path)
                return ref
            try:
                self._write_file(path, payload, clobber=False)
            except NameTaken:
                payload = payload.settled()  # a live payload's hash, for the comparison
                found = self._stat(path)
                if found is not None and self._holds(path, found, payload):
                    return ref  # a second put of the same item: idempotent
                # another item holds this name (NFC or case twins): keep both
                ref = TargetRef(ref.folder, twin_path(ref.ref, payload.source_id))
                self._write_file(self._path(ref), payload)
        return ref

    def _write_file(self, path: str, payload: Payload, clobber: bool = True) -> None:
        """Upload so the file appears whole at `path`. With `clobber` False an existing
        file is left alone and `NameTaken` raised (the final MOVE says `Overwrite: F`,
        a direct PUT `If-None-Match: *`; both cost no extra request)."""
        limit = self.settings.max_upload_bytes
        if limit is not None and payload.size > limit:
            raise SkipItem(
                f"{payload.size} bytes, over {self.settings.setting('max_upload_bytes')} ({limit})"
            )
        mtime = _unix_mtime(payload)
        if payload.live and (self.profile.chunked or self.profile.direct_put):
            payload = payload.settled()  # streamed only through a part file
        if self.profile.chunked and payload.size > self.settings.chunk_bytes:
            assert self.uploads_url is not None
            if not clobber and self._stat(path) is not None:
                raise NameTaken(path)
            upload = ChunkedUpload(
                self.http, self.uploads_url, self.url(path), payload, self.settings.chunk_bytes
            )
            upload.mtime = mtime
            upload.run()
        elif self.profile.direct_put:
            self._upload(path, payload, mtime, path, clobber)
        else:
            name = path.rpartition("/")[2]
            temporary = _join(_parent(path), f".{name}{PART_SUFFIX}")
            if len(temporary.rpartition("/")[2].encode("utf-8")) > self.rules.max_name:
                temporary = _join(_parent(path), f".{payload.source_id[:40]}{PART_SUFFIX}")
            self._upload_part(temporary, payload, mtime, path)
            headers = {"Destination": self.url(path), "Overwrite": "T" if clobber else "F"}
            moved = self.http.send(
                "MOVE", self.url(temporary), ok=(*_WRITTEN, 412), headers=headers, item=path
            )
            if moved.status_code == 412:
                self.http.send("DELETE", self.url(temporary), ok=(*_WRITTEN, 404), item=path)
                raise NameTaken(path)
        self._keep_mtime(path, mtime)

    def _upload_part(self, part: str, payload: Payload, mtime: int | None, item: str) -> None:
        """PUT the part file. A live payload's bytes go as they arrive; the part file is
        kept only if the download's verdict is what was streamed (a second copy that won,
        or a download that started over, is uploaded again from its spool file, without
        downloading again); any failure deletes the part file."""
        feed = payload.blob.live if payload.blob is not None else None
        if feed is None:
            self._upload(part, payload, mtime, item)
            return
        try:
            chunks = feed.take()
            if chunks is not None:
                try:
                    self._upload(part, payload, mtime, item, content=chunks)
                except StreamAbandoned:
                    chunks = None  # the download goes on into its spool file: upload that
            finished = feed.result()
            if chunks is None or not feed.sent_whole(finished):
                self._upload(part, payload.settled(), mtime, item)
        except BaseException:
            self._delete_quietly(part, item)
            raise

    def _delete_quietly(self, path: str, item: str) -> None:
        """DELETE a part file on the way out of a failure; a later attempt overwrites it
        anyway, so a failure here is only logged."""
        try:
            self.http.send("DELETE", self.url(path), ok=(*_WRITTEN, 404), item=item)
        except HirondelleError as error:
            log.info("part file %s left for a later attempt: %s", path, error)

    def _upload(
        self,
        path: str,
        payload: Payload,
        mtime: int | None,
        item: str,
        clobber: bool = True,
        content: Iterator[bytes] | None = None,
    ) -> None:
        headers = {"Content-Length": str(payload.size), "Content-Type": "application/octet-stream"}
        if not clobber:
            headers["If-None-Match"] = "*"
        if mtime is not None and self.mtime_header is not False:
            headers["X-OC-Mtime"] = str(mtime)
            if not self.profile.direct_put:  # the part file's: a MOVE keeps it (nginx)
                headers["Date"] = format_datetime(datetime.fromtimestamp(mtime, UTC), usegmt=True)
        kind, _, digest = payload.fingerprint.partition(":")
        if self.profile.chunked and kind == "sha256":
            headers["OC-Checksum"] = f"SHA256:{digest}"
        pause, again = LOCKED_FIRST_PAUSE_S, content is None
        while True:
            sent = self.http.send(
                "PUT",
                self.url(path),
                ok=(*_WRITTEN, 412, *((_LOCKED,) if again else ())),
                headers=headers,
                content=content_stream(payload) if content is None else content,
                item=item,
            )
            if sent.status_code != _LOCKED:
                break
            # 423 Locked (RFC 4918 section 11.3): rclone answers it to a PUT that
            # follows, on a new connection, an upload of the same name that was cut
            # (a streamed one abandoned), until it has noticed the cut: waited out
            # briefly; then a Retriable, as any 423
            again = pause < LOCKED_LAST_PAUSE_S
            time.sleep(pause)
            pause *= 2
        if sent.status_code == 412:
            raise NameTaken(path)

    def _keep_mtime(self, path: str, mtime: int | None) -> None:
        """Make sure the file at `path` carries `mtime`: the header did it, or PROPPATCH."""
        if mtime is None or self.mtime_header:
            return
        if self.mtime_header is None:
            stamp = found.mtime if (found := self._stat(path)) is not None else None
            self.mtime_header = stamp is not None and int(stamp.timestamp()) == mtime
            log.info("WebDAV server keeps the PUT's X-OC-Mtime or Date: %s", self.mtime_header)
            if self.mtime_header:
                return
        self._proppatch_mtime(path, mtime)

    def _proppatch_mtime(self, path: str, mtime: int) -> None:
        if self.proppatch_mtime is False:
            return
        headers = {"Content-Type": "application/xml; charset=utf-8"}
        body = getlastmodified_body(mtime)
        response = self.http.send(
            "PROPPATCH", self.url(path), ok=(207, 403, 405, 409), headers=headers, content=body
        )
        accepted = response.status_code == 207 and all_succeeded(response.content)
        if self.proppatch_mtime is None:
            log.info("WebDAV server takes getlastmodified by PROPPATCH: %s", accepted)
        self.proppatch_mtime = accepted

    @contextmanager
    def _forgetting_on_retry(self) -> Iterator[None]:
        """A retriable failure may come from a folder gone behind our back: forget them all."""
        try:
            yield
        except Retriable:
            self._collections.clear()
            raise

    def update(self, ref: TargetRef, payload: Payload) -> TargetRef:
        """MOVE to the payload's path when it changed (a folder takes its subtree along),
        upload the content again when the payload has some, keep the mtime."""
        new = self._mapped(ref.folder, payload)
        path = self._path(new)
        file_content = not _is_folder(payload) and (payload.blob is not None or payload.fingerprint)
        with self._forgetting_on_retry():
            moved = new.ref != ref.ref and self._relocate(self._path(ref), path, payload)
            if file_content:
                self._make_collections(_parent(path), path)
                self._write_file(path, payload)
                return new
            if not moved and self._stat(path) is None:
                raise Refused(f"{new.ref!r} is no longer on the target")
            mtime = _unix_mtime(payload)
            if not _is_folder(payload) and mtime is not None:
                self._proppatch_mtime(path, mtime)
        return new

    def _relocate(self, old: str, new: str, payload: Payload) -> bool:
        """MOVE `old` to `new`; False when `old` is gone (an earlier attempt moved it).

        The first MOVE never overwrites: rclone empties the destination of a MOVE with
        `Overwrite: T` before it finds the source missing, which would destroy what an
        interrupted attempt already moved. A file found at `new` while `old` is still
        there is a stale copy, replaced by a second MOVE.
        """
        self._make_collections(_parent(new), new)
        is_folder = _is_folder(payload)
        status = self._move_once(old, new, is_folder, overwrite=False)
        if status == 412 and not is_folder and self._stat(old) is not None:
            status = self._move_once(old, new, is_folder, overwrite=True)
        if status in (404, 412) and self._stat(old) is None:
            return False
        if status == 412:
            raise Refused(f"cannot rename to {new!r}: a folder of that name is on the target")
        if status == 404:  # the source is there, yet the server says it is not found
            raise Refused(f"cannot rename {old!r} to {new!r}: the server answered 404")
        self._forget(old)
        return True

    def _move_once(self, old: str, new: str, is_folder: bool, overwrite: bool) -> int:
        destination = self.url(new, is_folder)
        headers = {"Destination": destination, "Overwrite": "T" if overwrite else "F"}
        try:
            response = self.http.send(
                "MOVE",
                self.url(old, is_folder),
                ok=(*_WRITTEN, 404, 412),
                headers=headers,
                item=new,
            )
        except Refused:
            if self._stat(old) is None:  # rclone answers 403 for a missing source
                return 404
            if _parent(new) and self._stat(_parent(new)) is None:  # rclone: 403 here too
                raise Retriable(f"MOVE {new}: its parent folder is missing") from None
            raise
        return response.status_code

    def move(self, ref: TargetRef, folder: str) -> TargetRef:
        raise SkipItem("items do not move between drives on the WebDAV target; written afresh")

    def remove(self, ref: TargetRef) -> None:
        """DELETE the file, or the folder with everything under it; gone is fine. A ref
        does not say which it is: a 409 is asked again in the folder's form (nginx), and
        stands when that finds nothing (the item is not taken for gone)."""
        path = self._path(ref)
        gone = (200, 204, 404)
        first = self.http.send("DELETE", self.url(path), ok=(*gone, 409), item=path)
        if first.status_code == 409:
            again = self.http.send("DELETE", self.url(path, True), ok=gone, item=path)
            if again.status_code == 404:
                raise Retriable(f"DELETE {path} as {self.http.login.login}: 409 Conflict")
        self._forget(path)

    def find(self, folder: str, payload: Payload, exclude: Set[str]) -> TargetRef | None:
        """The final path, if it holds this item: a folder, or a file of the same size."""
        mapped = self._mapped(folder, payload)
        candidates = [mapped]
        if not _is_folder(payload):
            candidates.append(TargetRef(folder, twin_path(mapped.ref, payload.source_id)))
        for ref in candidates:
            if ref.ref in exclude:
                continue
            found = self._stat(self._path(ref))
            if found is None:
                continue
            if _is_folder(payload):
                return ref if found.is_collection else None
            if not found.is_collection and self._holds(self._path(ref), found, payload):
                return ref
        return None

    def _holds(self, path: str, found: Resource, payload: Payload) -> bool:
        """Whether the file at `path` is this payload's: the same size and, when the
        payload has content, the same SHA-256 (the server's checksum, else the bytes read
        back). Twins of one name may have equal sizes: one never stands for the other."""
        if found.size != _size(payload):
            return False
        kind, _, digest = payload.fingerprint.partition(":")
        if kind != "sha256" or not digest:
            return True  # an attributes-only payload: the size is all there is
        listed = _fingerprint(found.checksums)
        if listed:
            return listed == f"sha256:{digest.lower()}"
        return self.http.sha256(self.url(path), path) == digest.lower()

    # -- reading --

    def listing(self, folder: str) -> list[Entry]:
        """Every folder (fingerprint "", size 0) and file of the drive; a file's fingerprint
        is "sha256:<hex>" when the server keeps that checksum (Nextcloud), else ""."""
        entries = []
        for resource in self._tree(folder):
            path = self._relative(resource)
            if path is None or not path.startswith(folder + "/") or _is_part(path):
                continue
            ref = TargetRef(folder, path[len(folder) + 1 :])
            if resource.is_collection:
                entries.append(Entry(ref, "", 0))
            else:
                entries.append(Entry(ref, _fingerprint(resource.checksums), resource.size))
        return sorted(entries, key=lambda entry: entry.ref.ref)

    def _tree(self, folder: str) -> list[Resource]:
        """Everything under `folder`: one Depth infinity PROPFIND when the server really
        answers it, else a walk with Depth 1."""
        if self._depth_infinity:
            listed = self.http.propfind(self.url(folder) + "/", "infinity", ok=(400, 403, 501))
            if listed is not None and self._complete(folder, listed):
                return listed
            self._depth_infinity = False
        tree: list[Resource] = []
        pending = [folder]
        while pending:
            directory = pending.pop()
            for resource in self.http.propfind(self.url(directory) + "/", "1") or []:
                path = self._relative(resource)
                if path is None or path == directory or not path.startswith(directory + "/"):
                    continue
                tree.append(resource)
                if resource.is_collection:
                    pending.append(path)
        return tree

    def _complete(self, folder: str, listed: list[Resource]) -> bool:
        """False when a Depth infinity answer may have been cut to one level (SabreDAV
        does that silently): subfolders are listed but nothing below them."""
        depths = [p.count("/") for r in listed if (p := self._relative(r) or "").startswith(folder)]
        top = folder.count("/") + 1
        has_subfolders = any(
            r.is_collection and (self._relative(r) or "").count("/") == top for r in listed
        )
        return not has_subfolders or any(depth > top for depth in depths)

    def findings(self) -> list[str]:
        """What `doctor` reports: the user's root must exist; whether mtimes are kept (a
        probe file is written and deleted when the profile does not say)."""
        if self._stat("") is None:
            return [f"{self.base_url} does not exist: check {self.settings.setting('url')}"]
        if self.mtime_header is None or self.proppatch_mtime is None:
            path = ".hirondelle-doctor-probe"
            moment = datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC)
            attrs = {"kind": "file", "path": path, "mtime": moment, "size": 10}
            try:
                self._write_file(path, Payload("doctor-probe", b"hirondelle", "", attrs))
            finally:
                self.http.send("DELETE", self.url(path), ok=(200, 204, 404))
        if self.mtime_header or self.proppatch_mtime:
            return []
        return [
            f"{self.base_url}: modification times are not kept (neither X-OC-Mtime, nor "
            "Date on a PUT, nor a PROPPATCH of getlastmodified): files show their upload time"
        ]

    def close(self) -> None:
        if self._uploads is not None:
            self._uploads.shutdown(wait=True)
        self.http.close()


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
