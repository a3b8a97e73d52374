"""The rules planner: each user's snapshot read once (through the real source, on the
sandbox), counted, estimated, summarised, and every sentence the mapping says about it
reported as that user's finding; a user with nothing to carry is said to have none."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hirondelle.connectors.graph.budget import MailboxBudget
from hirondelle.connectors.graph.client import GraphClient
from hirondelle.connectors.graph.rules import GraphRulesSource, container_of
from hirondelle.migrator.model import Owner
from hirondelle.migrator.plan import Finding
from hirondelle.sandbox import tenant as tenant_module
from hirondelle.tests.graph.conftest import sandbox_with_secret
from hirondelle.tests.graph.test_sandbox_mail import SECRET_ENV, settings_for
from hirondelle.workloads.rules_plan import RulesPlanner

SPEC = tenant_module.TenantSpec(seed=7, users=3, messages=6, large_messages=0)


@dataclass(frozen=True)
class Said:
    """What the planner reads of a Sieve script: its findings."""

    text: str
    findings: tuple[str, ...]


def disabled_rules(content: bytes) -> Said:
    """The mapping's part the planner relies on: one sentence per thing not carried."""
    rules = json.loads(content)["rules"]
    return Said(
        "", tuple(f"rule {r['displayName']!r}: disabled" for r in rules if not r["isEnabled"])
    )


@pytest.fixture(scope="module")
def sb() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch, sandbox_with_secret(patch, SPEC, SECRET_ENV) as sb:
        yield sb


async def assess(sb: Any, index: int) -> tuple[int, int, list[Finding], int]:
    """count, requests, findings of one user, and the requests the sandbox counted."""
    source = GraphRulesSource(GraphClient(settings_for(sb), MailboxBudget(), mailboxes=1))
    planner = RulesPlanner(source, 10.0, disabled_rules)
    user = sb.tenant.users[index]
    owner, container = Owner(user.upn, user.id), container_of(user.upn)
    try:
        await source.owners()
        before = sb.stats()["by_mailbox"].get(user.upn.lower(), {}).get("requests", 0)
        count = await planner.count(container)
        requests = planner.requests(container)
        found = await planner.findings(owner, [container], deep=False)
        planner.forget(container)
        spent = sb.stats()["by_mailbox"][user.upn.lower()]["requests"] - before
        return count, requests, found, spent
    finally:
        await source.aclose()


def test_every_finding_of_the_mapping_is_a_finding_of_the_user(sb: Any) -> None:
    count, requests, found, spent = asyncio.run(assess(sb, 0))
    assert count == 1
    assert requests == spent  # the estimate is what reading the user cost
    upn = sb.tenant.users[0].upn
    assert found == [
        Finding(
            "info", "rules", upn, "Sieve", "11 rules (10 enabled), automatic replies scheduled"
        ),
        Finding("warning", "rule", upn, "Sieve", "rule 'Publicités (désactivée)': disabled"),
    ]


def test_a_user_with_nothing_to_carry_is_said_so(sb: Any) -> None:
    count, requests, found, spent = asyncio.run(assess(sb, 2))
    assert (count, requests, spent) == (0, 2, 2)
    assert [(f.severity, f.detail) for f in found] == [
        ("info", "no inbox rule and automatic replies off: nothing to carry, no script")
    ]
