"""Which owners a run takes: the users file, read strictly, and the owners it selects.

A row is `source_upn,target_login` for a user (an empty login means the UPN), or
`team:<name or id>` / `site:<name or id>` for a team or a SharePoint site, `team:*` and
`site:*` for all of them. Every mistake that would merge, drop or mix people is an error
naming its line: a repeated row, two users sent to one target login, a malformed row,
and (once the tenant is listed) a row that matches nobody.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .model import Owner
from .workload import RunOptions, Workload

log = logging.getLogger(__name__)
PREFIXES = ("team:", "site:")  # owners that are not users (see the Graph sources)
HEADERS = ("source_upn", "upn", "source")


@dataclass(frozen=True)
class UsersFile:
    """The rows of a users file: key (lowercased UPN, `team:x`, `site:x`) -> login, line."""

    path: Path
    logins: Mapping[str, str]
    lines: Mapping[str, int]

    def where(self, key: str) -> str:
        return f"{self.path} line {self.lines.get(key, '?')}"


def read_users(path: Path) -> UsersFile:
    """Read and check the users file; `ConfigError` naming the line of the first mistake."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError("users.file", f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError("users.file", f"{path} is not UTF-8 text") from None
    logins: dict[str, str] = {}
    lines: dict[str, int] = {}
    by_login: dict[str, int] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and cells[0].lower() in HEADERS:
            continue
        where = f"{path} line {number}"
        key = cells[0].lower()
        if key.startswith(PREFIXES):
            if len(cells) > 2 or not key.partition(":")[2].strip():
                raise ConfigError("users.file", f"{where}: expected team:<name> or site:<name>")
            login = cells[1] if len(cells) > 1 else ""
        else:
            if len(cells) != 2 or "@" not in key or any(c.isspace() for c in key):
                raise ConfigError(
                    "users.file", f"{where}: expected source_upn,target_login, not {row!r}"
                )
            login = cells[1]
        if key in lines:
            raise ConfigError("users.file", f"{where}: {cells[0]} is already on line {lines[key]}")
        if not key.startswith(PREFIXES):
            effective = (login or key).lower()
            if effective in by_login:
                raise ConfigError(
                    "users.file",
                    f"{where}: target login {login or cells[0]} is already the target of "
                    f"line {by_login[effective]}; two users would be merged into one account",
                )
            by_login[effective] = number
        logins[key], lines[key] = login, number
    if not logins:
        raise ConfigError("users.file", f"{path} lists no users (remove [users] to take all)")
    return UsersFile(path, logins, lines)


def selected(owner: Owner, wanted: Collection[str] | None) -> bool:
    """Whether the users file takes this owner (every owner when there is no file)."""
    if wanted is None:
        return True
    upn = owner.upn.lower()
    for prefix in PREFIXES:
        if upn.startswith(prefix):
            names = {prefix + "*", upn, prefix + owner.source_id.lower()}
            return any(name in wanted for name in names)
    return upn in wanted


def select_owners(owners: list[Owner], options: RunOptions) -> list[Owner]:
    """The owners the run is restricted to, each with its target login filled in."""
    wanted, logins = options.users, options.target_logins
    return [
        Owner(o.upn, o.source_id, o.display_name, logins.get(o.upn.lower()) or o.target_login)
        for o in owners
        if selected(o, wanted)
    ]


async def owners_of(
    workloads: Sequence[Workload], options: RunOptions, users: UsersFile | None
) -> dict[str, list[Owner]]:
    """Every workload's selected owners, the tenant listed once per workload and the
    users file checked against it."""
    listed = {w.name: await w.source.owners() for w in workloads}
    chosen = {name: select_owners(owners, options) for name, owners in listed.items()}
    check_selection(users, listed, {name: len(owners) for name, owners in chosen.items()})
    return chosen


def check_selection(
    users: UsersFile | None, listed: Mapping[str, Sequence[Owner]], chosen: Mapping[str, int]
) -> None:
    """After listing the tenant: every row matches an owner, and no workload is left with
    nothing while it has owners. `listed`: workload -> every owner; `chosen`: workload ->
    how many the file selects."""
    if users is None:
        return
    everyone = [owner for owners in listed.values() for owner in owners]
    kinds = {_kind(owner.upn) for owner in everyone}
    for key in users.lines:
        kind = _kind(key)
        if kind not in kinds or key.endswith(":*"):
            continue  # no workload of this run lists that kind of owner
        if not any(selected(owner, frozenset({key})) for owner in everyone):
            what = {"user": "user", "team:": "team", "site:": "site"}[kind]
            raise ConfigError(
                "users.file",
                f"{users.where(key)}: no {what} {key.removeprefix(kind)!r} in the tenant; "
                "correct or remove the row",
            )
    for workload, owners in listed.items():
        if owners and not chosen.get(workload):
            hint = {"team:": "team:<name> or team:*", "site:": "site:<name> or site:*"}
            kinds_here = sorted({_kind(o.upn) for o in owners})
            rows = " / ".join(hint.get(k, "user rows") for k in kinds_here)
            raise ConfigError(
                "users.file",
                f"{users.path} selects none of the {len(owners)} owners of {workload}: add "
                f"{rows}, or remove targets.{workload}",
            )
        named = {_kind(key) for key in users.lines}
        for kind in sorted({_kind(o.upn) for o in owners} - named - {"user"}):
            dropped = sum(1 for o in owners if _kind(o.upn) == kind)
            log.warning(
                "%s: %s names no %s row, so its %d %s are not carried (add %s<name> rows, "
                "or %s* for all)",
                workload,
                users.path,
                kind.rstrip(":"),
                dropped,
                "teams" if kind == "team:" else "sites",
                kind,
                kind,
            )


def _kind(key: str) -> str:
    key = key.lower()
    return next((p for p in PREFIXES if key.startswith(p)), "user")
