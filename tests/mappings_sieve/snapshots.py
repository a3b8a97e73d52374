"""A realistic snapshot of one French user's Outlook rules and automatic replies, exercising
every condition, exception and action of Graph's messageRulePredicates and
messageRuleActions at least once, plus the folder names the mail workload gave.

The shapes are Graph's (https://learn.microsoft.com/en-us/graph/api/resources/messagerule,
https://learn.microsoft.com/en-us/graph/api/resources/automaticrepliessetting); the snapshot
itself is the rules workload's item content (see `mappings.sieve`).
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

USER = {
    "id": "6f1a2b3c-0000-4000-8000-00000000a11c",
    "upn": "alice@contoso.fr",
    "mail": "alice@contoso.fr",
    "displayName": "Alice Martin-Lefèvre",
}
DOMAINS = ["contoso.fr", "contoso.onmicrosoft.com"]

FOLDERS = {
    "AAMk-factures": {"path": ["Boîte de réception", "Factures"], "roles": ["inbox", None]},
    "AAMk-projets": {"path": ["Projets", 'Hirondelle "2027"'], "roles": [None, None]},
    "AAMk-lettres": {"path": ["Lettres d'information"], "roles": [None]},
    "AAMk-archive": {"path": ["Archives"], "roles": ["archive"]},
    "AAMk-supprimes": {"path": ["Éléments supprimés"], "roles": ["deleteditems"]},
    # named by a rule but not migrated by the mail workload yet: the mapping names it
    "AAMk-clients": {"path": ["Clients", "Dupont & Fils. SA"], "roles": [None, None]},
}
"""Every folder a rule names; "AAMk-disparu" (rule 11) no longer exists."""

FOLDER_NAMES = {
    "AAMk-factures": "INBOX/Factures",
    "AAMk-projets": 'Projets/Hirondelle "2027"',
    "AAMk-lettres": "Lettres d'information",
    "AAMk-archive": "Archive",
    "AAMk-supprimes": "Trash",
}
"""Graph folder id -> the final IMAP name the mail workload gave it (on Dovecot, "/")."""


def _who(address: str, name: str = "") -> dict[str, Any]:
    return {"emailAddress": {"name": name or address, "address": address}}


def _rule(
    sequence: int,
    name: str,
    conditions: dict[str, Any],
    actions: dict[str, Any],
    exceptions: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": f"AQAAAJ5dZqA{sequence:02d}=",
        "displayName": name,
        "sequence": sequence,
        "isEnabled": extra.get("isEnabled", True),
        "hasError": extra.get("hasError", False),
        "isReadOnly": False,
        "conditions": conditions,
        "actions": actions,
        **({"exceptions": exceptions} if exceptions else {}),
    }


RULES = [
    _rule(
        1,
        "Factures fournisseurs",
        {
            "fromAddresses": [_who("compta@fournisseur.fr", "Comptabilité Fournisseur")],
            "subjectContains": ["facture", "Échéance"],
        },
        {
            "moveToFolder": "AAMk-factures",
            "markAsRead": True,
            "assignCategories": ["Comptabilité"],
            "stopProcessingRules": True,
        },
        {"senderContains": ["relance-auto"]},
    ),
    _rule(
        2,
        "Projet Hirondelle",
        {"bodyOrSubjectContains": ["Hirondelle"], "hasAttachments": True},
        {"copyToFolder": "AAMk-projets", "assignCategories": ["Projet X", "Important"]},
    ),
    _rule(
        3,
        "Lettres d'information",
        {"headerContains": ["List-Id: lettres.example.org"]},
        {"moveToFolder": "AAMk-lettres", "markAsRead": True, "stopProcessingRules": True},
    ),
    _rule(
        4,
        "Direction → assistante",
        {"sentToAddresses": [_who("direction@contoso.fr")], "importance": "high"},
        {
            "forwardTo": [_who("assistante@contoso.fr", "Bérénice")],
            "redirectTo": [_who("archives-direction@partenaire.fr")],
            "markImportance": "high",
        },
    ),
    _rule(
        5,
        "Invitations clients",
        {"isMeetingRequest": True, "senderContains": ["dupont-fils.fr"]},
        {"copyToFolder": "AAMk-clients"},
    ),
    _rule(
        6,
        "Gros messages",
        {"withinSizeRange": {"minimumSize": 5120, "maximumSize": 51200}},
        {"moveToFolder": "AAMk-archive"},
    ),
    _rule(
        7,
        "Publicité",
        {"bodyContains": ["se désabonner"], "senderContains": ["promo"]},
        {"delete": True},
        {"categories": ["Clients"]},
    ),
    _rule(
        8,
        "Suivi à faire",
        {"messageActionFlag": "followUp"},
        {"copyToFolder": "AAMk-factures"},
    ),
    _rule(
        9,
        "Ancienne règle de test",
        {"subjectContains": ["[test]"]},
        {"permanentDelete": True},
        isEnabled=False,
    ),
    _rule(
        10,
        "Copie pour le cabinet",
        {"sentOnlyToMe": True, "subjectContains": ["contrat"]},
        {
            "forwardAsAttachmentTo": [_who("cabinet@avocats.example")],
            "assignCategories": ["Juridique"],
        },
    ),
    _rule(
        11,
        "Vers un dossier disparu",
        {"subjectContains": ["ancien projet"]},
        {"moveToFolder": "AAMk-disparu", "markAsRead": True},
    ),
    _rule(
        12,
        "Confidentiel",
        {"sensitivity": "confidential", "sentToMe": True},
        {"assignCategories": ["Confidentiel"]},
        {"isEncrypted": True, "isSigned": True},
    ),
    _rule(
        13,
        "En copie",
        {"sentCcMe": True, "recipientContains": ["equipe-rh"]},
        {"markAsRead": True},
    ),
    _rule(
        14,
        "Réponses aux invitations",
        {"isMeetingResponse": True},
        {"delete": True, "stopProcessingRules": True},
    ),
    _rule(
        15,
        "Accusés de lecture",
        {"isReadReceipt": True},
        {"permanentDelete": True, "stopProcessingRules": True},
    ),
    _rule(
        16,
        "Non-remises",
        {"isNonDeliveryReport": True},
        {"copyToFolder": "AAMk-archive"},
        {"isAutomaticReply": True},
    ),
    _rule(
        17,
        "Pas pour moi",
        {"notSentToMe": True, "importance": "low"},
        {"moveToFolder": "AAMk-lettres"},
        {"sentToOrCcMe": True, "sensitivity": "private"},
    ),
    _rule(
        18,
        "Messages Exchange",
        {
            "isApprovalRequest": True,
            "isAutomaticForward": True,
            "isPermissionControlled": True,
            "isVoicemail": True,
        },
        {"moveToFolder": "AAMk-archive"},
    ),
    _rule(
        19,
        "Règle en erreur",
        {"subjectContains": ["erreur"]},
        {"moveToFolder": "AAMk-archive"},
        hasError=True,
    ),
    _rule(
        20,
        "Tout le courrier à traiter",
        {},
        {"assignCategories": ["À traiter"], "markImportance": "normal"},
        {"importance": "normal", "sensitivity": "normal"},
    ),
]
"""Every condition, exception and action kind at least once (see the test that checks it)."""

INTERNAL_REPLY = (
    '<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
    "<style>p { margin: 0; }</style>\n</head>\n<body>\n"
    "<p>Bonjour,</p>\n<p>Je suis en congé du 21 décembre au 4 janvier inclus.</p>\n"
    '.<p>Pour toute urgence : <a href="mailto:bob@contoso.fr">Bob Durand</a> '
    "(poste 4242), ou l'équipe « Finances \\ Trésorerie ».</p>\n"
    "<p>Alice</p>\n</body>\n</html>\n"
)
EXTERNAL_REPLY = (
    "Bonjour,\n\nJe suis absente jusqu'au 4 janvier et je n'ai pas accès à mes messages.\n"
    '.\nPour toute urgence, écrivez à "contact@contoso.fr".\n\nCordialement,\nAlice Martin'
)

AUTOMATIC_REPLIES = {
    "status": "scheduled",
    "externalAudience": "all",
    "internalReplyMessage": INTERNAL_REPLY,
    "externalReplyMessage": EXTERNAL_REPLY,
    "scheduledStartDateTime": {
        "dateTime": "2026-12-21T08:00:00.0000000",
        "timeZone": "Romance Standard Time",
    },
    "scheduledEndDateTime": {
        "dateTime": "2027-01-04T09:00:00.0000000",
        "timeZone": "Romance Standard Time",
    },
}

SNAPSHOT: dict[str, Any] = {
    "user": USER,
    "domains": DOMAINS,
    "rules": RULES,
    "automaticRepliesSetting": AUTOMATIC_REPLIES,
    "timeZone": "Romance Standard Time",
    "folders": FOLDERS,
}


def snapshot(**changes: Any) -> dict[str, Any]:
    """A deep copy of `SNAPSHOT` with top-level keys replaced."""
    copied = copy.deepcopy(SNAPSHOT)
    copied.update(copy.deepcopy(changes))
    return copied


def with_window(
    start: datetime, end: datetime, zone: str = "UTC", **replies: Any
) -> dict[str, Any]:
    """`SNAPSHOT` whose automatic replies are scheduled from `start` to `end` (naive times
    in `zone`), other reply settings replaced by `replies`."""
    setting = {
        **AUTOMATIC_REPLIES,
        "scheduledStartDateTime": {
            "dateTime": start.strftime("%Y-%m-%dT%H:%M:%S.0000000"),
            "timeZone": zone,
        },
        "scheduledEndDateTime": {
            "dateTime": end.strftime("%Y-%m-%dT%H:%M:%S.0000000"),
            "timeZone": zone,
        },
        **replies,
    }
    return snapshot(automaticRepliesSetting=setting)
