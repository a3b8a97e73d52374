"""Filling a sandbox `Tenant` with generated mail: users, folders, messages from a spec.

Generation is deterministic: every random choice comes from `random.Random` streams
keyed by the spec's seed, ids are hashes of the seed and a position, and dates count
back from a fixed epoch. Each mailbox starts with a fixed "showcase" of messages that
covers every MIME kind and state (a draft without Message-ID, a reply, the same
Message-ID in two folders...), then random mail fills the folders by weight. A tenant
loaded from files instead is `loader`'s.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import product

from .mailbox_tally import MailboxTally
from .mime import (
    CATEGORIES,
    CONTACTS,
    DOCX_TYPE,
    FIRST_NAMES,
    LAST_NAMES,
    SUBJECTS,
    Address,
    AttachmentRecipe,
    Kind,
    MessageRecipe,
)
from .tenant import Tenant, TenantSpec
from .tenant_records import (
    EPOCH,
    FOLDER_ID_PREFIX,
    MESSAGE_ID_PREFIX,
    ROOT,
    SandboxFolder,
    SandboxMessage,
    SandboxUser,
    colleagues,
    message_from_recipe,
    stable_id,
)

# --- the generated mailbox --------------------------------------------------------------------


@dataclass(frozen=True)
class _FolderPlan:
    path: tuple[str, ...]
    well_known_name: str | None = None
    hidden: bool = False
    weight: int = 0  # share of the randomly placed messages


_INBOX = ("Boîte de réception",)
_SENT = ("Éléments envoyés",)
_DRAFTS = ("Brouillons",)
_MINUTES = ("Projets", "2024/2025", "Comptes rendus")
FOLDER_PLAN = (
    _FolderPlan(_INBOX, "inbox", weight=50),
    _FolderPlan((*_INBOX, "Clients.Europe"), weight=5),
    _FolderPlan((*_INBOX, "Factures & Devis"), weight=4),
    _FolderPlan(_DRAFTS, "drafts", weight=2),
    _FolderPlan(_SENT, "sentitems", weight=12),
    _FolderPlan(("Éléments supprimés",), "deleteditems", weight=4),
    _FolderPlan(("Courrier indésirable",), "junkemail", weight=2),
    _FolderPlan(("Boîte d'envoi",), "outbox"),
    _FolderPlan(("Archive",), "archive", weight=7),
    _FolderPlan(("Historique des conversations",), "conversationhistory", weight=1),
    _FolderPlan(("Problèmes de synchronisation",), "syncissues", hidden=True),
    _FolderPlan(("Problèmes de synchronisation", "Conflits"), "conflicts", hidden=True),
    _FolderPlan(("Projets",), weight=1),
    _FolderPlan(("Projets", "2024/2025"), weight=3),
    _FolderPlan(_MINUTES, weight=3),
    _FolderPlan((*_MINUTES, "Équipe 🚀"), weight=1),
    _FolderPlan(("📁 Perso",), weight=2),
    _FolderPlan(("📁 Perso", "Vacances été"), weight=3),
)
_PLACED = [plan for plan in FOLDER_PLAN if plan.weight]
_KINDS: tuple[Kind, ...] = ("plain", "alternative", "mixed", "related", "calendar")
_KIND_WEIGHTS = (35, 37, 12, 8, 8)
_FILES = (
    ("Rapport annuel.pdf", "application/pdf"),
    ("Présentation client.pdf", "application/pdf"),
    ("Compte rendu.docx", DOCX_TYPE),
    ("Photos chantier.jpg", "image/jpeg"),
)


@dataclass(frozen=True)
class _Showcase:
    """A fixed message each generated mailbox starts with (so small tenants cover every case)."""

    folder: tuple[str, ...]
    kind: Kind
    subject: str
    is_read: bool = True
    flag_status: str = "notFlagged"
    last_verb: int | None = None
    categories: tuple[str, ...] = ()
    attachments: tuple[AttachmentRecipe, ...] = ()


_PDF = AttachmentRecipe("Facture n° 2024-117.pdf", "application/pdf", 180_000)
_DOCX = AttachmentRecipe("Devis révisé.docx", DOCX_TYPE, 42_000)
_X, _RED_X = ("Projet X",), ("Rouge", "Projet X")
_SHOWCASE = (
    _Showcase(_INBOX, "plain", "Réunion équipe – compte rendu", is_read=False),
    _Showcase(_INBOX, "alternative", "Überprüfung der Verträge", flag_status="flagged"),
    _Showcase(_INBOX, "mixed", "Facture et devis", last_verb=102, attachments=(_PDF, _DOCX)),
    _Showcase(_INBOX, "related", "Nouvelle charte graphique 🎨", last_verb=104),
    _Showcase(_INBOX, "calendar", "Invitation : comité de pilotage", is_read=False),
    _Showcase(_DRAFTS, "alternative", "Brouillon – proposition commerciale"),
    _Showcase(_SENT, "plain", "RE: Réunion équipe – compte rendu"),
    _Showcase(_MINUTES, "alternative", "🚀 Projet X", flag_status="complete", categories=_X),
    _Showcase((*_INBOX, "Clients.Europe"), "plain", "Réunion équipe – compte rendu"),
    _Showcase(
        _INBOX,
        "alternative",
        "Point hebdomadaire",
        flag_status="complete",
        last_verb=103,
        categories=_RED_X,
    ),
    _Showcase(("📁 Perso", "Vacances été"), "plain", "Réservation gîte – été 2024"),
)
_COPY_OF = {8: 0}  # showcase 8 is showcase 0 copied into another folder: same Message-ID
_REPLY_TO = {6: 0}  # showcase 6 answers showcase 0


def generate_tenant(
    spec: TenantSpec,
) -> tuple[Tenant, Callable[[int], None], Callable[[int], tuple[int, int]]]:
    """Users and folders for `spec`, what fills the messages of the user at an index, and
    what tallies them (visible messages, bytes) without storing any.

    Users filled in index order get the same messages, ids and sequence numbers whenever
    it happens: the same spec gives the same tenant."""
    tenant = Tenant(seed=spec.seed, spec=spec)
    users = _users(spec)
    large = _large_slots(spec)
    mailboxes = {index: _Mailbox(tenant, spec, index, user) for index, user in enumerate(users)}

    def correspondents(index: int) -> list[Address]:
        return [*((u.display_name, u.mail) for u in colleagues(users, users[index].id)), *CONTACTS]

    def fill(index: int) -> None:
        mailboxes.pop(index).fill(correspondents(index), large.get(index, set()))

    def tally(index: int) -> tuple[int, int]:
        # The same messages are made (each one's size needs its MIME built once), none kept.
        counter = MailboxTally()
        mailbox = _Mailbox(counter, spec, index, users[index])  # type: ignore[arg-type]  # a tally takes the tenant's writes (add_user, add_folder, add_message)
        mailbox.fill(correspondents(index), large.get(index, set()))
        return counter.items, counter.bytes

    return tenant, fill, tally


def _users(spec: TenantSpec) -> list[SandboxUser]:
    rng = random.Random(f"{spec.seed}|users")
    names = list(product(FIRST_NAMES, LAST_NAMES))
    many = spec.users > len(names)
    picks = rng.choices(names, k=spec.users) if many else rng.sample(names, spec.users)
    width = max(2, len(str(spec.users)))
    users = []
    for number, (first, last) in enumerate(picks, start=1):
        upn = f"user{number:0{width}d}@{spec.domain}"
        guid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        users.append(SandboxUser(id=guid, upn=upn, display_name=f"{first} {last}", mail=upn))
    return users


def _large_slots(spec: TenantSpec) -> dict[int, set[int]]:
    """Which (user index, message index) carry the big attachment: the newest random ones."""
    slots: dict[int, set[int]] = {}
    if spec.large_attachment_bytes <= 0 or spec.users <= 0:
        return slots
    for k in range(spec.large_messages):
        position = spec.messages - 1 - k // spec.users
        if position >= len(_SHOWCASE):
            slots.setdefault(k % spec.users, set()).add(position)
    return slots


def _add_folders(
    tenant: Tenant, seed: int, index: int, user_id: str, root: str
) -> dict[tuple[str, ...], str]:
    ids: dict[tuple[str, ...], str] = {}
    for plan in FOLDER_PLAN:
        folder_id = stable_id(FOLDER_ID_PREFIX, seed, index, *plan.path)
        parent = ids[plan.path[:-1]] if len(plan.path) > 1 else root
        name = plan.path[-1]
        tenant.add_folder(
            SandboxFolder(folder_id, user_id, name, parent, plan.well_known_name, plan.hidden)
        )
        ids[plan.path] = folder_id
    return ids


class _Mailbox:
    """Plans and adds one generated mailbox's messages, oldest first."""

    def __init__(self, tenant: Tenant, spec: TenantSpec, index: int, user: SandboxUser) -> None:
        self.tenant, self.spec, self.index, self.user = tenant, spec, index, user
        self.rng = random.Random(f"{spec.seed}|mailbox|{index}")
        self.correspondents: list[Address] = []
        self.showcase: list[MessageRecipe] = []
        root = stable_id(FOLDER_ID_PREFIX, spec.seed, index, ROOT)
        tenant.add_user(user, root)
        self.folders = _add_folders(tenant, spec.seed, index, user.id, root)

    def fill(self, correspondents: list[Address], large: set[int]) -> None:
        self.correspondents = correspondents
        count = self.spec.messages
        for n in range(count):
            step = timedelta(minutes=(count - n) * 317 - self.rng.randrange(300))
            received = EPOCH - step
            if n < len(_SHOWCASE):
                message, recipe = self._showcase(n, received)
            else:
                message, recipe = self._random(n, received, n in large)
            self.tenant.add_message(message, recipe)

    def _recipe(
        self, n: int, kind: Kind, subject: str, folder: tuple[str, ...], received: datetime
    ) -> MessageRecipe:
        me = (self.user.display_name, self.user.mail)
        other = self.rng.choice(self.correspondents)
        outgoing = folder in (_SENT, _DRAFTS)
        sender, to = (me, other) if outgoing else (other, me)
        draft = folder == _DRAFTS
        sent = received if draft else received - timedelta(seconds=self.rng.randint(5, 600))
        domain = sender[1].rsplit("@", 1)[1]
        message_id = None if draft else f"<{self.rng.getrandbits(80):020X}@{domain}>"
        small = kind in ("alternative", "related")  # these carry the text twice (plain + html)
        return MessageRecipe(
            seed=f"{self.spec.seed}|message|{self.index}|{n}",
            kind=kind,
            subject=subject,
            sender=sender,
            to=(to,),
            date=sent,
            message_id=message_id,
            body_bytes=self.rng.randint(1000, 8000 if small else 16000),
        )

    def _message(
        self, recipe: MessageRecipe, n: int, folder: tuple[str, ...], received: datetime
    ) -> SandboxMessage:
        message_id = stable_id(MESSAGE_ID_PREFIX, self.spec.seed, self.index, n)
        message = message_from_recipe(
            recipe, message_id, self.user.id, self.folders[folder], received
        )
        if folder == _DRAFTS:
            message = replace(message, is_draft=True, sent=None)
        return message

    def _showcase(self, n: int, received: datetime) -> tuple[SandboxMessage, MessageRecipe]:
        case = _SHOWCASE[n]
        recipe = self._recipe(n, case.kind, case.subject, case.folder, received)
        if n in _COPY_OF:
            recipe = self.showcase[_COPY_OF[n]]
        elif n in _REPLY_TO:
            original = self.showcase[_REPLY_TO[n]]
            recipe = replace(recipe, to=(original.sender,), in_reply_to=original.message_id)
        recipe = replace(recipe, attachments=case.attachments)
        self.showcase.append(recipe)
        message = replace(
            self._message(recipe, n, case.folder, received),
            is_read=case.is_read,
            flag_status=case.flag_status,
            last_verb=case.last_verb,
            categories=list(case.categories),
        )
        return message, recipe

    def _random(
        self, n: int, received: datetime, large: bool
    ) -> tuple[SandboxMessage, MessageRecipe]:
        rng = self.rng
        folder = _INBOX if large else rng.choices(_PLACED, [p.weight for p in _PLACED])[0].path
        kind = "mixed" if large else rng.choices(_KINDS, _KIND_WEIGHTS)[0]
        subject = rng.choice(SUBJECTS)
        if folder == _SENT or rng.random() < 0.15:
            subject = f"RE: {subject}"
        recipe = self._recipe(n, kind, subject, folder, received)
        if kind == "mixed":
            recipe = replace(recipe, attachments=self._attachments(large))
        message = self._message(recipe, n, folder, received)
        if folder in (_SENT, _DRAFTS):
            return message, recipe
        return self._random_state(message), recipe

    def _attachments(self, large: bool) -> tuple[AttachmentRecipe, ...]:
        if large:
            backup = AttachmentRecipe(
                "Sauvegarde projet.zip", "application/zip", self.spec.large_attachment_bytes
            )
            return (backup,)
        big = self.rng.random() < 0.4  # one big file, or one or two small ones
        chosen = self.rng.sample(_FILES, 1 if big else self.rng.choice((1, 1, 2)))
        low, high = (100_000, 1_000_000) if big else (10_000, 90_000)
        return tuple(AttachmentRecipe(n, t, self.rng.randint(low, high)) for n, t in chosen)

    def _random_state(self, message: SandboxMessage) -> SandboxMessage:
        rng = self.rng
        roll = rng.random()
        flag = "flagged" if roll < 0.08 else "complete" if roll < 0.12 else "notFlagged"
        roll = rng.random()
        verb = 102 if roll < 0.10 else 103 if roll < 0.13 else 104 if roll < 0.17 else None
        categories = rng.sample(CATEGORIES, rng.randint(1, 2)) if rng.random() < 0.08 else []
        return replace(
            message,
            is_read=rng.random() > 0.2,
            flag_status=flag,
            last_verb=verb,
            categories=categories,
        )
