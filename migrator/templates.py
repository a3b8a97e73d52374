"""`hirondelle init`: the commented configuration and the users CSV template."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

CONFIG_TEMPLATE = """\
# Hirondelle configuration. Relative paths are relative to this file's folder.
# Secrets never go in this file: name an environment variable or a file instead.

[source]
# The Entra ID (Azure AD) tenant and the application registered for the migration.
tenant_id = "00000000-0000-0000-0000-000000000000"
client_id = "00000000-0000-0000-0000-000000000000"
# Exactly one of these three:
certificate_file = "hirondelle-app.pem"        # PEM with the certificate and its private key
# certificate_password_env = "HIRONDELLE_CERT_PASSWORD"
# client_secret_env = "HIRONDELLE_CLIENT_SECRET"  # name of the environment variable
# client_secret_file = "client-secret.txt"
# graph_url = "https://graph.microsoft.com/v1.0"
# authority = "login.microsoftonline.com"      # a national cloud's login host
# ca_file = ""                                 # an extra CA bundle to trust
# Graph's Outlook limits per mailbox (lower them if other tools share the app's budget):
# concurrency = 4
# requests_per_window = 10000
# window_seconds = 600

[state]
url = "sqlite:///state/hirondelle.sqlite"      # or postgresql+psycopg://host/db
audit_dir = "audit"                            # one JSON-lines audit log per run
# lock_file = "state/hirondelle.lock"

[users]
file = "users.csv"                             # source_upn,target_login; remove to take all users

[run]
owner_concurrency = 8                          # mailboxes moved at once
fetch_concurrency = 4                          # messages downloaded ahead per folder
deletions = "mirror"                           # sync: "mirror" deletions or "keep" them

[targets.mail]
kind = "imap"                                  # or "archive" (Maildir + mbox files)
host = "imap.example.org"
port = 993
security = "tls"                               # "tls", "starttls", or "plain" (loopback only)
# ca_file = ""                                 # the server's CA if not a public one
# Either one password per user (lines login:password, file readable by you only) ...
password_file = "imap-passwords.txt"
# ... or a master user (Dovecot's user*master login):
# master_user = "admin"
# master_password_env = "HIRONDELLE_IMAP_MASTER_PASSWORD"

# [targets.mail]
# kind = "archive"
# path = "archive"
"""

USERS_TEMPLATE = """\
source_upn,target_login
# alice@contoso.onmicrosoft.com,alice@example.org
"""


def write_templates(directory: Path, force: bool = False) -> list[Path]:
    """Write hirondelle.toml and users.csv into `directory`; refuse to overwrite unless forced."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        directory / "hirondelle.toml": CONFIG_TEMPLATE,
        directory / "users.csv": USERS_TEMPLATE,
    }
    for path in files:
        if path.exists() and not force:
            raise ConfigError(str(path), "already exists (use --force to overwrite)")
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)
