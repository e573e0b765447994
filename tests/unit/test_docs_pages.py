"""The docs pages piece by piece: their assets (pinned files, served by the service) and their CSP."""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import pytest
from litestar import Litestar, Response
from litestar.enums import MediaType
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from todo_service.core.request_context import RATE_LIMIT
from todo_service.http.docs_assets import ASSETS, REDOC, SCALAR, SWAGGER_UI, DocsAsset
from todo_service.http.docs_csp import CSP_HEADER, DocsPolicies, DocsPolicy, inline_scripts, script_urls
from todo_service.http.openapi import DOCS_PATH, docs_plugins, openapi_config
from todo_service.observability.traces import UNTRACED

# MDN's example: the hash of the inline script ``alert('Hello, world.');``.
HELLO_WORLD_HASH = "'sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng='"
# Every source a docs page's policy may name: none is another host.
OWN_SOURCES = {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"}


def directives(policy: DocsPolicy) -> dict[str, set[str]]:
    return {name: set(sources) for name, sources in policy.directives.items()}


# The assets


@pytest.mark.parametrize("asset", ASSETS, ids=lambda asset: asset.ui)
def test_each_file_a_page_loads_is_the_npm_release_pinned(asset: DocsAsset) -> None:
    directory = asset.installed_directory()
    for file, sha256 in asset.sha256.items():
        assert hashlib.sha256((directory / file).read_bytes()).hexdigest() == sha256, f"{asset.npm_package} {file}"


def test_the_pinned_packages_are_those_installed() -> None:
    # Scalar's carrier is versioned like Scalar; the other one by date (its README names its versions).
    assert importlib.metadata.version("star-openapi-scalar") == SCALAR.version
    assert importlib.metadata.version("drf-spectacular-sidecar") == "2026.10.1"
    assert (SWAGGER_UI.version, REDOC.version) == ("5.33.1", "2.5.4")


def test_the_readme_and_the_operations_guide_name_the_versions_served(project_root: Path) -> None:
    readme = (project_root / "README.md").read_text()
    guide = (project_root / "docs" / "operations.md").read_text()
    for name, asset in (("Scalar", SCALAR), ("Swagger UI", SWAGGER_UI), ("ReDoc", REDOC)):
        assert f"{name} {asset.version}" in readme
        assert f"| {name} | {asset.version} |" in guide
    assert "cdn" not in readme.lower()


def test_a_missing_carrier_package_says_what_to_do() -> None:
    missing = DocsAsset("x", "x", "1", "no_such_package_here", "static", {})
    with pytest.raises(RuntimeError, match=r"no_such_package_here.*uv sync"):
        missing.installed_directory()


def test_every_page_loads_its_files_from_the_service_under_a_versioned_path() -> None:
    scalar, swagger, redoc = docs_plugins(DOCS_PATH)
    assert isinstance(scalar, ScalarRenderPlugin)
    assert isinstance(swagger, SwaggerRenderPlugin)
    assert isinstance(redoc, RedocRenderPlugin)
    assert scalar.js_url == "/api/docs/assets/scalar-1.76.0/js/scalar.standalone.js"
    assert swagger.js_url == "/api/docs/assets/swagger-ui-5.33.1/swagger-ui-bundle.js"
    assert swagger.standalone_preset_js_url == "/api/docs/assets/swagger-ui-5.33.1/swagger-ui-standalone-preset.js"
    assert swagger.css_url == "/api/docs/assets/swagger-ui-5.33.1/swagger-ui.css"
    assert redoc.js_url == "/api/docs/assets/redoc-2.5.4/bundles/redoc.standalone.js"
    assert not redoc.google_fonts
    for plugin in (scalar, swagger, redoc):
        urls = [getattr(plugin, name, None) for name in ("js_url", "css_url", "standalone_preset_js_url")]
        assert not [url for url in urls if url and "//" in url], "no page loads anything from another host"
        assert "//" not in plugin.favicon
    assert scalar.options is not None
    assert scalar.options["withDefaultFonts"] is False
    assert scalar.options["telemetry"] is False


async def test_the_asset_routes_serve_the_files_untraced_and_not_rate_limited() -> None:
    app = Litestar(openapi_config=openapi_config("1.0"))
    asset_routes = [
        route for route in app.routes if isinstance(route, HTTPRoute) and route.path.startswith("/api/docs/assets/")
    ]
    assert {route.path.split("/")[4] for route in asset_routes} == {asset.segment for asset in ASSETS}
    for route in asset_routes:
        for handler in route.route_handlers:
            assert handler.opt[UNTRACED] is True
            assert handler.opt[RATE_LIMIT] is False
    async with AsyncTestClient(app) as client:
        served = await client.get("/api/docs/assets/redoc-2.5.4/bundles/redoc.standalone.js")
        assert served.status_code == 200
        assert served.headers["content-type"].startswith("text/javascript")
        assert served.headers["cache-control"] == "max-age=31536000, public, immutable"
        assert hashlib.sha256(served.content).hexdigest() == REDOC.sha256["bundles/redoc.standalone.js"]
        assert CSP_HEADER.lower() not in served.headers  # a script is no page
        head = await client.head("/api/docs/assets/swagger-ui-5.33.1/swagger-ui.css")
        assert head.status_code == 200
        assert head.content == b""
        for missing in (
            "/api/docs/assets/redoc-2.5.4/nope.js",
            "/api/docs/assets/redoc-2.5.3/bundles/redoc.standalone.js",  # only the pinned version
            "/api/docs/assets/swagger-ui-5.33.1/../../../__init__.py",
        ):
            assert (await client.get(missing)).status_code == 404, missing


# The pages' policy


def test_inline_scripts_skip_external_ones_and_normalise_newlines() -> None:
    html = (
        b"<script src='https://cdn.example/a.js' crossorigin></script>"
        b"<SCRIPT type='text/javascript'>one();\r\ntwo();</SCRIPT>"
        b"<script data-src='x'>three();</script>"
        b'<script id="api-reference" data-url="/x">\n</script>'
    )
    assert list(inline_scripts(html)) == [b"one();\ntwo();", b"three();", b"\n"]
    assert list(script_urls(html)) == ["https://cdn.example/a.js"]


def test_policy_hashes_each_inline_script() -> None:
    policy = DocsPolicy({"default-src": ("'none'",), "script-src": ("'self'",)})
    header = policy.header_for(b"<script>alert('Hello, world.');</script><script src=x></script>")
    assert header == f"default-src 'none'; script-src 'self' {HELLO_WORLD_HASH}"


def test_policy_without_any_script_allows_none() -> None:
    assert DocsPolicy({"default-src": ("'none'",)}).header_for(b"<p>hi</p>") == "default-src 'none'; script-src 'none'"


def test_the_service_pages_allow_only_the_service_itself() -> None:
    scalar, swagger, redoc = (directives(DocsPolicy.of(plugin)) for plugin in docs_plugins(DOCS_PATH))
    for policy in (scalar, swagger, redoc):
        assert set().union(*policy.values()) <= OWN_SOURCES
        assert policy["script-src"] == {"'self'"}  # plus the inline scripts' hashes, per page
        assert policy["default-src"] == {"'none'"}
        assert policy["frame-ancestors"] == {"'none'"}
        assert policy["base-uri"] == {"'none'"}
        assert policy["form-action"] == {"'none'"}
        assert "font-src" not in policy  # no web fonts: Scalar's and ReDoc's are off
    assert scalar["connect-src"] == {"'self'"}  # the schema and "try it" requests
    assert scalar["style-src"] == {"'unsafe-inline'", "data:"}  # its empty stylesheet is inline
    assert scalar["img-src"] == {"data:"}
    assert swagger["connect-src"] == {"'self'"}
    assert swagger["style-src"] == {"'unsafe-inline'", "'self'"}
    assert swagger["img-src"] == {"data:", "'self'"}  # its favicon
    assert redoc["worker-src"] == {"blob:"}
    assert "connect-src" not in redoc
    assert "worker-src" not in scalar
    assert "worker-src" not in swagger


def test_each_renderer_gets_only_its_own_sources_wherever_they_are() -> None:
    scalar = ScalarRenderPlugin(path="/", js_url="https://cdn.example/scalar.js?v=1", css_url="/static/scalar.css")
    swagger = SwaggerRenderPlugin(path="/swagger")  # Litestar's defaults: a CDN
    redoc = RedocRenderPlugin(path="/redoc")  # with Google Fonts
    scalar_policy = directives(DocsPolicy.of(scalar))
    assert scalar_policy["script-src"] == {"https://cdn.example/scalar.js"}
    assert scalar_policy["style-src"] == {"'unsafe-inline'", "'self'"}
    swagger_policy = directives(DocsPolicy.of(swagger))
    assert swagger_policy["script-src"] == {swagger.js_url, swagger.standalone_preset_js_url}
    redoc_policy = directives(DocsPolicy.of(redoc))
    assert redoc_policy["style-src"] == {"'unsafe-inline'", "https://fonts.googleapis.com/css"}
    assert redoc_policy["font-src"] == {"https://fonts.gstatic.com"}


def test_a_page_gets_the_policy_of_the_renderer_whose_script_it_loads() -> None:
    plugins = [*docs_plugins(DOCS_PATH), JsonRenderPlugin()]
    policies = DocsPolicies(plugins)
    assert len(policies.by_script) == 3  # the JSON schema is no page
    scalar, swagger, redoc = plugins[:3]
    for plugin in (scalar, swagger, redoc):
        page = f"<script>x</script><script src='{getattr(plugin, 'js_url', '')}'></script>".encode()
        assert policies.policy_of(page) is policies.by_script[getattr(plugin, "js_url", "")]
    assert policies.policy_of(b"<script src='/elsewhere.js'></script><script>y</script>") is None


async def test_the_hook_sets_the_policy_on_pages_only() -> None:
    (scalar, *_) = plugins = docs_plugins(DOCS_PATH)
    policies = DocsPolicies(plugins)
    page = f"<script>go()</script><script src='{getattr(scalar, 'js_url', '')}'></script>".encode()
    rendered = await policies.after_request(Response(page, media_type=MediaType.HTML))
    header = rendered.headers[CSP_HEADER]
    assert header.startswith("default-src 'none'; script-src 'self' 'sha256-")
    schema = await policies.after_request(Response(page, media_type=MediaType.JSON))
    assert CSP_HEADER not in schema.headers
    other = await policies.after_request(Response(b"<p>no script</p>", media_type=MediaType.HTML))
    assert CSP_HEADER not in other.headers
