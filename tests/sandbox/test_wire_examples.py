"""The sandbox's JSON has the keys and types of Microsoft's documented response examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sandbox_helpers import raw_client

from hirondelle.sandbox.server import SandboxServer

EXAMPLES = json.loads((Path(__file__).parent / "data" / "graph_examples.json").read_text())


def assert_same_shape(ours: Any, documented: Any, where: str = "$") -> None:
    """Same keys at every level; same JSON type wherever both sides are not null."""
    if isinstance(documented, dict):
        assert isinstance(ours, dict), where
        assert set(ours) == set(documented), f"{where}: {set(ours) ^ set(documented)}"
        for key, value in documented.items():
            assert_same_shape(ours[key], value, f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(ours, list), where
        for item in ours[:1]:
            if documented:
                assert_same_shape(item, documented[0], f"{where}[0]")
    elif ours is not None and documented is not None:
        assert type(ours) is type(documented), f"{where}: {type(ours)} vs {type(documented)}"


def test_user_matches_documented_example(sb: SandboxServer) -> None:
    with raw_client(sb) as client:
        upn = sb.tenant.users[0].upn
        user = client.get(f"users/{upn}").json()
    user.pop("@odata.context")
    assert_same_shape(user, EXAMPLES["user"])
    assert user["userPrincipalName"] == upn


def test_mail_folders_match_documented_example(sb: SandboxServer) -> None:
    user_id = sb.tenant.users[0].id
    with raw_client(sb) as client:
        folders = client.get(f"users/{user_id}/mailFolders").json()
    assert folders["@odata.context"].endswith(f"$metadata#users('{user_id}')/mailFolders")
    for folder in folders["value"]:
        assert isinstance(folder.pop("sizeInBytes"), int)  # a v1.0 property the example omits
        assert_same_shape(folder, EXAMPLES["mailFolders"]["value"][0])


def test_message_matches_documented_example(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]
    inbox = sb.tenant.folder(user.id, "inbox")
    message_id = sb.tenant.messages(user.id, inbox.id)[0].id
    with raw_client(sb) as client:
        message = client.get(f"users/{user.upn}/messages/{message_id}").json()
    assert message["@odata.context"].endswith("/messages/$entity")
    assert_same_shape(message, EXAMPLES["message"])
    assert message["@odata.etag"] == f'W/"{message["changeKey"]}"'
