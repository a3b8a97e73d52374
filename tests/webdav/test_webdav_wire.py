"""Settings, the error table and multistatus parsing of the WebDAV target, without a server."""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.server
import socket
import ssl
import threading
from pathlib import Path

import httpx
import pytest
import respx
import urllib3

from hirondelle.connectors.imap_wire import Login
from hirondelle.connectors.webdav import WebDavSettings, WebDavTarget
from hirondelle.connectors.webdav_chunked import (
    DavHttp,
    chunk_plan,
    chunk_size,
    decoded_path,
    error_for_status,
    parse_resources,
)
from hirondelle.migrator.errors import (
    ConfigError,
    FatalError,
    OwnerFailed,
    Refused,
    Retriable,
    Unreachable,
)
from hirondelle.migrator.model import Owner, TargetRef
from hirondelle.migrator.registry import settings_of
from hirondelle.sandbox.tls import create_pki

LOGIN = Login("alice", "alice", "pw", "targets.files.password_file (/etc/passwords)")
EMPTY_MULTISTATUS = '<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"/>'


def _error(status: int, item: str | None = "Docs/a.txt", **headers: str) -> Exception:
    response = httpx.Response(status, headers=headers, text="refused")
    return error_for_status(response, "PUT Docs/a.txt", item, LOGIN, "targets.files.url")


@pytest.mark.parametrize(
    ("status", "item", "kind", "words"),
    [
        (401, "Docs/a.txt", OwnerFailed, "targets.files.password_file"),
        (403, None, OwnerFailed, "targets.files.password_file"),
        (403, "Docs/a.txt", Refused, "refused 'Docs/a.txt'"),
        (400, "Docs/a.txt", Refused, "refused 'Docs/a.txt'"),
        (405, "Docs/a.txt", Refused, "refused 'Docs/a.txt'"),  # a full disk, on some servers
        (413, "Docs/a.txt", Refused, "too large"),
        (507, "Docs/a.txt", OwnerFailed, "no storage left for alice"),
        (423, "Docs/a.txt", Retriable, "423"),
        (429, None, Retriable, "429"),
        (503, "Docs/a.txt", Retriable, "503"),
        (409, "Docs/a.txt", Retriable, "parent folder"),
        (404, "Docs/a.txt", Retriable, "parent folder"),  # SabreDAV's answer to a PUT
        (409, None, FatalError, "targets.files.url"),
    ],
)
def test_one_error_table(status: int, item: str | None, kind: type, words: str) -> None:
    error = _error(status, item)
    assert isinstance(error, kind) and words in str(error)


def test_retry_after_is_honoured() -> None:
    error = _error(429, None, **{"Retry-After": "7"})
    assert isinstance(error, Retriable) and error.retry_after == 7.0


def test_multistatus_parsing_decodes_hrefs_and_ignores_failed_properties() -> None:
    body = b"""<?xml version="1.0"?>
<D:multistatus xmlns:D="DAV:" xmlns:oc="http://owncloud.org/ns">
 <D:response><D:href>http://h/u/%C3%89t%C3%A9/</D:href>
  <D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop>
   <D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
 <D:response><D:href>//u/%C3%89t%C3%A9/a%23b.txt</D:href>
  <D:propstat><D:prop><D:resourcetype/><D:getcontentlength>12</D:getcontentlength>
   <D:getlastmodified>Sun, 14 Mar 2021 15:09:26 GMT</D:getlastmodified></D:prop>
   <D:status>HTTP/1.1 200 OK</D:status></D:propstat>
  <D:propstat><D:prop><oc:checksums>SHA256:ab</oc:checksums></D:prop>
   <D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response>
</D:multistatus>"""
    folder, document = parse_resources(body)
    assert (folder.path, folder.is_collection) == ("/u/Été", True)
    assert (document.path, document.name, document.size) == ("/u/Été/a#b.txt", "a#b.txt", 12)
    assert document.mtime is not None and document.mtime.year == 2021
    assert document.checksums == "" and not document.is_collection
    with pytest.raises(Retriable):
        parse_resources(b"<D:multistatus xmlns:D='DAV:'></D:multistatus>junk")
    assert decoded_path("https://h:8/a%20b//c/") == "/a b/c"


@pytest.mark.usefixtures("respx_pool")
def test_a_redirect_to_the_same_server_is_followed_once_with_the_same_method() -> None:
    """lighttpd answers a MOVE of "…/Projets" with 308 to "…/Projets/" (RFC 9110 15.4.9)."""
    tls = ssl.create_default_context()
    http = DavHttp(
        "https://h/u/", LOGIN, "ca", "targets.files.url", tls=tls, timeout=5, connections=1
    )
    move = {"Destination": "https://h/u/B", "Overwrite": "F"}
    with respx.mock(assert_all_called=True) as router:
        router.route(method="MOVE", url="https://h/u/A").respond(308, headers={"Location": "/u/A/"})
        moved = router.route(method="MOVE", url="https://h/u/A/").respond(201)
        assert http.send("MOVE", "https://h/u/A", ok=(201,), headers=move).status_code == 201
        assert moved.calls.last.request.headers["Destination"] == "https://h/u/B"
    with respx.mock(assert_all_called=True) as router:  # another server: not followed
        router.route(url="https://h/u/A").respond(308, headers={"Location": "https://x/u/A/"})
        with pytest.raises(FatalError, match="308"):
            http.send("MOVE", "https://h/u/A", ok=(201,), headers=move)
    with respx.mock(assert_all_called=True) as router:  # a streamed body cannot go twice
        router.route(url="https://h/u/f").respond(307, headers={"Location": "/u/g"})
        with pytest.raises(FatalError, match="307"):
            http.send("PUT", "https://h/u/f", ok=(201,), content=iter([b"x"]), item="f")


def test_chunks_cover_the_file_within_nextcloud_limits() -> None:
    plan = chunk_plan(11, 5)
    assert plan == [("00001", 0, 5), ("00002", 5, 5), ("00003", 10, 1)]
    assert chunk_plan(0, 5) == [("00001", 0, 0)]
    size = chunk_size(200 * 1024**3, 10 * 1024**2)  # 200 GiB would need 20,480 chunks
    assert len(chunk_plan(200 * 1024**3, size)) <= 10_000


def test_settings_refuse_unsafe_or_incomplete_configurations(tmp_path: Path) -> None:
    passwords = tmp_path / "passwords"
    passwords.write_text("alice:pw\n", encoding="utf-8")
    passwords.chmod(0o600)
    with pytest.raises(ConfigError, match=r"targets\.files\.url.*plain http"):
        WebDavSettings(url="http://cloud.example/dav/{login}/", password_file=passwords)
    with pytest.raises(ConfigError, match=r"targets\.files\.profile"):
        WebDavSettings(url="https://h/", password_file=passwords, profile="owncloud")
    with pytest.raises(ConfigError, match=r"targets\.files\.url.*remote\.php/dav/files"):
        WebDavSettings(url="https://h/webdav/", password_file=passwords, profile="nextcloud")
    with pytest.raises(ConfigError, match=r"targets\.files\.chunk_bytes"):
        WebDavSettings(
            url="https://h/remote.php/dav/files/{login}/",
            password_file=passwords,
            profile="nextcloud",
            chunk_bytes=1024,
        )
    with pytest.raises(ConfigError, match=r"targets\.files\.password_file"):
        WebDavSettings(url="https://h/")
    with pytest.raises(ConfigError, match=r"targets\.files\.password_env"):
        WebDavSettings(url="https://h/", login="svc")
    settings = settings_of(
        WebDavSettings, {"url": "http://127.0.0.1:8/x", "password_file": passwords}, "targets.files"
    )
    assert settings.url == "http://127.0.0.1:8/x/" and settings.password_file == passwords


@pytest.mark.usefixtures("respx_pool")
def test_logins_for_users_sites_and_a_service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, respx_pool: None
) -> None:
    passwords = tmp_path / "passwords"
    passwords.write_text("alice:pw\n", encoding="utf-8")
    passwords.chmod(0o600)
    per_user = WebDavTarget(WebDavSettings(url="https://h/{login}/", password_file=passwords))
    assert per_user.target_login(Owner("alice", "a")) == "alice"
    site = Owner("site:Finance", "s", "Finance")
    with pytest.raises(FatalError, match=r"targets\.files\.site_login"):
        per_user.target_login(site)
    with pytest.raises(OwnerFailed, match="no password for bob"):
        per_user.login_for("bob")
    monkeypatch.setenv("DAV_SERVICE_PASSWORD", "service-secret")
    service = WebDavTarget(
        WebDavSettings(
            url="https://h/{login}/",
            login="svc",
            password_env="DAV_SERVICE_PASSWORD",
            site_login="sharepoint",
        )
    )
    login = service.login_for(service.target_login(site))
    assert (login.login, login.auth_user, login.password) == ("sharepoint", "svc", "service-secret")
    assert "service-secret" not in repr(login)
    with respx.mock(assert_all_called=True) as router:
        router.route(method="PROPFIND", url="https://h/carol@example.test/").respond(404)
        session = service.open(Owner("carol@example.test", "c"))  # looks at the space once
    assert session.base_url == "https://h/carol@example.test/"
    session.close()


@pytest.mark.usefixtures("respx_pool")
def test_a_delete_answered_409_is_asked_again_as_a_folder_and_never_taken_for_gone(
    tmp_path: Path,
) -> None:
    """nginx deletes a folder only by its "/" form; a 409 that this does not explain stands."""
    passwords = tmp_path / "passwords"
    passwords.write_text("alice:pw\n", encoding="utf-8")
    passwords.chmod(0o600)
    target = WebDavTarget(WebDavSettings(url="https://h/{login}/", password_file=passwords))
    with respx.mock(assert_all_called=True) as router:
        router.route(method="PROPFIND", url="https://h/alice/").respond(207, text=EMPTY_MULTISTATUS)
        session = target.open(Owner("alice", "a"))
        router.route(method="DELETE", url="https://h/alice/D/dossier").respond(409)
        folder = router.route(method="DELETE", url="https://h/alice/D/dossier/").respond(204)
        session.remove(TargetRef("D", "dossier"))
        assert folder.called
        router.route(method="DELETE", url="https://h/alice/D/locked.txt").respond(409)
        router.route(method="DELETE", url="https://h/alice/D/locked.txt/").respond(404)
        with pytest.raises(Retriable, match="409"):
            session.remove(TargetRef("D", "locked.txt"))
    session.close()


def test_transport_failures_are_sorted(tmp_path: Path) -> None:
    """A certificate the trust store does not know stops the run and names the CA
    setting; a port nobody listens on is a wait for the server, not an item's failure."""
    pki = create_pki(tmp_path / "pki")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server_tls = pki.server_context()

    def handshake_once() -> None:
        connection, _ = listener.accept()
        with contextlib.suppress(OSError):  # the client refuses the certificate
            server_tls.wrap_socket(connection, server_side=True).close()
        connection.close()

    thread = threading.Thread(target=handshake_once, daemon=True)
    thread.start()
    passwords = tmp_path / "passwords"
    passwords.write_text("alice:pw\n", encoding="utf-8")
    passwords.chmod(0o600)
    url = f"https://127.0.0.1:{port}/{{login}}/"
    target = WebDavTarget(WebDavSettings(url=url, password_file=passwords))
    with pytest.raises(FatalError, match=r"certificate was not verified .*targets\.files\.ca_file"):
        target.open(Owner("alice", "a"))
    thread.join(timeout=10)
    listener.close()
    with pytest.raises(Unreachable, match="PROPFIND .* as alice: no connection"):
        target.open(Owner("alice", "a"))


def test_the_environments_proxy_is_used_with_its_login(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy URL's user and password become Proxy-Authorization (urllib3 does not read
    them from the URL); ALL_PROXY stands for every scheme; NO_PROXY exempts a host."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "http://pu:p%40ss@proxy.example:3128")
    tls = ssl.create_default_context()
    http = DavHttp("https://h/u/", LOGIN, "ca", "url", tls=tls, timeout=5, connections=1)
    assert isinstance(http.pool, urllib3.ProxyManager)
    assert http.pool.proxy_headers["proxy-authorization"] == "Basic " + base64.b64encode(
        b"pu:p@ss"
    ).decode("ascii")
    monkeypatch.setenv("NO_PROXY", "h")
    direct = DavHttp("https://h/u/", LOGIN, "ca", "url", tls=tls, timeout=5, connections=1)
    assert not isinstance(direct.pool, urllib3.ProxyManager)


def test_a_compressed_answer_is_read_once_decoded() -> None:
    """urllib3 decodes a gzip body itself: the answer handed on must not be decoded again."""
    body = gzip.compress(
        b'<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response>'
        b"<D:href>/u/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/>"
        b"</D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
        b"</D:response></D:multistatus>"
    )

    class Compressing(http.server.BaseHTTPRequestHandler):
        def do_PROPFIND(self) -> None:  # the method's name is the verb's
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(207)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.HTTPServer(("127.0.0.1", 0), Compressing)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/u/"
    client = DavHttp(
        url, LOGIN, "ca", "url", tls=ssl.create_default_context(), timeout=5, connections=1
    )
    try:
        found = client.propfind(url, "0")
    finally:
        client.close()
        server.server_close()
    assert found is not None and [(r.path, r.is_collection) for r in found] == [("/u", True)]
