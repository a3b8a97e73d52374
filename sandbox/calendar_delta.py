"""Delta walks over the sandbox's calendar views and contact folders: tokens and pages.

Each page of a walk is a new generation of its sync state (`sync_states`): as Outlook
does, only the newest few live, an older link answers 410 SyncStateNotFound. Pages hold
whole groups (an event and its occurrences), the Prefer header's odata.maxpagesize
entries at most, and end with a nextLink or, after the last, a deltaLink.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hirondelle.sandbox.calendar_data import CalendarData
from hirondelle.sandbox.calendar_wire import view_window, zone_applied
from hirondelle.sandbox.mail import (
    SYNC_STATE_NOT_FOUND,
    GraphRequest,
    GraphResponse,
    _apply_preference,
)
from hirondelle.sandbox.odata import (
    JSON,
    GraphError,
    QueryOptions,
    decode_token,
    encode_token,
    preferences,
)
from hirondelle.sandbox.sync_states import SyncStates

if TYPE_CHECKING:
    from hirondelle.sandbox.tenant import Tenant
    from hirondelle.sandbox.tenant_records import SandboxUser

DELTA_DEFAULT_PAGE = 10
DELTA_MAX_PAGE = 1000


class DeltaPages:
    """The delta walks of one tenant's calendar views and contact folders."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.sync_states = SyncStates()  # each page of a delta walk is a generation

    @property
    def data(self) -> CalendarData:
        return self.tenant.calendar_data

    def state(
        self, request: GraphRequest, user: SandboxUser, container: str, kind: str
    ) -> dict[str, Any]:
        options = QueryOptions.parse(request.query)
        token = options.skiptoken or options.deltatoken
        if token is None:
            state: dict[str, Any] = {"m": "i", "u": user.id, "c": container, "s": 0}
            state["g"] = self.data.token_generation
            state |= {"t": self.data.seq, "sel": list(options.select)}
            if kind == "calendarView":
                start, end = view_window(request)
                state |= {"ws": start.isoformat(), "we": end.isoformat()}
            return state
        state = decode_token(token)
        if state.get("u") != user.id or state.get("c") != container:
            raise GraphError(400, "BadRequest", "The state token belongs to another collection.")
        restart = request.link().split("?", 1)[0]
        if int(state.get("g", -1)) < self.data.token_generation:
            # https://learn.microsoft.com/en-us/graph/delta-query-overview#synchronization-reset
            raise GraphError(410, "syncStateNotFound", SYNC_STATE_NOT_FOUND, {"Location": restart})
        problem = self.sync_states.problem(_walk(state), int(state.get("w", 0)))
        if problem is not None:  # an older page of the walk: see sync_states.py
            raise GraphError(410, "SyncStateNotFound", problem, {"Location": restart})
        if options.deltatoken is not None:
            return {**state, "m": "c", "t": self.data.seq, "k": None}
        return state

    def page(
        self,
        request: GraphRequest,
        state: dict[str, Any],
        groups: list[tuple[list[Any], list[JSON]]],
        link: str,
        kind: str,
        shape: Callable[[JSON], JSON],
        maximum: int = DELTA_MAX_PAGE,
    ) -> GraphResponse:
        """One page of whole groups after the state's cursor, with a next or delta link;
        at most `maximum` entries, whatever odata.maxpagesize asks."""
        prefer = preferences(request.headers.get("Prefer"))
        size = DELTA_DEFAULT_PAGE
        if prefer.get("odata.maxpagesize", "").isdigit():
            size = max(1, min(int(prefer["odata.maxpagesize"]), maximum))
        groups.sort(key=lambda pair: pair[0])
        if state.get("k") is not None:
            groups = [pair for pair in groups if pair[0] > list(state["k"])]
        entries: list[JSON] = []
        sent = 0
        for key, group in groups:
            if entries and len(entries) + len(group) > size:
                break
            entries += [shape(entry) for entry in group]
            sent += 1
            state = {**state, "k": key}
        body: JSON = {"@odata.context": f"{request.base_url}/$metadata#Collection({kind})"}
        state = {**state, "w": self.sync_states.issue(_walk(state))}
        if sent < len(groups):
            body["@odata.nextLink"] = f"{link}?$skiptoken={encode_token(state)}"
        else:
            done = {k: v for k, v in state.items() if k not in ("k", "t")}
            done |= {"m": "c", "s": state["t"]}
            body["@odata.deltaLink"] = f"{link}?$deltatoken={encode_token(done)}"
        body["value"] = entries
        response = zone_applied(GraphResponse(body=body), request)
        if "odata.maxpagesize" in prefer:
            _apply_preference(response, f"odata.maxpagesize={size}")
        return response


def _walk(state: dict[str, Any]) -> tuple[Any, ...]:
    """The sync state a delta walk advances: one per collection, and for a calendar view
    one per window (a view's window is part of what its delta tracks)."""
    return (state["u"], state["c"], state.get("ws"), state.get("we"))
