"""The Graph fields this connector reads or `$select`s, by resource: its side of the contract.

`tests/graph_contract` holds these against the response shapes Microsoft documents (every
name here must appear in a recorded documentation example of its resource) and against
the code (every string the connector reads as a JSON key must be declared here, and every
name declared here must still occur in the code). Reading a new field therefore means
declaring it here, and a field Microsoft does not document fails until it is listed in
`UNDOCUMENTED` with the reason it is read anyway.

Paths are dotted; arrays are transparent (`singleValueExtendedProperties.value` is the
`value` of each element). OData annotations (`@odata.nextLink`, `@removed`, ...) are
listed in `ANNOTATIONS` and checked against the documented annotations.
"""

from __future__ import annotations

from .calendar import LISTING_SELECT, MASTER_SELECT
from .contacts import DELTA_SELECT as CONTACT_DELTA_SELECT
from .mail import DELTA_SELECT as MESSAGE_DELTA_SELECT
from .mail import FOLDER_SELECT

_DATE_TIME_ZONE = ("dateTime", "timeZone")


def _paths(*names: str, under: str = "") -> frozenset[str]:
    return frozenset(f"{under}.{name}" if under else name for name in names)


READS: dict[str, frozenset[str]] = {
    "user": _paths("id", "userPrincipalName", "displayName", "mail", "userType", "proxyAddresses"),
    "mailFolder": frozenset(FOLDER_SELECT)
    | _paths("singleValueExtendedProperties", "sizeInBytes")
    | _paths("id", "value", under="singleValueExtendedProperties"),
    "message": frozenset(MESSAGE_DELTA_SELECT)
    | _paths("flagStatus", under="flag")
    | _paths("singleValueExtendedProperties")
    | _paths("id", "value", under="singleValueExtendedProperties"),
    "messageRule": _paths("actions")
    | _paths("moveToFolder", "copyToFolder", "delete", under="actions"),
    "mailboxSettings": _paths("automaticRepliesSetting", "timeZone")
    | _paths("status", under="automaticRepliesSetting"),
    "calendar": _paths("id", "name", "isDefaultCalendar"),
    "event": frozenset(LISTING_SELECT)
    | frozenset(MASTER_SELECT)
    | _paths("seriesMasterId")
    | _paths(*_DATE_TIME_ZONE, under="start")
    | _paths(*_DATE_TIME_ZONE, under="end")
    | _paths("pattern", "range", under="recurrence")
    | _paths("type", "interval", "daysOfWeek", under="recurrence.pattern")
    | _paths("type", "startDate", "endDate", "numberOfOccurrences", under="recurrence.range"),
    "contactFolder": _paths("id", "displayName", "parentFolderId"),
    "contact": frozenset(CONTACT_DELTA_SELECT) | _paths("parentFolderId"),
    "site": _paths("id", "name", "displayName", "webUrl", "isPersonalSite"),
    "drive": _paths("id", "name", "quota", "quota.used"),
    "driveItem": _paths(
        *(
            "id name eTag cTag size webUrl lastModifiedDateTime root folder file deleted "
            "package remoteItem parentReference fileSystemInfo shared"
        ).split()
    )
    | _paths("scope", under="shared")
    | _paths("id", "driveType", under="parentReference")
    | _paths("type", under="package")
    | _paths("mimeType", "hashes", "hashes.quickXorHash", under="file")
    | _paths("lastModifiedDateTime", under="fileSystemInfo"),
    "driveItemVersion": _paths(
        *(
            "id lastModifiedDateTime size lastModifiedBy lastModifiedBy.user "
            "lastModifiedBy.user.displayName"
        ).split()
    ),
    "permission": _paths(
        *(
            "roles expirationDateTime inheritedFrom link link.type link.scope grantedToV2 "
            "grantedTo grantedToIdentitiesV2 grantedToIdentities"
        ).split()
    ),
    # The principal of a grant: `_principal` takes the first kind an identity set carries,
    # then the first name its identity carries.
    "sharePointIdentitySet": _paths(
        "user", "siteUser", "group", "siteGroup", "application", "device"
    ),
    "identity": _paths("email", "loginName", "userPrincipalName", "displayName", "id"),
    "team": _paths("id", "displayName"),
    "group": _paths("id", "displayName"),
    "channel": _paths("id", "displayName", "description", "membershipType"),
    "conversationMember": _paths("userId", "roles", "displayName", "email"),
    "chat": _paths("id", "topic", "createdDateTime", "chatType", "members"),
    "chatMessage": _paths(
        *(
            "id replyToId messageType createdDateTime lastModifiedDateTime lastEditedDateTime "
            "deletedDateTime subject body body.contentType body.content attachments reactions "
            "reactions.reactionType reactions.user reactions.user.user reactions.user.user.id "
            "from from.user from.application from.device from.user.id from.user.displayName "
            "from.application.id from.application.displayName replies"
        ).split()
    ),
    "batchResponse": _paths(
        "responses", "responses.id", "responses.status", "responses.headers", "responses.body"
    ),
    "error": _paths("error", "error.code", "error.message"),
}

# Annotations read from answers: collection and delta paging, counts, removals, versions.
ANNOTATIONS = frozenset(
    {
        "@odata.nextLink",
        "@odata.deltaLink",
        "@odata.count",
        "@odata.etag",
        "@removed",
        "replies@odata.count",
        "replies@odata.nextLink",
    }
)

# Strings the connector reads as keys that are not Graph JSON fields: its own cursors and
# item metadata, HTTP headers, SDK and azure-identity options, values compared by `in`.
NOT_GRAPH = frozenset(
    {
        "v", "links", "masters", "recent", "delta",  # cursors of calendar and teams
        "kind", "path", "lastVerb",  # Item.meta keys
        "rules", "folders",  # the rules source's own snapshot, read back for its version
        "known",  # the cursor of a calendar read without delta
        "checked", "next", "read", "round", "started", "threads",  # the chat cursor
        "modified", "filtered",  # the chats cursor
        "published_size",  # an audit remark of a file SharePoint changed
        "baseurl", "authority", "connection_verify",  # kiota and azure-identity options
        "Content-Length", "Content-Range", "ETag", "If-Range", "Last-Modified", "Location",
        "Content-Type", "Range", "Retry-After", "retry-after", "RateLimit-Reset", "ratelimit-reset",
        "owner",  # a value of a member's roles
        "-my.sharepoint.", "token=", "token%3d", "%",  # pieces of URLs
        "aiohttp",  # a module name looked up in sys.modules
        # columns of the usage reports' CSV (not JSON: reports.py names its columns and
        # tests/sandbox/test_reports.py holds them to the documented headers)
        "@", "Report Refresh Date", "Storage Used (Byte)",
    }
)  # fmt: skip

# Reads the v1.0 reference does not document, with why they are read anyway. The contract
# tests fail when an entry here becomes documented (drop it then) or is no longer read.
# Read, but sent only on the entities they describe: a driveItem carries the `shared` facet
# only when it was shared (https://learn.microsoft.com/en-us/graph/api/resources/shared), so
# an answer without it still conforms.
# A rule's actions carry only the actions it takes (the examples of
# https://learn.microsoft.com/en-us/graph/api/mailfolder-list-messagerules show no null
# action): a rule that moves nothing has no `moveToFolder`.
SOMETIMES: dict[str, frozenset[str]] = {
    "driveItem": _paths("shared", "shared.scope"),
    "messageRule": _paths("moveToFolder", "copyToFolder", "delete", under="actions"),
}

UNDOCUMENTED: dict[tuple[str, str], str] = {
    ("mailFolder", "sizeInBytes"): "beta only; read when a server sends it, else the folder "
    "size comes from the PR_MESSAGE_SIZE_EXTENDED extended property",
    ("identity", "email"): "SharePoint sends it on user identities of permissions; tried "
    "first because an e-mail names a principal best in the sharing report",
    ("identity", "userPrincipalName"): "tried after email and loginName when naming a "
    "principal; absent keys are skipped",
    ("user", "userType"): "a property of user (resources/user) returned only when selected, "
    "which no recorded example does; a missing one counts as a member",
    ("user", "proxyAddresses"): "a property of user (resources/user) returned only when "
    "selected, which no recorded example does; a missing one means no alias",
}
