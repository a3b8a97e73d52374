"""`hirondelle init`: the commented configuration and the users CSV template."""

from __future__ import annotations

from pathlib import Path

from ..workloads import WORKLOADS, load
from .errors import ConfigError

HEADER = """\
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
# graph_url = "https://graph.microsoft.com/v1.0"  # or a national cloud's Graph root
# authority = "login.microsoftonline.com"      # default: the sign-in host of graph_url's cloud
# ca_file = ""                                 # an extra CA bundle to trust
# Graph's Outlook limits per mailbox (lower them if other tools share the app's budget):
# concurrency = 4
# requests_per_window = 10000
# window_seconds = 600

[state]
url = "sqlite:///state/hirondelle.sqlite"      # or postgresql+psycopg://user@host/db
                                               # (password: PGPASSWORD or ~/.pgpass)
audit_dir = "audit"                            # one JSON-lines audit log per run

# [security]
# readable_secret_files = "refuse"             # "warn": accept secret files others can read

[users]
file = "users.csv"                             # source_upn,target_login; team:<name>, site:<name>
                                               # rows select teams and sites; remove to take all

[run]
# workers = 4                                  # worker processes (default: the core count)
owner_concurrency = 8                          # owners each worker process moves at once
# lease_seconds = 60                           # a lost worker's owners are taken over after this
# target_wait_seconds = 300                    # an unreachable target is waited for this long
fetch_concurrency = 4                          # items downloaded ahead per folder
target_sessions = 1                            # target connections per owner at once
deletions = "mirror"                           # sync: "mirror" deletions or "keep" them
# chat_reread_pages = 20                       # Teams: pages of 50 threads each sync reads
                                               # again, in turns (0: every thread, every sync)

# Several machines: hirondelle worker on each, the state in PostgreSQL (pip install '.[cluster]').
# [cluster]
# broker_url = "redis://mq.example.org:6379/0" # or "amqp://hirondelle@mq.example.org:5672//"
# broker_password_file = "broker-password"

"""
# Each target's table, as its workload declares it (`workloads`), in the order declared.
CONFIG_TEMPLATE = HEADER + "\n".join(
    target.template for workload in WORKLOADS for target in workload.targets if target.template
)

USERS_TEMPLATE = """\
source_upn,target_login
# alice@contoso.onmicrosoft.com,alice@example.org
"""


def write_templates(
    directory: Path, force: bool = False, server_name: str = "example.org"
) -> list[Path]:
    """Write hirondelle.toml, users.csv, and the files targets write beside them (the
    Matrix application service registration with a fresh token, readable by its owner
    only) into `directory`; never overwrite unless forced."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        directory / "hirondelle.toml": CONFIG_TEMPLATE.replace("{server_name}", server_name),
        directory / "users.csv": USERS_TEMPLATE,
    }
    secret: dict[Path, str] = {}
    for workload in WORKLOADS:
        for target in workload.targets:
            if target.init_files:
                secret.update(load(target.init_files)(directory, server_name))
    files.update(secret)
    for path in files:
        if path.exists() and not force:
            raise ConfigError(str(path), "already exists (use --force to overwrite)")
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    for path in secret:
        path.chmod(0o600)
    return list(files)
