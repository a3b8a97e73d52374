"""Teams message HTML to the HTML subset Matrix clients render, plus its plain-text body.

Two passes. The first walks Teams' own markup (`<at>` mentions, `<emoji>`, `<attachment>`
markers, `<codeblock>`, inline `<img>` pointing at hosted contents) and rewrites it through
callbacks the mapper provides. The second is the security gate: nh3 (the Ammonia sanitizer)
with the Matrix allow-list, so whatever the first pass lets through, no script, iframe, style,
event handler attribute, `javascript:` URL or non-`mxc://` image source survives.

The allow-list is the one the Matrix client-server specification suggests for
`org.matrix.custom.html` (https://spec.matrix.org/latest/client-server-api/#mroommessage-msgtypes):
`a` keeps `href` (absolute http, https, ftp, mailto, magnet) and `target`; `img` keeps its
`src` only as an `mxc://` URI; `code` keeps `language-*` classes; `ol` keeps `start`.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import nh3

MATRIX_TAGS = frozenset(
    "del h1 h2 h3 h4 h5 h6 blockquote p a ul ol sup sub li b i u strong em s code hr br div "
    "table thead tbody tr th td caption pre span img details summary".split()
)
MATRIX_ATTRIBUTES = {
    "span": {"data-mx-bg-color", "data-mx-color", "data-mx-spoiler", "data-mx-maths"},
    "a": {"href", "target"},
    "img": {"src", "width", "height", "alt", "title"},
    "ol": {"start"},
    "code": {"class"},
    "div": {"data-mx-maths"},
}
LINK_SCHEMES = frozenset({"https", "http", "ftp", "mailto", "magnet"})
# Elements dropped with everything inside them (the rest only lose their tags).
DROPPED = frozenset(
    "script style iframe frame frameset object embed applet noscript template title head "
    "svg math textarea select button form meta link base".split()
)
VOID = frozenset({"br", "hr", "img", "wbr", "input", "meta", "link", "base", "col", "area"})
BLOCKS = frozenset(
    "p div li tr h1 h2 h3 h4 h5 h6 blockquote pre table ul ol details summary caption".split()
)
_LANGUAGE = re.compile(r"[^a-z0-9+#_-]")
_EMPTY_IMAGE = re.compile(r"<img(?![^>]*\ssrc=)[^>]*>")  # on nh3's normalised output


def _keep_attribute(tag: str, name: str, value: str) -> str | None:
    """nh3 attribute filter: image sources must be mxc URIs, code classes `language-*`."""
    if tag == "img" and name == "src":
        return value if value.startswith("mxc://") else None
    if tag == "code" and name == "class":
        languages = [c for c in value.split() if c.startswith("language-")]
        return " ".join(languages) or None
    if tag == "a" and name == "href":
        return value if urlsplit(value).scheme.lower() in LINK_SCHEMES else None
    return value


def sanitize(markup: str) -> str:
    """`markup` reduced to the Matrix allow-list (the security gate; see the module doc).

    Images whose source was refused are dropped whole rather than left empty.
    """
    cleaned = nh3.clean(
        markup,
        tags=set(MATRIX_TAGS),
        clean_content_tags={"script", "style"},
        attributes={tag: set(names) for tag, names in MATRIX_ATTRIBUTES.items()},
        attribute_filter=_keep_attribute,
        url_schemes=set(LINK_SCHEMES) | {"mxc"},
        url_relative="deny",
        link_rel=None,
        strip_comments=True,
    )
    return _EMPTY_IMAGE.sub("", cleaned)


def escape(text: str) -> str:
    return html.escape(text, quote=True)


@dataclass(frozen=True)
class Rewrites:
    """What the first pass asks the mapper: each callback returns safe HTML or None."""

    mention: Callable[[str, str], str]  # (at id, inner text) -> pill HTML
    image: Callable[[Mapping[str, str]], str]  # img attributes -> HTML standing for it
    attachment: Callable[[str], str | None]  # attachment id -> HTML (None: unknown id)
    link: Callable[[str], str]  # href -> the href to keep (migrated file URL...)


class _TeamsRewriter(HTMLParser):
    """Re-serialises Teams HTML, rewriting Teams-only elements (see `teams_to_matrix`)."""

    def __init__(self, rewrites: Rewrites) -> None:
        super().__init__(convert_charrefs=True)
        self.rewrites = rewrites
        self.out: list[str] = []
        self.dropping: list[str] = []  # open elements whose content is thrown away
        self.mention: tuple[str, list[str]] | None = None
        self.in_codeblock = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], closed: bool) -> None:
        values = {name: value or "" for name, value in attrs}
        if self.dropping:
            if not closed and tag not in VOID:
                self.dropping.append(tag)
            return
        if tag in DROPPED or tag in ("emoji", "attachment", "systemeventmessage"):
            self._special(tag, values)
            if not closed and tag not in VOID:
                self.dropping.append(tag)
        elif tag == "at":
            self.mention = (values.get("id", ""), [])
        elif tag == "img":
            self.out.append(self.rewrites.image(values))
        elif tag == "codeblock":
            self.in_codeblock += 1
            language = _LANGUAGE.sub("", values.get("class", "").lower())
            css = f' class="language-{language}"' if language else ""
            self.out.append(f"<pre><code{css}>")
        elif tag == "code" and self.in_codeblock:
            return
        else:
            self.out.append(self._tag(tag, values, closed))

    def _special(self, tag: str, values: dict[str, str]) -> None:
        if tag == "emoji":
            self.out.append(escape(values.get("alt", "")))
        elif tag == "attachment":
            self.out.append(self.rewrites.attachment(values.get("id", "")) or "")

    def _tag(self, tag: str, values: dict[str, str], closed: bool) -> str:
        if tag == "a" and "href" in values:
            values["href"] = self.rewrites.link(values["href"])
        allowed = MATRIX_ATTRIBUTES.get(tag, set())
        rendered = "".join(f' {k}="{escape(v)}"' for k, v in values.items() if k in allowed)
        return f"<{tag}{rendered}{' /' if closed else ''}>"

    def handle_endtag(self, tag: str) -> None:
        if self.dropping:
            if tag in self.dropping:
                while self.dropping and self.dropping.pop() != tag:
                    pass
            return
        if tag == "at" and self.mention is not None:
            at_id, text = self.mention
            self.mention = None
            self.out.append(self.rewrites.mention(at_id, "".join(text)))
        elif tag == "codeblock" and self.in_codeblock:
            self.in_codeblock -= 1
            self.out.append("</code></pre>")
        elif tag == "code" and self.in_codeblock:
            return
        elif tag not in VOID:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self.dropping:
            return
        if self.mention is not None:
            self.mention[1].append(data)
        else:
            self.out.append(escape(data))


def teams_to_matrix(markup: str, rewrites: Rewrites) -> str:
    """Teams message HTML as Matrix-safe HTML (first pass, then `sanitize`)."""
    rewriter = _TeamsRewriter(rewrites)
    rewriter.feed(markup)
    rewriter.close()
    if rewriter.mention is not None:  # an <at> never closed: keep its text
        rewriter.out.append(escape("".join(rewriter.mention[1])))
    return sanitize("".join(rewriter.out)).strip()


def text_to_html(text: str) -> str:
    """Plain text (a `text` body, a card's text) as HTML keeping its line breaks."""
    return "<br>".join(escape(line) for line in text.split("\n"))


class _TextRenderer(HTMLParser):
    """The plain-text `body` of sanitized HTML: blocks on their own lines, links readable."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.pre = 0
        self.links: list[tuple[str, int]] = []  # (href, index in parts where the text starts)

    def _newline(self) -> None:
        if self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in BLOCKS:
            self._newline()
        if tag == "pre":
            self.pre += 1
        elif tag == "li":
            self.parts.append("- ")
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "hr":
            self._newline()
            self.parts.append("---\n")
        elif tag == "img":
            self.parts.append(values.get("alt") or values.get("title") or "[image]")
        elif tag == "a":
            self.links.append((values.get("href", ""), len(self.parts)))
        elif tag in ("td", "th") and self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append("\t")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag == "a" and self.links:
            href, start = self.links.pop()
            text = "".join(self.parts[start:]).strip()
            if href and href != text and not href.startswith("https://matrix.to/"):
                self.parts.append(f" ({href})" if text else href)
        if tag in BLOCKS:
            self._newline()

    def handle_data(self, data: str) -> None:
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
            if self.parts and self.parts[-1].endswith(("\n", " ")):
                data = data.lstrip(" ")
        self.parts.append(data)


def html_to_text(markup: str) -> str:
    """The plain-text rendering of (sanitized) HTML, for the event's `body`."""
    renderer = _TextRenderer()
    renderer.feed(markup)
    renderer.close()
    lines = "".join(renderer.parts).split("\n")
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# -- splitting large messages ---------------------------------------------------------------


class _Tokens(HTMLParser):
    """Sanitized HTML as a token list: ("start"|"end"|"void"|"text", tag, serialized)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        rendered = "".join(f' {k}="{escape(v or "")}"' for k, v in attrs)
        kind = "void" if tag in VOID else "start"
        self.tokens.append((kind, tag, f"<{tag}{rendered}>"))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID:
            self.tokens.append(("end", tag, f"</{tag}>"))

    def handle_data(self, data: str) -> None:
        self.tokens.append(("text", "", data))


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


class _Splitter:
    """Accumulates tokens into chunks of at most `budget` bytes, closing and reopening the
    elements open at each cut so that every chunk is well-formed HTML on its own."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.chunks: list[str] = []
        self.stack: list[tuple[str, str]] = []  # (tag, opening markup)
        self.current: list[str] = []
        self.used = 0
        self.base = 0  # bytes of the reopened elements at the start of the chunk

    def _closing(self) -> str:
        return "".join(f"</{tag}>" for tag, _ in reversed(self.stack))

    def cut(self) -> None:
        self.chunks.append("".join(self.current) + self._closing())
        self.current = [opening for _, opening in self.stack]
        self.used = self.base = sum(_size(opening) for opening in self.current)

    def room(self) -> int:
        return self.budget - self.used - _size(self._closing())

    def _append(self, markup: str) -> None:
        self.current.append(markup)
        self.used += _size(markup)

    def add(self, markup: str) -> None:
        if _size(markup) > self.room() and self.used > self.base:
            self.cut()
        self._append(markup)

    def open(self, tag: str, markup: str) -> None:
        if _size(markup) + 64 > self.room() and self.used > self.base:
            self.cut()  # not an element left empty at the end of a chunk
        self._append(markup)
        self.stack.append((tag, markup))

    def close(self, tag: str) -> None:
        if all(open_tag != tag for open_tag, _ in self.stack):
            return  # a stray end tag
        while self.stack:
            open_tag, _ = self.stack.pop()
            self._append(f"</{open_tag}>")
            if open_tag == tag:
                return

    def add_text(self, text: str) -> None:
        while text:
            if self.room() < 64 and self.used > self.base:
                self.cut()
            piece = _head(text, max(self.room(), 64))
            self._append(escape(piece))
            text = text[len(piece) :]
            if text:
                self.cut()

    def finish(self) -> list[str]:
        self.chunks.append("".join(self.current) + self._closing())
        return [chunk for chunk in self.chunks if chunk.strip()]


def _head(text: str, budget: int) -> str:
    """The longest start of `text` whose escaped form fits `budget` bytes, cut at a space
    or line break when one is near the end."""
    if _size(escape(text)) <= budget:
        return text
    low, high = 1, len(text)
    while low < high:  # binary search on the character count
        middle = (low + high + 1) // 2
        if _size(escape(text[:middle])) <= budget:
            low = middle
        else:
            high = middle - 1
    head = text[:low]
    space = max(head.rfind("\n"), head.rfind(" "))
    return head[: space + 1] if space > len(head) * 3 // 4 else head


def split_html(markup: str, budget: int) -> list[str]:
    """`markup` (sanitized, well-formed) in chunks of at most about `budget` UTF-8 bytes."""
    if _size(markup) <= budget:
        return [markup]
    tokens = _Tokens()
    tokens.feed(markup)
    tokens.close()
    splitter = _Splitter(budget)
    for kind, tag, serialized in tokens.tokens:
        if kind == "text":
            splitter.add_text(serialized)
        elif kind == "start":
            splitter.open(tag, serialized)
        elif kind == "end":
            splitter.close(tag)
        else:
            splitter.add(serialized)
    return splitter.finish()


# -- attachments ------------------------------------------------------------------------------

CODE_SNIPPET = "application/vnd.microsoft.card.codesnippet"
CARD_PREFIX = "application/vnd.microsoft.card."
NOT_MIGRATED = "(file not migrated)"
_CARD_TEXT_KEYS = ("title", "subtitle", "text", "speak")


def render_attachment(
    attachment: Mapping[str, Any],
    hosted: Mapping[str, Any],
    migrated: Callable[[str], str | None],
) -> str:
    """HTML standing for one chatMessageAttachment
    (https://learn.microsoft.com/en-us/graph/api/resources/chatmessageattachment):
    file references point at the migrated copy (or keep their URL with a note), code
    snippets become `<pre><code>`, cards and quoted messages readable text."""
    kind = str(attachment.get("contentType") or "")
    name = str(attachment.get("name") or "")
    url = str(attachment.get("contentUrl") or "")
    content = _json(attachment.get("content"))
    if kind == CODE_SNIPPET:
        return _code_snippet(content, hosted)
    if kind in ("messageReference", "forwardedMessageReference"):
        return _quoted_message(content)
    if kind.startswith(CARD_PREFIX):
        return _card(content, migrated)
    if url.lower().startswith(("https://", "http://")):
        return _file_link(url, name or url, migrated)
    return f"<p>📎 {escape(name)}</p>" if name else ""


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _file_link(url: str, name: str, migrated: Callable[[str], str | None]) -> str:
    target = migrated(url)
    if target:
        return f'<p>📎 <a href="{escape(target)}">{escape(name)}</a></p>'
    return f'<p>📎 <a href="{escape(url)}">{escape(name)}</a> {NOT_MIGRATED}</p>'


def _code_snippet(content: Any, hosted: Mapping[str, Any]) -> str:
    """A code snippet's code lives in a hosted content named by its `codeSnippetUrl`."""
    if not isinstance(content, Mapping):
        return "<p>[code snippet not available]</p>"
    language = _LANGUAGE.sub("", str(content.get("language") or "").lower())
    found = re.search(r"/hostedContents/([^/?#]+)/", str(content.get("codeSnippetUrl") or ""))
    entry = hosted.get(found.group(1)) if found else None
    try:
        code = base64.b64decode(str(entry["base64"])).decode("utf-8") if entry else None
    except (binascii.Error, UnicodeDecodeError, KeyError, TypeError):
        code = None
    if code is None:
        return "<p>[code snippet not available]</p>"
    css = f' class="language-{language}"' if language else ""
    title = content.get("name")
    caption = f"<p><em>{escape(str(title))}</em></p>" if title else ""
    return f"{caption}<pre><code{css}>{escape(code)}</code></pre>"


def _quoted_message(content: Any) -> str:
    if not isinstance(content, Mapping):
        return ""
    sender = ((content.get("messageSender") or {}).get("user") or {}).get("displayName")
    preview = str(content.get("messagePreview") or "")
    author = f"<p><strong>{escape(str(sender))}</strong></p>" if sender else ""
    return f"<blockquote>{author}<p>{escape(preview)}</p></blockquote>"


def _card(content: Any, migrated: Callable[[str], str | None]) -> str:
    """A card's visible text, facts and links (to migrated files when known), quoted."""
    lines: list[str] = []
    _card_lines(content, lines, migrated)
    return f"<blockquote>{''.join(lines)}</blockquote>" if lines else "<p>[card]</p>"


def _card_lines(node: Any, lines: list[str], migrated: Callable[[str], str | None]) -> None:
    if isinstance(node, list):
        for child in node:
            _card_lines(child, lines, migrated)
        return
    if not isinstance(node, Mapping):
        return
    url = node.get("url") or (node.get("value") if node.get("type") == "openUrl" else None)
    title = node.get("title")
    if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
        if node.get("type") != "Image":
            label = title if isinstance(title, str) and title else url
            lines.append(f'<p><a href="{escape(migrated(url) or url)}">{escape(label)}</a></p>')
        return
    if isinstance(node.get("facts"), list):
        for fact in node["facts"]:
            if isinstance(fact, Mapping):
                fact_title, value = escape(str(fact.get("title", ""))), str(fact.get("value", ""))
                lines.append(f"<p><strong>{fact_title}</strong> {escape(value)}</p>")
    for key in _CARD_TEXT_KEYS:
        if isinstance(node.get(key), str) and node[key].strip():
            lines.append(f"<p>{text_to_html(node[key].strip())}</p>")
    for key, child in node.items():
        if isinstance(child, list | Mapping) and key != "facts":
            _card_lines(child, lines, migrated)
