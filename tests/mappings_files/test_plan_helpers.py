"""The files plan's pure helpers: per-drive findings and the sharing report.

Permission bodies are the examples of the Microsoft Graph v1.0 permission resource page
(https://learn.microsoft.com/graph/api/resources/permission): view link, edit link,
specific-people link, existing-access link, invitation and redeemed invitation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hirondelle.mappings.file_names import NEXTCLOUD, WINDOWS, twin_path
from hirondelle.mappings.file_sharing import group_by_user, sharing_report
from hirondelle.mappings.files import Finding, drive_findings, sharepoint_findings
from hirondelle.migrator.model import Item


def item(source_id: str, kind: str, path: str, size: int = 0, **extra: Any) -> Item:
    meta = {"kind": kind, "path": path, "name": path.rsplit("/", 1)[-1], "size": size, **extra}
    return Item(source_id, "etag", meta)


DRIVE = [
    item("1", "folder", "Docs"),
    item("2", "file", "Docs/Rapport.docx", 2_000),
    item("3", "folder", "Docs/Plan: 2024"),
    item("4", "file", "Docs/Plan: 2024/budget.xlsx", 50_000),
    item("5", "file", "Docs/CON.txt", 10),
    item("6", "package", "Carnet", packageType="oneNote"),
    item("7", "file", "Carnet/Section.one", 4_000),
    item("8", "remote", "Partagé par Bob"),
    item("9", "file", "Vidéos/film.mkv", 9_000_000_000),
    item("10", "file", "Deep/" + "/".join(["niveau"] * 600) + "/x.txt", 1),
]


def kinds(findings: list[Finding]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for _, kind, path, _, _ in findings:
        found.setdefault(kind, []).append(path)
    return found


def test_findings_on_windows_rules() -> None:
    findings = drive_findings(DRIVE, WINDOWS, large_file_bytes=4 * 1024**3, largest=2)
    by_kind = kinds(findings)
    # The folder reports its own rename; its children do not repeat it.
    assert sorted(by_kind["renamed"]) == ["Docs/CON.txt", "Docs/Plan: 2024"]
    assert by_kind["onenote"] == ["Carnet"]
    assert by_kind["remote-item"] == ["Partagé par Bob"]
    assert by_kind["oversize"] == ["Vidéos/film.mkv"]
    assert by_kind["largest"] == ["Vidéos/film.mkv", "Docs/Plan: 2024/budget.xlsx"]
    assert [f.size for f in findings if f.kind == "largest"] == [9_000_000_000, 50_000]
    assert {f.size for f in findings if f.kind != "largest"} == {0}
    assert by_kind["path-refused"] == [DRIVE[-1].meta["path"]]
    assert "Carnet/Section.one" not in {p for paths in by_kind.values() for p in paths}
    notebook = next(f for f in findings if f[1] == "onenote")
    assert notebook[0] == "warning" and "1 item(s) inside" in notebook[3]


def test_items_shared_from_the_drive_are_named_with_how_widely() -> None:
    shared = [
        item("1", "folder", "Équipe", shared="organization"),
        item("2", "file", "Équipe/budget.xlsx", 10),  # inside: not named again
        item("3", "file", "public.pdf", 10, shared="anonymous"),
        item("4", "file", "notes.txt", 10, shared="shared"),  # a facet without its scope
        item("5", "remote", "Partagé par Bob", shared="users"),  # reported as remote
    ]
    found = [f for f in drive_findings(shared, NEXTCLOUD, None) if f[1] == "shared"]
    assert [(f[0], f[2]) for f in found] == [
        ("warning", "Équipe"),
        ("warning", "public.pdf"),
        ("warning", "notes.txt"),
    ]
    assert "anyone" in found[1][3] and "not carried" in found[2][3]


def test_findings_depend_on_the_target() -> None:
    by_kind = kinds(drive_findings(DRIVE, NEXTCLOUD, large_file_bytes=None))
    assert "renamed" not in by_kind  # ":" and "CON" are fine on a default Nextcloud
    assert "oversize" not in by_kind
    assert "path-refused" in by_kind


def test_office_files_of_a_library_are_counted_once_for_the_library() -> None:
    """SharePoint may change them after upload (OneDrive/onedrive-api-docs#935)."""
    office = [*DRIVE, item("11", "file", "Docs/Présentation.PPTX", 3), item("12", "file", "a.doc")]
    (finding,) = sharepoint_findings(office)
    severity, kind, path, detail, size = finding
    assert (severity, kind, path, size) == ("info", "sharepoint-modified", "", 0)
    # Rapport.docx, budget.xlsx, Présentation.PPTX, a.doc; not Section.one nor .txt files
    assert detail.startswith("4 Office file(s): SharePoint may have changed them")
    assert sharepoint_findings([i for i in DRIVE if i.meta["path"].endswith(".txt")]) == []


def test_collisions_after_normalisation_or_case_name_where_each_twin_goes() -> None:
    twins = [
        item("a", "file", "Caf\u00e9.txt", 1),
        item("b", "file", "Cafe\u0301.txt", 1),
        item("c", "file", "Notes.txt", 1),
        item("d", "file", "notes.TXT", 1),
    ]
    windows = [f for f in drive_findings(twins, WINDOWS, None) if f[1] == "collision"]
    assert len(windows) == 2 and all(f[0] == "warning" for f in windows)  # both are kept
    cafe = next(f for f in windows if "Caf" in f[2])
    assert "all are kept" in cafe[3]
    assert twin_path("Caf\u00e9.txt", "a") in cafe[3] and twin_path("Caf\u00e9.txt", "b") in cafe[3]
    nextcloud = [f for f in drive_findings(twins, NEXTCLOUD, None) if f[1] == "collision"]
    assert [f[2] for f in nextcloud] == ["Cafe\u0301.txt"]  # Nextcloud is case-sensitive


VIEW_LINK = {
    "id": "1",
    "roles": ["read"],
    "link": {"type": "view", "webUrl": "https://onedrive.live.com/redir?resid=5D33DD65C6932946"},
    "shareId": "!LKj1lkdlals90j1nlkascl",
    "expirationDateTime": "0001-01-01T00:00:00Z",
}
EDIT_LINK = {
    **VIEW_LINK,
    "id": "2",
    "roles": ["write"],
    "link": {"type": "edit", "scope": "anonymous"},
}
PEOPLE_LINK = {
    "id": "3",
    "grantedToIdentitiesV2": [
        {
            "user": {"id": "35fij1974gb8832", "displayName": "Misty Suarez"},
            "siteUser": {"id": "1", "displayName": "Misty Suarez", "loginName": "Misty Suarez"},
        },
        {
            "user": {"id": "9397721fh4hgh73", "displayName": "Judith Clemons"},
            "siteUser": {"id": "2", "displayName": "Judith Clemons", "loginName": "Judith Clemons"},
        },
    ],
    "roles": ["write"],
    "link": {"webUrl": "https://contoso.sharepoint.com/:w:/t/design/a577ghg9hgh737613bmbjf8"},
}
EXISTING_ACCESS = {
    "id": "00000000-0000-0000-0000-000000000000",
    "roles": ["read"],
    "link": {"scope": "existingAccess", "type": "view"},
}
INVITATION = {
    "id": "1",
    "roles": ["write"],
    "invitation": {"email": "jd@gmail.com", "signInRequired": True},
}
REDEEMED = {
    "id": "1",
    "roles": ["write"],
    "grantedTo": {"user": {"id": "5D33DD65C6932946", "displayName": "John Doe"}},
    "grantedToV2": {
        "user": {"id": "5D33DD65C6932946", "displayName": "John Doe"},
        "siteUser": {"id": "1", "displayName": "John Doe", "loginName": "John Doe"},
    },
    "invitation": {"email": "jd@outlook.com", "signInRequired": True},
}


def record(path: str, permission: dict[str, Any]) -> dict[str, Any]:
    return {"owner": "alice@contoso.test", "path": path, "permission": permission}


def test_sharing_report_from_documented_permissions() -> None:
    rows = sharing_report(
        [
            record("Docs/Rapport.docx", VIEW_LINK),
            record("Docs/Rapport.docx", EDIT_LINK),
            record("Design", PEOPLE_LINK),
            record("Design/Spec.docx", EXISTING_ACCESS),
            record("Budget.xlsx", INVITATION),
            record("Budget.xlsx", REDEEMED),
        ]
    )
    table = {(r["who"], r["path"]): (r["kind"], r["role"], r["via"]) for r in rows}
    assert table[("Misty Suarez", "Design")] == ("user", "write", "link")
    assert table[("Judith Clemons", "Design")] == ("user", "write", "link")
    assert table[("link:anonymous", "Docs/Rapport.docx")] == ("link", "write", "link:edit")
    assert table[("link", "Docs/Rapport.docx")] == ("link", "read", "link:view")
    assert table[("link:existingAccess", "Design/Spec.docx")] == ("link", "read", "link:view")
    assert table[("jd@gmail.com", "Budget.xlsx")] == ("invitation", "write", "direct")
    assert table[("John Doe", "Budget.xlsx")] == ("user", "write", "direct")
    assert len(rows) == 7
    assert [r["who"] for r in rows] == sorted(r["who"] for r in rows)


def test_sharing_report_keeps_the_strongest_role_and_groups_per_user() -> None:
    plain: list[dict[str, Any]] = [
        {"owner": "site:Ventes", "path": "Contrats", "who": "bob@contoso.test", "role": "read"},
        {"owner": "site:Ventes", "path": "Contrats", "who": "bob@contoso.test", "roles": ["owner"]},
        {"owner": "site:Ventes", "path": "Tarifs.xlsx", "who": "bob@contoso.test", "role": "write"},
        {
            "owner": "site:Ventes",
            "path": "Contrats",
            "permission": {"roles": ["read"], "grantedToV2": {"group": {"displayName": "Ventes"}}},
        },
    ]
    rows = sharing_report(plain)
    grouped = group_by_user(rows)
    assert [r["path"] for r in grouped["bob@contoso.test"]] == ["Contrats", "Tarifs.xlsx"]
    assert grouped["bob@contoso.test"][0]["role"] == "owner"
    assert grouped["group:Ventes"][0]["kind"] == "group"


@dataclass(frozen=True)
class Grant:
    """The shape the drive source hands out (one principal per record)."""

    path: str
    kind: str
    who: str
    roles: tuple[str, ...]
    link_type: str | None = None
    expires: str | None = None
    inherited: bool = False


def test_sharing_report_from_source_records() -> None:
    grants = [
        Grant("Docs", "user", "bob@contoso.test", ("write",)),
        Grant("Docs", "link", "organization", ("read",), link_type="view"),
        Grant("Docs/a.txt", "siteGroup", "Membres", ("read",), inherited=True),
        Grant("Docs", "user", "bob@contoso.test", ("read",), link_type="view"),
    ]
    rows = sharing_report(grants, owner="alice@contoso.test")
    table = {(r["who"], r["path"]): (r["kind"], r["role"], r["via"]) for r in rows}
    assert table == {
        ("bob@contoso.test", "Docs"): ("user", "write", "direct"),
        ("link:organization", "Docs"): ("link", "read", "link:view"),
        ("group:Membres", "Docs/a.txt"): ("group", "read", "direct (inherited)"),
    }
    assert {r["owner"] for r in rows} == {"alice@contoso.test"}
