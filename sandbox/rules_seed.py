"""The sandbox's inbox rules and automatic replies: what each user has, and their changes.

Users come in threes by their place in the tenant: the first of each three has the
showcase (every condition and every action Graph's messageRule exposes at least once,
an exception, a disabled rule, a rule Sieve cannot express, a rule naming a folder that
no longer exists, French folder names, an HTML out-of-office scheduled in a window);
the second a small set (one rule, an out-of-office always on, for contacts only); the
third nothing (no rule, automatic replies off). Rules name the mail folders the mail
seed made, found by their display path, so a loaded tenant works too when it has them.

Nothing here is random but the mutations, drawn from the tenant's mutation generator:
the same seed gives the same rules, byte for byte. Shapes follow
https://learn.microsoft.com/en-us/graph/api/resources/messagerule and
https://learn.microsoft.com/en-us/graph/api/resources/automaticrepliessetting.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .tenant_records import FOLDER_ID_PREFIX, SandboxFolder, SandboxUser, stable_id

if TYPE_CHECKING:
    from .tenant import Tenant

JSON = dict[str, Any]
TIME_ZONE = "Romance Standard Time"
_INBOX = "Boîte de réception"
_INVOICES = (_INBOX, "Factures & Devis")
_CLIENTS = (_INBOX, "Clients.Europe")
_MINUTES = ("Projets", "2024/2025", "Comptes rendus")
_PERSONAL = ("📁 Perso",)
_ARCHIVE = ("Archive",)
_SCHEDULE = ("2027-07-26T08:00:00.0000000", "2027-08-16T08:00:00.0000000")
_AWAY_HTML = (
    "<html><body><p>Bonjour,</p><p>Je suis en congés jusqu'au 16 août inclus. "
    "Pour toute urgence, écrivez à <b>{backup}</b>.</p><p>Cordialement,<br>{name}</p>"
    "</body></html>"
)
_AWAY_EXTERNAL = (
    "<html><body><p>Bonjour,</p><p>Je suis absent(e) jusqu'au 16 août : votre message "
    "sera traité à mon retour. Merci de votre patience.</p></body></html>"
)


def _recipient(name: str, address: str) -> JSON:
    return {"emailAddress": {"name": name, "address": address}}


@dataclass
class MailboxRules:
    """One user's rules (Graph's order) and automatic replies, as Graph serves them."""

    rules: list[JSON] = field(default_factory=list)
    replies: JSON = field(default_factory=lambda: {"status": "disabled"})
    time_zone: str = TIME_ZONE


class RulesData:
    """Every user's rules, made on first look (each user's alone, from its place)."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self._mailboxes: dict[str, MailboxRules] = {}
        self._places: dict[str, int] = {}  # user id -> position in the tenant

    def of(self, user: SandboxUser) -> MailboxRules:
        if user.id not in self._mailboxes:
            self._mailboxes[user.id] = self._seeded(user)
        return self._mailboxes[user.id]

    def mutate(self, rng: random.Random, users: Sequence[SandboxUser], count: int) -> list[str]:
        """`count` changes, in turn: a rule toggled, a rule added, the out-of-office text
        changed, a rule removed; each in a user drawn from `users`. The ids touched."""
        touched: dict[str, None] = {}
        for n in range(count):
            user = rng.choice(list(users))
            mailbox = self.of(user)
            kind = ("toggle", "add", "reply", "remove")[n % 4]
            if kind in ("toggle", "remove") and not mailbox.rules:
                kind = "add"
            if kind == "toggle":
                rule = rng.choice(mailbox.rules)
                rule["isEnabled"] = not rule["isEnabled"]
            elif kind == "remove":
                mailbox.rules.pop(rng.randrange(len(mailbox.rules)))
            elif kind == "add":
                mailbox.rules.append(self._added(user, mailbox, rng.randrange(1000)))
            else:
                mailbox.replies = _replies(user, "alwaysEnabled", "all", rng.randrange(1000))
            touched[user.id] = None
        return list(touched)

    # -- the seed ----------------------------------------------------------------------

    def _seeded(self, user: SandboxUser) -> MailboxRules:
        if user.id not in self._places:  # users added since: number them all again
            self._places = {u.id: n for n, u in enumerate(self.tenant.users)}
        place = self._places[user.id] % 3
        if place == 2:
            return MailboxRules()
        if place == 1:
            rule = _rule(
                user,
                1,
                "Lettres d'information",
                {"senderContains": ["newsletter@", "infolettre@"]},
                {"moveToFolder": self._folder(user, _PERSONAL), "markAsRead": True},
            )
            return MailboxRules([rule], _replies(user, "alwaysEnabled", "contactsOnly"))
        return MailboxRules(self._showcase(user), _replies(user, "scheduled", "all"))

    def _showcase(self, user: SandboxUser) -> list[JSON]:
        folder = self._folder
        assistant = _recipient("Assistante de direction", _sibling(user, "assistante"))
        rules: list[tuple[str, JSON, JSON, JSON | None]] = [
            ("Factures fournisseurs", {
                "subjectContains": ["Facture", "Devis"], "hasAttachments": True,
                "fromAddresses": [_recipient("Comptabilité", "compta@fournisseur.example")],
            }, {
                "moveToFolder": folder(user, _INVOICES), "markAsRead": True,
                "stopProcessingRules": True,
            }, {"bodyContains": ["brouillon"]}),
            ("Clients Europe (copie)", {
                "senderContains": ["@client-europe.example"], "recipientContains": ["ventes@"],
                "importance": "high",
            }, {
                "copyToFolder": folder(user, _CLIENTS), "markImportance": "high",
                "assignCategories": ["Clients"],
            }, None),
            ("Comptes rendus de projet", {
                "bodyOrSubjectContains": ["compte rendu"], "headerContains": ["X-Projet: 2025"],
                "sentToAddresses": [_recipient(user.display_name, user.mail)],
                "withinSizeRange": {"minimumSize": 0, "maximumSize": 2048},
            }, {"moveToFolder": folder(user, _MINUTES), "stopProcessingRules": False}, None),
            ("Confidentiel : transfert à l'assistante", {
                "sentToMe": True, "sensitivity": "confidential",
            }, {"forwardTo": [assistant], "stopProcessingRules": True}, None),
            ("Messagerie vocale", {"isVoicemail": True, "sentOnlyToMe": True},
             {"redirectTo": [assistant]}, None),
            ("Accusés et réponses automatiques", {
                "isAutomaticReply": True, "isReadReceipt": True, "isNonDeliveryReport": True,
            }, {"delete": True}, None),
            ("Invitations", {"isMeetingRequest": True},
             {"assignCategories": ["Réunions"]}, {"isMeetingResponse": True}),
            ("Publicités (désactivée)", {"notSentToMe": True, "categories": ["Publicité"]},
             {"permanentDelete": True}, None),
            ("Suivi : pièce jointe au manager", {
                "messageActionFlag": "followUp", "isEncrypted": True, "isSigned": True,
                "isPermissionControlled": True, "isApprovalRequest": True,
                "isAutomaticForward": True,
            }, {"forwardAsAttachmentTo": [_recipient("Manager", _sibling(user, "manager"))]},
             None),
            ("Messages en copie", {"sentCcMe": True, "sentToOrCcMe": True},
             {"markAsRead": True, "assignCategories": ["Pour information"]}, None),
            ("Ancien classement", {"subjectContains": ["[2019]"]},
             {"moveToFolder": stable_id(FOLDER_ID_PREFIX, user.id, "deleted folder")}, None),
        ]  # fmt: skip
        made = [
            _rule(user, n, name, conditions, actions, exceptions)
            for n, (name, conditions, actions, exceptions) in enumerate(rules, start=1)
        ]
        made[7]["isEnabled"] = False  # "Publicités (désactivée)"
        return made

    def _added(self, user: SandboxUser, mailbox: MailboxRules, tag: int) -> JSON:
        sequence = max((int(r["sequence"]) for r in mailbox.rules), default=0) + 1
        conditions = {"subjectContains": [f"[dossier {tag}]"]}
        actions = {"moveToFolder": self._folder(user, _ARCHIVE), "stopProcessingRules": True}
        return _rule(user, sequence, f"Dossier {tag}", conditions, actions, tag=tag)

    def _folder(self, user: SandboxUser, path: tuple[str, ...]) -> str:
        """The id of the user's folder at `path` (display names from the root); an id no
        folder has when there is none (the rule then names a folder that is gone)."""
        by_id = {f.id: f for f in self.tenant.folders(user.id)}
        for folder in by_id.values():
            names: list[str] = []
            current: SandboxFolder | None = folder
            while current is not None:
                names.insert(0, current.display_name)
                current = by_id.get(current.parent_id)
            if tuple(names) == path:
                return folder.id
        return stable_id(FOLDER_ID_PREFIX, user.id, *path)


def _rule(
    user: SandboxUser,
    sequence: int,
    name: str,
    conditions: JSON,
    actions: JSON,
    exceptions: JSON | None = None,
    tag: int = 0,
) -> JSON:
    rule: JSON = {
        "id": stable_id("AQAAA", user.id, "rule", sequence, tag)[:16] + "=",
        "displayName": name,
        "sequence": sequence,
        "isEnabled": True,
        "hasError": False,
        "isReadOnly": False,
        "conditions": copy.deepcopy(conditions),
        "actions": copy.deepcopy(actions),
    }
    if exceptions:
        rule["exceptions"] = copy.deepcopy(exceptions)
    return rule


def _replies(user: SandboxUser, status: str, audience: str, version: int = 0) -> JSON:
    backup = _sibling(user, "accueil")
    internal = _AWAY_HTML.format(backup=backup, name=user.display_name)
    if version:
        internal = internal.replace("16 août", f"{version % 28 + 1} septembre")
    return {
        "status": status,
        "externalAudience": audience,
        "scheduledStartDateTime": {"dateTime": _SCHEDULE[0], "timeZone": TIME_ZONE},
        "scheduledEndDateTime": {"dateTime": _SCHEDULE[1], "timeZone": TIME_ZONE},
        "internalReplyMessage": internal,
        "externalReplyMessage": _AWAY_EXTERNAL,
    }


def _sibling(user: SandboxUser, local: str) -> str:
    """An address of the user's own domain (internal to the tenant)."""
    return f"{local}@{user.mail.rsplit('@', 1)[-1]}"
