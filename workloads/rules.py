"""The rules workload: Outlook inbox rules and automatic replies into one Sieve script per
user, uploaded through ManageSieve or written beside the mail archive's Maildir.

The mapper is the Sieve mapping (`mappings.sieve.rules_to_sieve`) given what it cannot
read from the snapshot: the IMAP names the mail workload gave the folders the rules file
into (the state's mail units, read when each script is made, so a mail run before this
one is seen), and the Sieve extensions the target's server announces (none known for an
archive: the script may use them all). What the mapping could not carry exactly travels
with the payload (`attrs["findings"]`) and is what `plan` reports per user.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from ..migrator.config import Config, TargetConfig
from ..migrator.model import Blob, Item, Payload
from ..migrator.plan import Planner
from ..migrator.protocols import Target
from ..migrator.registry import OUTLOOK, Clients, build_target, outlook_rate
from ..migrator.workload import Workload

if TYPE_CHECKING:
    from ..connectors.graph.rules import FolderNames
    from ..state.store import Store

MAIL = "mail"  # the workload whose folders the rules name


class Script(Protocol):
    """What the workload reads of `mappings.sieve.SieveScript` (a frozen dataclass)."""

    @property
    def text(self) -> str: ...

    @property
    def findings(self) -> tuple[str, ...]: ...


ScriptOf = Callable[[bytes], Script]


def build(
    config: Config, target_config: TargetConfig, clients: Clients
) -> tuple[Workload, Planner]:
    from ..connectors.graph.rules import GraphRulesSource
    from .rules_plan import RulesPlanner

    target = build_target(target_config)
    names: FolderNames = partial(mail_folders, clients.store) if clients.store else _none
    # Forwards outside the tenant: only where the target's settings say (`external_forwarding`).
    forwarding = bool(getattr(getattr(target, "settings", None), "external_forwarding", False))
    script = partial(
        sieve_script,
        folder_names=names,
        extensions=partial(extensions_of, target),
        external_forwarding=forwarding,
    )
    placement = str(getattr(target, "placement", ""))
    known = names if clients.store else None
    # The extensions are read (once: the target keeps them) in a worker thread before
    # each fetch, so the mapper, which runs on the event loop, finds them known.
    prepare = partial(asyncio.to_thread, extensions_of, target)
    source = GraphRulesSource(clients.outlook, known, placement, prepare)
    mapper = partial(map_rules, script=script)
    workload = Workload("rules", source, mapper, target, budget=OUTLOOK)
    # `plan` reads no target: its findings assume a server with every extension the
    # mapping uses (`doctor` says what a server without one loses).
    planned = partial(
        sieve_script,
        folder_names=names,
        extensions=_every_extension,
        external_forwarding=forwarding,
    )
    # `plan` reads no target: its source has nothing to prepare.
    plan_source = GraphRulesSource(clients.outlook, known, placement)
    return workload, RulesPlanner(plan_source, outlook_rate(config), planned)


def map_rules(item: Item, content: bytes | Blob, *, script: ScriptOf) -> Payload:
    """The user's Sieve script as the target's payload: its UTF-8 bytes, their SHA-256 as
    the fingerprint (what `find` and `verify` compare with the server's copy), and the
    mapping's findings."""
    raw = content.read_bytes() if isinstance(content, Blob) else content
    made = script(raw)
    data = made.text.encode("utf-8")
    fingerprint = hashlib.sha256(data).hexdigest()
    return Payload(item.source_id, data, fingerprint, {"findings": list(made.findings)})


def sieve_script(
    content: bytes,
    *,
    folder_names: FolderNames,
    extensions: Callable[[], frozenset[str] | None],
    external_forwarding: bool = False,
) -> Script:
    """The Sieve mapping of one snapshot (see `connectors.graph.rules.Snapshot`)."""
    from ..mappings.sieve import rules_to_sieve

    snapshot = json.loads(content)
    upn = str(snapshot["user"]["upn"])
    script: Script = rules_to_sieve(
        snapshot,
        folder_names(upn),
        extensions=extensions(),
        external_forwarding=external_forwarding,
    )
    return script


def extensions_of(target: Target) -> frozenset[str] | None:
    """The Sieve extensions the target's server announces (ManageSieve's SIEVE capability,
    read on its first connection), None where none is known."""
    announced: Callable[[], frozenset[str] | None] | None = getattr(
        target, "server_extensions", None
    )
    return announced() if announced is not None else None


def mail_folders(store: Store, upn: str) -> Mapping[str, str]:
    """Graph folder id -> the IMAP name the mail workload wrote that folder to."""
    return store.target_folders(MAIL, upn)


def _none(upn: str) -> Mapping[str, Any]:
    return {}


def _every_extension() -> None:
    """What `rules_to_sieve` takes for "assume every extension it may use"."""
    return None
