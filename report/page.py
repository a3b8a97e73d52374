"""One self-contained HTML page from a Jinja2 template, in French or English.

The page loads nothing: styles and charts are inline and a Content-Security-Policy meta forbids
every other source (no script runs, no image, font or frame comes from anywhere). Names come
from the tenant and are hostile until proven otherwise: autoescape is on for every template, and
the only markup inserted whole is the SVG the charts module serialised itself.

Translations: the French catalog is committed as a .po file and compiled in memory when first
used (babel's `read_po` and `write_mo`), so a clean clone needs no build step. The msgids are
the English text, so English needs no catalog.
"""

from __future__ import annotations

import functools
import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from jinja2 import Environment, PackageLoader, select_autoescape

from ..mappings.sizes import scaled
from ..migrator.errors import ConfigError
from ..migrator.plan import estimate_minutes

LANGUAGES = ("fr", "en")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "hirondelle"
# Nothing from anywhere: inline styles (and the SVG charts' own <style>) only, images as data:
# URIs only, no script, no form, no frame; see
# https://www.w3.org/TR/CSP3/#directive-default-src and
# https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Content-Security-Policy
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)
SIZE_UNITS = {
    "en": ("bytes", "kB", "MB", "GB", "TB", "PB"),
    "fr": ("octets", "ko", "Mo", "Go", "To", "Po"),
}


def default_language(environ: Mapping[str, str] = os.environ) -> str:
    """The language of the locale, as gettext picks it: LC_ALL, then LC_MESSAGES, then LANG;
    French when it is French, English otherwise."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            return "fr" if value.lower().startswith("fr") else "en"
    return "en"


@functools.cache
def translations(language: str) -> NullTranslations:
    """The catalog of `language`, compiled from its .po file (English: the msgids)."""
    if language == "en":
        return NullTranslations()
    po = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as file:
        catalog = read_po(file, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


class Formats:
    """Numbers, sizes and durations as the reader's language writes them."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.gettext = translations(language).gettext

    def number(self, value: float, digits: int = 0) -> str:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return str(format_decimal(value, format=pattern, locale=self.language))

    def size(self, size: float) -> str:
        """Decimal units, three significant figures (as `mappings.sizes.readable_size`)."""
        units = SIZE_UNITS[self.language]
        if size < 1000:
            return f"{self.number(int(size))} {units[0]}"
        value, unit = scaled(size)
        digits = 0 if value >= 99.95 else 1 if value >= 9.995 else 2
        return f"{self.number(value, digits)} {units[unit]}"

    def duration(self, seconds: float) -> str:
        days, minutes = divmod(estimate_minutes(seconds), 24 * 60)
        hours, minutes = divmod(minutes, 60)
        day = self.gettext("d")
        if days:
            return f"{days} {day} {hours} h {minutes:02d}"
        return f"{hours} h {minutes:02d}" if hours else f"{minutes} min"


def environment(language: str) -> Environment:
    env = Environment(
        loader=PackageLoader("hirondelle.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]  # added by the jinja2.ext.i18n extension
    formats = Formats(language)
    env.filters["number"] = formats.number
    env.filters["size"] = formats.size
    env.filters["duration"] = formats.duration
    env.globals["language"] = language
    env.globals["csp"] = CSP
    return env


def render(template: str, language: str, context: Mapping[str, Any]) -> str:
    return environment(language).get_template(template).render(**context)


def write_page(path: Path, html: str, option: str) -> None:
    """Write the page whole or not at all (a temporary file renamed over `path`)."""
    try:
        directory = path.resolve().parent
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=directory, suffix=".tmp", delete=False
        ) as file:
            file.write(html)
        os.replace(file.name, path)
    except OSError as exc:
        raise ConfigError(option, f"cannot write {path}: {exc.strerror}") from None


def check_writable(path: Path, option: str) -> None:
    """Refuse an unwritable page before a long scan, not after it."""
    directory = path.resolve().parent
    if not directory.is_dir() or not os.access(directory, os.W_OK):
        raise ConfigError(option, f"cannot write {path}: no writable folder {directory}")
