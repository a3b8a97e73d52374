"""The rules source through the real client against the sandbox: the snapshot, its
version, what a pass costs, and a user with nothing to carry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from hirondelle.connectors.graph.budget import MailboxBudget
from hirondelle.connectors.graph.client import GraphClient
from hirondelle.connectors.graph.rules import (
    ITEM_ID,
    GraphRulesSource,
    container_of,
    tenant_domains,
)
from hirondelle.mappings.sieve import rules_to_sieve
from hirondelle.migrator.errors import SkipItem
from hirondelle.migrator.model import Item, Page
from hirondelle.sandbox import tenant as tenant_module

from .conftest import run, sandbox_with_secret
from .test_sandbox_mail import SECRET_ENV, settings_for

SPEC = tenant_module.TenantSpec(seed=7, users=3, messages=12, large_messages=0)


@pytest.fixture(scope="module")
def sb() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch, sandbox_with_secret(patch, SPEC, SECRET_ENV) as sb:
        yield sb


def source(sb: Any) -> GraphRulesSource:
    return GraphRulesSource(GraphClient(settings_for(sb), MailboxBudget(), mailboxes=2))


async def one_pass(sb: Any, upn: str) -> tuple[Page, bytes | None, int]:
    """One `changes` of the user's container (and `fetch` of its item), with the
    number of requests the sandbox counted for the user's mailbox in that pass."""
    rules = source(sb)
    try:
        await rules.owners()  # the directory, read once (tenant lane)
        before = _mailbox_requests(sb, upn)
        pages = [page async for page in rules.changes(container_of(upn), None)]
        content = (
            await rules.fetch(container_of(upn), pages[0].items[0]) if pages[0].items else None
        )
        return pages[0], content, _mailbox_requests(sb, upn) - before
    finally:
        await rules.aclose()


def _mailbox_requests(sb: Any, upn: str) -> int:
    return int(sb.stats()["by_mailbox"].get(upn.lower(), {}).get("requests", 0))


def test_the_snapshot_holds_rules_replies_and_the_named_folders(sb: Any) -> None:
    user = sb.tenant.users[0]
    page, content, _ = one_pass_run(sb, user.upn)
    assert [item.source_id for item in page.items] == [ITEM_ID] and not page.removed
    assert content is not None
    snapshot = json.loads(content)
    assert snapshot["user"] == {
        "id": user.id, "upn": user.upn, "mail": user.mail, "displayName": user.display_name,
        "proxyAddresses": [f"SMTP:{user.mail}"],
    }  # fmt: skip
    assert snapshot["domains"] == ["contoso.test"]
    assert snapshot["timeZone"] == "Romance Standard Time"
    served = sb.tenant.rules.of(user)
    assert snapshot["rules"] == served.rules  # as Graph returns them, in Graph's order
    assert snapshot["automaticRepliesSetting"]["status"] == "scheduled"
    folders = snapshot["folders"]
    invoices = served.rules[0]["actions"]["moveToFolder"]
    assert folders[invoices] == {
        "path": ["Boîte de réception", "Factures & Devis"], "roles": ["inbox", None],
    }  # fmt: skip
    minutes = served.rules[2]["actions"]["moveToFolder"]
    assert folders[minutes]["path"] == ["Projets", "2024/2025", "Comptes rendus"]
    gone = served.rules[-1]["actions"]["moveToFolder"]
    assert gone not in folders  # a rule naming a folder that no longer exists
    assert page.delta_link == "rules:" + page.items[0].version  # the cursor: the version read


def test_a_user_with_nothing_to_carry_has_no_item_and_costs_two_requests(sb: Any) -> None:
    user = sb.tenant.users[2]
    page, content, requests = one_pass_run(sb, user.upn)
    assert page.items == () and page.removed == () and content is None
    assert page.delta_link == "rules:none"
    assert requests == 2  # messageRules and mailboxSettings
    # The removal is said once, after a pass that listed the item, never again.
    for cursor, removed in (("rules:0123abcd", (ITEM_ID,)), ("rules:none", ())):
        (again,) = run(pages(sb, user.upn, cursor))
        assert again.removed == removed and again.delta_link == "rules:none"


async def pages(sb: Any, upn: str, cursor: str) -> list[Page]:
    rules = source(sb)
    try:
        return [page async for page in rules.changes(container_of(upn), cursor)]
    finally:
        await rules.aclose()


def test_the_version_follows_the_rules_and_nothing_else(sb: Any) -> None:
    first, second = sb.tenant.users[0], sb.tenant.users[1]
    before = {u.upn: one_pass_run(sb, u.upn) for u in (first, second)}
    again = one_pass_run(sb, first.upn)
    assert again[0].items[0].version == before[first.upn][0].items[0].version
    assert again[1] == before[first.upn][1]  # the same bytes for the same state
    # Rules and settings, the 14 well-known names, then the named folders level by level:
    # the 4 named (one gone), Deleted Items (a rule deletes) and the root, their parents
    # (inbox, 2024/2025), then Projets.
    assert before[first.upn][2] == 2 + 14 + 6 + 2 + 1
    assert before[second.upn][2] == 2 + 14 + 2  # one top-level folder and the root
    changed = sb.mutate(tenant_module.Mutation(seed=3, rule_changes=1, user=second.upn))
    assert changed.rules == [second.id]
    after = {u.upn: one_pass_run(sb, u.upn) for u in (first, second)}
    assert after[first.upn][0].items[0].version == before[first.upn][0].items[0].version
    assert after[second.upn][0].items[0].version != before[second.upn][0].items[0].version


def test_the_version_follows_the_names_the_mail_workload_gave_the_named_folders(
    sb: Any,
) -> None:
    user = sb.tenant.users[0]
    invoices = sb.tenant.rules.of(user).rules[0]["actions"]["moveToFolder"]
    names: dict[str, str] = {}

    async def version() -> str:
        rules = GraphRulesSource(
            GraphClient(settings_for(sb), MailboxBudget(), mailboxes=1), lambda upn: names
        )
        try:
            (item,) = await rules.listing(container_of(user.upn))
            content = await rules.fetch(container_of(user.upn), item)
            assert json.loads(content)["user"]["upn"] == user.upn  # the kept snapshot
            return item.version
        finally:
            await rules.aclose()

    before = run(version())
    names["some folder no rule names"] = "Ailleurs"
    assert run(version()) == before
    names[invoices] = "INBOX/Factures & Devis"  # the mail workload wrote the folder
    written = run(version())
    assert written != before
    names[invoices] = "INBOX/Factures et devis"  # and renamed it on the target
    assert run(version()) not in (before, written)


def test_fetch_of_a_user_whose_rules_went_away_is_a_skip(sb: Any) -> None:
    user = sb.tenant.users[2]
    rules = source(sb)

    async def fetch() -> bytes:
        try:
            return await rules.fetch(container_of(user.upn), Item(ITEM_ID, "old"))
        finally:
            await rules.aclose()

    with pytest.raises(SkipItem, match=user.upn):
        run(fetch())


def one_pass_run(sb: Any, upn: str) -> tuple[Page, bytes | None, int]:
    return run(one_pass(sb, upn))


def test_aliases_reach_the_snapshot_and_the_automatic_reply(sb: Any) -> None:
    """`proxyAddresses` is selected with the users: an alias is one of the user's own
    addresses for "sent to me" and the automatic reply's `:addresses`."""
    user = sb.tenant.users[0]
    user.aliases = ("alias.sales@contoso.test",)
    try:
        _, content, _ = one_pass_run(sb, user.upn)
    finally:
        user.aliases = ()
    assert content is not None
    snapshot = json.loads(content)
    assert "smtp:alias.sales@contoso.test" in snapshot["user"]["proxyAddresses"]
    text = rules_to_sieve(snapshot, {}).text
    assert '"alias.sales@contoso.test"' in text.split(":addresses", 1)[1].split("\n", 1)[0]


def test_a_guests_outside_domain_is_not_the_tenants() -> None:
    """A guest's address is in another organisation's domain: counting it as the tenant's
    would send the internal automatic reply to everyone at gmail.com."""
    entries = [
        {"userPrincipalName": "ana@contoso.test", "mail": "ana@contoso.fr", "userType": "Member"},
        {
            "userPrincipalName": "bob_gmail.com#EXT#@contoso.onmicrosoft.com",
            "mail": "bob@gmail.com",
        },
        {"userPrincipalName": "eve@partner.test", "mail": "eve@outlook.com", "userType": "Guest"},
    ]
    assert tenant_domains(entries) == ["contoso.fr", "contoso.test"]


def test_a_lone_surrogate_from_graph_becomes_a_replacement_character(sb: Any) -> None:
    """JSON may carry `\\ud800` alone, which no UTF-8 can: the snapshot, and the script
    made from it, hold U+FFFD there instead of failing with a traceback."""
    user = sb.tenant.users[1]
    rule = sb.tenant.rules.of(user).rules[0]
    name = rule["displayName"]
    rule["displayName"] = "bad \ud800 name"
    try:
        _, content, _ = one_pass_run(sb, user.upn)
    finally:
        rule["displayName"] = name
    assert content is not None
    snapshot = json.loads(content)
    assert snapshot["rules"][0]["displayName"] == "bad \ufffd name"
    assert "bad \ufffd name" in rules_to_sieve(snapshot, {}).text


def test_a_rule_that_deletes_brings_the_deleted_items_folder(sb: Any) -> None:
    """Outlook's `delete` moves to Deleted Items: the snapshot names that folder, so the
    script files into the mailbox the mail workload gave it, not a guessed "Trash"."""
    user = sb.tenant.users[0]
    assert any((r.get("actions") or {}).get("delete") for r in sb.tenant.rules.of(user).rules)
    _, content, _ = one_pass_run(sb, user.upn)
    assert content is not None
    snapshot = json.loads(content)
    [(trash, place)] = [
        (i, p) for i, p in snapshot["folders"].items() if p["roles"][-1] == "deleteditems"
    ]
    script = rules_to_sieve(snapshot, {trash: "Corbeille"})
    assert 'fileinto :create "Corbeille";' in script.text
    assert not any("Deleted Items folder is not known" in f for f in script.findings)
