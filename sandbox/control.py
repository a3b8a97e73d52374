"""The sandbox's control API: the bodies it accepts, checked field by field.

`POST /_sandbox/mutate`, `/_sandbox/faults` and `/_sandbox/limits` take a JSON object whose
keys are the fields of `Mutation`, `Faults` and `Limits`; a field left out keeps its default.
Anything else (no body, not JSON, an unknown key, a value of the wrong type or out of range)
is refused with 400 and the reason, never turned into a server error.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from typing import Any, TypeVar

T = TypeVar("T")
# Limits that 0 would turn into a refusal of every request, for good.
_POSITIVE = frozenset({"concurrency", "requests_per_window", "window_seconds", "scale"})


class ControlError(ValueError):
    """A control request the sandbox refuses; the message says why."""


def read_control(body: bytes, kind: type[T]) -> T:
    """`kind` built from a control request's JSON body, or `ControlError`."""
    names = [f.name for f in dataclasses.fields(kind)]  # type: ignore[arg-type]  # every control kind is a dataclass
    example = "{" + ", ".join(f'"{n}": ...' for n in names[:2]) + "}"
    if not body.strip():
        raise ControlError(f"send a JSON object of {kind.__name__} fields, e.g. {example}")
    try:
        fields = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlError(f"the body is not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ControlError(f"send a JSON object of {kind.__name__} fields, e.g. {example}")
    unknown = sorted(set(fields) - set(names))
    if unknown:
        raise ControlError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(names)}")
    hints = typing.get_type_hints(kind)
    for name, value in fields.items():
        _check(name, value, hints[name])
    return kind(**fields)


def _check(name: str, value: Any, hint: Any) -> None:
    allowed = typing.get_args(hint) or (hint,)
    if value is None and type(None) in allowed:
        return
    if isinstance(value, bool):
        fits = bool in allowed
    elif isinstance(value, int):
        fits = int in allowed or float in allowed
    else:
        fits = any(isinstance(value, kind) for kind in allowed if isinstance(kind, type))
    if not fits:
        wanted = " or ".join("null" if k is type(None) else k.__name__ for k in allowed)
        raise ControlError(f"{name} must be {wanted}, not {json.dumps(value)}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):  # Python's JSON reader takes NaN and Infinity
            raise ControlError(f"{name} must be a finite number, not {value}")
        if name in _POSITIVE and value <= 0:
            raise ControlError(f"{name} must be more than 0, not {value}")
        if value < 0:
            raise ControlError(f"{name} must not be negative, not {value}")
        if name.endswith("_rate") and value > 1:
            raise ControlError(f"{name} is a probability per request, at most 1, not {value}")
