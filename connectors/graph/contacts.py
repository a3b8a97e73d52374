"""The contacts `Source`: a user's contact folders, contact changes and contact content.

The default Contacts folder is not one of `/contactFolders`: that collection holds
the folders *under* it ("Get the contact folder collection in the default Contacts
folder", https://learn.microsoft.com/en-us/graph/api/user-list-contactfolders), and
the default folder's own contacts live at `/users/{id}/contacts`. Its id is read
from the `parentFolderId` of a top-level folder or of one of its contacts; a
mailbox with neither uses the stable name `contacts` (requests for the default
folder never need its id).

Changes come from `contacts/delta` of each folder
(https://learn.microsoft.com/en-us/graph/api/contact-delta); `$select` keeps the
delta pages to ids and change keys. Content is the full contact plus its photo
from `photo/$value`, which answers 404 when the contact has none
(https://learn.microsoft.com/en-us/graph/api/profilephoto-get). Graph does not
say which format a contact photo is in without another request, so the type is
read from the bytes' signature.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.users.item.contact_folders.contact_folders_request_builder import (
    ContactFoldersRequestBuilder,
)
from msgraph.generated.users.item.contact_folders.item.contacts.delta.delta_request_builder import (
    DeltaRequestBuilder as FolderDeltaRequestBuilder,
)
from msgraph.generated.users.item.contacts.contacts_request_builder import (
    ContactsRequestBuilder,
)
from msgraph.generated.users.item.contacts.delta.delta_request_builder import (
    DeltaRequestBuilder,
)

from ...migrator.errors import SkipItem
from ...migrator.model import Container, Item, Owner, Page
from .client import GraphClient
from .directory import tenant_users
from .errors import Call

PERMISSION = "Contacts.Read"
PAGE_SIZE = 1000  # asked with Prefer: odata.maxpagesize; Graph may answer with less
FOLDER_PAGE = 250
DEFAULT_NAME = "Contacts"
DEFAULT_KEY = "contacts"  # the default folder's id when Graph gives no way to learn it
DELTA_SELECT = ["id", "changeKey"]
PHOTO_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


class GraphContactsSource:
    """Reads contacts out of Microsoft Graph; implements `migrator.protocols.Source`."""

    workload = "contacts"
    page_size = PAGE_SIZE

    def __init__(self, client: GraphClient) -> None:
        self.client = client
        self._sdk = client.sdk

    async def owners(self) -> list[Owner]:
        """Every user of the tenant (`/users`, paged)."""
        return await tenant_users(self.client)

    async def containers(self, owner: Owner) -> list[Container]:
        """The default Contacts folder (role "default") then every folder, nested ones too."""
        upn = owner.upn
        first_contact, default_count = await self._default_folder_sample(upn)
        top = await self._folders(upn, None)
        default_id = str(
            (first_contact or {}).get("parentFolderId")
            or next((f.get("parentFolderId") for f in top if f.get("parentFolderId")), None)
            or DEFAULT_KEY
        )
        default = Container(
            self.workload, upn, default_id, (DEFAULT_NAME,), "default", ("default",), default_count
        )
        containers = [default]
        level: list[tuple[Mapping[str, Any], tuple[str, ...]]] = [
            (folder, (folder.get("displayName") or "",)) for folder in top
        ]
        while level:
            below: list[tuple[Mapping[str, Any], tuple[str, ...]]] = []
            for folder, path in level:
                if folder["id"] == default_id:
                    continue  # a server that lists the default folder among its children
                containers.append(await self._folder_container(upn, folder["id"], path))
                for child in await self._folders(upn, folder["id"]):
                    below.append((child, (*path, child.get("displayName") or "")))
            level = below
        return containers

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        """Delta pages of the folder since `cursor` (a stored link), or all of it."""
        upn = container.owner
        target: RequestInformation | str = cursor or self._delta_request(container)
        what = f"contact changes of {upn} {container.display_path}"
        call = Call(what, PERMISSION, cursor=cursor is not None)
        prefer = [f"odata.maxpagesize={self.page_size}"]
        while True:
            body = await self.client.get_json(target, upn, call, prefer=prefer)
            values = body.get("value", [])
            live: dict[str, Item] = {}
            for entry in values:
                if "@removed" not in entry:
                    live[str(entry["id"])] = _item(entry)
            removed = tuple(str(e["id"]) for e in values if "@removed" in e and e["id"] not in live)
            next_link = body.get("@odata.nextLink")
            yield Page(tuple(live.values()), removed, next_link, body.get("@odata.deltaLink"))
            if not next_link:
                return
            target, call = next_link, Call(what, PERMISSION, cursor=True)

    async def fetch(self, container: Container, item: Item) -> bytes:
        """The contact's JSON with its photo (base64) and the photo's type (shared contract)."""
        upn = container.owner
        contact_builder = self._contact(container, item.source_id)
        call = Call(f"contact {item.source_id} of {upn}", PERMISSION, item=True)
        contact = await self.client.get_json(
            contact_builder.to_get_request_information(), upn, call
        )
        photo = await self._photo(container, item.source_id)
        content = {
            "contact": contact,
            "photo": base64.b64encode(photo).decode("ascii") if photo else None,
            "photoType": _photo_type(photo) if photo else None,
        }
        return json.dumps(content, ensure_ascii=False).encode("utf-8")

    async def listing(self, container: Container) -> list[Item]:
        """Every contact of the folder (id and changeKey), for plan and verify."""
        request = self._contacts_request(container.owner, container, DELTA_SELECT, self.page_size)
        call = Call(f"contacts of {container.owner} {container.display_path}", PERMISSION)
        pages = self.client.pages(request, container.owner, call)
        return [_item(entry) async for page in pages for entry in page.get("value", [])]

    async def aclose(self) -> None:
        """Close the client this source was given (its pool and credential)."""
        await self.client.aclose()

    # -- requests ------------------------------------------------------------------------

    async def _default_folder_sample(self, upn: str) -> tuple[dict[str, Any] | None, int]:
        """One contact of the default folder (for its parentFolderId) and the folder's count."""
        request = self._contacts_request(upn, None, ["id", "parentFolderId"], 1, count=True)
        # A 404 means the user has no mailbox: the owner is skipped, not the run.
        call = Call(f"contacts of {upn}", PERMISSION, item=True)
        page = await self.client.get_json(request, upn, call)
        values = page.get("value") or []
        return (values[0] if values else None), int(page.get("@odata.count") or 0)

    async def _folder_container(self, upn: str, folder_id: str, path: tuple[str, ...]) -> Container:
        """A contact folder as a container, with its number of contacts ($count)."""
        container = Container(self.workload, upn, folder_id, path, None, (None,) * len(path))
        request = self._contacts_request(upn, container, ["id"], 1, count=True)
        page = await self.client.get_json(request, upn, Call(f"contacts of {upn}", PERMISSION))
        return replace(container, total_items=int(page.get("@odata.count") or 0))

    async def _folders(self, upn: str, parent_id: str | None) -> list[dict[str, Any]]:
        """Top-level contact folders (parent None) or a folder's child folders."""
        folders = self._user(upn).contact_folders
        params = ContactFoldersRequestBuilder.ContactFoldersRequestBuilderGetQueryParameters(
            select=["id", "displayName", "parentFolderId"], top=FOLDER_PAGE
        )
        config = RequestConfiguration(query_parameters=params)
        if parent_id is None:
            request = folders.to_get_request_information(config)
        else:
            children = folders.by_contact_folder_id(parent_id).child_folders
            request = children.to_get_request_information(config)
        call = Call(f"contact folders of {upn}", PERMISSION, item=True)
        try:
            pages = self.client.pages(request, upn, call)
            return [folder async for page in pages for folder in page.get("value", [])]
        except SkipItem:
            if parent_id is None:
                raise
            return []  # the folder went away while the tree was walked
        except APIError as exc:
            # A server that cannot navigate `childFolders` ("Resource not found for the
            # segment") has no nested folders to offer: the tree stops here.
            if parent_id is None or exc.response_status_code != 400:
                raise
            return []

    def _contacts_request(
        self,
        upn: str,
        container: Container | None,
        select: list[str],
        top: int,
        *,
        count: bool = False,
    ) -> RequestInformation:
        """`/contacts` of the default folder (None) or of one contact folder."""
        params = ContactsRequestBuilder.ContactsRequestBuilderGetQueryParameters(
            select=select, top=top, count=count or None
        )
        config = RequestConfiguration(query_parameters=params)
        if container is None or container.role == "default":
            return self._user(upn).contacts.to_get_request_information(config)
        folder = self._user(upn).contact_folders.by_contact_folder_id(container.source_id)
        return folder.contacts.to_get_request_information(config)

    def _delta_request(self, container: Container) -> RequestInformation:
        user = self._user(container.owner)
        if container.role == "default":
            params: Any = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                select=DELTA_SELECT
            )
            return user.contacts.delta.to_get_request_information(
                RequestConfiguration(query_parameters=params)
            )
        params = FolderDeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
            select=DELTA_SELECT
        )
        folder = user.contact_folders.by_contact_folder_id(container.source_id)
        return folder.contacts.delta.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )

    def _contact(self, container: Container, contact_id: str) -> Any:
        """The contact's request builder, through its folder unless it is the default one."""
        user = self._user(container.owner)
        if container.role == "default":
            return user.contacts.by_contact_id(contact_id)
        folder = user.contact_folders.by_contact_folder_id(container.source_id)
        return folder.contacts.by_contact_id(contact_id)

    async def _photo(self, container: Container, contact_id: str) -> bytes | None:
        """The photo's bytes, or None when the contact has none (404)."""
        request = self._contact(container, contact_id).photo.content.to_get_request_information()
        request.path_parameters["baseurl"] = self.client.graph_url
        call = Call(f"photo of contact {contact_id} of {container.owner}", PERMISSION, item=True)
        try:
            photo = await self.client.stream_bytes(str(request.url), container.owner, call)
        except SkipItem:
            return None
        return photo or None

    def _user(self, upn: str) -> Any:
        return self._sdk.users.by_user_id(upn)


def _item(entry: Mapping[str, Any]) -> Item:
    return Item(str(entry["id"]), str(entry.get("changeKey") or entry.get("@odata.etag") or ""))


def _photo_type(photo: bytes) -> str:
    """The image type from the bytes' signature; JPEG when unknown (Outlook's own format)."""
    for signature, content_type in PHOTO_SIGNATURES:
        if photo.startswith(signature):
            return content_type
    return "image/jpeg"
