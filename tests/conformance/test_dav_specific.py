"""What only calendar and contacts targets keep, beyond the contract (test_contract.py):
one resource holds one UID, and an update replaces the item. Run against the CalDAV and
CardDAV targets on a real Radicale and a real Xandikos, and against the .ics / .vcf
archives.
"""

from __future__ import annotations

import pytest

from hirondelle.migrator.errors import Refused

from .items import DavItems
from .subject import TargetUnderTest


def dav_items(subject: TargetUnderTest) -> DavItems:
    assert isinstance(subject.items, DavItems)
    return subject.items


def test_another_uid_under_the_same_resource_is_refused(dav_subject: TargetUnderTest) -> None:
    session = dav_subject.session()
    folder = session.ensure_container(dav_subject.container("Projets"))
    payload = dav_subject.items.item()
    ref = session.put(folder, payload)
    impostor = dav_items(dav_subject).make(payload.source_id, uid="urn:uuid:another")
    assert session.find(folder, impostor, frozenset()) is None
    with pytest.raises(Refused):  # a failure kept visible, never a skip
        session.put(folder, impostor)
    assert session.find(folder, payload, frozenset()) == ref


def test_update_replaces_the_item(dav_subject: TargetUnderTest) -> None:
    session = dav_subject.session()
    folder = session.ensure_container(dav_subject.container("Projets"))
    payload = dav_subject.items.item()
    ref = session.put(folder, payload)
    changed = dav_items(dav_subject).changed(payload.source_id)
    assert session.update(ref, changed) == ref
    assert session.find(folder, changed, frozenset()) == ref
    (entry,) = session.listing(folder)
    assert entry.fingerprint == changed.fingerprint
    assert entry.size == (changed.size if dav_subject.sizes_listed else -1)  # -1: rewritten
