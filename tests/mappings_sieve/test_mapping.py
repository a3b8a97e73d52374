"""The Sieve mapping of Outlook rules and automatic replies: what each Graph property
becomes, what is kept as a comment and reported, order, determinism, lexical forms."""

from __future__ import annotations

import email
import email.policy
import random
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import pytest

from hirondelle.mappings.mail import category_keyword
from hirondelle.mappings.sieve import SCRIPT_EXTENSIONS, SieveScript, rules_to_sieve
from hirondelle.mappings.sieve_actions import ACTIONS
from hirondelle.mappings.sieve_predicates import PREDICATES
from hirondelle.mappings.sieve_text import multiline, quote
from hirondelle.mappings.sieve_vacation import mime_reply
from hirondelle.tests.mappings_sieve.snapshots import (
    FOLDER_NAMES,
    INTERNAL_REPLY,
    RULES,
    SNAPSHOT,
    snapshot,
    with_window,
)

# https://learn.microsoft.com/en-us/graph/api/resources/messagerulepredicates (v1.0)
GRAPH_PREDICATES = (
    "bodyContains bodyOrSubjectContains categories fromAddresses hasAttachments headerContains "
    "importance isApprovalRequest isAutomaticForward isAutomaticReply isEncrypted "
    "isMeetingRequest isMeetingResponse isNonDeliveryReport isPermissionControlled "
    "isReadReceipt isSigned isVoicemail messageActionFlag notSentToMe recipientContains "
    "senderContains sensitivity sentCcMe sentOnlyToMe sentToAddresses sentToMe sentToOrCcMe "
    "subjectContains withinSizeRange"
).split()
# https://learn.microsoft.com/en-us/graph/api/resources/messageruleactions (v1.0)
GRAPH_ACTIONS = (
    "assignCategories copyToFolder delete forwardAsAttachmentTo forwardTo markAsRead "
    "markImportance moveToFolder permanentDelete redirectTo stopProcessingRules"
).split()


def mapped(snap: dict[str, Any] | None = None, **options: Any) -> SieveScript:
    return rules_to_sieve(snap or SNAPSHOT, FOLDER_NAMES, **options)


def text_of(script: SieveScript) -> str:
    return script.text.replace("\r\n", "\n")


def rule_block(script: SieveScript, number: int) -> str:
    """The lines of rule `number`, from its heading to the next rule's."""
    text = text_of(script)
    start = text.index(f"# Rule {number}: ")
    end = text.find("\n# Rule ", start + 1)
    return text[start : end if end > 0 else len(text)]


def one_rule(conditions: dict[str, Any], actions: dict[str, Any], **rule: Any) -> dict[str, Any]:
    body = {"displayName": "R", "sequence": 1, "isEnabled": True, "conditions": conditions}
    return snapshot(rules=[{**body, "actions": actions, **rule}], automaticRepliesSetting={})


def test_every_graph_property_has_a_mapping_and_the_sample_uses_each() -> None:
    assert sorted(PREDICATES) == sorted(GRAPH_PREDICATES)
    assert sorted(ACTIONS) == sorted(GRAPH_ACTIONS)
    used_predicates = {k for r in RULES for p in ("conditions", "exceptions") for k in r.get(p, {})}
    used_actions = {k for r in RULES for k in r["actions"]}
    assert used_predicates == set(GRAPH_PREDICATES)
    assert used_actions == set(GRAPH_ACTIONS)


def test_the_same_snapshot_gives_the_same_bytes_whatever_the_order_of_the_rules() -> None:
    shuffled = list(RULES)
    random.Random(7).shuffle(shuffled)
    assert mapped().text == mapped(snapshot(rules=shuffled)).text
    assert mapped() == mapped()


def test_lines_end_with_crlf_and_rules_follow_their_sequence() -> None:
    script = mapped()
    assert "\n" not in script.text.replace("\r\n", "")
    text = text_of(script)
    positions = [text.index(f"# Rule {n}: {r['displayName']} ") for n, r in enumerate(RULES, 1)]
    assert positions == sorted(positions)
    assert text.index("vacation ") < positions[0]  # a rule's stop must not silence the reply


def test_the_first_rule_files_flags_and_stops() -> None:
    block = rule_block(mapped(), 1)
    assert 'address :is "from" "compta@fournisseur.fr"' in block
    assert 'header :contains "subject" ["facture", "Échéance", "échéance", "ÉCHÉANCE"]' in block
    assert 'not header :contains "from" "relance-auto"' in block
    lines = [line.strip() for line in block.splitlines()]
    assert lines.index('addflag "\\\\Seen";') < lines.index('fileinto :create "INBOX/Factures";')
    assert 'addflag "Comptabilit=C3=A9";' in lines
    assert lines[-2:] == ["stop;", "}"] or lines[-3:-1] == ["stop;", "}"]


def test_actions_become_their_sieve_commands() -> None:
    script = mapped(external_forwarding=True)
    assert 'fileinto :copy :create "Projets/Hirondelle \\"2027\\"";' in rule_block(script, 2)
    assert 'redirect :copy "assistante@contoso.fr";' in rule_block(script, 4)
    assert 'redirect :copy "archives-direction@partenaire.fr";' in rule_block(script, 4)
    assert 'fileinto :create "Trash";' in rule_block(script, 7)  # delete: the known folder
    assert "discard;" in rule_block(script, 15)
    assert "size :over 5242879" in rule_block(script, 6)
    assert "size :under 52428801" in rule_block(script, 6)


def test_what_sieve_cannot_carry_is_a_comment_and_a_finding() -> None:
    script = mapped()
    findings = "\n".join(script.findings)
    assert '# not carried: markImportance = "high"' in rule_block(script, 4)
    assert "rule 'Direction → assistante' (4th): action markImportance:" in findings
    assert "# not carried: forwardAsAttachmentTo" in rule_block(script, 10)
    assert "rule 'Copie pour le cabinet' (10th): action forwardAsAttachmentTo" in findings
    assert '# not carried: moveToFolder = "AAMk-disparu"' in rule_block(script, 11)
    assert "rule 'Vers un dossier disparu' (11th): action moveToFolder" in findings
    for number, name in (
        (8, "Suivi à faire"),
        (9, "Ancienne règle de test"),
        (18, "Messages Exchange"),
        (19, "Règle en erreur"),
    ):
        block = rule_block(script, number)
        assert all(line.startswith("#") for line in block.splitlines()), block
        assert f"rule {name!r} ({number}th)" in findings
    assert "disabled in Outlook" in rule_block(script, 9)
    assert '<Outlook messageActionFlag = "followUp">' in rule_block(script, 8)


def test_an_exception_sieve_cannot_test_disables_the_rule() -> None:
    snap = one_rule({"subjectContains": ["x"]}, {"delete": True}, exceptions={"isVoicemail": True})
    script = mapped(snap)
    assert "\nif " not in text_of(script)
    assert any("exception isVoicemail" in f and "more mail" in f for f in script.findings)


def test_importance_is_set_only_where_the_server_has_editheader() -> None:
    edits = mapped(extensions=SCRIPT_EXTENSIONS | {"editheader"})
    assert "editheader" in edits.requires
    lines = [line.strip() for line in rule_block(edits, 4).splitlines()]
    header_edit = [
        'deleteheader "importance";',
        'deleteheader "x-priority";',
        'addheader "Importance" "high";',
    ]
    assert lines[lines.index(header_edit[0]) :][:3] == header_edit
    assert 'addheader "Importance"' not in rule_block(edits, 20)  # normal: no header at all
    assert not any("markImportance" in f for f in edits.findings)


def test_a_rule_without_conditions_applies_to_every_message() -> None:
    block = rule_block(mapped(one_rule({}, {"markAsRead": True})), 1)
    assert "if true {" in block


def test_a_missing_extension_keeps_the_rule_as_a_comment_and_says_so() -> None:
    snap = one_rule({"bodyContains": ["urgent"]}, {"moveToFolder": "AAMk-factures"})
    script = mapped(snap, extensions=frozenset({"fileinto"}))
    assert "body" not in script.requires and script.requires == ()
    assert "# if body :text :contains" in text_of(script)
    assert any("no Sieve extension body" in f for f in script.findings)
    # without "mailbox", fileinto has no :create and the folder must exist
    plain = mapped(
        one_rule({}, {"moveToFolder": "AAMk-factures"}), extensions=frozenset({"fileinto"})
    )
    assert 'fileinto "INBOX/Factures";' in text_of(plain)
    assert plain.requires == ("fileinto",)
    assert any("must exist" in f for f in plain.findings)


def test_a_folder_the_mail_workload_has_not_named_yet_is_named_as_it_would() -> None:
    script = mapped()
    assert 'fileinto :copy :create "Clients/Dupont & Fils\u2024 SA";' in rule_block(script, 5)
    assert any(
        "'Clients/Dupont & Fils. SA' has no migrated mailbox yet" in f for f in script.findings
    )
    dotted = rules_to_sieve(SNAPSHOT, FOLDER_NAMES, delimiter=".")
    assert 'fileinto :copy :create "Clients.Dupont & Fils\u2024 SA";' in text_of(dotted)


def test_delete_uses_the_special_use_folder_where_the_server_has_the_extension() -> None:
    snap = one_rule({}, {"delete": True})
    snap["folders"] = {}
    script = mapped(snap, extensions=SCRIPT_EXTENSIONS | {"special-use"})
    assert 'fileinto :specialuse "\\\\Trash" :create "Trash";' in text_of(script)
    assert "special-use" in script.requires
    fallback = mapped(snap)
    assert 'fileinto :create "Trash";' in text_of(fallback)
    assert any("Deleted Items folder is not known" in f for f in fallback.findings)


def test_categories_become_the_mail_workloads_keywords_if_dovecot_can_store_them() -> None:
    long_name = "Catégorie dont le nom est vraiment beaucoup trop long"
    script = mapped(one_rule({}, {"assignCategories": ["Projet X", long_name]}))
    assert 'addflag "Projet_X";' in text_of(script)  # the long one would cost every keyword
    assert any("mail_max_keyword_length): left out" in f for f in script.findings)
    alone = mapped(one_rule({}, {"assignCategories": [long_name]}))
    assert "addflag" not in alone.text.replace("# not carried", "")
    assert "# not carried: assignCategories" in text_of(alone)


def test_non_ascii_words_are_searched_in_each_case() -> None:
    block = rule_block(mapped(), 7)
    assert '["se désabonner", "SE DÉSABONNER", "Se désabonner"]' in block


def test_a_header_string_is_searched_in_the_field_it_names_or_not_at_all() -> None:
    assert 'header :contains "List-Id" "lettres.example.org"' in rule_block(mapped(), 3)
    script = mapped(one_rule({"headerContains": ["spam"]}, {"delete": True}))
    assert "\nif " not in text_of(script)
    assert any("does not name a header field" in f for f in script.findings)


def test_me_is_every_address_of_the_user() -> None:
    user = {
        "mail": "Alice@Contoso.fr",
        "upn": "alice.martin@contoso.fr",
        "proxyAddresses": ["SMTP:alice@contoso.fr", "smtp:am@contoso.fr", "X500:/o=x"],
    }
    script = mapped(
        snapshot(
            user=user,
            rules=[
                {"sequence": 1, "conditions": {"sentToMe": True}, "actions": {"markAsRead": True}}
            ],
        )
    )
    assert (
        'address :is "to" ["alice@contoso.fr", "alice.martin@contoso.fr", "am@contoso.fr"]'
        in text_of(script)
    )


def test_unknown_graph_properties_are_not_dropped() -> None:
    script = mapped(one_rule({"isFromMars": True}, {"markAsRead": True, "teleport": "x"}))
    assert any(
        "condition isFromMars: a condition this version does not know" in f for f in script.findings
    )
    script = mapped(one_rule({}, {"markAsRead": True, "teleport": "x"}))
    assert '# not carried: teleport = "x"' in text_of(script)


# -- automatic replies ---------------------------------------------------------------------


def test_the_scheduled_window_is_compared_in_utc_from_the_settings_own_zone() -> None:
    text = text_of(mapped())
    # Romance Standard Time is UTC+1 in winter
    assert 'currentdate :zone "+0000" :value "ge" "iso8601" "2026-12-21T07:00:00"' in text
    assert 'currentdate :zone "+0000" :value "lt" "iso8601" "2027-01-04T08:00:00"' in text
    summer = mapped(
        with_window(datetime(2026, 7, 1, 9), datetime(2026, 7, 3, 18), "Romance Standard Time")
    )
    assert '"ge" "iso8601" "2026-07-01T07:00:00"' in text_of(summer)  # UTC+2 in summer
    assert ":days 3 " in text_of(summer)


def test_internal_and_external_replies_by_the_envelope_senders_domain() -> None:
    text = text_of(mapped())
    assert 'if envelope :domain :is "from" ["contoso.fr", "contoso.onmicrosoft.com"] {' in text
    inside, outside = text.split("# Rule 1:")[0].split("    else {")
    assert ":mime" in inside and "Content-Type: text/html" in inside
    assert "Je suis absente jusqu'au 4 janvier" in outside and ":mime" not in outside
    assert ':subject "Automatic reply: ${subject}"' in text
    assert ':from "=?utf-8?q?Alice_Martin-Lef=C3=A8vre?= <alice@contoso.fr>"' in text
    assert ':addresses "alice@contoso.fr"' in text


@pytest.mark.parametrize("audience", ["none", "contactsOnly"])
def test_no_external_reply_unless_the_audience_is_everyone(audience: str) -> None:
    setting = {**SNAPSHOT["automaticRepliesSetting"], "externalAudience": audience}
    script = mapped(snapshot(automaticRepliesSetting=setting))
    text = text_of(script)
    assert text.count("vacation ") == 1 and "else {" not in text
    assert any("contacts" in f for f in script.findings) == (audience == "contactsOnly")


def test_replies_that_are_off_or_always_on() -> None:
    off = mapped(
        snapshot(
            automaticRepliesSetting={**SNAPSHOT["automaticRepliesSetting"], "status": "disabled"}
        )
    )
    assert "vacation" not in off.requires and "# Automatic replies: disabled in Outlook" in text_of(
        off
    )
    on = mapped(
        snapshot(
            automaticRepliesSetting={
                **SNAPSHOT["automaticRepliesSetting"],
                "status": "alwaysEnabled",
            }
        )
    )
    assert "currentdate" not in text_of(on) and ":days 7 " in text_of(on)
    assert "date" not in on.requires and "vacation" in on.requires


def test_an_unreadable_or_empty_schedule_is_reported() -> None:
    setting = {
        **SNAPSHOT["automaticRepliesSetting"],
        "scheduledEndDateTime": {"dateTime": "2020-01-01T00:00:00", "timeZone": "UTC"},
    }
    script = mapped(snapshot(automaticRepliesSetting=setting))
    assert "vacation" not in script.requires
    assert any("ends before it starts" in f for f in script.findings)


def test_variables_are_not_used_when_a_string_of_the_script_holds_a_reference() -> None:
    snap = snapshot(
        rules=[
            {
                "sequence": 1,
                "conditions": {"subjectContains": ["${prix}"]},
                "actions": {"markAsRead": True},
            }
        ]
    )
    script = mapped(snap)
    assert "variables" not in script.requires and ":subject" not in script.text


def test_an_html_reply_is_multipart_alternative_text_and_html() -> None:
    entity = mime_reply(INTERNAL_REPLY)
    assert mime_reply(INTERNAL_REPLY) == entity  # the boundary derives from the content
    message = email.message_from_string(entity, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.iter_parts()
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    plain_text = plain.get_content()
    assert "Je suis en congé du 21 décembre" in plain_text and "<p>" not in plain_text
    assert "margin" not in plain_text  # the style sheet is not text
    # the line end before a boundary belongs to the boundary (RFC 2046 section 5.1.1)
    assert html.get_content() == INTERNAL_REPLY.rstrip("\n")
    assert max(len(line) for line in entity.splitlines()) <= 78


# -- lexical forms -----------------------------------------------------------------------


def test_quoted_strings_escape_backslash_and_quote_and_drop_controls() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert quote("x\x00y\r\nz") == '"xy\nz"'
    assert quote("e\u0301") == '"\u00e9"'  # NFC


def test_multiline_strings_are_dot_stuffed_and_terminated() -> None:
    assert multiline(".\n..x\nend") == "text:\n..\n...x\nend\n.\n"
    assert multiline("a\n") == "text:\na\n.\n"


def test_more_redirects_than_pigeonhole_allows_by_default_are_reported() -> None:
    who = [{"emailAddress": {"address": f"p{n}@example.org"}} for n in range(5)]
    script = mapped(one_rule({}, {"redirectTo": who}), external_forwarding=True)
    assert text_of(script).count("redirect :copy ") == 5
    assert any("redirect to 5 addresses" in f for f in script.findings)
    four = mapped(one_rule({}, {"redirectTo": who[:4]}), external_forwarding=True)
    assert not any("redirect to" in f for f in four.findings)


def test_a_forward_outside_the_tenant_is_a_comment_and_a_finding_by_default() -> None:
    """Exchange Online blocks automatic external forwarding by default: carrying such a
    rule would start sending mail outside that Microsoft 365 never sent."""
    script = mapped()
    block = rule_block(script, 4)
    assert 'redirect :copy "assistante@contoso.fr";' in block  # the tenant's own domain
    assert 'redirect :copy "archives-direction@partenaire.fr"' not in block
    assert "# not carried: redirectTo" in block
    [said] = [f for f in script.findings if "partenaire.fr" in f]
    assert "outside the tenant's domains" in said and "external_forwarding = true" in said
    who = [{"emailAddress": {"address": a}} for a in ("x@gmail.com", "ana@contoso.fr")]
    mixed = mapped(one_rule({}, {"forwardTo": who}))
    assert 'redirect :copy "ana@contoso.fr";' in text_of(mixed)
    assert 'redirect :copy "x@gmail.com"' not in text_of(mixed)
    assert "# not carried: redirect to x@gmail.com" in text_of(mixed)
    assert any("x@gmail.com is outside" in f and "left out" in f for f in mixed.findings)


def test_a_schedule_without_a_zone_is_read_in_the_mailboxs_zone() -> None:
    setting = {
        **SNAPSHOT["automaticRepliesSetting"],
        "scheduledStartDateTime": {"dateTime": "2026-07-01T09:00:00.0000000"},
        "scheduledEndDateTime": {
            "dateTime": "2026-07-02T09:00:00.0000000",
            "timeZone": "Nowhere/Atlantis",
        },
    }
    script = mapped(snapshot(automaticRepliesSetting=setting, timeZone="W. Europe Standard Time"))
    assert '"ge" "iso8601" "2026-07-01T07:00:00"' in text_of(script)
    assert '"lt" "iso8601" "2026-07-02T07:00:00"' in text_of(script)
    unreadable = mapped(snapshot(automaticRepliesSetting=setting, timeZone=None))
    assert "vacation" not in unreadable.requires
    assert any("schedule cannot be read" in f for f in unreadable.findings)


def test_a_list_with_nothing_usable_is_not_left_out() -> None:
    # an empty subject string would match every message; a recipient without an address
    # cannot be forwarded to: both are reported, the rule does not widen
    script = mapped(one_rule({"subjectContains": [" ", "\x00"]}, {"markAsRead": True}))
    assert "\nif " not in text_of(script)
    assert any("subjectContains: holds no usable value" in f for f in script.findings)
    nobody = [{"emailAddress": {"name": "Bob"}}]
    script = mapped(one_rule({}, {"forwardTo": nobody, "markAsRead": True}))
    assert any("forwardTo: holds no usable value" in f for f in script.findings)
    assert "# not carried: forwardTo" in text_of(script)


def test_keywords_are_those_of_the_mail_workload_for_the_same_category() -> None:
    decomposed = "E\u0301quipe"  # as Graph may spell it: NFD
    script = mapped(one_rule({}, {"assignCategories": [decomposed]}))
    assert f'addflag "{category_keyword(decomposed)}";' in text_of(script)


@pytest.mark.parametrize("lacking", ["vacation", "date", "relational"])
def test_replies_the_server_cannot_run_are_a_comment_and_a_finding(lacking: str) -> None:
    script = mapped(extensions=SCRIPT_EXTENSIONS - {lacking})
    assert "vacation" not in script.requires and "date" not in script.requires
    assert "\n#     vacation :days 15" in text_of(script)
    assert any(f"no Sieve extension {lacking}: kept as a comment" in f for f in script.findings)
    always = snapshot(
        automaticRepliesSetting={**SNAPSHOT["automaticRepliesSetting"], "status": "alwaysEnabled"}
    )
    assert ("vacation" in mapped(always, extensions=SCRIPT_EXTENSIONS - {lacking}).requires) == (
        lacking != "vacation"
    )


def test_a_reference_in_the_users_name_keeps_variables_out() -> None:
    script = mapped(snapshot(user={"mail": "a@contoso.fr", "displayName": "Prix ${total}"}))
    assert "variables" not in script.requires and ":subject" not in script.text


def test_a_single_recipient_counts_as_a_collection_of_one() -> None:
    # https://learn.microsoft.com/en-us/graph/api/resources/messageruleactions?view=graph-rest-beta
    alone = {"emailAddress": {"name": "Bob", "address": "bob@example.org"}}
    assert 'redirect :copy "bob@example.org";' in text_of(
        mapped(one_rule({}, {"redirectTo": alone}), external_forwarding=True)
    )


def test_conditions_on_the_user_need_the_users_address() -> None:
    script = mapped(snapshot(user={"displayName": "Sans adresse"}))
    assert any(
        "(12th): condition sentToMe: the user's own address is not known" in f
        for f in script.findings
    )
    assert "[]" not in script.text.replace("# ", "")  # Sieve has no empty string list


def test_automatic_replies_say_what_they_approximate() -> None:
    """An unknown zone is read in the mailbox's with a finding; a status in another casing
    is the same status; replies always on say how often a sender is answered."""
    setting = {
        **SNAPSHOT["automaticRepliesSetting"],
        "status": "Scheduled",
        "scheduledStartDateTime": {"dateTime": "2026-07-01T09:00:00", "timeZone": "Mars/Olympus"},
        "scheduledEndDateTime": {"dateTime": "2026-07-02T09:00:00", "timeZone": "UTC"},
    }
    script = mapped(snapshot(automaticRepliesSetting=setting, timeZone="W. Europe Standard Time"))
    assert '"ge" "iso8601" "2026-07-01T07:00:00"' in text_of(script)
    assert any("'Mars/Olympus'" in f and "mailbox's zone" in f for f in script.findings)
    always = {**SNAPSHOT["automaticRepliesSetting"], "status": "AlwaysEnabled"}
    script = mapped(snapshot(automaticRepliesSetting=always))
    assert "vacation :days 7" in text_of(script)
    assert any("at most once every 7 days" in f for f in script.findings)


def test_flags_of_a_later_rule_do_not_reach_a_copy_filed_earlier() -> None:
    rules = [
        {"id": "a", "displayName": "Classer", "sequence": 1, "isEnabled": True,
         "conditions": {"subjectContains": ["x"]}, "actions": {"moveToFolder": "AAMk-archive"}},
        {"id": "b", "displayName": "Lu", "sequence": 2, "isEnabled": True,
         "conditions": {}, "actions": {"markAsRead": True}},
    ]  # fmt: skip
    script = mapped(snapshot(rules=rules))
    [said] = [f for f in script.findings if "markAsRead do not reach" in f]
    assert "rule 'Lu' (2nd)" in said and "rule 'Classer' (1st)" in said
    rules[0]["actions"] = {"moveToFolder": "AAMk-archive", "stopProcessingRules": True}
    assert not any("do not reach" in f for f in mapped(snapshot(rules=rules)).findings)
