"""The files plan's sharing report: who had access to what, with which role.

Pure. Read from Graph permission resources
(https://learn.microsoft.com/en-us/graph/api/resources/permission) or from plain records
of the drive source; sharing is not carried to a target, so the report is what an
integrator re-creates there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .files import object_of

ROLE_RANK = {"read": 1, "write": 2, "owner": 3}


def sharing_report(permission_records: Iterable[Any], owner: str = "") -> list[dict[str, str]]:
    """Who had access to what, with which role: one row per (who, owner, path), sorted by
    who, so the rows of one user follow each other (`group_by_user`).

    A record is either plain (a mapping, or an object such as the drive source's
    `SharingGrant`, with "path", "who", "kind", "roles" or "role", and optionally "owner",
    "via", "link_type", "inherited"), or a mapping holding a Graph permission resource
    under "permission" with the item's "path" (and "owner"): a permission becomes one row
    per identity it grants, and a link without identities "link:<scope>". `owner` names
    the drive for records that do not. Where two records give one person access to one
    item, the strongest role wins (owner > write > read).
    """
    rows: dict[tuple[str, str, str], dict[str, str]] = {}
    for record in permission_records:
        for row in _rows_of(_as_mapping(record), owner):
            key = (row["who"], row["owner"], row["path"])
            kept = rows.get(key)
            if kept is None or _rank(row["role"]) > _rank(kept["role"]):
                rows[key] = row
    return [rows[key] for key in sorted(rows)]


def group_by_user(rows: Iterable[Mapping[str, str]]) -> dict[str, list[Mapping[str, str]]]:
    """The rows of `sharing_report` per person (or link), in order."""
    grouped: dict[str, list[Mapping[str, str]]] = {}
    for row in rows:
        grouped.setdefault(row["who"], []).append(row)
    return grouped


def _rank(role: str) -> int:
    return ROLE_RANK.get(role, 0)


def _strongest(roles: Any) -> str:
    names = [roles] if isinstance(roles, str) else [r for r in roles or () if isinstance(r, str)]
    return max(names, key=_rank, default="read")


def _as_mapping(record: Any) -> Mapping[str, Any]:
    if isinstance(record, Mapping):
        return record
    fields = ("owner", "path", "who", "kind", "roles", "role", "via", "link_type", "inherited")
    return {f: getattr(record, f) for f in fields if getattr(record, f, None) is not None}


def _plain_row(record: Mapping[str, Any]) -> tuple[str, str, str]:
    """(who, kind, via) of a record that names its principal."""
    kind, who = str(record.get("kind", "user")), str(record["who"])
    if kind in ("siteUser", "siteGroup"):
        kind = "user" if kind == "siteUser" else "group"
    if kind == "link" and not who.startswith("link"):
        who = f"link:{who}" if who else "link"
    if kind == "group" and not who.startswith("group:"):
        who = f"group:{who}"
    via = record.get("via") or (f"link:{record['link_type']}" if record.get("link_type") else "")
    via = str(via or "direct") + (" (inherited)" if record.get("inherited") else "")
    return who, kind, via


def _rows_of(record: Mapping[str, Any], owner: str) -> list[dict[str, str]]:
    permission = object_of(record.get("permission")) or record
    base = {
        "owner": str(record.get("owner") or owner),
        "path": str(record.get("path", "")),
        "role": _strongest(permission.get("roles", record.get("role"))),
    }
    if "who" in record:
        who, kind, via = _plain_row(record)
        return [{**base, "who": who, "kind": kind, "via": via}]
    link = object_of(permission.get("link"))
    via = "direct" if not link else f"link:{link['type']}" if link.get("type") else "link"
    if permission.get("inheritedFrom"):
        via += " (inherited)"
    grantees = _grantees(permission)
    if not grantees and link:
        scope = link.get("scope")
        grantees = [(f"link:{scope}" if scope else "link", "link")]
    return [{**base, "who": who, "kind": kind, "via": via} for who, kind in grantees]


def _grantees(permission: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(who, kind) for every identity a permission grants, V2 shapes first."""
    sets = permission.get("grantedToIdentitiesV2") or permission.get("grantedToIdentities") or []
    single = permission.get("grantedToV2") or permission.get("grantedTo")
    if single:
        sets = [single, *sets]
    found = [g for s in sets if isinstance(s, Mapping) for g in [_identity(s)] if g]
    invitation = object_of(permission.get("invitation"))
    if not found and invitation.get("email"):
        found.append((str(invitation["email"]), "invitation"))
    return list(dict.fromkeys(found))


def _identity(identity_set: Mapping[str, Any]) -> tuple[str, str] | None:
    for facet, kind in (
        ("user", "user"),
        ("group", "group"),
        ("siteUser", "user"),
        ("siteGroup", "group"),
        ("application", "application"),
        ("device", "device"),
    ):
        who = object_of(identity_set.get(facet))
        name = who.get("email") or who.get("loginName") or who.get("displayName") or who.get("id")
        if name:
            return (f"group:{name}" if kind == "group" else str(name), kind)
    return None
