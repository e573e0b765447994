"""The README's quick start is what CI runs: its test command is a line of ``.ci/run``, verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [line for line in block[1].splitlines() if line and not line.startswith("#")]


def test_the_quick_start_has_exactly_a_run_and_a_test_command() -> None:
    assert quick_start_commands() == ["./just run", "./just test"]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test_command = quick_start_commands()[1]
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_recipes_just_lists_name_no_path_outside_the_repository() -> None:
    """``just`` (the README sends readers to it) prints the recipes' comments: none may climb out."""
    comments = [line for line in (ROOT / "justfile").read_text().splitlines() if line.startswith("#")]
    assert comments
    assert [line for line in comments if "../" in line] == []
