"""One owner's drives on a WebDAV server (`TargetSession`): folders made level by level,
files put (a batch `uploads` at a time), renamed and moved, removed, found and listed
(`Depth: infinity`, else a walk). See `webdav` for what each server profile does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..mappings.file_names import target_name, target_path, twin_path
from ..migrator.errors import ItemError, Refused, Retriable, SkipItem
from ..migrator.model import Container, Entry, Payload, TargetRef
from .webdav_batch import put_at_once
from .webdav_chunked import Resource
from .webdav_files import (
    PART_SUFFIX,
    WRITTEN,
    NameTaken,
    WebDavFiles,
    is_folder_payload,
    join_path,
    parent_path,
    unix_mtime,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


def _size(payload: Payload) -> int:
    """The file's size: its content's, or the listed one of an attributes-only payload."""
    size = payload.attrs.get("size")
    has_content = payload.blob is not None or payload.fingerprint
    return size if not has_content and isinstance(size, int) else payload.size


def _fingerprint(checksums: str) -> str:
    for checksum in checksums.split():
        kind, _, digest = checksum.partition(":")
        if kind.upper() == "SHA256" and digest:
            return f"sha256:{digest.lower()}"
    return ""


def _is_part(path: str) -> bool:
    name = path.rpartition("/")[2]
    return name.startswith(".") and name.endswith(PART_SUFFIX)


class WebDavSession(WebDavFiles):
    """One owner's drives on the server (`TargetSession`). Used by one thread at a time."""

    # -- paths --

    def _mapped(self, folder: str, payload: Payload) -> TargetRef:
        source_path = payload.attrs.get("path")
        if not isinstance(source_path, str) or not source_path.strip("/"):
            raise SkipItem(f"item {payload.source_id} has no source path")
        # Nextcloud counts a path from the user's root; other servers from the URL's root
        rules = self._rules_under.get(folder)
        if rules is None:
            prefix = (
                folder if self.profile.name == "nextcloud" else join_path(self._base_path, folder)
            )
            rules = self._rules_under[folder] = self.rules.under(prefix)
        mapped = target_path(source_path, rules)
        if mapped.refused is not None:
            raise SkipItem(f"{source_path}: {mapped.refused}")
        return TargetRef(folder, mapped.path)

    @staticmethod
    def _path(ref: TargetRef) -> str:
        if any(part in ("", ".", "..") for part in ref.ref.split("/")):
            raise SkipItem(f"WebDAV ref {ref.ref!r} is not a relative path")
        return join_path(ref.folder, ref.ref)

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
            width=self.settings.uploads,
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
            self._make_collections(parent_path(path), path)
            if is_folder_payload(payload):
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
        file_content = not is_folder_payload(payload) and (
            payload.blob is not None or payload.fingerprint
        )
        with self._forgetting_on_retry():
            moved = new.ref != ref.ref and self._relocate(self._path(ref), path, payload)
            if file_content:
                self._make_collections(parent_path(path), path)
                self._write_file(path, payload)
                return new
            if not moved and self._stat(path) is None:
                raise Refused(f"{new.ref!r} is no longer on the target")
            mtime = unix_mtime(payload)
            if not is_folder_payload(payload) and mtime is not None:
                self._proppatch_mtime(path, mtime)
        return new

    def _relocate(self, old: str, new: str, payload: Payload) -> bool:
        """MOVE `old` to `new`; False when `old` is gone (an earlier attempt moved it).

        The first MOVE never overwrites: rclone empties the destination of a MOVE with
        `Overwrite: T` before it finds the source missing, which would destroy what an
        interrupted attempt already moved. A file found at `new` while `old` is still
        there is a stale copy, replaced by a second MOVE.
        """
        self._make_collections(parent_path(new), new)
        is_folder = is_folder_payload(payload)
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
                ok=(*WRITTEN, 404, 412),
                headers=headers,
                item=new,
            )
        except Refused:
            if self._stat(old) is None:  # rclone answers 403 for a missing source
                return 404
            if parent_path(new) and self._stat(parent_path(new)) is None:  # rclone: 403 here too
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
        if not is_folder_payload(payload):
            candidates.append(TargetRef(folder, twin_path(mapped.ref, payload.source_id)))
        for ref in candidates:
            if ref.ref in exclude:
                continue
            found = self._stat(self._path(ref))
            if found is None:
                continue
            if is_folder_payload(payload):
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
