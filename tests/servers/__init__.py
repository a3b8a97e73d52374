"""Real servers for tests, one module per server, each started on a free 127.0.0.1 port in
a temporary directory, polled until ready with a deadline and stopped by PID
(`process` holds what they share; `accounts` the users they hand out).

`DovecotServer` and `CyrusServer` are IMAP servers read back through a master user
(`imap.ImapReadBack`); `both_imap_servers` runs a test against each.

`RadicaleServer` does the same for CalDAV and CardDAV (Radicale 3, plain htpasswd users,
optional TLS), and `XandikosServer` for a second one (Xandikos in its multi-user mode, from
its own virtualenv, `.ci/install-xandikos`); both read collections and resources back from
their storage folders.

`ApacheDavServer` (Apache 2.4 mod_dav_fs), `RcloneDavServer` (`rclone serve webdav`),
`WsgiDavServer` (wsgidav + cheroot, mtime by PROPPATCH and `X-OC-Mtime`), `SabreDavServer`
(SabreDAV on PHP's built-in server), `LighttpdDavServer` (lighttpd mod_webdav) and
`NginxDavServer` (nginx dav + dav-ext) serve one folder per user under
"http://127.0.0.1:PORT/<login>/" with Basic authentication.

`SynapseServer` runs a Matrix homeserver from its own virtualenv (`.ci/install-synapse`)
with the tool's application service registered; `new_user()` gives ordinary accounts.

`PostgresServer`, `RedisServer` and `RabbitMqServer` are the cluster tests' state and brokers.

Everything is importable from this package: `from hirondelle.tests.servers import X`.
"""

from hirondelle.tests.servers.accounts import MailUser, TlsFiles, issue_tls
from hirondelle.tests.servers.apache import ApacheDavServer
from hirondelle.tests.servers.cyrus import (
    CYRUS_IMAPD,
    CYRUS_IMAPD_ENV,
    CYRUS_MASTER,
    CyrusServer,
    cyrus_imapd,
    cyrus_server,
)
from hirondelle.tests.servers.dav import DavServer, dav_server
from hirondelle.tests.servers.dovecot import DovecotServer, SentMessage, dovecot_server
from hirondelle.tests.servers.imap import (
    IMAP_SERVERS,
    MASTER_PASSWORD,
    MASTER_USER,
    STANDARD_SPECIAL_USE,
    ImapReadBack,
    StoredMessage,
    both_imap_servers,
)
from hirondelle.tests.servers.lighttpd import LighttpdDavServer
from hirondelle.tests.servers.nginx import NginxDavServer
from hirondelle.tests.servers.postgres import PostgresServer, postgres_server
from hirondelle.tests.servers.process import HOST, ServerUnavailable, free_port
from hirondelle.tests.servers.rabbitmq import RabbitMqServer, rabbitmq_server
from hirondelle.tests.servers.radicale import RadicaleServer, radicale_server
from hirondelle.tests.servers.rclone import RcloneDavServer
from hirondelle.tests.servers.redis import RedisServer, redis_server
from hirondelle.tests.servers.sabredav import SabreDavServer
from hirondelle.tests.servers.synapse import (
    SYNAPSE_AS_TOKEN,
    SYNAPSE_HS_TOKEN,
    SYNAPSE_VENV_ENV,
    MatrixAccount,
    SynapseServer,
    synapse_python,
    synapse_server,
)
from hirondelle.tests.servers.webdav import WebDavServer, webdav_server
from hirondelle.tests.servers.wsgidav import WsgiDavServer
from hirondelle.tests.servers.xandikos import XANDIKOS_VENV_ENV, XandikosServer, xandikos_command

__all__ = [
    "CYRUS_IMAPD",
    "CYRUS_IMAPD_ENV",
    "CYRUS_MASTER",
    "HOST",
    "IMAP_SERVERS",
    "MASTER_PASSWORD",
    "MASTER_USER",
    "STANDARD_SPECIAL_USE",
    "SYNAPSE_AS_TOKEN",
    "SYNAPSE_HS_TOKEN",
    "SYNAPSE_VENV_ENV",
    "XANDIKOS_VENV_ENV",
    "ApacheDavServer",
    "CyrusServer",
    "DavServer",
    "DovecotServer",
    "ImapReadBack",
    "LighttpdDavServer",
    "MailUser",
    "MatrixAccount",
    "NginxDavServer",
    "PostgresServer",
    "RabbitMqServer",
    "RadicaleServer",
    "RcloneDavServer",
    "RedisServer",
    "SabreDavServer",
    "SentMessage",
    "ServerUnavailable",
    "StoredMessage",
    "SynapseServer",
    "TlsFiles",
    "issue_tls",
    "WebDavServer",
    "WsgiDavServer",
    "XandikosServer",
    "both_imap_servers",
    "cyrus_imapd",
    "cyrus_server",
    "dav_server",
    "dovecot_server",
    "free_port",
    "postgres_server",
    "rabbitmq_server",
    "radicale_server",
    "redis_server",
    "synapse_python",
    "synapse_server",
    "webdav_server",
    "xandikos_command",
]
