"""The curl walk-through of docs/domain.md, run verbatim against a live server; its output as the page shows it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.processes import run_console, running_service, service_env

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "domain.md"
# A ```sh block, and the ```text block right after it (its expected output), if any.
BLOCK = re.compile(r"```sh\n(?P<script>.*?)```\s*(?:```text\n(?P<output>.*?)```)?", re.DOTALL)
MARK = "@@block@@"


def blocks() -> list[tuple[str, str | None]]:
    return [(found["script"], found["output"]) for found in BLOCK.finditer(GUIDE.read_text())]


def test_the_guide_has_commands_and_their_outputs() -> None:
    found = blocks()
    assert len(found) >= 6
    assert all(output is not None for _, output in found)


def test_the_guides_commands_do_what_it_says(tmp_path: Path) -> None:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    assert not missing, f"the guide needs {missing}: `just test` installs them (apt-get install -y curl jq)"
    env = service_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/domain.db", RATE_LIMIT_ENABLED="false")
    migration = run_console("database", "upgrade", "--no-prompt", cwd=tmp_path, env=env, timeout=60)
    assert migration.returncode == 0, migration.stderr
    script = "".join(f"echo {MARK}\n{code}" for code, _ in blocks())
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
    for (code, expected), output in zip(blocks(), outputs, strict=True):
        assert output == expected, f"the block\n{code}\nprinted\n{output}"


def test_the_guide_is_in_the_docs_sites_navigation() -> None:
    assert "Organising tasks: domain.md" in (GUIDE.parents[1] / "mkdocs.yml").read_text()
