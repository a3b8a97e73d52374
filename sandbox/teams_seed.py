"""Seeding the sandbox's Teams: the layout and the message content.

Builds on `teams_data` (the model). Two teams by default: "Projet Hirondelle" (whose
SharePoint site `drive_data` seeds: reference attachments point at its files) and "Vie
de bureau", each with standard, private and shared channels. Content is French with
emoji, as a French tenant's would be; regular posts and replies sometimes carry a
mention, reactions, an edit or (replies) a deletion. The showcase of every other kind
of message lives in `teams_showcase`, the mutations in `teams_mutations`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .drive_data import guid
from .teams_data import (
    END,
    SPREAD,
    ChannelMessage,
    Member,
    SandboxChannel,
    SandboxGroup,
    SandboxTeam,
    Sender,
    TeamsData,
    iso_ms,
)

if TYPE_CHECKING:
    from .drive_data import SandboxDrives
    from .tenant import TenantSpec
    from .tenant_records import SandboxUser

JSON = dict[str, Any]
GRAPH = "https://graph.microsoft.com/v1.0"  # the service writes its own address into bodies
BIG_THREAD_REPLIES = 1200
SITE = "ProjetHirondelle"
FALLBACK_LIBRARY = "https://contoso.sharepoint.com/sites/ProjetHirondelle/Shared Documents"
CARD = "application/vnd.microsoft.card.adaptive"
BOT = Sender("application", "5e3ce6c0-2b1f-4285-8d4b-75ee78787346", "Suivi de chantier")

# (display name, mail nickname, description, visibility, channels: (name, description, type))
_TEAMS = (
    (
        "Projet Hirondelle",
        SITE,
        "Chantier de la nouvelle médiathèque : plans, photos et comptes rendus 🐦",
        "private",
        (
            ("General", None, "standard"),
            ("Chantier", "Suivi quotidien du chantier 🏗️", "standard"),
            ("Direction", "Budget et arbitrages (réservé)", "private"),
            ("Partenaires", "Échanges avec le bureau d'études", "shared"),
        ),
    ),
    (
        "Vie de bureau",
        "ViedeBureau",
        "Annonces, sorties et entraide ☕",
        "public",
        (
            ("General", None, "standard"),
            ("Annonces", "Les nouvelles de la maison 📣", "standard"),
            ("Entraide informatique", None, "standard"),
            ("Ressources humaines", "Questions confidentielles", "private"),
        ),
    ),
)
POSTS = (
    "Bonjour à tous, la réunion de chantier est déplacée à jeudi 9 h.",
    "Les plans du niveau 2 sont à jour dans le dossier partagé 📐",
    "Quelqu'un a les clés du local technique ? 🔑",
    "Livraison des menuiseries prévue lundi, prévoir l'accès camion 🚚",
    "Merci pour la relecture, j'ai intégré vos remarques 🙏",
    "Attention : coupure d'électricité demain matin entre 8 h et 10 h ⚡",
    "Le compte rendu de la réunion est en ligne.",
    "Photos de l'avancement du gros œuvre ce matin 📸",
    "On fait le point vendredi autour d'un café ☕ ?",
    "Bravo à l'équipe pour la réception des travaux 🎉",
    "Pouvez-vous valider le devis de l'électricien avant midi ?",
    "Rappel : port du casque obligatoire sur le chantier ⛑️",
    "Le bureau d'études propose une variante pour la charpente.",
    "Je serai en congé la semaine prochaine, Élodie prend le relais.",
    "Où en est la commande des luminaires ? 💡",
    "Les élèves de l'école voisine visiteront le chantier en mai 🧒",
    "Petit déjeuner offert mardi pour fêter l'avancement 🥐",
)
REPLIES = (
    "D'accord 👍",
    "Merci !",
    "Je regarde ça tout de suite.",
    "Bien reçu, merci 🙏",
    "Parfait, à jeudi.",
    "Je ne serai pas disponible, désolé 😕",
    "Oui, c'est validé ✅",
    "Peux-tu préciser l'heure ?",
    "Vu avec le conducteur de travaux, c'est OK.",
)
# reactionType -> displayName: the classic types and a few Unicode ones.
_REACTIONS = {
    "like": "Like",
    "heart": "Heart",
    "laugh": "Laugh",
    "surprised": "Surprised",
    "sad": "Sad",
    "angry": "Angry",
    "💯": "Hundred points",
    "🎉": "Party popper",
    "👀": "Eyes",
}
HOSTILE_BODY = (
    "<p>Cliquez <a href=\"javascript:alert('xss')\">ici</a> pour le planning 📅</p>"
    "<script>alert('xss')</script>"
    '<iframe src="https://evil.example/frame"></iframe>'
    '<img src="https://evil.example/x.png" onerror="alert(1)">'
    '<p onclick="steal()" style="color:red">Texte piégé</p>'
    '<object data="https://evil.example/x.swf"></object>'
)


def user_identity(user_id: str, name: str | None, tenant_id: str, typed: bool = True) -> JSON:
    """A teamworkUserIdentity; `typed` False leaves out its `@odata.type` (as a chat's
    system events give it)."""
    identity: JSON = {"@odata.type": "#microsoft.graph.teamworkUserIdentity"} if typed else {}
    return identity | {
        "id": user_id,
        "displayName": name,
        "userIdentityType": "aadUser",
        "tenantId": tenant_id,
    }


def initiator(user: JSON | None) -> JSON:
    """Who caused a system event: a user (None when nobody is known), never an app here."""
    return {"application": None, "device": None, "user": user}


def system_event_fields(detail: JSON) -> JSON:
    """A system event message's fields: its eventDetail, and the body Teams gives it."""
    return {
        "body": "<systemEventMessage/>",
        "message_type": "systemEventMessage",
        "event_detail": detail,
    }


def reference_attachment(attachment_id: str, url: str, name: str) -> JSON:
    """A `reference` attachment: a file of the team's library, linked from a message."""
    return {
        "id": attachment_id,
        "contentType": "reference",
        "contentUrl": url,
        "content": None,
        "name": name,
        "thumbnailUrl": None,
        "teamsAppId": None,
    }


@dataclass
class SeedPlan:
    """What seeding needs besides the model: users, the site's files and the generator."""

    data: TeamsData
    spec: TenantSpec
    users: list[SandboxUser]
    files: list[tuple[str, str, str]]  # (attachment id, web URL, name)
    missing_file: tuple[str, str, str]
    rng: random.Random
    showcase_channel: str | None = None
    big_thread_channel: str | None = None

    @classmethod
    def build(
        cls,
        data: TeamsData,
        spec: TenantSpec,
        users: list[SandboxUser],
        drives: Callable[[], SandboxDrives],
    ) -> SeedPlan:
        files, library = site_files(drives, spec.seed)
        name = "Ancien planning (supprimé).xlsx"
        missing = (guid(spec.seed, "missing"), f"{library}/General/{quote(name)}", name)
        return cls(data, spec, users, files, missing, random.Random(f"{spec.seed}|teams"))

    def layout(self) -> Iterator[tuple[SandboxTeam, list[SandboxChannel]]]:
        """The teams (and one group without a team), each with its channels."""
        if not self.users:
            return
        seed = self.spec.seed
        created = END - SPREAD - timedelta(days=30)
        self.data.groups.append(
            SandboxGroup(
                guid(seed, "group", "CE"), "Comité d'entreprise", "Vie sociale", "CE", created
            )
        )
        teams = [self._team(index, created) for index in range(self.spec.teams)]
        for index, (team, channels) in enumerate(teams):
            if index == 0 and len(teams) > 1:  # the shared channel is shared with team 2
                channels = [
                    dataclasses.replace(c, shared_with=(teams[1][0].id,))
                    if c.membership_type == "shared"
                    else c
                    for c in channels
                ]
            if index == 0:
                self.showcase_channel = channels[0].id
                if self.spec.big_thread and len(channels) > 1:
                    self.big_thread_channel = channels[1].id
            yield team, channels

    def _team(self, index: int, created: datetime) -> tuple[SandboxTeam, list[SandboxChannel]]:
        seed = self.spec.seed
        channels: tuple[tuple[str, str | None, str], ...]
        if index < len(_TEAMS):
            name, nickname, description, visibility, channels = _TEAMS[index]
        else:
            name, nickname = f"Équipe {index + 1}", f"Equipe{index + 1}"
            description, visibility = "Une équipe de plus", "private"
            channels = (("General", None, "standard"), ("Projets", None, "standard"))
        owner = self.users[-1] if index == 1 else self.users[index % len(self.users)]
        members = tuple(
            Member(u.id, u.display_name, u.mail, ("owner",) if u is owner else ())
            for u in self.users
        )
        team = SandboxTeam(
            guid(seed, "group", nickname), name, description, nickname, visibility, created, members
        )
        built = [self._channel(team, owner, number, spec) for number, spec in enumerate(channels)]
        return team, built

    def _channel(
        self,
        team: SandboxTeam,
        owner: SandboxUser,
        number: int,
        spec: tuple[str, str | None, str],
    ) -> SandboxChannel:
        name, description, membership = spec
        identifier = "19:" + guid(self.spec.seed, "channel", team.id, name).replace("-", "")
        members = team.members
        if membership != "standard":  # the owner and one colleague
            others = [m for m in team.members if m.user_id != owner.id][:1]
            mine = [m for m in team.members if m.user_id == owner.id]
            members = tuple(mine + others)
        created = team.created + timedelta(days=number)
        return SandboxChannel(
            identifier + "@thread.tacv2",
            team.id,
            name,
            description,
            membership,
            created,
            members,
        )


def site_files(
    drives: Callable[[], SandboxDrives], seed: int
) -> tuple[list[tuple[str, str, str]], str]:
    """Files of the team's site (the links the files workload rewrites), and its library URL.

    The URL is built as the drive service writes an item's webUrl.
    """
    try:
        found = drives()
        site = found.site(SITE)
    except KeyError:
        names = ("General/Compte rendu 01.docx", "Chantier/Plans/Plan de masse 02.png")
        files = [
            (guid(seed, "file", p), f"{FALLBACK_LIBRARY}/{quote(p)}", p.rsplit("/", 1)[-1])
            for p in names
        ]
        return files, FALLBACK_LIBRARY
    files, library = [], FALLBACK_LIBRARY
    for drive in found.site_drives(site.id):
        library = drive.web_url
        for item in found.items(drive.id):
            path = found.path(item)
            if item.kind == "file" and path.split("/")[0] in ("General", "Chantier"):
                files.append((item.guid.lower(), f"{drive.web_url}/{quote(path)}", item.name))
        break  # the Documents library
    return sorted(files, key=lambda f: f[1])[:4], library


# --- messages -----------------------------------------------------------------------------------


@dataclass
class Draft:
    """A message being written: its id and time are fixed first, since bodies refer to them."""

    channel: SandboxChannel
    message_id: str
    created: datetime
    root_id: str
    fields: JSON = field(default_factory=dict)

    def image_url(self, hosted_id: str) -> str:
        path = f"teams/{self.channel.team_id}/channels/{self.channel.id}/messages/"
        path += (
            self.message_id
            if self.root_id == self.message_id
            else (f"{self.root_id}/replies/{self.message_id}")
        )
        return f"{GRAPH}/{path}/hostedContents/{hosted_id}/$value"


def write(
    data: TeamsData,
    channel: SandboxChannel,
    moment: datetime,
    sender: Sender | None,
    compose: Callable[[Draft], JSON],
    root_id: str | None = None,
) -> ChannelMessage:
    """Allocate the message's id, let `compose` fill its fields, store it."""
    message_id, created = data.new_id(channel.id, moment)
    draft = Draft(channel, message_id, created, root_id or message_id)
    fields = compose(draft)
    edited = fields.get("edited")
    deleted = fields.get("deleted")
    message = ChannelMessage(
        id=message_id,
        team_id=channel.team_id,
        channel_id=channel.id,
        root_id=draft.root_id,
        created=created,
        modified=deleted or edited or created,
        seq=0,
        sender=sender,
        **fields,
    )
    return data.store(message)


class Composer:
    """Message content for one channel: regular posts and replies, system events, showcase."""

    def __init__(
        self,
        data: TeamsData,
        rng: random.Random,
        channel: SandboxChannel,
        plan: SeedPlan | None = None,
    ) -> None:
        self.data, self.rng, self.channel, self.plan = data, rng, channel, plan
        self.tenant = data.tenant_id
        self.authors = [Sender("user", m.user_id, m.display_name) for m in channel.members]

    def author(self) -> Sender:
        return self.rng.choice(self.authors)

    def mention(self, index: int, who: Sender) -> tuple[str, JSON]:
        html = f'<at id="{index}">{who.display_name}</at>'
        mentioned: JSON = {"application": None, "device": None, "conversation": None, "tag": None}
        mentioned["user"] = user_identity(who.id, who.display_name, self.tenant)
        return html, {"id": index, "mentionText": who.display_name, "mentioned": mentioned}

    def reaction(self, kind: str, who: Sender, moment: datetime) -> JSON:
        return {
            "reactionType": kind,
            "displayName": _REACTIONS.get(kind, kind),
            "reactionContentUrl": None,
            "createdDateTime": iso_ms(moment),
            "user": {
                "application": None,
                "device": None,
                "user": user_identity(who.id, None, self.tenant),
            },
        }

    def reactions(self, moment: datetime, count: int) -> tuple[JSON, ...]:
        kinds = self.rng.sample(sorted(_REACTIONS), count)
        later = moment + timedelta(minutes=self.rng.randint(1, 90))
        return tuple(self.reaction(kind, self.author(), later) for kind in kinds)

    def regular(self, draft: Draft, texts: tuple[str, ...], reply_to: Sender | None) -> JSON:
        """A plain post or reply, sometimes with a mention, reactions, an edit or a deletion."""
        rng = self.rng
        text = " ".join(rng.sample(texts, rng.randint(1, 2)))
        fields: JSON = {"mentions": ()}
        if rng.random() < 0.15:
            html, mention = self.mention(0, reply_to or self.author())
            text, fields["mentions"] = f"{html}, {text}", (mention,)
        fields["body"] = f"<p>{text}</p>"
        if rng.random() < 0.25:
            fields["reactions"] = self.reactions(draft.created, rng.randint(1, 3))
        chance = rng.random()
        if draft.root_id != draft.message_id and chance < 0.03:
            return deleted_fields(draft.created + timedelta(minutes=rng.randint(1, 30)))
        if chance < 0.09:
            fields["edited"] = draft.created + timedelta(minutes=rng.randint(1, 120))
            fields["body"] += "<p><em>(précision ajoutée)</em></p>"
        return fields

    def system_event(self, draft: Draft) -> JSON:
        owner = next((m for m in self.channel.members if "owner" in m.roles), None)
        by = initiator(None if owner is None else user_identity(owner.user_id, None, self.tenant))
        detail: JSON
        if self.channel.display_name == "General":
            detail = {
                "@odata.type": "#microsoft.graph.membersAddedEventMessageDetail",
                "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
                "members": [
                    user_identity(m.user_id, None, self.tenant) for m in self.channel.members
                ],
                "initiator": by,
            }
        else:
            detail = {
                "@odata.type": "#microsoft.graph.channelAddedEventMessageDetail",
                "channelId": self.channel.id,
                "channelDisplayName": self.channel.display_name,
                "initiator": by,
            }
        return system_event_fields(detail)


def deleted_fields(moment: datetime) -> JSON:
    """A deleted message keeps its place and ids; its content is gone."""
    return {"body": "", "deleted": moment, "mentions": (), "attachments": (), "reactions": ()}


def seed_channel(
    data: TeamsData, plan: SeedPlan, team: SandboxTeam, channel: SandboxChannel
) -> None:
    """The channel's posts over the 14 months before "now", each with its replies."""
    from .teams_showcase import showcase  # the showcase builds on this module

    composer = Composer(data, plan.rng, channel, plan)
    rng, posts = plan.rng, plan.spec.posts_per_channel
    pieces = showcase(composer) if channel.id == plan.showcase_channel else []
    slots = (
        {
            1 + round(k * (posts - 2) / max(1, len(pieces) - 1)): piece
            for k, piece in enumerate(pieces)
        }
        if posts > len(pieces)
        else dict(enumerate(pieces[: posts - 1], 1))
    )
    big = posts // 2 if channel.id == plan.big_thread_channel else -1
    start = END - SPREAD
    for index in range(posts):
        moment = start + SPREAD * ((index + 0.5 + rng.uniform(-0.4, 0.4)) / max(1, posts))
        if index == 0:
            write(data, channel, moment, None, composer.system_event)
            continue
        if index in slots:
            slots[index](moment)
            continue
        author = composer.author()
        root = write(data, channel, moment, author, lambda d: composer.regular(d, POSTS, None))
        count = BIG_THREAD_REPLIES if index == big else rng.randint(0, plan.spec.replies_per_post)
        seed_replies(data, composer, root, author, count)


def seed_replies(
    data: TeamsData, composer: Composer, root: ChannelMessage, author: Sender, count: int
) -> None:
    moment = root.created
    for _ in range(count):
        moment += timedelta(minutes=composer.rng.randint(1, 180) if count < 50 else 1)
        write(
            data,
            composer.channel,
            moment,
            composer.author(),
            lambda d: composer.regular(d, REPLIES, author),
            root.id,
        )
