"""The rules workload's mapper: a snapshot mapped with the mail workload's folder names
from the state and the target's extensions, into a payload whose fingerprint is the
script's SHA-256 and whose attributes carry the mapping's findings."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import pytest

from hirondelle.migrator.model import Container, Item
from hirondelle.state.store import Store, open_store
from hirondelle.workloads.rules import extensions_of, mail_folders, map_rules, sieve_script

UPN = "alice@contoso.test"
SNAPSHOT = {
    "user": {"id": "u1", "upn": UPN, "mail": UPN, "displayName": "Alice Martin"},
    "domains": ["contoso.test"],
    "rules": [
        {
            "id": "r1",
            "displayName": "Factures",
            "sequence": 1,
            "isEnabled": True,
            "conditions": {"subjectContains": ["Facture"]},
            "actions": {"moveToFolder": "F1", "stopProcessingRules": True},
        }
    ],
    "automaticRepliesSetting": {"status": "disabled"},
    "timeZone": "Romance Standard Time",
    "folders": {"F1": {"path": ["Boîte de réception", "Factures"], "roles": ["inbox", None]}},
}


@dataclass(frozen=True)
class Said:
    text: str
    findings: tuple[str, ...]


@pytest.fixture
def store(tmp_path: object) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/state.sqlite")
    yield opened
    opened.engine.dispose()


def test_the_payload_is_the_scripts_bytes_its_sha256_and_its_findings() -> None:
    text = '# Alice\r\nrequire "fileinto";\r\nfileinto "Été";\r\n'
    payload = map_rules(
        Item("rules", "v1"), b"{}", script=lambda content: Said(text, ("one", "two"))
    )
    assert payload.source_id == "rules" and payload.content == text.encode("utf-8")
    assert payload.fingerprint == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert payload.attrs == {"findings": ["one", "two"]}


def test_the_targets_extensions_are_asked_of_it_and_none_known_without() -> None:
    class Announcing:
        def server_extensions(self) -> frozenset[str] | None:
            return frozenset({"fileinto"})

    assert extensions_of(Announcing()) == frozenset({"fileinto"})  # type: ignore[arg-type]  # a target that only announces
    assert extensions_of(object()) is None  # type: ignore[arg-type]  # a target without extensions


def test_the_mail_workloads_folder_names_come_from_the_state(store: Store) -> None:
    unit = store.unit_for(Container("mail", UPN, "F1", ("Boîte de réception", "Factures")))
    store.set_unit(unit.id, target_folder="INBOX/Factures (migrées)")
    store.unit_for(Container("mail", UPN, "F2", ("Archive",)))  # not written yet: no name
    assert mail_folders(store, UPN) == {"F1": "INBOX/Factures (migrées)"}
    # What the Sieve mapping makes of them (after the merge of the mapping's branch).
    script = sieve_script(
        json.dumps(SNAPSHOT).encode("utf-8"),
        folder_names=partial(mail_folders, store),
        extensions=lambda: None,
    )
    assert '"INBOX/Factures (migrées)"' in script.text
