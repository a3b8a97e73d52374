"""What the sandbox server asks of each part of the emulated Graph (mail, drives...).

A service says whether it serves a request's path (`owns`), which throttle and
key the request counts against (`gate`), and answers it (`handle`). The server
runs every request, a `$batch` sub-request included, through the same pipeline:
token, faults, the service's gate, the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hirondelle.sandbox.mail import GraphRequest, GraphResponse
    from hirondelle.sandbox.throttle import Refusal


class Throttle(Protocol):
    def admit(self, key: str) -> Refusal | None: ...

    def release(self, key: str) -> None: ...


@dataclass(frozen=True)
class Gate:
    """The throttle a request counts against, and its key (a mailbox, a drive...)."""

    throttle: Throttle
    key: str


class Service(Protocol):
    def owns(self, request: GraphRequest) -> bool:
        """True when this service serves the request's path."""
        ...

    def gate(self, request: GraphRequest) -> Gate | None:
        """The throttle and key of the request; None for an unthrottled request."""
        ...

    def handle(self, request: GraphRequest) -> GraphResponse: ...
