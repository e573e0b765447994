"""MkDocs hook: the list of decision records on ``adr/index.md``, made from the files that exist.

Every ``adr/NNNN-*.md`` page is listed, in number order, under the title of its first heading, so
a new record appears on the index (and is linked, hence reachable) without editing the index or
the nav. The page carries :data:`MARKER` where the list goes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

__all__ = ("MARKER", "PAGE", "adr_list", "on_page_markdown")

PAGE = "adr/index.md"
MARKER = "<!-- adr-list -->"
_RECORD = re.compile(r"^adr/(?P<number>\d{4})-[\w.-]+\.md$")
_HEADING = re.compile(r"^#\s+(?P<title>.+?)\s*$", re.MULTILINE)


class AdrIndexError(Exception):
    """The decision records cannot be listed."""


def adr_list(records: dict[str, Path]) -> str:
    """A Markdown list linking each record (``adr/0001-x.md`` -> its file), by number.

    Raises:
        AdrIndexError: a record has no ``# `` heading, or there is none at all.
    """
    if not records:
        msg = "no decision records (adr/NNNN-*.md) to list"
        raise AdrIndexError(msg)
    lines = []
    for uri in sorted(records):
        heading = _HEADING.search(records[uri].read_text(encoding="utf-8"))
        if heading is None:
            msg = f"{uri} has no '# ' heading to list it by"
            raise AdrIndexError(msg)
        lines.append(f"- [{heading['title']}]({uri.removeprefix('adr/')})")
    return "\n".join(lines)


def on_page_markdown(markdown: str, /, *, page: Page, config: MkDocsConfig, files: Files) -> str | None:  # noqa: ARG001
    """Replace :data:`MARKER` on the ADR index with the list of records.

    Raises:
        AdrIndexError: the index has no marker (or see :func:`adr_list`).
    """
    if page.file.src_uri != PAGE:
        return None
    if MARKER not in markdown:
        msg = f"{PAGE} must contain {MARKER} where the list of records goes"
        raise AdrIndexError(msg)
    records = {
        file.src_uri: Path(file.abs_src_path)
        for file in files.documentation_pages()
        if _RECORD.match(file.src_uri) and file.abs_src_path is not None
    }
    return markdown.replace(MARKER, adr_list(records))
