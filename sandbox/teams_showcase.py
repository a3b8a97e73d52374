"""The showcase of the sandbox's Teams: one root post per kind a migration must handle.

Lives in the first channel of the first team (see `teams_seed`): hostile HTML, mentions of
users and of a channel, inline images, reference attachments, classic, Unicode and custom
reactions, edited and deleted posts, a thread whose replies carry all of these, a bot's
adaptive card, code blocks, a plain-text body, a body over 64 KB, an urgent post with a
subject, links to a present and to a missing file, a system event. Pinned: mutations
leave them alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from .drive_data import guid
from .teams_data import ChannelMessage, HostedContent, Sender, hosted_content_id, tiny_png
from .teams_seed import (
    BOT,
    CARD,
    HOSTILE_BODY,
    Composer,
    Draft,
    deleted_fields,
    initiator,
    reference_attachment,
    system_event_fields,
    user_identity,
    write,
)

JSON = dict[str, Any]


def showcase(composer: Composer) -> list[Callable[[datetime], object]]:
    """One root post per kind a migration must handle, most important first."""
    show = _Showcase(composer)
    return [
        show.hostile,
        show.mentions,
        show.inline_images,
        show.reference_files,
        show.reactions,
        show.edited,
        show.deleted,
        show.thread,
        show.card,
        show.code,
        show.plain_text,
        show.long_post,
        show.urgent,
        show.links,
        show.description_event,
    ]


class _Showcase:
    """Writers of the showcase's posts (pinned: mutations leave them alone)."""

    def __init__(self, composer: Composer) -> None:
        assert composer.plan is not None, "the showcase is written while seeding"
        self.c, self.plan = composer, composer.plan
        self.data, self.channel = composer.data, composer.channel
        self.people = composer.authors

    def _write(
        self,
        moment: datetime,
        compose: Callable[[Draft], JSON],
        sender: Sender | None = None,
        root: ChannelMessage | None = None,
    ) -> ChannelMessage:
        def pinned(draft: Draft) -> JSON:
            return {**compose(draft), "pinned": True}

        who = sender or self.people[0]
        return write(self.data, self.channel, moment, who, pinned, root.id if root else None)

    def _images(self, draft: Draft, count: int) -> tuple[str, tuple[HostedContent, ...]]:
        hosted, html = [], []
        for number in range(count):
            seed = f"{draft.message_id}|image|{number}"
            content = HostedContent(hosted_content_id(seed), "image/png", tiny_png(seed))
            hosted.append(content)
            html.append(
                f'<span><img height="16" src="{draft.image_url(content.id)}" width="24" '
                'style="vertical-align:bottom; width:24px; height:16px"></span>'
            )
        return "<div>" + "".join(html) + "</div>", tuple(hosted)

    def hostile(self, moment: datetime) -> object:
        return self._write(moment, lambda d: {"body": HOSTILE_BODY})

    def mentions(self, moment: datetime) -> object:
        def compose(draft: Draft) -> JSON:
            first, second = self.people[0], self.people[-1]
            html0, mention0 = self.c.mention(0, first)
            html1, mention1 = self.c.mention(1, second)
            channel: JSON = {"application": None, "device": None, "user": None, "tag": None}
            channel["conversation"] = {
                "id": self.channel.id,
                "displayName": self.channel.display_name,
                "conversationIdentityType": "channel",
            }
            mention2 = {"id": 2, "mentionText": self.channel.display_name, "mentioned": channel}
            body = (
                f"<p>Bonjour {html0} et {html1} 👋, point chantier jeudi. Tout le canal "
                f'<at id="2">{self.channel.display_name}</at> est invité.</p>'
            )
            return {"body": body, "mentions": (mention0, mention1, mention2)}

        return self._write(moment, compose, self.people[-1])

    def inline_images(self, moment: datetime) -> object:
        def compose(draft: Draft) -> JSON:
            images, hosted = self._images(draft, 2)
            return {
                "body": f"<div><p>Photos du chantier ce matin 📸</p>{images}</div>",
                "hosted": hosted,
            }

        return self._write(moment, compose)

    def reference_files(self, moment: datetime) -> object:
        def compose(draft: Draft) -> JSON:
            files = self.plan.files[:2]
            markers = "".join(f'<attachment id="{f[0]}"></attachment>' for f in files)
            return {
                "body": f"<p>Le compte rendu et le plan sont prêts 📄</p>{markers}",
                "attachments": tuple(reference_attachment(*f) for f in files),
            }

        return self._write(moment, compose)

    def reactions(self, moment: datetime) -> object:
        def compose(draft: Draft) -> JSON:
            later = draft.created + timedelta(minutes=5)
            kinds = ["like", "heart", "laugh", "surprised", "sad", "angry", "💯", "🎉"]
            reactions = [
                self.c.reaction(kind, self.people[n % len(self.people)], later)
                for n, kind in enumerate(kinds)
            ]
            custom_seed = f"{draft.message_id}|custom"
            custom = HostedContent(
                hosted_content_id(custom_seed), "image/png", tiny_png(custom_seed)
            )
            extra = self.c.reaction("custom", self.people[0], later)
            extra["displayName"] = "hirondelle"
            extra["reactionContentUrl"] = draft.image_url(custom.id)
            return {
                "body": "<p>On a passé le cap des 50 % du gros œuvre ! 🎉🏗️</p>",
                "reactions": tuple(reactions + [extra]),
                "hosted": (custom,),
            }

        return self._write(moment, compose)

    def edited(self, moment: datetime) -> object:
        def compose(draft: Draft) -> JSON:
            return {
                "body": "<p>Réunion jeudi à 10 h (et non 9 h) ✏️</p>",
                "edited": draft.created + timedelta(minutes=20),
            }

        return self._write(moment, compose)

    def deleted(self, moment: datetime) -> object:
        return self._write(moment, lambda d: deleted_fields(d.created + timedelta(minutes=5)))

    def thread(self, moment: datetime) -> object:
        """A root whose replies carry a mention, an image, reactions, an edit and a deletion."""
        root = self._write(moment, lambda d: {"body": "<p>Qui vient à la visite de chantier ?</p>"})
        asker = self.people[0]

        def mention(draft: Draft) -> JSON:
            html, found = self.c.mention(0, asker)
            return {"body": f"<p>{html} moi, avec mon casque ⛑️</p>", "mentions": (found,)}

        def image(draft: Draft) -> JSON:
            images, hosted = self._images(draft, 1)
            return {"body": f"<p>Le plan d'accès :</p>{images}", "hosted": hosted}

        def liked(draft: Draft) -> JSON:
            later = draft.created + timedelta(minutes=2)
            return {
                "body": "<p>Présent 👍</p>",
                "reactions": (self.c.reaction("like", asker, later),),
            }

        def edited(draft: Draft) -> JSON:
            return {
                "body": "<p>Je viens à 14 h finalement</p>",
                "edited": draft.created + timedelta(minutes=3),
            }

        writers = [mention, image, liked, edited, lambda d: deleted_fields(d.created)]
        for number, compose in enumerate(writers, 1):
            who = self.people[number % len(self.people)]
            self._write(moment + timedelta(minutes=10 * number), compose, who, root)
        return root

    def card(self, moment: datetime) -> object:
        def compose(draft: Draft) -> JSON:
            card_id = guid(draft.message_id, "card").replace("-", "")
            content = {
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": "Point d'avancement", "weight": "bolder"},
                    {
                        "type": "FactSet",
                        "facts": [
                            {"title": "Lot", "value": "Gros œuvre"},
                            {"title": "Avancement", "value": "72 %"},
                        ],
                    },
                ],
                "actions": [
                    {
                        "type": "Action.OpenUrl",
                        "title": "Ouvrir le planning",
                        "url": self.plan.missing_file[1],
                    }
                ],
            }
            attachment = {
                "id": card_id,
                "contentType": CARD,
                "contentUrl": None,
                "content": json.dumps(content, ensure_ascii=False),
                "name": None,
                "thumbnailUrl": None,
                "teamsAppId": None,
            }
            return {
                "body": f'<attachment id="{card_id}"></attachment>',
                "attachments": (attachment,),
            }

        return self._write(moment, compose, BOT)

    def code(self, moment: datetime) -> object:
        body = (
            "<p>Le calcul des surfaces et la requête du planning :</p>"
            '<codeblock class="Python"><code>def surface(largeur, longueur):<br>'
            "    return largeur * longueur  # m²<br></code></codeblock>"
            '<codeblock class="SQL"><code>SELECT lot, avancement FROM planning '
            "WHERE avancement &lt; 100;</code></codeblock>"
        )
        return self._write(moment, lambda d: {"body": body})

    def plain_text(self, moment: datetime) -> object:
        body = 'Message en texte brut : 5 < 6 & "guillemets" ✅'
        return self._write(moment, lambda d: {"body": body, "content_type": "text"})

    def long_post(self, moment: datetime) -> object:
        paragraph = (
            "Article {n} : l'entreprise titulaire du lot s'engage à respecter le planning "
            "général des travaux, les consignes de sécurité et la charte chantier propre. 🧱"
        )
        body, number = "", 0
        while len(body.encode()) < 70 * 1024:
            number += 1
            body += f"<p>{paragraph.format(n=number)}</p>"
        return self._write(moment, lambda d: {"body": body, "subject": "Cahier des charges"})

    def urgent(self, moment: datetime) -> object:
        return self._write(
            moment,
            lambda d: {
                "body": "<p>Zone de grutage interdite au public jusqu'à nouvel ordre ⚠️</p>",
                "subject": "Sécurité sur le chantier",
                "importance": "urgent",
            },
        )

    def links(self, moment: datetime) -> object:
        def compose(draft: Draft) -> JSON:
            missing = self.plan.missing_file
            present = self.plan.files[-1] if self.plan.files else missing
            body = (
                f'<p>Ancien planning : <a href="{missing[1]}">{missing[2]}</a>, plan à jour : '
                f'<a href="{present[1]}">{present[2]}</a></p>'
                f'<attachment id="{missing[0]}"></attachment>'
            )
            return {"body": body, "attachments": (reference_attachment(*missing),)}

        return self._write(moment, compose)

    def description_event(self, moment: datetime) -> object:
        owner = self.people[0]

        def compose(draft: Draft) -> JSON:
            detail = {
                "@odata.type": "#microsoft.graph.teamDescriptionUpdatedEventMessageDetail",
                "teamId": self.channel.team_id,
                "teamDescription": "Chantier de la médiathèque, phase 2 🐦",
                "initiator": initiator(user_identity(owner.id, None, self.data.tenant_id)),
            }
            return system_event_fields(detail)

        return write(
            self.data, self.channel, moment, None, lambda d: {**compose(d), "pinned": True}
        )
