"""ManageSieve (RFC 5804) on the wire: commands out, responses in, over one blocking socket.

A response is zero or more data lines, then one line starting with OK, NO or BYE, an
optional response code in parentheses (`(QUOTA/MAXSIZE)`, `(NONEXISTENT)`, `(ACTIVE)`...)
and an optional human text (RFC 5804 section 1.3). Strings are quoted (`"a \\"b\\""`) or
literals (`{12}` CRLF and 12 octets); a client sends its literals non-synchronising
(`{12+}`, section 4: the client never waits for a continuation). Script contents travel
as bytes, unchanged: their SHA-256 is what `find` and `verify` compare.
"""

from __future__ import annotations

import base64
import socket
import ssl
from dataclasses import dataclass
from typing import BinaryIO, TypeAlias

CRLF = b"\r\n"
MAX_LINE = 64 * 1024  # a response line longer than this is not ManageSieve
MAX_QUOTED = 1024  # RFC 5804 section 4: a quoted string holds at most 1024 octets


class Atom(str):
    """An unquoted token of a response: OK, NO, BYE, ACTIVE, a response code's name."""

    __slots__ = ()


Token: TypeAlias = Atom | bytes | list["Token"]  # bytes: a string; list: a parenthesised group


class ProtocolError(Exception):
    """The server said something that is not ManageSieve (or closed the connection)."""


@dataclass(frozen=True, slots=True)
class Response:
    """The line that ends a command's answer."""

    status: str  # "OK", "NO" or "BYE"
    code: str = ""  # the response code, upper case ("QUOTA/MAXSIZE"), "" for none
    code_args: tuple[str, ...] = ()
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    def has(self, code: str) -> bool:
        """The response carries `code` or one of its sub-codes ("QUOTA" for "QUOTA/MAXSIZE")."""
        return self.code == code or self.code.startswith(code + "/")

    def describe(self) -> str:
        """The server's answer as an operator reads it: "NO (QUOTA/MAXSIZE) too big"."""
        code = f" ({self.code})" if self.code else ""
        return f"{self.status}{code} {self.text}".strip()


def text(token: Token | None) -> str:
    """A token as text (a string is UTF-8, RFC 5804 section 4)."""
    if isinstance(token, bytes):
        return token.decode("utf-8", "replace")
    if isinstance(token, list):
        return " ".join(text(part) for part in token)
    return token or ""


def encode(argument: str | bytes) -> bytes:
    """A command argument: a quoted string when it may be one, else a literal. Bytes
    (script contents) are always a literal."""
    if isinstance(argument, str):
        data = argument.encode("utf-8")
        if len(data) <= MAX_QUOTED and not any(c in data for c in b"\r\n\0"):
            escaped = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
            return b'"' + escaped + b'"'
        argument = data
    return b"{%d+}" % len(argument) + CRLF + argument


def sasl_plain(authzid: str, auth_user: str, password: str) -> str:
    """The SASL PLAIN initial response (RFC 4616), base64 as AUTHENTICATE takes it."""
    message = b"\0".join(part.encode("utf-8") for part in (authzid, auth_user, password))
    return base64.b64encode(message).decode("ascii")


def response_of(tokens: list[Token]) -> Response | None:
    """The ending response if `tokens` is one (OK/NO/BYE first), else None (a data line)."""
    if not tokens or not isinstance(tokens[0], Atom):
        return None
    status = tokens[0].upper()
    if status not in ("OK", "NO", "BYE"):
        return None
    rest = tokens[1:]
    code = ""
    args: tuple[str, ...] = ()
    if rest and isinstance(rest[0], list):
        group = rest.pop(0)
        assert isinstance(group, list)
        code = text(group[0]).upper() if group else ""
        args = tuple(text(part) for part in group[1:])
    return Response(status, code, args, " ".join(text(part) for part in rest))


class Wire:
    """One connection: writes commands, reads response lines (their literals included)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._file: BinaryIO = sock.makefile("rb")

    def start_tls(self, context: ssl.SSLContext, host: str) -> None:
        """Wrap the socket in TLS (after STARTTLS was accepted), verifying `host`."""
        self._file.close()
        self.sock = context.wrap_socket(self.sock, server_hostname=host)
        self._file = self.sock.makefile("rb")

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self.sock.close()

    def send(self, name: str, *arguments: str | bytes) -> None:
        line = name.encode("ascii")
        for argument in arguments:
            line += b" " + encode(argument)
        self.sock.sendall(line + CRLF)

    def command(self, name: str, *arguments: str | bytes) -> tuple[list[list[Token]], Response]:
        """Send a command; its data lines and its ending response."""
        self.send(name, *arguments)
        return self.read_response()

    def read_response(self) -> tuple[list[list[Token]], Response]:
        """Data lines up to the OK/NO/BYE line, and that line."""
        lines: list[list[Token]] = []
        while True:
            tokens = self.read_tokens()
            response = response_of(tokens)
            if response is not None:
                return lines, response
            lines.append(tokens)

    def _line(self) -> bytes:
        line = self._file.readline(MAX_LINE + 2)
        if not line:
            raise ProtocolError("the server closed the connection")
        if not line.endswith(b"\n"):
            raise ProtocolError(f"a response line longer than {MAX_LINE} bytes")
        return line.rstrip(b"\r\n")

    def _exactly(self, size: int) -> bytes:
        data = self._file.read(size)
        if len(data) != size:
            raise ProtocolError("the server closed the connection inside a literal")
        return data

    def read_tokens(self) -> list[Token]:
        """One response line as tokens: atoms, strings (quoted or literal) and groups."""
        stack: list[list[Token]] = [[]]
        while True:
            line, position, literal = self._line(), 0, None
            while position < len(line):
                char = line[position : position + 1]
                if char == b" ":
                    position += 1
                elif char == b"(":
                    stack.append([])
                    position += 1
                elif char == b")":
                    if len(stack) > 1:
                        group = stack.pop()
                        stack[-1].append(group)
                    position += 1
                elif char == b'"':
                    value, position = _quoted(line, position)
                    stack[-1].append(value)
                elif char == b"{" and line.endswith(b"}"):
                    size = line[position + 1 : -1].rstrip(b"+")
                    if not size.isdigit():
                        raise ProtocolError(f"a bad literal: {line[position:]!r}")
                    literal = int(size)
                    break
                else:
                    end = position
                    while end < len(line) and line[end : end + 1] not in b' ()"':
                        end += 1
                    stack[-1].append(Atom(line[position:end].decode("utf-8", "replace")))
                    position = end
            if literal is None:
                while len(stack) > 1:  # an unclosed group ends with its line
                    group = stack.pop()
                    stack[-1].append(group)
                return stack[0]
            stack[-1].append(self._exactly(literal))  # the line goes on after the literal


def _quoted(line: bytes, start: int) -> tuple[bytes, int]:
    """The quoted string at `start` (unescaped) and the position after its closing quote."""
    value = bytearray()
    position = start + 1
    while position < len(line):
        char = line[position]
        if char == 0x5C and position + 1 < len(line):  # backslash: the next octet as is
            value.append(line[position + 1])
            position += 2
        elif char == 0x22:
            return bytes(value), position + 1
        else:
            value.append(char)
            position += 1
    raise ProtocolError(f"an unterminated quoted string: {line[start:]!r}")


def capabilities_of(lines: list[list[Token]]) -> dict[str, str]:
    """The capability lines of a greeting or CAPABILITY answer: name (upper) -> value."""
    found = {}
    for tokens in lines:
        if tokens:
            found[text(tokens[0]).upper()] = text(tokens[1]) if len(tokens) > 1 else ""
    return found


def script_list(lines: list[list[Token]]) -> dict[str, bool]:
    """LISTSCRIPTS's lines: script name -> active."""
    scripts = {}
    for tokens in lines:
        if tokens and isinstance(tokens[0], bytes):
            active = any(isinstance(t, Atom) and t.upper() == "ACTIVE" for t in tokens[1:])
            scripts[text(tokens[0])] = active
    return scripts
