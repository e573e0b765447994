"""A Core statement compiled for asyncpg through SQLAlchemy's public API: SQL, parameter order, type processing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import Enum
from sqlalchemy.sql.expression import ReturnsRows

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.engine import Dialect
    from sqlalchemy.sql import ClauseElement, Executable
    from sqlalchemy.sql.compiler import SQLCompiler
    from sqlalchemy.types import TypeEngine

__all__ = ("AS_ASYNCPG_RETURNS", "CompiledStatement", "returned_as_is")

Params = Mapping[str, Any]
# Types whose result processing returns asyncpg's value as it is: GUID passes on a UUID (asyncpg's
# subclass of uuid.UUID), DateTimeUTC an aware datetime (TIMESTAMP WITH TIME ZONE always is one).
# Their processors are skipped: each is a TypeDecorator call per value (about a fifth of a list
# page's CPU, ADR 0002), and tests/integration/test_statements.py holds the rows equal to SQLAlchemy's.
AS_ASYNCPG_RETURNS = (GUID, DateTimeUTC)


def returned_as_is(column_type: TypeEngine[Any]) -> bool:
    """Whether asyncpg's value of a column of this type already equals what SQLAlchemy would return.

    :data:`AS_ASYNCPG_RETURNS`, and a VARCHAR enum of a ``StrEnum`` stored by its members' values
    (``Task.priority``): the string ``"high"`` equals ``Priority.HIGH`` and encodes the same.
    """
    if isinstance(column_type, AS_ASYNCPG_RETURNS):
        return True
    if not isinstance(column_type, Enum) or column_type.enum_class is None:
        return False
    members = list(column_type.enum_class)
    return issubclass(column_type.enum_class, str) and column_type.enums == [member.value for member in members]


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    """A statement compiled for asyncpg: its SQL, how to order and convert its values and rows."""

    sql: str
    operation: str  # the span name's first word: SELECT, INSERT, ...
    names: tuple[str, ...]  # parameter names in $1, $2, ... order
    fixed: Mapping[str, Any]  # values written into the statement (``User.role != Role.GUEST``)
    binds: tuple[Callable[[Any], Any] | None, ...]  # SQLAlchemy's bind processors, by position
    results: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, result processor)

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect) -> CompiledStatement:
        """Compile ``statement`` for ``dialect`` (once; the result is reused for every execution)."""
        compiled = cast("SQLCompiler", cast("ClauseElement", statement).compile(dialect=dialect))
        names = tuple(compiled.positiontup or ())
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise TypeError("expanding (IN) and literal-execute parameters are not supported")
        if compiled.insert_prefetch or compiled.update_prefetch:  # SQLAlchemy computes those per execution
            columns = ", ".join(column.name for column in (*compiled.insert_prefetch, *compiled.update_prefetch))
            raise TypeError(f"give every value: the statement relies on Python-side defaults for {columns}")
        fixed = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        # The processors SQLAlchemy itself applies, through the types' public dialect API.
        binds = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
        # A SELECT's columns, or an INSERT/UPDATE/DELETE's RETURNING columns, in the order they come back.
        returned = statement.exported_columns if isinstance(statement, ReturnsRows) else ()
        results = tuple(
            (index, processor)
            for index, column in enumerate(returned)
            if not returned_as_is(column.type)
            and (processor := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
        )
        sql = compiled.string
        return cls(sql, sql.split(None, 1)[0], names, fixed, binds, results)

    def arguments(self, params: Params) -> list[Any]:
        """The positional values for ``$1, $2, ...``, bind-processed as SQLAlchemy would."""
        values = [params[name] if name in params else self.fixed[name] for name in self.names]
        for index, bind in enumerate(self.binds):
            if bind is not None and values[index] is not None:
                values[index] = bind(values[index])
        return values

    def row(self, record: asyncpg.Record) -> tuple[Any, ...]:
        """A row with each column result-processed as SQLAlchemy would."""
        if not self.results:
            return tuple(record)
        values = list(record)
        for index, process in self.results:
            values[index] = process(values[index])
        return tuple(values)
