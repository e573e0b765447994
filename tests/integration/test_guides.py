"""The curl walk-throughs of the docs, run verbatim against a live server; their output as each guide shows it.

One test per guide: docs/sync.md (ETags, idempotency, the change feed, batches), docs/lists.md
(lists, labels, the trash) and docs/domain.md (subtasks, order, recurrence, reminders).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.processes import run_console, running_service, service_env

DOCS = Path(__file__).resolve().parents[2] / "docs"
# A ```sh block, and the ```text block right after it (its expected output), if any.
BLOCK = re.compile(r"```sh\n(?P<script>.*?)```\s*(?:```text\n(?P<output>.*?)```)?", re.DOTALL)
MARK = "@@block@@"
# Each guide, how many commands it has at least, and its entry in the site's navigation.
GUIDES = [
    ("sync.md", 6, "Sync guide: sync.md"),
    ("lists.md", 5, "Lists, labels, trash: lists.md"),
    ("domain.md", 6, "Organising tasks: domain.md"),
]
guides = pytest.mark.parametrize(("page", "commands", "nav"), GUIDES, ids=[page for page, *_ in GUIDES])


def blocks(page: str) -> list[tuple[str, str | None]]:
    return [(found["script"], found["output"]) for found in BLOCK.finditer((DOCS / page).read_text())]


@guides
def test_the_guide_has_commands_and_their_outputs(page: str, commands: int, nav: str) -> None:
    found = blocks(page)
    assert len(found) >= commands
    assert all(output is not None for _, output in found)
    assert nav in (DOCS.parent / "mkdocs.yml").read_text()  # and the site links it


@guides
def test_the_guides_commands_do_what_it_says(page: str, commands: int, nav: str, tmp_path: Path) -> None:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    assert not missing, f"the guide needs {missing}: `just test` installs them (apt-get install -y curl jq)"
    env = service_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/guide.db", RATE_LIMIT_ENABLED="false")
    migration = run_console("database", "upgrade", "--no-prompt", cwd=tmp_path, env=env, timeout=60)
    assert migration.returncode == 0, migration.stderr
    script = "".join(f"echo {MARK}\n{code}" for code, _ in blocks(page))
    with running_service(cwd=tmp_path, env=env) as service:
        result = subprocess.run(  # noqa: S603  (bash, with the guide's own commands)
            ["bash", "-euo", "pipefail", "-c", script],  # noqa: S607
            env={"PATH": "/usr/bin:/bin", "BASE": service.base_url},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, f"{result.stderr}\n{result.stdout}"
    outputs = result.stdout.split(f"{MARK}\n")[1:]
    for (code, expected), output in zip(blocks(page), outputs, strict=True):
        assert output == expected, f"the block\n{code}\nprinted\n{output}"
