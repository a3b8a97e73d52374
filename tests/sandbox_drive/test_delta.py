"""root/delta: the initial enumeration, incremental rounds per change kind, latest, 410."""

from __future__ import annotations

from sandbox_drive_helpers import client, delta_round, paths_from_parent_ids

from hirondelle.sandbox.server import SandboxServer
from hirondelle.sandbox.tenant import Mutation

EXCLUDE_PARENTS = {"Prefer": "deltaExcludeParent"}


def test_initial_round_lists_every_item_once_with_paths_from_parent_ids(sb: SandboxServer) -> None:
    drives = sb.tenant.drives
    for drive in drives.drives:
        with client(sb) as graph:
            entries, _, pages = delta_round(graph, f"drives/{drive.id}/root/delta?$top=7")
        ids = [e["id"] for e in entries]
        assert len(ids) == len(set(ids)) == len(drives.items(drive.id))
        assert pages > 1
        expected = {i.id: drives.path(i) for i in drives.items(drive.id) if i.kind != "root"}
        assert paths_from_parent_ids(entries) == expected
        assert all("path" not in e["parentReference"] and "cTag" not in e for e in entries)
        seen: set[str] = set()
        for entry in entries:  # parents come before their children
            parent = entry["parentReference"].get("id")
            assert parent is None or parent in seen
            seen.add(entry["id"])


def test_each_change_kind_comes_in_the_next_round_as_latest_state(mutable: SandboxServer) -> None:
    drives = mutable.tenant.drives
    user = mutable.tenant.users[0]
    drive_id = drives.user_drives[user.id]
    with client(mutable) as graph:
        _, link, _ = delta_round(graph, f"users/{user.upn}/drive/root/delta")
        mutation = Mutation(
            seed=3,
            file_creates=2,
            file_changes=2,
            file_renames=2,
            file_moves=1,
            folder_renames=1,
            file_deletions=1,
            folder_deletions=1,
            user=user.upn,
        )
        result = mutable.mutate(mutation)
        entries, link, _ = delta_round(graph, link, EXCLUDE_PARENTS)
        quiet, _, _ = delta_round(graph, link, EXCLUDE_PARENTS)

    changes = result.files_by_change
    assert {k: len(v) for k, v in changes.items() if k != "folder_deletions"} == {
        "file_creates": 2,
        "file_changes": 2,
        "file_renames": 2,
        "file_moves": 1,
        "folder_renames": 1,
        "file_deletions": 1,
    }
    assert changes["folder_deletions"]  # the folder and what was inside it
    assert sorted(e["id"] for e in entries) == sorted(result.files)
    by_id = {e["id"]: e for e in entries}
    for gone in changes["file_deletions"] + changes["folder_deletions"]:
        assert by_id[gone]["deleted"] == {"state": "deleted"} and "name" not in by_id[gone]
    for item_id in changes["file_renames"] + changes["folder_renames"] + changes["file_moves"]:
        item = drives.item(drive_id, item_id)
        assert by_id[item_id]["name"] == item.name
        assert by_id[item_id]["parentReference"]["id"] == item.parent_id
    for item_id in changes["file_changes"]:
        entry = by_id[item_id]
        item = drives.item(drive_id, item_id)
        assert entry["size"] == item.size
        assert entry["file"]["hashes"]["quickXorHash"] == drives.quick_xor(item)
    assert quiet == []


def test_a_folder_rename_is_reported_once_and_parents_follow_by_default(
    mutable: SandboxServer,
) -> None:
    drives = mutable.tenant.drives
    user = mutable.tenant.users[1]
    with client(mutable) as graph:
        _, link, _ = delta_round(graph, f"users/{user.id}/drive/root/delta")
        result = mutable.mutate(Mutation(seed=8, folder_renames=1, user=user.id))
        entries, _, _ = delta_round(graph, link)
    (renamed,) = result.files
    folder = drives.item(drives.user_drives[user.id], renamed)
    ancestors = [a.id for a in drives.ancestors(folder)]
    assert [e["id"] for e in entries] == [renamed, *ancestors]  # no child of the folder
    assert entries[0]["name"] == folder.name


def test_token_latest_gives_an_empty_page_then_only_later_changes(mutable: SandboxServer) -> None:
    user = mutable.tenant.users[0]
    with client(mutable) as graph:
        body = graph.get(f"users/{user.id}/drive/root/delta", params={"token": "latest"}).json()
        assert body["value"] == [] and "@odata.nextLink" not in body
        result = mutable.mutate(Mutation(seed=2, file_creates=1, user=user.id))
        entries, _, _ = delta_round(graph, body["@odata.deltaLink"], EXCLUDE_PARENTS)
    assert [e["id"] for e in entries] == result.files


def test_a_too_old_token_is_410_resync_required_with_a_restart_location(
    mutable: SandboxServer,
) -> None:
    user = mutable.tenant.users[0]
    with client(mutable) as graph:
        _, link, _ = delta_round(graph, f"users/{user.id}/drive/root/delta")
        mutable.tenant.expire_delta_tokens()
        response = graph.get(link)
        assert response.status_code == 410
        error = response.json()["error"]
        assert error["code"] == "resyncRequired"
        assert error["innerError"]["code"] == "resyncChangesApplyDifferences"
        restart = response.headers["Location"]
        entries, _, _ = delta_round(graph, restart)
    assert len(entries) == len(
        mutable.tenant.drives.items(entries[0]["parentReference"]["driveId"])
    )


def test_delta_on_a_folder_is_not_supported(sb: SandboxServer) -> None:
    drive = sb.tenant.drives.drives[0]
    folder = next(i for i in sb.tenant.drives.items(drive.id) if i.kind == "folder")
    with client(sb) as graph:
        response = graph.get(f"drives/{drive.id}/items/{folder.id}/delta")
    assert response.status_code == 501
    assert response.json()["error"]["code"] == "notSupported"


def test_select_holds_on_every_page_of_a_round(sb: SandboxServer) -> None:
    drive = sb.tenant.drives.drives[0]
    with client(sb) as graph:
        entries, _, pages = delta_round(graph, f"drives/{drive.id}/root/delta?$top=5&$select=name")
    assert pages > 2
    assert all(set(e) == {"id", "name"} for e in entries)


def test_the_servers_expire_control_expires_drive_tokens_too(mutable: SandboxServer) -> None:
    """`SandboxServer.expire_delta_tokens` (and its control endpoint) reaches every workload."""
    user = mutable.tenant.users[0]
    with client(mutable) as graph:
        _, link, _ = delta_round(graph, f"users/{user.id}/drive/root/delta")
        mutable.expire_delta_tokens()
        assert graph.get(link).status_code == 410
