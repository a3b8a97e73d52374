"""Microsoft's clouds: each Graph root with the sign-in host that issues its tokens.

From "Microsoft Graph national cloud deployments"
(https://learn.microsoft.com/en-us/graph/deployments): the global service signs in at
login.microsoftonline.com; US Government L4 (graph.microsoft.us) and L5 (DOD,
dod-graph.microsoft.us) at login.microsoftonline.us; the China cloud operated by
21Vianet (microsoftgraph.chinacloudapi.cn) at login.chinacloudapi.cn. A token for a
national cloud names that cloud's Graph in its `.default` scope
(https://learn.microsoft.com/en-us/graph/sdks/national-clouds, "Permission scopes").
"""

from __future__ import annotations

from urllib.parse import urlsplit

GLOBAL_GRAPH_HOST = "graph.microsoft.com"
SIGN_IN_HOSTS = {
    GLOBAL_GRAPH_HOST: "login.microsoftonline.com",
    "graph.microsoft.us": "login.microsoftonline.us",
    "dod-graph.microsoft.us": "login.microsoftonline.us",
    "microsoftgraph.chinacloudapi.cn": "login.chinacloudapi.cn",
}


def token_scope(graph_url: str) -> str:
    """`.default` of the cloud `graph_url` belongs to; the global Graph's for any other host
    (the sandbox answers as the global service)."""
    host = _host(graph_url)
    return f"https://{host if host in SIGN_IN_HOSTS else GLOBAL_GRAPH_HOST}/.default"


def sign_in_host(graph_url: str) -> str | None:
    """The sign-in host of the cloud `graph_url` belongs to; None for any other host."""
    return SIGN_IN_HOSTS.get(_host(graph_url))


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
