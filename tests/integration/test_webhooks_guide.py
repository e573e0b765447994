"""The webhooks guide (docs/webhooks.md): its Python verification snippet, run verbatim on a real delivery."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.integration.test_webhooks import make_task, make_webhook
from tests.webhook_receiver import webhook_receiver

if TYPE_CHECKING:
    from tests.factories import Account, Client

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
PYTHON = re.compile(r"```python\n(?P<code>.*?)```", re.DOTALL)


def snippet() -> Any:
    [code] = [found["code"] for found in PYTHON.finditer(GUIDE.read_text())]
    scope: dict[str, Any] = {}
    exec(compile(code, str(GUIDE), "exec"), scope)  # noqa: S102  (the guide's own code)
    return scope["verify_webhook"]


async def test_the_guides_snippet_verifies_a_real_delivery(client: Client, account: Account) -> None:
    verify_webhook = snippet()
    with webhook_receiver() as receiver:
        webhook = await make_webhook(client, account, receiver.url)
        await make_task(client, account)
        [got] = await receiver.wait_for(1)
    assert verify_webhook(webhook["secret"], got.headers, got.body) is True
    assert verify_webhook(webhook["secret"], got.headers, got.body + b" ") is False
    assert verify_webhook(webhook["secret"], {**got.headers, "webhook-id": "other"}, got.body) is False
    stale = {**got.headers, "webhook-timestamp": str(int(got.headers["webhook-timestamp"]) - 3600)}
    assert verify_webhook(webhook["secret"], stale, got.body) is False


def test_the_guide_is_in_the_docs_sites_navigation() -> None:
    assert "Webhooks: webhooks.md" in (GUIDE.parents[1] / "mkdocs.yml").read_text()
