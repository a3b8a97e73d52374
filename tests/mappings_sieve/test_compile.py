"""Every script the mapping writes compiles with Pigeonhole's `sievec`, and the strings it
writes reach the compiled program unchanged (read back with `sieve-dump`)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hirondelle.mappings.sieve import SCRIPT_EXTENSIONS, rules_to_sieve
from hirondelle.tests.mappings_sieve.sievec import compile_scripts, sievec
from hirondelle.tests.mappings_sieve.snapshots import (
    AUTOMATIC_REPLIES,
    FOLDER_NAMES,
    SNAPSHOT,
    snapshot,
)

HOSTILE = [
    'guillemets "doubles"',
    'anti\\slash \\\\ et \\"',
    "émoji 🐦 et 中文",
    "tab\tici",
    "text:",
    "#pas un commentaire",
    "/* ni ceci */",
    "fin de chaîne ; ] }",
    ".",
    "ligne\nsuivante",
]


def variants() -> dict[str, str]:
    """Scripts for the sample under the servers and settings the mapping distinguishes."""
    replies = dict(AUTOMATIC_REPLIES)
    cases: dict[str, tuple[dict[str, Any], frozenset[str] | None]] = {
        "sample": (SNAPSHOT, None),
        "special-use": (SNAPSHOT, SCRIPT_EXTENSIONS | {"special-use"}),
        "no-extension": (SNAPSHOT, frozenset()),
        "fileinto-only": (SNAPSHOT, frozenset({"fileinto"})),
        "no-variables-no-envelope": (SNAPSHOT, SCRIPT_EXTENSIONS - {"variables", "envelope"}),
        "always-on-contacts": (
            snapshot(
                automaticRepliesSetting={
                    **replies,
                    "status": "alwaysEnabled",
                    "externalAudience": "contactsOnly",
                }
            ),
            None,
        ),
        "external-only": (
            snapshot(
                automaticRepliesSetting={
                    **replies,
                    "internalReplyMessage": "",
                    "externalAudience": "all",
                }
            ),
            None,
        ),
        "no-domains": (snapshot(domains=[]), None),
        "no-address": (snapshot(user={"displayName": "Sans adresse"}, domains=[]), None),
        "empty": ({}, None),
    }
    return {
        name: rules_to_sieve(snap, FOLDER_NAMES, extensions=extensions).text
        for name, (snap, extensions) in cases.items()
    }


def test_every_variant_of_the_sample_compiles() -> None:
    compile_scripts(variants())


def test_importance_changes_compile_where_the_server_enables_editheader() -> None:
    script = rules_to_sieve(SNAPSHOT, FOLDER_NAMES, extensions=SCRIPT_EXTENSIONS | {"editheader"})
    assert 'addheader "Importance" "high";' in script.text
    compile_scripts({"editheader": script.text}, enable="editheader")


def test_hostile_strings_reach_the_compiled_program_unchanged() -> None:
    names = {f"id-{n}": f"Dossier/{value}" for n, value in enumerate(HOSTILE)}
    rules = [
        {
            "sequence": n,
            "conditions": {"subjectContains": [value]},
            "actions": {"moveToFolder": f"id-{n}"},
        }
        for n, value in enumerate(HOSTILE)
    ]
    script = rules_to_sieve(snapshot(rules=rules, automaticRepliesSetting={}), names)
    with tempfile.TemporaryDirectory(prefix="sievec-") as folder:
        source, binary = Path(folder) / "s.sieve", Path(folder) / "s.svbin"
        (Path(folder) / "e.conf").write_text("", encoding="utf-8")
        source.write_bytes(script.text.encode("utf-8"))
        subprocess.run([sievec(), "-c", f"{folder}/e.conf", str(source), str(binary)], check=True)
        dump_tool = shutil.which("sieve-dump")
        assert dump_tool, "sieve-dump is not installed: apt-get install dovecot-sieve"
        dump = subprocess.run(
            [dump_tool, "-c", f"{folder}/e.conf", str(binary)], capture_output=True, check=True
        ).stdout.decode("utf-8")
    for value in HOSTILE:
        stored = value.replace("\n", "\r\n")  # a line end in a string is CRLF (RFC 5228 8.1)
        for string in (stored, f"Dossier/{stored}"):
            shown = "".join("?" if c in "\t\r\n" else c for c in string)  # as sieve-dump shows them
            assert f'STR[{len(string.encode())}] "{shown}"' in dump, string


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=3),
    folder=st.text(min_size=1, max_size=12),
    reply=st.text(max_size=40),
    name=st.text(max_size=12),
)
def test_any_text_gives_a_script_that_compiles(
    words: list[str], folder: str, reply: str, name: str
) -> None:
    rules = [
        {
            "displayName": name,
            "sequence": 1,
            "conditions": {"subjectContains": words, "senderContains": words},
            "exceptions": {"bodyContains": words},
            "actions": {"moveToFolder": "f", "assignCategories": words},
        }
    ]
    setting = {
        **AUTOMATIC_REPLIES,
        "status": "alwaysEnabled",
        "internalReplyMessage": reply,
        "externalReplyMessage": f"<p>{reply}</p>",
        "externalAudience": "all",
    }
    script = rules_to_sieve(snapshot(rules=rules, automaticRepliesSetting=setting), {"f": folder})
    compile_scripts({"generated": script.text})
