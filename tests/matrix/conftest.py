"""Matrix targets on the session's Synapse: an application service and a Tchap-style bot."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from hirondelle.connectors.matrix import MatrixSettings, MatrixTarget
from hirondelle.mappings.chat_members import ChatInfo
from hirondelle.tests.servers import SYNAPSE_AS_TOKEN, MatrixAccount, SynapseServer

AS_TOKEN_ENV = "HIRONDELLE_TEST_MATRIX_AS_TOKEN"

MakeTarget = Callable[..., MatrixTarget]


@pytest.fixture
def appservice_target(
    synapse: SynapseServer, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., MatrixTarget]:
    """Build application-service targets whose aliases no other test uses."""
    monkeypatch.setenv(AS_TOKEN_ENV, SYNAPSE_AS_TOKEN)
    prefix = f"m365_{uuid.uuid4().hex[:8]}_"  # inside the registration's alias namespace

    def make(
        *,
        chats: Mapping[str, ChatInfo] | None = None,
        users: Mapping[str, str] | None = None,
        **options: Any,
    ) -> MatrixTarget:
        settings = MatrixSettings(
            synapse.url,
            synapse.server_name,
            as_token_env=AS_TOKEN_ENV,
            room_alias_prefix=prefix,
            **options,
        )
        return MatrixTarget(settings, chats=chats, users=users)

    return make


@pytest.fixture
def bot_account(synapse: SynapseServer) -> MatrixAccount:
    return synapse.new_user()


@pytest.fixture
def bot_target(
    synapse: SynapseServer, bot_account: MatrixAccount, tmp_path: Path
) -> Callable[..., MatrixTarget]:
    """Build bot-mode targets (one ordinary account, its token in a file)."""
    token_file = tmp_path / "bot-token"
    token_file.write_text(bot_account.access_token + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    prefix = f"bot{uuid.uuid4().hex[:8]}_"

    def make(
        *,
        chats: Mapping[str, ChatInfo] | None = None,
        users: Mapping[str, str] | None = None,
        **options: Any,
    ) -> MatrixTarget:
        settings = MatrixSettings(
            synapse.url,
            synapse.server_name,
            mode="bot",
            access_token_file=token_file,
            room_alias_prefix=prefix,
            **{"bot_rate": 1000.0, **options},
        )
        return MatrixTarget(settings, chats=chats, users=users)

    return make
