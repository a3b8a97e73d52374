"""What only the rules targets keep, beyond the contract (test_contract.py): one script per
user under one name whatever the container, kept byte for byte (UTF-8, CRLF), a new script
replacing the old one. Run against ManageSieve on a real Dovecot (Pigeonhole) and against
the Sieve archive.
"""

from __future__ import annotations

from hirondelle.migrator.model import Container

from .subject import TargetUnderTest


def test_one_script_per_user_kept_byte_for_byte(rules_subject: TargetUnderTest) -> None:
    session = rules_subject.session()
    other = Container("rules", rules_subject.owner.upn, "elsewhere", ("Autre",))
    folder = session.ensure_container(rules_subject.container("Sieve"))
    assert folder == "outlook-rules" == session.ensure_container(other)
    first, second = rules_subject.items.items(2)
    ref = session.put(folder, first)
    assert rules_subject.read_back(ref).content == first.content  # "é", "«" and CRLF kept
    assert session.update(ref, second) == ref
    later = rules_subject.session()
    assert later.find(folder, first, frozenset()) is None
    assert later.find(folder, second, frozenset()) == ref
    [entry] = later.listing(folder)
    assert (entry.fingerprint, entry.size) == (second.fingerprint, len(second.content))
    assert rules_subject.read_back(ref).content == second.content
