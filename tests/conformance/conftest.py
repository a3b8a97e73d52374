"""Fixtures of the target contract: every registered target on its real server.

`subject` runs a test once per target of `SUBJECTS` (tests/conformance/targets.py); the
`<workload>_subject` fixtures run a workload's own checks on that workload's targets only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hirondelle.tests.servers import MatrixAccount, SynapseServer
from hirondelle.workloads import load, target_spec

from .subject import TargetUnderTest
from .targets import SUBJECTS, names_of


@pytest.fixture(scope="session")
def synapse_bot(synapse: SynapseServer) -> MatrixAccount:
    """One bot account for every bot-mode test: an account costs Synapse a password hash,
    and each test's team gets rooms of its own anyway."""
    return synapse.new_user()


def _under_test(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TargetUnderTest]:
    entry = SUBJECTS[request.param]
    under_test = entry.build(request, tmp_path)
    declared = target_spec(entry.workload, entry.kind)
    assert declared is not None, f"{entry.workload}/{entry.kind} is declared in workloads/"
    # the contract runs the class the registry builds for that kind, not a look-alike
    assert isinstance(under_test.target, load(declared.target)), request.param
    try:
        yield under_test
    finally:
        under_test.close()


@pytest.fixture(params=names_of())
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TargetUnderTest]:
    """Each target in turn, with an owner who has nothing stored yet."""
    yield from _under_test(request, tmp_path)


@pytest.fixture(params=names_of("mail"))
def mail_subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TargetUnderTest]:
    yield from _under_test(request, tmp_path)


@pytest.fixture(params=names_of("calendar") + names_of("contacts"))
def dav_subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TargetUnderTest]:
    yield from _under_test(request, tmp_path)


@pytest.fixture(params=names_of("files"))
def files_subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TargetUnderTest]:
    yield from _under_test(request, tmp_path)


@pytest.fixture(params=names_of("chat") + names_of("chats"))
def chat_subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TargetUnderTest]:
    yield from _under_test(request, tmp_path)


@pytest.fixture(params=names_of("rules"))
def rules_subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TargetUnderTest]:
    yield from _under_test(request, tmp_path)
