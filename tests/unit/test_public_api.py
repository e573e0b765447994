"""The service uses SQLAlchemy, Advanced Alchemy, Litestar and msgspec through their public API only.

A private module or attribute breaks on a minor release without a word; this test keeps them out
of ``todo_service/`` (a deviation needs an ADR in ``docs/adr/`` with its figures, and this list).
"""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARIES = ("sqlalchemy", "advanced_alchemy", "litestar", "msgspec")
PACKAGE = Path(__file__).resolve().parents[2] / "todo_service"


def _private_uses(source: str) -> list[str]:
    """Private library modules imported, and private attributes read, in one module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            if _private([*node.module.split("."), *(alias.name for alias in node.names)]):
                found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if _private(a.name.split("."))]
        elif (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
        ):
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def _private(parts: list[str]) -> bool:
    return parts[0] in LIBRARIES and any(part.startswith("_") and not part.startswith("__") for part in parts)


def test_the_checker_finds_what_it_looks_for() -> None:
    source = (
        "from litestar._asgi.utils import wrap\n"
        "from sqlalchemy import _x\n"
        "import msgspec._core\n"
        "p = compiled._bind_processors\n"
        "ok = self._own\n"
    )
    assert _private_uses(source) == [
        "line 1: from litestar._asgi.utils import ...",
        "line 2: from sqlalchemy import ...",
        "line 3: import msgspec._core",
        "line 4: ._bind_processors",
    ]


def test_no_private_library_api_in_the_service() -> None:
    offences = {
        str(path.relative_to(PACKAGE.parent)): uses
        for path in sorted(PACKAGE.rglob("*.py"))
        if (uses := _private_uses(path.read_text()))
    }
    assert offences == {}
