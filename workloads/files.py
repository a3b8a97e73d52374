"""The files workload: OneDrive and SharePoint drives into WebDAV or folder trees."""

from __future__ import annotations

from functools import partial
from urllib.parse import quote

from ..migrator.config import Config, TargetConfig
from ..migrator.model import Container, Item, Owner, TargetRef
from ..migrator.plan import Planner
from ..migrator.protocols import Target
from ..migrator.registry import SHAREPOINT, Clients, build_target
from ..migrator.workload import Workload


def build(
    config: Config, target_config: TargetConfig, clients: Clients
) -> tuple[Workload, Planner]:
    from ..connectors.graph.drives import GraphDriveSource
    from ..connectors.webdav import WebDavTarget
    from ..mappings.file_names import LOCAL, PRESETS
    from ..mappings.files import attrs_only, content_changed, map_drive_item, sharepoint_note
    from .files_plan import FilesPlanner

    target = build_target(target_config)
    source = GraphDriveSource(clients.sharepoint, temp_dir=clients.spool())
    clients.shared[SHAREPOINT] = clients.sharepoint.budgets.divide
    workload = Workload(
        "files",
        source,
        map_drive_item,
        target,
        attrs_only,
        content_changed=content_changed,
        update_order=path_depth,
        content_in_memory=False,
        hierarchical_refs=True,
        verify_note=sharepoint_note,
        budget=SHAREPOINT,
    )
    if isinstance(target, WebDavTarget):
        rules = PRESETS[target.settings.profile]
        limit = target.settings.max_upload_bytes
    else:
        rules, limit = LOCAL, None
    workload.link_of = partial(_file_link, config, target)
    units = config.budget.files_units_per_minute / 60.0
    return workload, FilesPlanner(source, rules, units, limit)


def _file_link(
    config: Config, target: Target, container: Container, item: Item, ref: TargetRef
) -> tuple[str, str] | None:
    """(the file's SharePoint/OneDrive URL, where it is now) for the links table."""
    from ..connectors.archive_files import FilesArchiveTarget
    from ..connectors.webdav import WebDavTarget
    from ..mappings.files import drive_meta

    meta = drive_meta(item)  # rows written by older versions may lack keys: .get
    web_url = meta.get("webUrl")
    if not isinstance(web_url, str) or meta.get("kind") != "file":
        return None
    relative = quote(f"{ref.folder}/{ref.ref}")
    if isinstance(target, WebDavTarget):
        owner = Owner(container.owner, "", "", config.users.get(container.owner.lower(), ""))
        login = target.target_login(owner)
        return web_url, target.settings.url.replace("{login}", quote(login)) + relative
    if isinstance(target, FilesArchiveTarget):
        return web_url, (target.payload / container.owner / f"{ref.folder}/{ref.ref}").as_uri()
    return None


def path_depth(item: Item) -> int:
    """Parents before children: a renamed folder moves before the files in it change."""
    from ..mappings.files import drive_meta

    return str(drive_meta(item).get("path", "")).count("/")
