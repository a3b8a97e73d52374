"""The WebDAV target's wire: one HTTP client whose answers go through one error table,
PROPFIND parsing, streamed bodies, and Nextcloud chunked upload v2, which needs them all.

Chunked upload v2 sends a large file in numbered chunks, assembled by one MOVE. The protocol (https://docs.nextcloud.com/server/latest/developer_manual/client_apis/WebDAV/
chunking.html):

1. `MKCOL <server>/remote.php/dav/uploads/<user>/<transfer id>` with a `Destination` header
   naming the final file (its full URL under `remote.php/dav/files/<user>/`);
2. `PUT .../<transfer id>/<n>` for each chunk, `n` from 1 to 10000 (sent as "00001"...),
   with `Destination` and `OC-Total-Length`; chunks are 5 MB to 5 GB, the last one smaller;
3. `MOVE .../<transfer id>/.file` with `Destination`, `OC-Total-Length`, the mtime as
   `X-OC-Mtime` and the checksum as `OC-Checksum`; the file appears at its final path whole.

Nextcloud stores `OC-Checksum` as given without checking it, and lists it back in the
`oc:checksums` property; the algorithms its clients use are MD5, SHA1, SHA256, SHA3-256
and Adler32 (https://docs.nextcloud.com/server/latest/developer_manual/client_apis/WebDAV/
basic.html, "Request Headers"), so "SHA256:<hex>" lets `verify` compare it with ours.

The transfer id is derived from the item (source id, size, content digest, chunk size), so
a retried upload finds the folder of the interrupted one: a PROPFIND lists the chunks that
are already there and only the missing ones are sent. Nextcloud drops an upload folder
after 24 hours of inactivity; then the upload simply starts again. Assembly answers 423
Locked while another request holds the destination: it is retried with a backoff.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies, proxy_bypass

import httpx
import urllib3

from ..migrator.errors import FatalError, HirondelleError, OwnerFailed, Refused, Retriable
from ..migrator.model import Payload
from .dav_wire import DAV, FailureContext, error_for_exception, propfind_body, qname, server_reason
from .http_client import USER_AGENT
from .imap_wire import Login

MIN_CHUNK_BYTES = 5 * 1024 * 1024  # Nextcloud's smallest chunk (but the last)
MAX_CHUNK_BYTES = 5 * 1024 * 1024 * 1024
MAX_CHUNKS = 10_000
READ_BYTES = 1024 * 1024
OC = "http://owncloud.org/ns"
LISTED_PROPS = (
    qname(DAV, "resourcetype"),
    qname(DAV, "getcontentlength"),
    qname(DAV, "getlastmodified"),
    qname(OC, "checksums"),
)
_ASSEMBLED = (200, 201, 204)
_LOCKED = 423


# -- the wire ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One <response> of a PROPFIND: its decoded URL path and the properties we use."""

    path: str  # decoded, no trailing "/"
    is_collection: bool
    size: int
    mtime: datetime | None
    checksums: str  # Nextcloud's "SHA1:... SHA256:..." ("" when none)

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]


def decoded_path(href: str) -> str:
    """The decoded path of an href (absolute URL or path), runs of "/" collapsed."""
    path = urlsplit(href).path if re.match(r"(?i)https?://", href) else href
    return re.sub("/+", "/", unquote(path.strip())).rstrip("/")


def parse_resources(content: bytes) -> list[Resource]:
    """The resources of a 207 multistatus; properties count only from a 2xx propstat."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as error:
        raise Retriable(f"the WebDAV server sent an unreadable multistatus: {error}") from None
    resources = []
    for node in root.iter(qname(DAV, "response")):
        props: dict[str, ET.Element] = {}
        for propstat in node.iter(qname(DAV, "propstat")):
            status = (propstat.findtext(qname(DAV, "status")) or "").split()
            prop = propstat.find(qname(DAV, "prop"))
            if prop is not None and len(status) > 1 and status[1].startswith("2"):
                props.update((child.tag, child) for child in prop)
        kind = props.get(qname(DAV, "resourcetype"))
        length = (_text(props, qname(DAV, "getcontentlength")) or "0").strip()
        checksums = props.get(qname(OC, "checksums"))
        resources.append(
            Resource(
                path=decoded_path(node.findtext(qname(DAV, "href"), "")),
                is_collection=kind is not None and kind.find(qname(DAV, "collection")) is not None,
                size=int(length) if length.isdigit() else 0,
                mtime=_http_date(_text(props, qname(DAV, "getlastmodified"))),
                checksums=" ".join(checksums.itertext()).strip() if checksums is not None else "",
            )
        )
    return resources


def _text(props: Mapping[str, ET.Element], name: str) -> str | None:
    element = props.get(name)
    return None if element is None else (element.text or "")


def _http_date(value: str | None) -> datetime | None:
    try:
        moment = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    return moment.replace(tzinfo=moment.tzinfo or UTC) if moment else None


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    value = (response.headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return float(value)
    moment = _http_date(value)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds()) if moment else None


def error_for_status(
    response: httpx.Response, operation: str, item: str | None, login: Login, url_hint: str
) -> HirondelleError:
    """The one place an HTTP status becomes retry, an item's failure or stop.

    `item` is the target path when the request concerns one item: then a 4xx refusal
    (a name the server refuses, 413 too large, a 405 from a full disk...) fails that item
    only (it stays failed and counted until written), and 409 or 404 (a parent folder
    went missing) is retried. Without an item, 403 means the login lacks rights.
    """
    status, reason = response.status_code, server_reason(response)
    where = f"{operation} as {login.login}"
    if status == 401 or (status == 403 and item is None):
        refused = FatalError if login.shared else OwnerFailed
        return refused(f"{where}: the server refused the login ({reason}): check {login.hint}")
    if status == 507:
        return OwnerFailed(f"{where}: no storage left for {login.login} on the server ({reason})")
    if status in (408, 423, 425, 429) or status >= 500:
        return Retriable(f"{where}: {reason}", retry_after(response))
    if item is not None and status in (404, 409):
        # RFC 4918 9.7.1 and 9.3.1 say 409; SabreDAV answers a PUT under a missing folder 404
        return Retriable(f"{where}: a parent folder is missing ({reason})")
    if item is not None and 400 <= status < 500:
        too_large = " as too large" if status == 413 else ""
        return Refused(f"the server refused {item!r}{too_large} ({reason})")
    return FatalError(f"{where}: unexpected answer {reason}: check {url_hint}")


class DavHttp:
    """One logged-in HTTP client; every answer goes through `error_for_status`.

    Requests go through urllib3's blocking pool, not httpx: the target's threads send two
    requests per small file (PUT and MOVE), and on the same stream to `rclone serve
    webdav` (20 KB files, four threads, a loaded machine) httpx cost 2.15 to 2.19 ms of
    client CPU a file where urllib3 cost 1.52 to 1.78 (bench/README.md).
    Answers are still handed out as `httpx.Response`s, which the error tables read.
    Nothing is retried or redirected here (the engine retries; a redirect is an answer).
    Proxies of the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) are honoured for the
    server's host, as httpx did; the password only ever travels in the Basic
    authentication header.
    """

    def __init__(
        self,
        url: str,
        login: Login,
        ca_hint: str,
        url_hint: str,
        *,
        tls: ssl.SSLContext,
        timeout: float,
        connections: int,
    ) -> None:
        self.login = login
        self.ca_hint = ca_hint  # the CA setting, named when a certificate is refused
        self.url_hint = url_hint  # the URL setting, named on an unexpected answer
        auth = f"{login.auth_user}:{login.password}"
        # sent with every request: urllib3 uses its pool's headers only for a request
        # that brings none, so they are merged here
        self._headers = {**urllib3.make_headers(basic_auth=auth), "User-Agent": USER_AGENT}
        options: dict[str, Any] = {
            "headers": self._headers,
            "ssl_context": tls,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
            "retries": False,
            "maxsize": connections,  # kept alive; more are opened when needed, then closed
        }
        proxy = _proxy_for(url)
        if proxy is not None:
            # urllib3 does not read credentials out of a proxy URL as httpx did: a proxy
            # that asks for a login gets them as Proxy-Authorization
            where = urlsplit(proxy)
            proxy_headers = None
            if where.username:
                secret = f"{unquote(where.username)}:{unquote(where.password or '')}"
                proxy_headers = urllib3.make_headers(proxy_basic_auth=secret)
            self.pool: urllib3.PoolManager = urllib3.ProxyManager(
                proxy, proxy_headers=proxy_headers, **options
            )
        else:
            self.pool = urllib3.PoolManager(**options)

    def send(
        self,
        method: str,
        url: str,
        *,
        ok: Collection[int],
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterator[bytes] | None = None,
        item: str | None = None,
    ) -> httpx.Response:
        """One request; a status outside `ok` or a transport failure raises the sorted error.

        A 307 or 308 to the same server is followed once with the same method (RFC 9110
        15.4.8, 15.4.9): lighttpd answers 308 to a MOVE of a collection named without its
        trailing "/" (the session names folders with it, but a server may redirect others).
        A streamed body cannot be sent twice: its redirect fails.
        """
        operation = f"{method} {item or decoded_path(url) or '/'}"
        response = self._request(method, url, headers, content, operation, item)
        moved = _same_server_redirect(url, response)
        if moved is not None and not isinstance(content, Iterator):
            response = self._request(method, moved, headers, content, operation, item)
        if response.status_code not in ok:
            raise error_for_status(response, operation, item, self.login, self.url_hint)
        return response

    def _request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        content: bytes | Iterator[bytes] | None,
        operation: str,
        item: str | None,
    ) -> httpx.Response:
        try:
            answer = self.pool.request(
                method,
                url,
                body=content,
                headers={**self._headers, **headers} if headers else self._headers,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as error:
            raise self._failure(error, operation, item) from error
        # no `httpx.Request` (its URL parsing cost more than the rest): nothing reads it.
        # urllib3 has already decoded a compressed body: its Content-Encoding goes, or
        # httpx would decode it a second time
        kept = [(k, v) for k, v in answer.headers.items() if k.lower() != "content-encoding"]
        return httpx.Response(answer.status, headers=kept, content=answer.data)

    def sha256(self, url: str, item: str) -> str | None:
        """The SHA-256 (hex) of the body a GET of `url` answers, read in blocks; None
        when it answers another status than 200."""
        hasher = hashlib.sha256()
        try:
            answer = self.pool.request(
                "GET", url, headers=self._headers, redirect=False, preload_content=False
            )
            try:
                if answer.status != 200:
                    return None
                for block in answer.stream(READ_BYTES):
                    hasher.update(block)
            finally:
                answer.release_conn()
        except urllib3.exceptions.HTTPError as error:
            raise self._failure(error, f"GET {item}", item) from error
        return hasher.hexdigest()

    def _failure(
        self, error: urllib3.exceptions.HTTPError, operation: str, item: str | None
    ) -> HirondelleError:
        context = FailureContext(
            operation, self.login.login, self.login.hint, self.ca_hint, bool(item)
        )
        return error_for_exception(error, context) or Retriable(
            f"{operation} as {self.login.login} failed: {error!r}"
        )

    def propfind(self, url: str, depth: str, *, ok: Collection[int] = ()) -> list[Resource] | None:
        """The resources at `url` (Depth "0", "1" or "infinity"); None when it does not
        exist (404) or answers another status of `ok`."""
        headers = {"Depth": depth, "Content-Type": "application/xml; charset=utf-8"}
        body = propfind_body(*LISTED_PROPS)
        response = self.send("PROPFIND", url, ok=(207, 404, *ok), headers=headers, content=body)
        return parse_resources(response.content) if response.status_code == 207 else None

    def close(self) -> None:
        self.pool.clear()


def _proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (`HTTPS_PROXY`/`HTTP_PROXY`, else
    `ALL_PROXY`), unless `NO_PROXY` exempts its host."""
    parts = urlsplit(url)
    proxies = getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def _same_server_redirect(url: str, response: httpx.Response) -> str | None:
    """The URL a 307/308 answer sends the request to, when it is on the same server (the
    credentials never follow a redirect elsewhere) and another URL; else None."""
    location = response.headers.get("Location")
    if response.status_code not in (307, 308) or not location:
        return None
    moved = str(httpx.URL(url).join(location))
    here, there = urlsplit(url), urlsplit(moved)
    same = (here.scheme, here.netloc) == (there.scheme, there.netloc)
    return moved if same and moved != url else None


def getlastmodified_body(mtime: int) -> bytes:
    """A PROPPATCH setting `getlastmodified` (RFC 1123 date) to `mtime` (Unix seconds)."""
    root = ET.Element(qname(DAV, "propertyupdate"))
    prop = ET.SubElement(ET.SubElement(root, qname(DAV, "set")), qname(DAV, "prop"))
    stamp = format_datetime(datetime.fromtimestamp(mtime, UTC), usegmt=True)
    ET.SubElement(prop, qname(DAV, "getlastmodified")).text = stamp
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def all_succeeded(multistatus: bytes) -> bool:
    """True when every propstat of a PROPPATCH answer has a 2xx status."""
    try:
        root = ET.fromstring(multistatus)
    except ET.ParseError:
        return False
    statuses = [(s.text or "").split() for s in root.iter(qname(DAV, "status"))]
    return bool(statuses) and all(len(s) > 1 and s[1].startswith("2") for s in statuses)


# -- chunked upload v2 ----------------------------------------------------------------------


def content_stream(payload: Payload, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
    """`length` bytes of the payload's content from `offset`, read in blocks from its `Blob`
    (never the whole file in memory). A spooled file shorter than announced skips the item."""
    remaining = payload.size - offset if length is None else length
    if payload.blob is None or payload.blob.data is not None:
        whole = payload.content if payload.blob is None else payload.blob.data or b""
        yield whole[offset : offset + remaining]
        return
    with payload.blob.open() as stream:
        if offset:
            stream.seek(offset)
        while remaining > 0:
            block = stream.read(min(READ_BYTES, remaining))
            if not block:
                raise Retriable(f"the downloaded content ends {remaining} bytes before its size")
            remaining -= len(block)
            yield block


def chunk_size(total: int, chunk_bytes: int) -> int:
    """The chunk size for a file of `total` bytes: `chunk_bytes`, or larger when the file
    would need more than Nextcloud's 10,000 chunks."""
    return max(chunk_bytes, -(-total // MAX_CHUNKS))


def chunk_plan(total: int, size: int) -> list[tuple[str, int, int]]:
    """(chunk name, offset, length) of every chunk, in order: "00001", "00002"..."""
    count = max(1, -(-total // size))
    return [
        (f"{number:05d}", (number - 1) * size, min(size, total - (number - 1) * size))
        for number in range(1, count + 1)
    ]


def transfer_id(payload: Payload, size: int) -> str:
    """The upload folder's name: stable for one content of one item, different otherwise."""
    seed = f"{payload.source_id}\0{payload.size}\0{payload.fingerprint}\0{size}"
    return "hirondelle-" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]


@dataclass
class ChunkedUpload:
    """One file sent with chunked upload v2 (see the module docstring).

    `uploads_url` is the user's upload area ("<server>/remote.php/dav/uploads/<user>/"),
    `destination` the final file's full URL, `mtime` Unix seconds (None: not sent).
    """

    http: DavHttp
    uploads_url: str
    destination: str
    payload: Payload
    chunk_bytes: int
    mtime: int | None = None
    assembly_attempts: int = 6
    first_pause: float = 1.0
    sent: list[str] = field(default_factory=list)  # names of the chunks this run sent

    @property
    def size(self) -> int:
        return chunk_size(self.payload.size, self.chunk_bytes)

    @property
    def folder_url(self) -> str:
        return f"{self.uploads_url.rstrip('/')}/{transfer_id(self.payload, self.size)}"

    def _headers(self) -> dict[str, str]:
        return {"Destination": self.destination, "OC-Total-Length": str(self.payload.size)}

    def run(self) -> None:
        """Send the missing chunks, then assemble the file at its destination."""
        present = self._present_chunks()
        for name, offset, length in chunk_plan(self.payload.size, self.size):
            if present.get(name) == length:
                continue
            headers = {**self._headers(), "Content-Length": str(length)}
            self.http.send(
                "PUT",
                f"{self.folder_url}/{name}",
                ok=(201, 204),
                headers=headers,
                content=content_stream(self.payload, offset, length),
                item=self.destination,
            )
            self.sent.append(name)
        self._assemble()

    def _present_chunks(self) -> dict[str, int]:
        """Chunk name -> size of what an earlier attempt left; creates the folder if new."""
        listed = self.http.propfind(self.folder_url + "/", "1")
        if listed is None:
            self.http.send(
                "MKCOL", self.folder_url, ok=(201, 405), headers=self._headers(), item=None
            )
            return {}
        return {r.name: r.size for r in listed if not r.is_collection and r.name.isdigit()}

    def _assemble(self) -> None:
        headers = {**self._headers(), "Overwrite": "T"}
        if self.mtime is not None:
            headers["X-OC-Mtime"] = str(self.mtime)
        kind, _, digest = self.payload.fingerprint.partition(":")
        if kind == "sha256" and digest:
            headers["OC-Checksum"] = f"SHA256:{digest}"
        pause = self.first_pause
        for attempt in range(1, self.assembly_attempts + 1):
            response = self.http.send(
                "MOVE",
                f"{self.folder_url}/.file",
                ok=(*_ASSEMBLED, _LOCKED),
                headers=headers,
                item=self.destination,
            )
            if response.status_code != _LOCKED:
                return
            if attempt < self.assembly_attempts:
                time.sleep(pause)  # backoff while Nextcloud holds the file lock
                pause *= 2
        raise Retriable(f"assembling {self.destination}: still locked (423) after retries")
