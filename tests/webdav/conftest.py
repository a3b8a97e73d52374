"""A WebDAV target on each real server (Apache mod_dav, rclone, wsgidav, SabreDAV, lighttpd,
nginx), one fresh user each."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import urllib3

from hirondelle.connectors import webdav_chunked
from hirondelle.connectors.webdav import WebDavSettings, WebDavTarget
from hirondelle.connectors.webdav_session import WebDavSession
from hirondelle.migrator.model import Container, Owner
from hirondelle.tests.servers import MailUser, WebDavServer

SERVERS = {
    "apache": "apache_dav",
    "rclone": "rclone_dav",
    "wsgidav": "wsgidav_dav",
    "sabredav": "sabre_dav",
    "lighttpd": "lighttpd_dav",
    "nginx": "nginx_dav",
}
KEEPS_MTIME = {
    "apache": False,
    "rclone": True,
    "wsgidav": True,
    "sabredav": False,
    "lighttpd": False,
    "nginx": True,  # from the PUT's Date header
}


@dataclass
class DavUser:
    """One user on one server, with a target built for them."""

    name: str
    server: WebDavServer
    user: MailUser
    target: WebDavTarget
    tmp_path: Path
    sessions: list[WebDavSession] = field(default_factory=list)

    @property
    def owner(self) -> Owner:
        return Owner(upn=self.user.login, source_id=f"id-{self.user.login}")

    def session(self) -> WebDavSession:
        session = self.target.open(self.owner)
        self.sessions.append(session)
        return session

    def drive(self, name: str = "OneDrive") -> Container:
        return Container("files", self.user.login, f"drive-{name}", (name,), "personal")

    def on_disk(self, folder: str, ref: str = "") -> Path:
        return self.server.path_of(self.user.login, f"{folder}/{ref}")


def target_for(
    server: WebDavServer, user: MailUser, tmp_path: Path, **options: Any
) -> WebDavTarget:
    passwords = server.password_file(tmp_path / f"passwords-{user.login}", user)
    settings = WebDavSettings(url=server.url, password_file=passwords, **options)
    return WebDavTarget(settings)


@pytest.fixture(params=sorted(SERVERS))
def dav(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DavUser]:
    """Each real WebDAV server in turn, with a user whose folder is empty."""
    server: WebDavServer = request.getfixturevalue(SERVERS[request.param])
    user = server.new_user()
    subject = DavUser(request.param, server, user, target_for(server, user, tmp_path), tmp_path)
    try:
        yield subject
    finally:
        for session in subject.sessions:
            session.close()


class HttpxPool:
    """Stands for the target's urllib3 pool in tests that describe a server with respx:
    each request goes through an httpx client (which respx answers) and comes back as a
    urllib3 answer."""

    def __init__(self, headers: Mapping[str, str], **options: Any) -> None:
        self.client = httpx.Client(headers=headers)

    def request(
        self,
        method: str,
        url: str,
        body: bytes | Iterator[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        redirect: bool = True,
        preload_content: bool = True,
    ) -> urllib3.HTTPResponse:
        answer = self.client.request(method, url, content=body, headers=headers)
        return urllib3.HTTPResponse(
            body=io.BytesIO(answer.content),
            headers=dict(answer.headers),
            status=answer.status_code,
            preload_content=preload_content,
        )

    def clear(self) -> None:
        self.client.close()


@pytest.fixture
def respx_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """The target's HTTP requests go through httpx, where respx answers them."""
    monkeypatch.setattr(webdav_chunked.urllib3, "PoolManager", HttpxPool)
