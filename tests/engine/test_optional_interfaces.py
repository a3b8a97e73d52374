"""The optional interfaces the engine, the plan and doctor test for are those the
connectors and planners offer: a rename on either side fails here, instead of the
feature (MULTIAPPEND, $batch fetches, hidden folders, counts...) silently going unused."""

from __future__ import annotations

import pytest

from hirondelle.connectors.archive import ArchiveSession
from hirondelle.connectors.graph.drives import GraphDriveSource
from hirondelle.connectors.graph.mail import GraphMailSource
from hirondelle.connectors.imap_session import ImapSession
from hirondelle.connectors.matrix import MatrixSession
from hirondelle.connectors.webdav import WebDavSession
from hirondelle.migrator.plan import (
    CountingPlanner,
    ListingPlanner,
    ReportPlanner,
    TenantWidePlanner,
)
from hirondelle.migrator.protocols import (
    BatchFetch,
    BatchPut,
    FolderTree,
    HiddenFolders,
    LiveSource,
    PagedListing,
    StreamedListing,
)
from hirondelle.workloads.chat_plan import ChatPlanner
from hirondelle.workloads.chats_plan import ChatsPlanner
from hirondelle.workloads.files_plan import FilesPlanner
from hirondelle.workloads.groupware_plan import GroupwarePlanner
from hirondelle.workloads.mail_plan import MailPlanner

OFFERED = [
    (BatchPut, ImapSession),
    (BatchPut, WebDavSession),
    (BatchPut, MatrixSession),
    (BatchFetch, GraphMailSource),
    (FolderTree, GraphMailSource),
    (HiddenFolders, GraphMailSource),
    (PagedListing, GraphMailSource),
    (LiveSource, GraphDriveSource),
    (StreamedListing, ArchiveSession),
    (ListingPlanner, MailPlanner),
    (ReportPlanner, MailPlanner),
    (ReportPlanner, FilesPlanner),
    (CountingPlanner, FilesPlanner),
    (CountingPlanner, ChatPlanner),
    (CountingPlanner, GroupwarePlanner),
]


@pytest.mark.parametrize(("interface", "offered_by"), OFFERED)
def test_the_optional_interface_is_offered(interface: type, offered_by: type) -> None:
    assert issubclass(offered_by, interface)


def test_an_interface_not_offered_is_not_seen() -> None:
    assert not issubclass(ArchiveSession, BatchPut)
    assert not issubclass(GraphDriveSource, FolderTree)
    assert not issubclass(ChatPlanner, ListingPlanner)


def test_the_chats_planner_says_its_rate_caps_the_whole_tenant() -> None:
    # a protocol with a data member takes no issubclass: the attribute is checked by name
    assert "tenant_wide" in TenantWidePlanner.__annotations__
    assert ChatsPlanner.tenant_wide is True
    assert not hasattr(MailPlanner, "tenant_wide")
