"""The README is a front page and the docs site is honest: sizes, links, paths, generated settings."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import msgspec
import pytest

from todo_service.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_BYTES = 12_000

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# Any path that climbs: ``../x``, ``../../shared/bench``, in prose, code spans and code blocks alike.
_CLIMBING_PATH = re.compile(r"(?:\.\./)+[\w./-]*")
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", re.IGNORECASE)


def load(path: Path) -> ModuleType:
    """A module from its file, as MkDocs loads a hook (docs/ is not a package of the project)."""
    spec = importlib.util.spec_from_file_location(f"docs_hook_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pages() -> list[Path]:
    """The README and every Markdown page of the docs site."""
    found = sorted(DOCS.rglob("*.md"))
    assert DOCS / "index.md" in found
    return [README, *found]


def relative_links(markdown: str) -> list[str]:
    """Targets of the Markdown links outside code blocks that point at a file of the repository."""
    prose = _FENCE.sub("", markdown)
    return [target for target in _LINK.findall(prose) if not _EXTERNAL.match(target)]


def paths_leaving(markdown: str, directory: Path) -> list[str]:
    """Climbing paths and link targets that resolve outside the repository, seen from ``directory``."""
    candidates = [*_CLIMBING_PATH.findall(markdown), *relative_links(markdown)]
    leaving = []
    for candidate in candidates:
        target = (directory / candidate.split("#", 1)[0]).resolve()
        if not target.is_relative_to(ROOT):
            leaving.append(candidate)
    return leaving


def test_the_readme_is_a_front_page_under_12_kb() -> None:
    size = len(README.read_bytes())
    assert size < MAX_README_BYTES, f"README.md is {size} bytes: move detail into docs/"
    readme = README.read_text()
    for section in ("## Quick start", "## A walk through the API", "## Documentation"):
        assert section in readme


def test_the_readme_walks_through_the_api_with_curl() -> None:
    readme = README.read_text()
    for step in ("/auth/register", "/auth/login", "-X POST $B/users/$USER_ID/tasks", "/complete", "-X DELETE"):
        assert step in readme, step
    assert '"error_code": "VALIDATION_ERROR"' in readme


def test_the_path_checker_sees_a_path_that_leaves_the_repository() -> None:
    assert paths_leaving("the harness in `../shared/bench`", ROOT) == ["../shared/bench"]
    assert paths_leaving("[the spec](../../CONTRACT.md)", DOCS) == ["../../CONTRACT.md", "../../CONTRACT.md"]
    assert paths_leaving("[ops](../operations.md#logs)", DOCS / "adr") == []


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_no_page_refers_to_files_outside_the_repository(page: Path) -> None:
    text = page.read_text()
    assert "../shared" not in text
    assert "shared/CONTRACT" not in text
    assert paths_leaving(text, page.parent) == []


def test_every_relative_link_of_the_readme_points_at_a_file() -> None:
    links = relative_links(README.read_text())
    assert {"docs/index.md", "docs/api.md", "docs/configuration.md", "SECURITY.md"} <= set(links)
    missing = [link for link in links if not (ROOT / link.split("#", 1)[0]).is_file()]
    assert missing == []


def test_the_link_finder_skips_code_and_external_links() -> None:
    markdown = "[a](docs/api.md#errors) [b](https://example.com) [c](#top)\n```sh\n[d](nowhere.md)\n```\n"
    assert relative_links(markdown) == ["docs/api.md#errors"]


def test_the_configuration_page_names_every_setting_and_its_variable() -> None:
    hook = load(DOCS / "hooks" / "settings_page.py")
    page = hook.render()
    fields = list(Settings.__struct_fields__)
    assert len(fields) > 40
    for field in fields:
        variable = field.upper()
        assert hook.env_var(field) == variable
        assert f"| `{variable}` |" in page, variable
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert len(rows) == len(fields)
    # Types, bounds and defaults are the class's own.
    assert "| `ACCESS_TOKEN_EXPIRE_MINUTES` | integer (>= 1, <= 1440) | `30` |" in page
    assert "| `DATABASE_URL` | string | `sqlite+aiosqlite:///todo.db` |" in page
    assert "| `ALLOWED_HOSTS` | comma-separated list of strings | `*` |" in page
    assert "| `REFRESH_REUSE_GRACE_SECONDS` | integer (>= 0, <= 300) | `10` |" in page


def test_the_configuration_page_fails_on_a_setting_without_prose_or_prose_without_a_setting() -> None:
    hook = load(DOCS / "hooks" / "settings_page.py")
    prose = {group: dict(fields) for group, fields in hook.PROSE.items()}
    del prose["Authentication"]["refresh_reuse_grace_seconds"]
    with pytest.raises(hook.DocsError, match="no prose for REFRESH_REUSE_GRACE_SECONDS"):
        hook.render(prose=prose)

    class Extended(Settings, frozen=True, kw_only=True):
        brand_new_setting: int = 1

    with pytest.raises(hook.DocsError, match="no prose for BRAND_NEW_SETTING"):
        hook.render(Extended)
    stale = {**hook.PROSE, "Gone": {"no_such_field": "Was removed."}}
    with pytest.raises(hook.DocsError, match="prose for settings that do not exist: NO_SUCH_FIELD"):
        hook.render(prose=stale)


def test_the_configuration_page_has_the_marker_the_hook_fills_and_mkdocs_runs_the_hook() -> None:
    hook = load(DOCS / "hooks" / "settings_page.py")
    assert hook.MARKER in (DOCS / hook.PAGE).read_text()
    config = (ROOT / "mkdocs.yml").read_text()
    assert "- docs/hooks/settings_page.py" in config
    assert "- docs/hooks/adr_index.py" in config


def test_the_adr_index_lists_every_record() -> None:
    hook = load(DOCS / "hooks" / "adr_index.py")
    records = {f"adr/{path.name}": path for path in sorted((DOCS / "adr").glob("[0-9][0-9][0-9][0-9]-*.md"))}
    assert "adr/0001-serve-with-granian-and-drain-on-sigterm.md" in records
    listing = hook.adr_list(records)
    for uri, path in records.items():
        title = path.read_text().splitlines()[0].removeprefix("# ")
        assert f"- [{title}]({uri.removeprefix('adr/')})" in listing
        for section in ("**Status**", "## Context", "## Decision", "## Consequences"):
            assert section in path.read_text(), (uri, section)
    assert hook.MARKER in (DOCS / hook.PAGE).read_text()


def test_msgspec_still_exposes_what_the_settings_hook_reads() -> None:
    info = msgspec.inspect.type_info(Settings)
    assert isinstance(info, msgspec.inspect.StructType)
    assert [field.name for field in info.fields] == list(Settings.__struct_fields__)
