"""The three docs pages in a real headless browser, with nothing outside the service reachable.

Debian's ``chromium`` (``just test`` installs it, like PostgreSQL and Redis; this module installs
it too when it can) driven by Playwright, against ``todo-service run`` on a loopback port. Every
request the browser makes goes through a route that lets only the service's own origin through and
aborts anything else, so a page that needs a CDN stays blank here, as it would offline. Each page
must then show the API's real operations, taken from the schema the service serves.

What the pages' Content-Security-Policy refuses is recorded too (``securitypolicyviolation``
events): a refused load never reaches the network, so the route never sees it. Each page's list
must be exactly the known one: ReDoc 2's sidebar always shows Redocly's logo from Redocly's CDN
(refused, and hidden by ReDoc when it fails), and Scalar tries ``eval`` (refused; it renders
without it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.processes import LiveService, running_service, service_env
from tests.servers import migrate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from playwright.async_api import Browser, Page, Route

PAGE_TIMEOUT_MS = 20_000
INSTALL_TIMEOUT = 600
# Listening for the policy's refusals from the first script on (Playwright's init scripts are not
# subject to the page's CSP).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push([e.effectiveDirective, e.blockedURI]);
});
"""
KNOWN_REFUSALS: dict[str, set[tuple[str, str]]] = {
    "/api/docs": {("script-src", "eval")},
    "/api/docs/swagger": set(),
    "/api/docs/redoc": {("img-src", "https://cdn.redoc.ly/redoc/logo-mini.svg")},
}


def _install_chromium() -> None:
    """``apt-get install chromium``, as ``just test``'s ``_servers`` recipe does; skip when impossible."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            "chromium is missing and cannot be installed here (needs root and apt-get): "
            "`apt-get install -y chromium` or run `just test` as root"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "chromium"]
    installed = subprocess.run(command, env=env, capture_output=True, timeout=INSTALL_TIMEOUT, check=False)  # noqa: S603
    if installed.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=INSTALL_TIMEOUT, check=True)  # noqa: S607
        subprocess.run(command, env=env, capture_output=True, timeout=INSTALL_TIMEOUT, check=True)  # noqa: S603


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's chromium under Playwright (Playwright's own browser download cannot work offline)."""
    from playwright.async_api import async_playwright  # noqa: PLC0415  (only this module needs it)

    if shutil.which("chromium") is None:
        await asyncio.to_thread(_install_chromium)
    executable = shutil.which("chromium")
    assert executable is not None, "chromium is still missing after apt-get install"
    async with async_playwright() as playwright:
        # --no-sandbox: the tests run as root, where chromium refuses its sandbox.
        launched = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveService]:
    """``todo-service run`` on a migrated SQLite database, on a loopback port."""
    cwd: Path = tmp_path_factory.mktemp("docs-browser")
    database_url = f"sqlite+aiosqlite:///{cwd / 'todo.db'}"
    await asyncio.to_thread(migrate, database_url)
    env = service_env(DATABASE_URL=database_url)
    with contextlib.ExitStack() as stack:
        yield await asyncio.to_thread(stack.enter_context, running_service(cwd=cwd, env=env))


@pytest.fixture(scope="module")
async def operations(service: LiveService) -> list[dict[str, Any]]:
    """Every operation of the served schema: method, path, summary, first tag."""
    async with httpx.AsyncClient(timeout=10) as client:
        schema = (await client.get(f"{service.base_url}/api/docs/openapi.json")).json()
    return [
        {"method": method.upper(), "path": path, "summary": operation["summary"], "tag": operation["tags"][0]}
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "put", "post", "patch", "delete"}
    ]


class OfflineVisit:
    """A browser context where every request outside the service is aborted, and what was refused."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.served: list[str] = []
        self.blocked: list[str] = []
        self.errors: list[str] = []

    async def start(self, browser: Browser) -> Page:
        self.context = await browser.new_context()
        self.context.set_default_timeout(PAGE_TIMEOUT_MS)
        await self.context.route("**/*", self._only_the_service)
        await self.context.add_init_script(RECORD_VIOLATIONS)
        self.page = await self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        return self.page

    async def _only_the_service(self, route: Route) -> None:
        url = route.request.url
        if url == self.origin or url.startswith(f"{self.origin}/"):
            self.served.append(url.removeprefix(self.origin))
            await route.continue_()
        else:
            self.blocked.append(url)
            await route.abort()

    async def open(self, path: str) -> Page:
        response = await self.page.goto(f"{self.origin}{path}", wait_until="load")
        assert response is not None
        assert response.status == 200
        return self.page

    async def refused(self) -> set[tuple[str, str]]:
        return {(directive, uri) for directive, uri in await self.page.evaluate("window.__violations")}


@pytest.fixture
async def visit(service: LiveService, browser: Browser) -> AsyncIterator[OfflineVisit]:
    opened = OfflineVisit(service.base_url)
    await opened.start(browser)
    yield opened
    await opened.context.close()


async def assert_visible(page: Page, text: str) -> None:
    await page.get_by_text(text, exact=True).first.wait_for(state="visible")


async def assert_offline_and_quiet(visit: OfflineVisit, path: str) -> None:
    assert visit.blocked == [], f"{path} tried to reach outside the service: {visit.blocked}"
    assert await visit.refused() == KNOWN_REFUSALS[path]
    assert visit.errors == []
    # Its scripts came from the service, under the docs' versioned assets.
    assert any(url.startswith("/api/docs/assets/") and url.endswith(".js") for url in visit.served), visit.served


def by_tag(operations: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    chosen = [operation for operation in operations if operation["tag"] == tag]
    assert chosen, f"no {tag} operation in the schema"
    return chosen


async def test_scalar_renders_the_operations_offline(visit: OfflineVisit, operations: list[dict[str, Any]]) -> None:
    started = time.monotonic()
    page = await visit.open("/api/docs")
    await assert_visible(page, "Todo Service API")
    for operation in by_tag(operations, "auth"):  # the first group is open
        await assert_visible(page, operation["summary"])
    # The others open from the sidebar: the tasks group lists its operations.
    await page.get_by_role("button", name="Open Group - tasks").click()
    for operation in by_tag(operations, "tasks"):
        await assert_visible(page, operation["summary"])
    login = next(o for o in operations if o["summary"] == "Log in")
    assert login["path"] in await page.inner_text("body")
    assert "/api/docs/openapi.json" in visit.served  # Scalar fetched the schema itself
    await assert_offline_and_quiet(visit, "/api/docs")
    assert time.monotonic() - started < 30


async def test_swagger_ui_renders_every_operation_offline(
    visit: OfflineVisit, operations: list[dict[str, Any]]
) -> None:
    page = await visit.open("/api/docs/swagger")
    await page.locator(".opblock").first.wait_for(state="visible")
    shown = {
        (method.upper(), path)
        for method, path in await page.eval_on_selector_all(
            ".opblock-summary",
            "els => els.map(e => [e.querySelector('.opblock-summary-method').textContent,"
            " e.querySelector('.opblock-summary-path').getAttribute('data-path')])",
        )
    }
    assert {(operation["method"], operation["path"]) for operation in operations} <= shown
    for operation in by_tag(operations, "tasks"):
        await assert_visible(page, operation["summary"])
    await assert_offline_and_quiet(visit, "/api/docs/swagger")


async def test_redoc_renders_every_operation_offline(visit: OfflineVisit, operations: list[dict[str, Any]]) -> None:
    page = await visit.open("/api/docs/redoc")
    await page.locator("h2").first.wait_for(state="visible")
    headings = set(await page.locator("h2").all_inner_texts())
    assert {operation["summary"] for operation in operations} <= headings
    text = await page.inner_text("body")
    for operation in operations:
        assert operation["path"] in text
    await assert_offline_and_quiet(visit, "/api/docs/redoc")
