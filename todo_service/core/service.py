"""The base of every feature service: Advanced Alchemy's repository service, plus typed session access."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, cast

from advanced_alchemy.base import ModelProtocol
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("Service",)

ModelT = TypeVar("ModelT", bound=ModelProtocol)


class Service(SQLAlchemyAsyncRepositoryService[ModelT]):
    """A service over one model's repository.

    Hot paths run single Core statements (permission included) through :attr:`db` instead of
    loading ORM objects: one round trip and no per-row object work.
    """

    @property
    def db(self) -> AsyncSession:
        """The request's database session (the repository's)."""
        return cast("AsyncSession", self.repository.session)
