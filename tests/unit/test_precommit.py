"""The pre-commit hooks run the same linters as ``just lint``, line for line, so the two cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def lint_recipe() -> list[str]:
    """The commands of the justfile's ``lint`` recipe, in order."""
    justfile = (ROOT / "justfile").read_text()
    body = re.search(r"^lint:[^\n]*\n((?:[ \t]+\S[^\n]*\n)+)", justfile, re.MULTILINE)
    assert body is not None, "the justfile has no lint recipe"
    return [line.strip() for line in body[1].splitlines()]


def hooks() -> list[dict[str, object]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    found: list[dict[str, object]] = config["repos"][0]["hooks"]
    return found


def as_lint_line(hook: dict[str, object]) -> str:
    """The ``just lint`` line a hook stands for: its entry, plus ``.`` where pre-commit passes the files."""
    entry = str(hook["entry"])
    return entry if hook.get("pass_filenames", True) is False else f"{entry} ."


def test_every_lint_command_is_a_hook_and_every_hook_a_lint_command() -> None:
    assert [as_lint_line(hook) for hook in hooks()] == lint_recipe()


def test_hooks_run_in_the_locked_environment_of_the_project() -> None:
    for hook in hooks():
        assert hook["language"] == "system", hook
        assert str(hook["entry"]).startswith("uv run --frozen "), hook


def test_the_lint_recipe_is_read_whole() -> None:
    commands = lint_recipe()
    assert commands[0] == "uv run --frozen ruff check ."
    assert len(commands) == len(set(commands)) >= 5
