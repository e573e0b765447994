"""The docs pages' scripts and styles, served by the service itself from two pinned PyPI packages.

Nothing comes from a CDN, so the pages work offline and their CSP allows ``'self'`` only:

- Swagger UI 5.33.1 and ReDoc 2.5.4 from ``drf-spectacular-sidecar`` (the npm builds, byte for byte),
- Scalar 1.76.0 (``@scalar/api-reference``'s browser bundle) from ``star-openapi-scalar``.

Both packages are made for a web framework (Django, star-openapi) that the service does not use: they
are never imported (``__init__`` of the first imports Django), only located, and ``pyproject.toml``
states their metadata without those frameworks. Each UI is served under a versioned path, so a
browser may keep a file for a year; :data:`ASSETS` records each file's npm package, version and
SHA-256, which the tests check against the installed files (ADR 0006, docs/operations.md).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

if TYPE_CHECKING:
    from litestar.router import Router

__all__ = ("ASSETS", "DocsAsset", "asset_routers")

ASSETS_SEGMENT = "assets"
_A_YEAR = 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class DocsAsset:
    """One UI's files: where they are installed, what they are upstream, and where they are served."""

    ui: str
    npm_package: str
    version: str
    module: str  # the Python package that carries them (located, never imported)
    directory: str  # inside that package
    sha256: dict[str, str]  # each file a page loads (relative to the directory): its SHA-256 on npm

    @property
    def segment(self) -> str:
        """The versioned path segment under ``<docs>/assets/``: a new version is a new URL."""
        return f"{self.ui}-{self.version}"

    def installed_directory(self) -> Path:
        """The directory holding the files, found without importing the package that carries them."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            msg = f"the docs assets of {self.ui} need the Python package {self.module!r} (uv sync)"
            raise RuntimeError(msg)
        return Path(next(iter(spec.submodule_search_locations))) / self.directory

    def url(self, docs_path: str, file: str) -> str:
        """The URL a page loads ``file`` from."""
        return f"{docs_path.rstrip('/')}/{ASSETS_SEGMENT}/{self.segment}/{file}"


SCALAR = DocsAsset(
    ui="scalar",
    npm_package="@scalar/api-reference",
    version="1.76.0",
    module="star_openapi_scalar",
    directory="templates/scalar",
    sha256={
        # dist/browser/standalone.js in the npm package
        "js/scalar.standalone.js": "dcb027152bf20bf2f6dcd66e8f9fb073c1a9e274cf0b94b939a7d99ab8947060",
    },
)
SWAGGER_UI = DocsAsset(
    ui="swagger-ui",
    npm_package="swagger-ui-dist",
    version="5.33.1",
    module="drf_spectacular_sidecar",
    directory="static/drf_spectacular_sidecar/swagger-ui-dist",
    sha256={
        "swagger-ui-bundle.js": "050bc415ee7048dcd881682678f720264e7da5e373f7461d7c58c755305255f7",
        "swagger-ui-standalone-preset.js": "5243d492e14505e0cab87ac8b0195d0e615943e651743b2b698450a46eb470be",
        "swagger-ui.css": "1ac324f7dcd27e4b9386b4bd6421271ec147e922a22c05ba24b11515e9aa6321",
        "favicon-32x32.png": "3ed612f41e050ca5e7000cad6f1cbe7e7da39f65fca99c02e99e6591056e5837",
    },
)
REDOC = DocsAsset(
    ui="redoc",
    npm_package="redoc",
    version="2.5.4",
    module="drf_spectacular_sidecar",
    directory="static/drf_spectacular_sidecar/redoc",
    sha256={
        "bundles/redoc.standalone.js": "dcaf76612bc4a3fbcc923a8966dee2f6146a5f32e5ce1b6f02dd60cbbf89500b",
    },
)
ASSETS = (SCALAR, SWAGGER_UI, REDOC)


def asset_routers() -> list[Router]:
    """A static files router per UI, relative to the docs router they are registered on.

    They inherit the docs router's options (not rate limited, not traced) and, being under the
    docs path, need no token.
    """
    cache = CacheControlHeader(public=True, max_age=_A_YEAR, immutable=True)
    return [
        create_static_files_router(
            path=f"/{ASSETS_SEGMENT}/{asset.segment}",
            directories=[asset.installed_directory()],
            name=f"docs-assets-{asset.ui}",
            cache_control=cache,
            include_in_schema=False,
        )
        for asset in ASSETS
    ]
