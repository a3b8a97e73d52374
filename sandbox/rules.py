"""The sandbox's inbox rules and mailbox settings: Graph routes over `rules_seed`.

Serves `GET /users/{id}/mailFolders/inbox/messageRules` (and one rule by id), and
`GET /users/{id}/mailboxSettings` (with `$select`, and its `automaticRepliesSetting`
segment). Outlook counts these against the mailbox, as the mail requests: they pass
the mail throttle under the mailbox key.
https://learn.microsoft.com/en-us/graph/api/mailfolder-list-messagerules
https://learn.microsoft.com/en-us/graph/api/user-get-mailboxsettings
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hirondelle.sandbox.mail import GraphRequest, GraphResponse, mailbox_key, mailbox_read
from hirondelle.sandbox.odata import JSON, GraphError, QueryOptions, select_keys
from hirondelle.sandbox.service import Gate
from hirondelle.sandbox.throttle import MailboxThrottle

if TYPE_CHECKING:
    from hirondelle.sandbox.rules_seed import MailboxRules
    from hirondelle.sandbox.tenant import Tenant
    from hirondelle.sandbox.tenant_records import SandboxUser

NOT_FOUND = "The specified object was not found in the store."


class RulesService:
    """Routes Graph requests on inbox rules and mailbox settings to `tenant.rules`."""

    def __init__(self, tenant: Tenant, throttle: MailboxThrottle) -> None:
        self.tenant, self.throttle = tenant, throttle

    def owns(self, request: GraphRequest) -> bool:
        names = request.names
        if len(names) < 3 or names[0] != "users":
            return False
        rules = len(names) >= 5 and names[2] == "mailfolders" and names[4] == "messagerules"
        return names[2] == "mailboxsettings" or rules

    def gate(self, request: GraphRequest) -> Gate | None:
        return Gate(self.throttle, mailbox_key(self.tenant, request.segments[1]))

    def handle(self, request: GraphRequest) -> GraphResponse:
        user = mailbox_read(self.tenant, request)
        mailbox = self.tenant.rules.of(user)
        names, base = request.names, f"{request.base_url}/$metadata#users('{user.id}')"
        if names[2] == "mailboxsettings":
            return self._settings(request, mailbox, base)
        self._inbox(user, request.segments[3])
        context = f"{base}/mailFolders('inbox')/messageRules"
        match names[5:]:
            case []:
                return GraphResponse(body={"@odata.context": context, "value": mailbox.rules})
            case [_]:
                for rule in mailbox.rules:
                    if rule["id"] == request.segments[5]:
                        return GraphResponse(body={"@odata.context": f"{context}/$entity"} | rule)
                raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{names[-1]}'.")

    def _settings(self, request: GraphRequest, mailbox: MailboxRules, base: str) -> GraphResponse:
        settings: JSON = {
            "automaticRepliesSetting": mailbox.replies,
            "timeZone": mailbox.time_zone,
            "language": {"locale": "fr-FR", "displayName": "français (France)"},
            "dateFormat": "dd/MM/yyyy",
            "timeFormat": "HH:mm",
        }
        match request.names[3:]:
            case []:
                select = QueryOptions.parse(request.query).select
                body = select_keys(settings, select)
                return GraphResponse(body={"@odata.context": f"{base}/mailboxSettings"} | body)
            case ["automaticrepliessetting"]:
                context = f"{base}/mailboxSettings/automaticRepliesSetting"
                return GraphResponse(body={"@odata.context": context} | mailbox.replies)
        raise GraphError(400, "BadRequest", "Resource not found for the segment.")

    def _inbox(self, user: SandboxUser, key: str) -> None:
        """Rules hang off the inbox only (by its well-known name or its id)."""
        try:
            inbox = self.tenant.folder(user.id, "inbox")
        except KeyError:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND) from None
        if key.lower() != "inbox" and key != inbox.id:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)
