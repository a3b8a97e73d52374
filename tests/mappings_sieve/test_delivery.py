"""Mapped scripts at work in a real Dovecot with Pigeonhole: a message matching each rule of
the sample, delivered through LMTP, lands in the expected folders with the expected flags
(or is redirected, or discarded); the automatic reply is sent inside its scheduled window,
with the internal or the external text by the sender's domain, and not outside the window.
"""

from __future__ import annotations

import email
import email.policy
import socket
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hirondelle.mappings.sieve import SCRIPT_EXTENSIONS, rules_to_sieve
from hirondelle.tests.mappings_sieve.snapshots import FOLDER_NAMES, snapshot, with_window
from hirondelle.tests.servers import DovecotServer, MailUser

SCRIPT_NAME = "outlook-rules"
EXTERNAL = "example.org"  # the test users live in example.test, the tenant's domain here
FACTURES, PROJETS, LETTRES = "INBOX/Factures", 'Projets/Hirondelle "2027"', "Lettres d'information"
CLIENTS = "Clients/Dupont & Fils\u2024 SA"
FOLDERS = ("INBOX", FACTURES, PROJETS, LETTRES, "Archive", "Trash", CLIENTS)


def as_user(login: str, snap: dict[str, Any]) -> dict[str, Any]:
    """`snap` for the test mailbox `login`, whose tenant is example.test."""
    user = {**snap["user"], "mail": login, "upn": login}
    return {**snap, "user": user, "domains": ["example.test"]}


def install(server: DovecotServer, login: str, snap: dict[str, Any]) -> None:
    # every redirect carried, the tenant's own and outside ones (test_mapping has the default)
    script = rules_to_sieve(as_user(login, snap), FOLDER_NAMES, external_forwarding=True)
    server.put_sieve(login, SCRIPT_NAME, script.text)  # compiled by the server: refused = failure


def message(key: str, headers: dict[str, str], body: str = "Bonjour.\r\n", **mime: str) -> bytes:
    """A message whose Message-ID holds `key`; `mime` gives a Content-Type and its body."""
    lines = [f"{name}: {value}" for name, value in {"From": f"bob@{EXTERNAL}", **headers}.items()]
    lines += [f"Message-ID: <{key}@{EXTERNAL}>", "Date: Fri, 04 Dec 2026 10:00:00 +0100"]
    lines += ["MIME-Version: 1.0"]
    if mime:
        lines.append(f"Content-Type: {mime['content_type']}")
        body = mime["payload"]
    else:
        lines += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")


def multipart(subtype: str, parts: list[tuple[str, str]], params: str = "") -> dict[str, str]:
    body = "".join(f"--b1\r\n{headers}\r\n\r\n{text}\r\n" for headers, text in parts) + "--b1--\r\n"
    return {"content_type": f'multipart/{subtype}; boundary="b1"{params}', "payload": body}


def itip(method: str) -> dict[str, str]:
    calendar = f"BEGIN:VCALENDAR\r\nMETHOD:{method}\r\nEND:VCALENDAR"
    return multipart(
        "alternative",
        [
            ("Content-Type: text/plain", "Invitation"),
            (f"Content-Type: text/calendar; charset=utf-8; method={method}", calendar),
        ],
    )


def report(kind: str) -> dict[str, str]:
    return multipart(
        "report",
        [("Content-Type: text/plain", "Rapport"), ("Content-Type: message/rfc822", "Subject: x")],
        f"; report-type={kind}",
    )


def cases(me: str) -> dict[str, tuple[bytes, dict[str, set[str]]]]:
    """Message key -> (message, {folder: its flags}) for each rule of the sample that runs
    and a few that must not; an empty mapping means the message is stored nowhere."""
    seen, to_me = {"\\Seen"}, {"To": me}
    attachment = multipart(
        "mixed",
        [
            ("Content-Type: text/plain", "Voir le planning."),
            (
                "Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=p.pdf",
                "JVBERi0=",
            ),
        ],
    )
    big = "x" * 76 + "\r\n"
    return {
        # rule 1, a non-ASCII word in another case than written ("Échéance")
        "facture": (
            message(
                "facture",
                {
                    **to_me,
                    "From": "Compta <compta@fournisseur.fr>",
                    "Subject": "=?utf-8?q?=C3=89CH=C3=89ANCE_proche?=",
                },
            ),
            {FACTURES: seen | {"Comptabilit=C3=A9"}},
        ),
        "relance": (  # rule 1's exception holds
            message(
                "relance",
                {**to_me, "From": "relance-auto <compta@fournisseur.fr>", "Subject": "Facture"},
            ),
            {"INBOX": set()},
        ),
        "projet": (
            message("projet", {**to_me, "Subject": "Hirondelle : planning"}, **attachment),
            {PROJETS: {"Projet_X", "Important"}, "INBOX": {"Projet_X", "Important"}},
        ),
        "lettre": (
            message(
                "lettre",
                {**to_me, "Subject": "Lettre n°12", "List-Id": "Lettres <lettres.example.org>"},
            ),
            {LETTRES: seen},
        ),
        "direction": (
            message(
                "direction",
                {"To": "direction@contoso.fr", "Cc": me, "Subject": "Budget", "Importance": "high"},
            ),
            {"INBOX": set()},
        ),
        "invitation": (
            message(
                "invitation",
                {**to_me, "From": "agenda@dupont-fils.fr", "Subject": "Réunion"},
                **itip("REQUEST"),
            ),
            {CLIENTS: set(), "INBOX": set()},
        ),
        "gros": (
            message("gros", {**to_me, "Subject": "Photos"}, big * 70_000),  # 5.4 MB
            {"Archive": set()},
        ),
        "publicite": (
            message(
                "publicite",
                {**to_me, "From": "promo@boutique.example", "Subject": "Soldes"},
                "Pour SE DÉSABONNER, cliquez.\r\n",
            ),
            {"Trash": set()},
        ),
        "publicite-client": (  # rule 7's exception: the Clients category
            message(
                "publicite-client",
                {
                    **to_me,
                    "From": "promo@boutique.example",
                    "Keywords": "Clients",
                    "Subject": "Soldes",
                },
                "se désabonner\r\n",
            ),
            {"INBOX": set()},
        ),
        "test-desactivee": (  # rule 9 is disabled: nothing discards it
            message("test-desactivee", {**to_me, "Subject": "[test] essai"}),
            {"INBOX": set()},
        ),
        "contrat": (
            message("contrat", {**to_me, "Subject": "Votre contrat"}),
            {"INBOX": {"Juridique"}},
        ),
        "ancien": (
            message("ancien", {**to_me, "Subject": "Ancien projet"}),
            {"INBOX": seen},
        ),
        "confidentiel": (
            message(
                "confidentiel",
                {**to_me, "Subject": "Salaires", "Sensitivity": "Company-Confidential"},
            ),
            {"INBOX": {"Confidentiel"}},
        ),
        "copie": (
            message("copie", {"To": "equipe-rh@contoso.fr", "Cc": me, "Subject": "Note"}),
            {"INBOX": seen},
        ),
        "reponse": (
            message("reponse", {**to_me, "Subject": "Accepté : Réunion"}, **itip("REPLY")),
            {"Trash": set()},
        ),
        "accuse": (
            message(
                "accuse", {**to_me, "Subject": "Lu : Budget"}, **report("disposition-notification")
            ),
            {},
        ),
        "non-remise": (
            message(
                "non-remise",
                {**to_me, "From": f"MAILER-DAEMON@{EXTERNAL}", "Subject": "Non remis"},
                **report("delivery-status"),
            ),
            {"Archive": set(), "INBOX": set()},
        ),
        "pas-pour-moi": (
            message(
                "pas-pour-moi", {"To": "autre@contoso.fr", "Subject": "Info", "Importance": "low"}
            ),
            {LETTRES: set()},
        ),
        "tout": (
            message(
                "tout",
                {
                    "To": "autre@contoso.fr",
                    "Subject": "Perso",
                    "Importance": "high",
                    "Sensitivity": "Personal",
                },
            ),
            {"INBOX": {"=C3=80_traiter"}},
        ),
        "en-erreur": (  # rule 19 is in error in Outlook: it does not run
            message("en-erreur", {**to_me, "Subject": "erreur de saisie"}),
            {"INBOX": set()},
        ),
    }


def stored(server: DovecotServer, login: str) -> dict[str, dict[str, set[str]]]:
    """Message key -> {folder: flags} for everything in the test folders."""
    found: dict[str, dict[str, set[str]]] = {}
    for folder in FOLDERS:
        try:
            messages = server.read_mailbox(login, folder)
        except LookupError:
            continue
        for item in messages:
            parsed = email.message_from_bytes(item.content)
            key = str(parsed["Message-ID"]).strip("<>").split("@")[0]
            found.setdefault(key, {})[folder] = set(item.flags)
    return found


def test_a_message_matching_each_rule_lands_where_the_rule_says(
    dovecot: DovecotServer, mail_user: MailUser
) -> None:
    login = mail_user.login
    install(dovecot, login, snapshot(automaticRepliesSetting={"status": "disabled"}))
    expected = cases(login)
    sender = f"sender-{login}"
    for data, _ in expected.values():
        dovecot.deliver(login, data, sender)
    assert stored(dovecot, login) == {key: where for key, (_, where) in expected.items() if where}
    redirected = {r for m in dovecot.sent() if b"<direction@" in m.content for r in m.recipients}
    assert redirected == {"assistante@contoso.fr", "archives-direction@partenaire.fr"}
    log = dovecot.home(login) / ".dovecot.sieve.log"
    assert not log.exists() or "error" not in log.read_text(errors="replace").lower()


def window(start: timedelta, end: timedelta, zone: str = "Europe/Paris") -> dict[str, Any]:
    """The sample's replies scheduled from now + `start` to now + `end`, written as local
    times of `zone` under its Windows name ("Romance Standard Time", as Outlook in France
    writes them) or "UTC"."""
    now = datetime.now(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    return with_window(now + start, now + end, "UTC" if zone == "UTC" else "Romance Standard Time")


def replies_to(server: DovecotServer, login: str, sender: str) -> list[EmailMessage]:
    server.deliver(
        login, message(f"q-{sender}", {"From": sender, "To": login, "Subject": "Question"}), sender
    )
    parsed = [
        email.message_from_bytes(m.content, policy=email.policy.default)
        for m in server.sent(sender)
    ]
    return [m for m in parsed if isinstance(m, EmailMessage)]


def test_the_reply_is_sent_in_its_window_internal_or_external_by_the_sender(
    dovecot: DovecotServer, mail_user: MailUser
) -> None:
    login = mail_user.login
    # margins of hours: a local time near a daylight-saving change may move by one
    install(dovecot, login, window(timedelta(hours=-2), timedelta(days=2)))
    [external] = replies_to(dovecot, login, f"client-{login.split('@')[0]}@{EXTERNAL}")
    assert external["Subject"] == "Automatic reply: Question"
    assert external.get_content_type() == "text/plain"
    assert "Je suis absente jusqu'au 4 janvier" in external.get_content()
    # a line holding a dot survives dot-stuffing
    assert "\n.\n" in external.get_content().replace("\r\n", "\n")
    [internal] = replies_to(dovecot, login, f"collegue-{login}")
    assert internal.get_content_type() == "multipart/alternative"
    plain, html = internal.iter_parts()
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    assert "Je suis en congé du 21 décembre" in plain.get_content()
    assert "<p>Bonjour,</p>" in html.get_content()
    assert "Martin-Lefèvre" in str(internal["From"]) and login in str(internal["From"])


@pytest.mark.parametrize(
    ("edges", "replies"),
    [
        ((timedelta(minutes=-1), timedelta(minutes=10), "UTC"), 1),
        ((timedelta(days=-3), timedelta(minutes=-1), "UTC"), 0),
        ((timedelta(minutes=1), timedelta(days=3), "UTC"), 0),
        ((timedelta(days=-3), timedelta(hours=-2), "Europe/Paris"), 0),
        ((timedelta(hours=2), timedelta(days=3), "Europe/Paris"), 0),
    ],
    ids=[
        "started-a-minute-ago",
        "ended-a-minute-ago",
        "starts-in-a-minute",
        "ended-in-paris",
        "starts-in-paris",
    ],
)
def test_replies_only_inside_the_window(
    dovecot: DovecotServer,
    mail_user: MailUser,
    edges: tuple[timedelta, timedelta, str],
    replies: int,
) -> None:
    login = mail_user.login
    install(dovecot, login, window(*edges))
    sent = replies_to(dovecot, login, f"client-{login.split('@')[0]}@{EXTERNAL}")
    assert len(sent) == replies
    assert len(dovecot.read_mailbox(login, "INBOX")) == 1  # delivered all the same


def test_the_server_advertises_every_extension_the_mapping_uses(dovecot: DovecotServer) -> None:
    with socket.create_connection((dovecot.host, dovecot.sieve_port), timeout=10) as conn:
        greeting = b""
        while not greeting.endswith(b"\r\n") or b"\r\nOK" not in b"\r\n" + greeting:
            chunk = conn.recv(4096)
            assert chunk, greeting
            greeting += chunk
    line = next(x for x in greeting.decode().splitlines() if x.upper().startswith('"SIEVE"'))
    advertised = set(line.split(" ", 1)[1].strip('"').split())
    assert SCRIPT_EXTENSIONS <= advertised, SCRIPT_EXTENSIONS - advertised


def test_a_keyword_dovecot_cannot_store_does_not_cost_the_others(
    dovecot: DovecotServer, mail_user: MailUser
) -> None:
    # Pigeonhole stores a message with no keyword at all when one of them is too long
    long_name = "Catégorie dont le nom est vraiment beaucoup trop long"
    rule = {
        "sequence": 1,
        "conditions": {},
        "actions": {"assignCategories": ["Projet X", long_name], "markAsRead": True},
    }
    install(dovecot, mail_user.login, snapshot(rules=[rule], automaticRepliesSetting={}))
    dovecot.deliver(mail_user.login, message("categories", {"To": mail_user.login, "Subject": "x"}))
    [stored_message] = dovecot.read_mailbox(mail_user.login, "INBOX")
    assert stored_message.flags == {"\\Seen", "Projet_X"}
