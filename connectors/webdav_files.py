"""The WebDAV target's ground floor: server profiles, one user's space on the server (its
URLs, a PROPFIND of one path) and one file written so that it appears whole at its final
path (a part file then MOVE, a direct PUT, or Nextcloud's chunked upload), its
modification time kept where the server allows. See `webdav` for the profiles' behaviour.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from ..mappings.file_names import GENERIC, NEXTCLOUD, TWAKE_DRIVE, NameRules
from ..migrator.errors import HirondelleError, SkipItem
from ..migrator.feed import StreamAbandoned
from ..migrator.model import Payload
from .webdav_chunked import (
    ChunkedUpload,
    DavHttp,
    Resource,
    all_succeeded,
    content_stream,
    decoded_path,
    getlastmodified_body,
)

if TYPE_CHECKING:
    from .webdav import WebDavSettings

log = logging.getLogger(__name__)

PART_SUFFIX = ".hirondelle-part"
WRITTEN = (200, 201, 204)
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


def is_folder_payload(payload: Payload) -> bool:
    return payload.attrs.get("kind") == "folder"


def unix_mtime(payload: Payload) -> int | None:
    moment = payload.attrs.get("mtime")
    if not isinstance(moment, datetime):
        return None
    seconds = int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    return seconds if seconds >= 0 else None


def join_path(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def parent_path(path: str) -> str:
    return path.rpartition("/")[0]


class NameTaken(Exception):
    """The final path already holds another item's file."""


class WebDavFiles:
    """A user's space on a WebDAV server, and files written into it whole: the ground
    floor of `webdav_session.WebDavSession`, whose state it sets up.

    `mtime_header` / `proppatch_mtime` are what was learnt about keeping modification
    times (True, False, or None until the first file shows it).
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
        # what the session (`webdav_session`) learns and keeps as it goes
        self._depth_infinity = profile.depth_infinity
        self._collections: set[str] = set()  # paths known to exist, relative to the root
        self._rules_under: dict[str, NameRules] = {}  # the naming rules under each drive folder
        self._uploads: ThreadPoolExecutor | None = None  # for `put_many`, made on first need

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

    def _stat(self, path: str) -> Resource | None:
        listed = self.http.propfind(self.url(path), "0")
        return listed[0] if listed else None

    def _write_file(self, path: str, payload: Payload, clobber: bool = True) -> None:
        """Upload so the file appears whole at `path`. With `clobber` False an existing
        file is left alone and `NameTaken` raised (the final MOVE says `Overwrite: F`,
        a direct PUT `If-None-Match: *`; both cost no extra request)."""
        limit = self.settings.max_upload_bytes
        if limit is not None and payload.size > limit:
            raise SkipItem(
                f"{payload.size} bytes, over {self.settings.setting('max_upload_bytes')} ({limit})"
            )
        mtime = unix_mtime(payload)
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
            temporary = join_path(parent_path(path), f".{name}{PART_SUFFIX}")
            if len(temporary.rpartition("/")[2].encode("utf-8")) > self.rules.max_name:
                temporary = join_path(parent_path(path), f".{payload.source_id[:40]}{PART_SUFFIX}")
            self._upload_part(temporary, payload, mtime, path)
            headers = {"Destination": self.url(path), "Overwrite": "T" if clobber else "F"}
            moved = self.http.send(
                "MOVE", self.url(temporary), ok=(*WRITTEN, 412), headers=headers, item=path
            )
            if moved.status_code == 412:
                self.http.send("DELETE", self.url(temporary), ok=(*WRITTEN, 404), item=path)
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
            self.http.send("DELETE", self.url(path), ok=(*WRITTEN, 404), item=item)
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
                ok=(*WRITTEN, 412, *((_LOCKED,) if again else ())),
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
