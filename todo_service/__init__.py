"""Todo service: a Todo REST backend on Litestar, msgspec and Advanced Alchemy."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("todo-service")
except PackageNotFoundError:  # pragma: no cover  (running from a bare source tree)
    __version__ = "0.0.0"
