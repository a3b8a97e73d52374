"""How Graph's answers become the engine's errors: a failed JSON or streamed answer through
the one failure table (`errors.to_error`) with Graph's error code and message, transport
failures of httpx, azure-identity and the links' client, the identity platform's refusals
as one line naming the settings to fix, and a body cut short of its Content-Length."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from kiota_abstractions.api_error import APIError

from ...migrator.errors import FatalError, Retriable, SkipItem
from .errors import Call, Failure, Throttled, TruncatedBody, parse_retry_after, to_error

if TYPE_CHECKING:
    from .links import LinkAnswer

# What azure-identity's message says of an Entra ID refusal: "(invalid_scope) AADSTS70011: ..."
_IDENTITY_ERROR = re.compile(r"\((invalid_[a-z_]+)\) (AADSTS\d+)")


class UnexpectedAnswer(Exception):
    """A $batch part failed in a way the error table does not know."""


@contextmanager
def sorted_failures(call: Call, *passing: type[Exception]) -> Iterator[None]:
    """Every failure goes through the one table: the engine's errors (and `passing`) go
    through as they are, another exception becomes the table's error for `call`, or
    propagates unchanged when the table does not know it."""
    through: tuple[type[Exception], ...] = (Retriable, FatalError, SkipItem, *passing)
    try:
        yield
    except through:
        raise
    except Exception as exc:
        error = classified(exc, call)
        if error is exc:
            raise
        raise error from exc


def json_error(response: httpx.Response, call: Call) -> Exception:
    """The table's error for a failed JSON answer; else the SDK's `APIError` with its
    status and headers, which callers inspect (a 400 on an unsupported delta)."""
    error, code, message = table_error(response, call)
    if error is not None:
        return error
    text = f"{call.what}: Graph answered HTTP {response.status_code}"
    return APIError(
        f"{text} {code}: {message}" if code else text,
        response.status_code,
        dict(response.headers),
    )


def table_error(response: httpx.Response, call: Call) -> tuple[Exception | None, str, str]:
    """The error the failure table gives a failed answer (None when it has none), with
    Graph's error code and message from its body."""
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    code, message = odata_error(body if isinstance(body, dict) else None)
    retry_after = parse_retry_after(response.headers)
    failure = Failure(response.status_code, code, retry_after, message=message)
    return to_error(failure, call), code, message


def odata_error(body: Mapping[str, Any] | None) -> tuple[str, str]:
    """Graph's error code and message from an error body ("" when absent)."""
    error = (body or {}).get("error")
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")


def classified(exc: Exception, call: Call) -> Exception:
    """The engine's error for `exc`, or `exc` itself when the table does not know it."""
    if isinstance(exc, ClientAuthenticationError):
        return FatalError(_refusal_message(exc, call))
    failure = _failure_of(exc)
    if failure is None:
        return exc
    return to_error(failure, call) or exc


def _refusal_message(exc: ClientAuthenticationError, call: Call) -> str:
    """One line naming the settings to fix. Entra ID answers a scope or resource it does not
    know with invalid_scope (AADSTS70011) or invalid_resource: the scope is the `.default`
    of source.graph_url's cloud, which must be the cloud of source.authority
    (https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes)."""
    refusal = _IDENTITY_ERROR.search(str(exc.message or exc))
    if refusal is not None:
        return (
            f"{call.what}: the identity platform refused the Graph scope ({refusal[1]} "
            f"{refusal[2]}). Check source.graph_url: its cloud's Graph root, whose .default "
            "is asked for, must be the one source.authority signs in to."
        )
    return (
        f"{call.what}: the identity platform refused the app's credential. Check "
        "source.tenant_id, source.client_id and source.client_secret_env, "
        "source.client_secret_file or source.certificate_file."
    )


def _failure_of(exc: Exception) -> Failure | None:
    if isinstance(exc, httpx.TransportError | ServiceRequestError) or _link_failure(exc):
        return Failure(None, detail=type(exc).__name__)
    if isinstance(exc, TruncatedBody):
        return Failure(None, detail=str(exc))
    return None


def read_answer(response: LinkAnswer, body: bytes) -> httpx.Response:
    """A links' client answer as httpx's, for the one error table."""
    return httpx.Response(
        response.status_code, headers=list(response.headers.items()), content=body
    )


def _link_failure(exc: Exception) -> bool:
    """A transport failure of the links' client (aiohttp): reset, cut body, timeout."""
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    aiohttp = sys.modules.get("aiohttp")  # loaded once a link was read
    return aiohttp is not None and isinstance(exc, aiohttp.ClientError)


def raise_for_answer(response: httpx.Response, call: Call) -> None:
    """Turn a failed streamed answer into the table's error, else `UnexpectedAnswer` (a
    links' answer carries no request, so httpx's own `raise_for_status` cannot be used)."""
    error, _, _ = table_error(response, call)
    if error is not None:
        raise error
    raise UnexpectedAnswer(f"{call.what}: HTTP {response.status_code}")


def check_length(response: httpx.Response) -> None:
    """A body shorter than its Content-Length is a broken transfer, not a message."""
    announced = response.headers.get("Content-Length")
    if announced is None or not announced.isdigit():
        return
    if response.num_bytes_downloaded < int(announced):
        raise TruncatedBody(
            f"received {response.num_bytes_downloaded} of {announced} announced bytes"
        )


def file_batch_parts(
    paths: Mapping[str, str], envelope: Mapping[str, Any], call: Call, answers: dict[str, Any]
) -> tuple[list[str], Retriable | None, list[Throttled]]:
    """File each $batch part's answer in `answers` (its body as sent: JSON, or a base64
    string; None for an item that is gone); return the keys to send again, the last
    passing error and the throttled parts' errors.

    A part the envelope leaves out is sent again: its absence says nothing of the item
    (None would mean a 404).
    """
    retry: list[str] = []
    last: Retriable | None = None
    throttled: list[Throttled] = []
    parts = envelope.get("responses", [])
    answered = {str(part.get("id")) for part in parts}
    left_out = [key for key in paths if key not in answered]
    if left_out:
        retry.extend(left_out)
        last = Retriable(f"{call.what}: the $batch answer left out {len(left_out)} parts")
    for part in parts:
        key, status = str(part.get("id")), int(part.get("status", 0))
        if key not in paths:
            continue  # no part of ours: nothing to file
        if 200 <= status < 300:
            body = part.get("body")
            answers[key] = {} if body is None else body  # None stands for 404
            continue
        body = part.get("body") if isinstance(part.get("body"), dict) else {}
        code, message = odata_error(body)
        retry_after = parse_retry_after(part.get("headers"))
        failure = Failure(status, code, retry_after, message=message)
        error = to_error(failure, replace(call, item=True))
        if isinstance(error, SkipItem):
            answers[key] = None
        elif isinstance(error, Retriable):
            if isinstance(error, Throttled):
                throttled.append(error)
            retry.append(key)
            last = error
        elif error is not None:
            raise error
        else:
            raise UnexpectedAnswer(f"{call.what}: $batch part answered HTTP {status}")
    return retry, last, throttled
