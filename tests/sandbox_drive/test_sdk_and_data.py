"""The msgraph SDK's typed models read the drive routes; the seeded data is deterministic."""

from __future__ import annotations

import asyncio
import unicodedata
from typing import Any

from msgraph import GraphServiceClient
from msgraph.generated.models.drive import Drive
from msgraph.generated.models.drive_item import DriveItem
from msgraph.generated.models.site import Site
from sandbox_drive_helpers import SMALL, client
from sandbox_helpers import graph_client

from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant


def test_typed_models_parse_drives_items_children_and_sites() -> None:
    with SandboxServer(Tenant.generate(SMALL), tls=True, limits=Limits(enabled=False)) as sb:
        user = sb.tenant.users[0]

        async def use(graph: GraphServiceClient) -> tuple[Any, ...]:
            drive = await graph.users.by_user_id(user.upn).drive.get()
            root = await graph.drives.by_drive_id(drive.id).root.get()
            items = graph.drives.by_drive_id(drive.id).items
            children = await items.by_drive_item_id(root.id).children.get()
            sites = await graph.sites.get()
            libraries = await graph.sites.by_site_id(sites.value[0].id).drives.get()
            permissions = await items.by_drive_item_id(_shared(sb, drive.id)).permissions.get()
            return drive, root, children, sites, libraries, permissions

        async def run() -> tuple[Any, ...]:
            graph, credential = graph_client(sb)
            try:
                return await use(graph)
            finally:
                await credential.close()

        drive, root, children, sites, libraries, permissions = asyncio.run(run())
    assert isinstance(drive, Drive) and drive.drive_type == "business"
    assert isinstance(root, DriveItem) and root.root is not None and root.folder.child_count
    assert all(isinstance(c, DriveItem) for c in children.value)
    assert {c.name for c in children.value} >= {"Documents", "À trier", "Budgets"}
    assert any(c.remote_item is not None for c in children.value)
    files = [c for c in children.value if c.file is not None]
    assert files and all(c.file.hashes.quick_xor_hash for c in files)
    assert all(isinstance(s, Site) for s in sites.value)
    assert [d.name for d in libraries.value] == ["Documents", "Archives"]
    assert {p.roles[0] for p in permissions.value} >= {"owner", "read"}


def _shared(sb: SandboxServer, drive_id: str) -> str:
    drives = sb.tenant.drives
    return next(i.id for i in drives.items(drive_id) if i.grants and i.kind == "file")


def test_showcase_items_are_seeded(sb: SandboxServer) -> None:
    drives = sb.tenant.drives
    onedrive = drives.user_drives[sb.tenant.users[0].id]
    by_path = {drives.path(i): i for i in drives.items(onedrive)}
    names = {p.rsplit("/", 1)[-1] for p in by_path}
    assert {"CON.txt", ".htaccess", "desktop.ini", "~$lock.docx", "Version finale."} <= names
    assert any(len(n.encode()) == 300 and len(n) < 255 for n in names)
    assert max(len(p) for p in by_path) > 400
    resumes = [n for n in names if unicodedata.normalize("NFC", n) == "Résumé.docx"]
    assert len(resumes) == 2
    assert by_path["À trier/Vide.txt"].size == 0
    assert by_path["Documents/Carnet de notes"].kind == "package"
    assert {i.kind for i in by_path.values()} >= {"folder", "file", "package", "remote"}
    kinds = {g.kind for i in by_path.values() for g in i.grants}
    assert kinds == {"link", "user", "group"}
    team = drives.site("Projet Hirondelle")
    (library,) = drives.site_drives(team.id)
    top = {i.name for i in drives.children(library.id, library.root_id)}
    assert {"General", "Chantier"} <= top


def test_generation_and_mutations_are_deterministic() -> None:
    first, second = Tenant.generate(SMALL), Tenant.generate(SMALL)
    assert _snapshot(first) == _snapshot(second)
    mutation = Mutation(seed=4, file_creates=2, file_changes=2, file_moves=2, folder_deletions=1)
    assert first.mutate(mutation).files_by_change == second.mutate(mutation).files_by_change
    assert _snapshot(first) == _snapshot(second)


def _snapshot(tenant: Tenant) -> list[tuple[str, ...]]:
    drives = tenant.drives
    return [
        (i.id, drives.path(i), i.etag, str(i.size), drives.quick_xor(i) if i.kind == "file" else "")
        for d in drives.drives
        for i in drives.items(d.id)
    ]


def test_path_addressing_and_group_drive(sb: SandboxServer) -> None:
    drives = sb.tenant.drives
    team = drives.site("ProjetHirondelle")
    with client(sb) as graph:
        library = graph.get(f"groups/{team.group_id}/drive").json()
        folder = graph.get(f"drives/{library['id']}/root:/General/Réunions:").json()
        children = graph.get(f"drives/{library['id']}/root:/General:/children").json()
    assert library["name"] == "Documents" and library["owner"]["group"]["id"] == team.group_id
    assert folder["name"] == "Réunions"
    assert folder["parentReference"]["path"] == f"/drives/{library['id']}/root:/General"
    assert "Réunions" in {c["name"] for c in children["value"]}
