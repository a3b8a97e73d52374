"""The include of the migrated script from the user's own active script, on a real Dovecot:
what would defeat it (their `vacation` beside ours, their top-level `stop`) fails the
owner's item with what to do, and their filtering still runs at delivery; a script out
of place (include removed by hand, `when_active` switched) is seen by the listing and put
back by the next pass; re-including adds no second `require "include"`."""

from __future__ import annotations

from pathlib import Path

import pytest

from hirondelle.connectors.managesieve_include import REQUIRE_INCLUDE, include_line
from hirondelle.connectors.managesieve_session import NOT_IN_PLACE, sha256
from hirondelle.migrator.errors import Refused
from hirondelle.tests.managesieve.test_target import (
    OURS,
    RULES,
    THEIRS,
    message,
    script,
    session,
)
from hirondelle.tests.servers import DovecotServer, MailUser

OUR_VACATION = 'require ["vacation"];\r\nvacation :days 1 "Absent (migrated)";\r\n'
THEIR_VACATION = (
    'require "vacation";\n# vacation in a comment is no action\nvacation "Away (mine)";\n'
)
THEIR_STOP = (
    'require "fileinto";\nif header :is "X-Spam" "yes" { fileinto "Trash"; }\nkeep;\nstop;\n'
)


@pytest.mark.parametrize(
    ("theirs", "ours", "why"),
    [
        (THEIR_VACATION, OUR_VACATION, "its own `vacation`"),
        (THEIR_STOP, OURS, "`stop` outside any rule"),
    ],
    ids=["vacation", "stop"],
)
def test_an_include_the_users_script_would_defeat_fails_the_owner_with_what_to_do(
    dovecot: DovecotServer,
    mail_user: MailUser,
    tmp_path: Path,
    theirs: str,
    ours: str,
    why: str,
) -> None:
    login = mail_user.login
    dovecot.put_sieve(login, "mine", theirs)
    sieve = session(dovecot, mail_user, tmp_path)
    with pytest.raises(Refused) as refused:
        sieve.put(sieve.ensure_container(RULES), script(ours))
    said = str(refused.value)
    assert login in said and "'mine'" in said and why in said
    assert 'targets.rules.when_active = "leave"' in said
    # nothing stored, their script untouched: their filtering still runs at delivery
    assert dovecot.sieve_scripts(login) == {"mine": True}
    assert dovecot.sieve_script(login, "mine") == theirs
    dovecot.deliver(login, message(mail_user, "promo", spam="yes"))
    if theirs is THEIR_VACATION:
        [reply] = dovecot.sent("sender@example.org")
        assert b"Away (mine)" in reply.content
        assert len(dovecot.read_mailbox(login, "INBOX")) == 1
    else:
        assert len(dovecot.read_mailbox(login, "Trash")) == 1
    assert "duplicate vacation" not in dovecot.log()
    # "leave" stores ours inactive, their script as it was
    left = session(dovecot, mail_user, tmp_path, when_active="leave")
    left.put("outlook-rules", script(ours))
    assert dovecot.sieve_scripts(login) == {"mine": True, "outlook-rules": False}
    assert dovecot.sieve_script(login, "mine") == theirs


def test_a_script_out_of_place_is_listed_so_and_put_back_by_the_next_pass(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path
) -> None:
    login = mail_user.login
    dovecot.put_sieve(login, "mine", THEIRS)
    left = session(dovecot, mail_user, tmp_path, when_active="leave")
    left.put(left.ensure_container(RULES), script(OURS))
    [entry] = left.listing("outlook-rules")
    assert entry.fingerprint == sha256(OURS.encode())  # in place, as "leave" says
    # switched to "include": listed as out of place, then included by the next pass
    sieve = session(dovecot, mail_user, tmp_path)
    [entry] = sieve.listing("outlook-rules")
    assert entry.fingerprint == NOT_IN_PLACE + sha256(OURS.encode())
    assert sieve.ensure_container(RULES) == "outlook-rules"
    mine = dovecot.sieve_script(login, "mine")
    assert mine.count(include_line("outlook-rules")) == 1 and mine.count(REQUIRE_INCLUDE) == 1
    [entry] = sieve.listing("outlook-rules")
    assert entry.fingerprint == sha256(OURS.encode())
    # the include removed by hand (its `require` left): put back, one `require` still
    dovecot.put_sieve(login, "mine", mine.replace(include_line("outlook-rules"), ""))
    assert sieve.listing("outlook-rules")[0].fingerprint.startswith(NOT_IN_PLACE)
    sieve.ensure_container(RULES)
    mine = dovecot.sieve_script(login, "mine")
    assert mine.count(include_line("outlook-rules")) == 1 and mine.count(REQUIRE_INCLUDE) == 1
    dovecot.deliver(login, message(mail_user, "Facture-7"))
    [invoice] = dovecot.read_mailbox(login, "Junk")
    assert b"Facture-7" in invoice.content
    # removed, then included again: still one `require "include"`
    ref = sieve.put("outlook-rules", script(OURS))
    sieve.remove(ref)
    sieve.put("outlook-rules", script(OURS))
    assert dovecot.sieve_script(login, "mine").count(REQUIRE_INCLUDE) == 1


def test_a_script_over_the_servers_size_limit_says_what_to_do_and_what_still_runs(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path
) -> None:
    sieve = session(dovecot, mail_user, tmp_path)
    sieve.put("outlook-rules", script(OURS))
    huge = OURS + "# " + "x" * (1024 * 1024) + "\r\n"  # Pigeonhole's default limit is 1 MiB
    with pytest.raises(Refused) as refused:
        sieve.put("outlook-rules", script(huge))
    said = str(refused.value)
    assert mail_user.login in said and "QUOTA/MAXSIZE" in said
    assert "still the one in place" in said and "sieve_max_script_size" in said
    assert dovecot.sieve_script(mail_user.login, "outlook-rules") == OURS
    assert dovecot.sieve_scripts(mail_user.login) == {"outlook-rules": True}
