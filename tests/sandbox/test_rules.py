"""The sandbox's inbox rules and automatic replies: what the seeded users have, the same
for a seed, served on Graph's paths, and changed by a mutation."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant, TenantSpec

from .sandbox_helpers import raw_client

SPEC = TenantSpec(seed=7, users=3, messages=12, large_messages=0, large_file_bytes=0)
# Every property of messageRulePredicates and messageRuleActions (v1.0):
# https://learn.microsoft.com/en-us/graph/api/resources/messagerulepredicates
# https://learn.microsoft.com/en-us/graph/api/resources/messageruleactions
PREDICATES = set(
    "bodyContains bodyOrSubjectContains categories fromAddresses hasAttachments headerContains "
    "importance isApprovalRequest isAutomaticForward isAutomaticReply isEncrypted "
    "isMeetingRequest isMeetingResponse isNonDeliveryReport isPermissionControlled "
    "isReadReceipt isSigned isVoicemail messageActionFlag notSentToMe recipientContains "
    "senderContains sensitivity sentCcMe sentOnlyToMe sentToAddresses sentToMe sentToOrCcMe "
    "subjectContains withinSizeRange".split()
)
ACTIONS = set(
    "assignCategories copyToFolder delete forwardAsAttachmentTo forwardTo markAsRead "
    "markImportance moveToFolder permanentDelete redirectTo stopProcessingRules".split()
)


def everything(tenant: Tenant) -> str:
    return json.dumps(
        [(tenant.rules.of(u).rules, tenant.rules.of(u).replies) for u in tenant.users],
        ensure_ascii=False,
        sort_keys=True,
    )


def folder_paths(tenant: Tenant, user_id: str) -> dict[str, tuple[str, ...]]:
    by_id = {f.id: f for f in tenant.folders(user_id)}

    def path(folder_id: str) -> tuple[str, ...]:
        folder = by_id[folder_id]
        return (
            (*path(folder.parent_id), folder.display_name)
            if folder.parent_id in by_id
            else (folder.display_name,)
        )

    return {folder_id: path(folder_id) for folder_id in by_id}


def test_the_seeded_rules_cover_every_kind_and_are_the_same_for_a_seed() -> None:
    tenant = Tenant.generate(SPEC)
    assert everything(tenant) == everything(Tenant.generate(SPEC))
    showcase, small, empty = (tenant.rules.of(u) for u in tenant.users)
    rules = showcase.rules
    used = {k for r in rules for part in ("conditions", "exceptions") for k in r.get(part, {})}
    assert used == PREDICATES
    assert {k for r in rules for k in r["actions"]} == ACTIONS
    assert any("exceptions" in r for r in rules)
    assert [r["sequence"] for r in rules] == list(range(1, len(rules) + 1))
    assert [r["displayName"] for r in rules if not r["isEnabled"]] == ["Publicités (désactivée)"]
    paths = folder_paths(tenant, tenant.users[0].id)
    named = [r["actions"].get(k) for r in rules for k in ("moveToFolder", "copyToFolder")]
    targets = [paths.get(folder_id) for folder_id in named if folder_id]
    assert ("Boîte de réception", "Factures & Devis") in targets
    assert ("Projets", "2024/2025", "Comptes rendus") in targets
    assert targets.count(None) == 1  # one rule names a folder that is gone
    replies = showcase.replies
    assert replies["status"] == "scheduled" and replies["externalAudience"] == "all"
    assert (
        replies["scheduledStartDateTime"]["dateTime"] < replies["scheduledEndDateTime"]["dateTime"]
    )
    assert "<html>" in replies["internalReplyMessage"] and "é" in replies["internalReplyMessage"]
    assert len(small.rules) == 1 and small.replies["status"] == "alwaysEnabled"
    assert small.replies["externalAudience"] == "contactsOnly"
    assert empty.rules == [] and empty.replies["status"] == "disabled"


def test_a_mutation_changes_rules_the_same_way_for_a_seed() -> None:
    tenants = Tenant.generate(SPEC), Tenant.generate(SPEC)
    results = [t.mutate(Mutation(seed=2, rule_changes=4)) for t in tenants]
    assert results[0].rules == results[1].rules and results[0].rules
    assert everything(tenants[0]) == everything(tenants[1])
    assert everything(tenants[0]) != everything(Tenant.generate(SPEC))
    untouched = Tenant.generate(SPEC)
    assert untouched.mutate(Mutation(seed=2, new=1)).rules == []
    assert everything(untouched) == everything(Tenant.generate(SPEC))


@pytest.fixture(scope="module")
def graph() -> Any:
    with SandboxServer(Tenant.generate(SPEC), tls=False, limits=Limits(enabled=False)) as sb:
        with raw_client(sb) as client:
            yield sb, client


def test_rules_and_settings_are_served_on_graph_paths(graph: Any) -> None:
    sb, client = graph
    user = sb.tenant.users[0]
    inbox = sb.tenant.folder(user.id, "inbox").id
    listed = client.get(f"users/{user.upn}/mailFolders/inbox/messageRules").json()["value"]
    assert listed == sb.tenant.rules.of(user).rules
    by_id = client.get(f"users/{user.id}/mailFolders/{inbox}/messageRules").json()["value"]
    assert by_id == listed
    one = client.get(f"users/{user.upn}/mailFolders/inbox/messageRules/{listed[1]['id']}")
    assert one.json()["displayName"] == listed[1]["displayName"]
    settings = client.get(
        f"users/{user.upn}/mailboxSettings", params={"$select": "automaticRepliesSetting,timeZone"}
    ).json()
    assert set(settings) == {"@odata.context", "automaticRepliesSetting", "timeZone"}
    assert settings["timeZone"] == "Romance Standard Time"
    replies = client.get(f"users/{user.upn}/mailboxSettings/automaticRepliesSetting").json()
    assert replies["status"] == "scheduled"
    assert settings["automaticRepliesSetting"] == {k: v for k, v in replies.items() if k[0] != "@"}


@pytest.mark.parametrize(
    "path, status",
    [
        ("users/{upn}/mailFolders/sentitems/messageRules", 404),
        ("users/{upn}/mailFolders/inbox/messageRules/AQAAAnone=", 404),
        ("users/nobody@contoso.test/mailboxSettings", 404),
    ],
)
def test_what_graph_refuses_is_refused(graph: Any, path: str, status: int) -> None:
    sb, client = graph
    response: httpx.Response = client.get(path.format(upn=sb.tenant.users[0].upn))
    assert response.status_code == status
    assert response.json()["error"]["code"]


def test_the_rules_count_against_the_mailbox(graph: Any) -> None:
    sb, client = graph
    upn = sb.tenant.users[1].upn
    before = sb.stats()["by_mailbox"].get(upn.lower(), {}).get("requests", 0)
    client.get(f"users/{upn}/mailFolders/inbox/messageRules")
    client.get(f"users/{upn}/mailboxSettings")
    assert sb.stats()["by_mailbox"][upn.lower()]["requests"] == before + 2
