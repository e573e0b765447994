"""``POST .../tasks/batch``: several task operations in one transaction, all or nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from todo_service.core.errors import AppError
from todo_service.http.conditional import revisions_in
from todo_service.tasks.schemas import (
    BatchResponse,
    CompleteOperation,
    CreateOperation,
    OperationResult,
    TaskCreate,
    UpdateOperation,
)

if TYPE_CHECKING:
    from uuid import UUID

    from todo_service.db.statements import Statements
    from todo_service.security.access import Caller
    from todo_service.tasks.schemas import Operation
    from todo_service.tasks.services import TaskService

__all__ = ("run_batch",)

_CREATE_FIELDS = tuple(field.name for field in msgspec.structs.fields(TaskCreate))
_OPERATION_ONLY = frozenset({"task_id", "if_match"})


async def run_batch(
    service: TaskService, caller: Caller, owner_id: UUID, operations: list[Operation], db: Statements | None = None
) -> BatchResponse:
    """Run ``operations`` in order in one transaction (``db``, or one of its own): each obeys its route's rules.

    Raises:
        AppError: the first failing operation's error, with ``operation`` set to its index; the
            transaction then rolls back, so nothing of the batch is kept.
    """
    if db is None:
        async with service.repository.statements.transaction() as transaction:
            return await run_batch(service, caller, owner_id, operations, transaction)
    results = []
    for index, operation in enumerate(operations):
        try:
            results.append(await _run(service, caller, owner_id, operation, db))
        except AppError as error:
            error.operation = index
            error.detail = f"Operation {index} ({_name(operation)}) failed: {error.detail}"
            raise
    return BatchResponse(results=results)


async def _run(
    service: TaskService, caller: Caller, owner_id: UUID, operation: Operation, db: Statements
) -> OperationResult:
    if isinstance(operation, CreateOperation):
        data = TaskCreate(**{name: getattr(operation, name) for name in _CREATE_FIELDS})
        task = await service.create_task(caller, owner_id, data, db=db)
        return OperationResult(op="create", status=201, task=task)
    if_match = revisions_in(operation.if_match) if isinstance(operation.if_match, str) else None
    if isinstance(operation, UpdateOperation):
        changes = {k: v for k, v in operation.sent_fields().items() if k not in _OPERATION_ONLY}
        task = await service.edit(caller, owner_id, operation.task_id, changes, if_match=if_match, db=db)
        return OperationResult(op="update", status=200, task=task)
    if isinstance(operation, CompleteOperation):
        task = await service.complete(
            caller, owner_id, operation.task_id, completed=operation.completed, if_match=if_match, db=db
        )
        return OperationResult(op="complete", status=200, task=task)
    await service.delete_task(caller, owner_id, operation.task_id, if_match=if_match, db=db)
    return OperationResult(op="delete", status=200, task_id=operation.task_id)


def _name(operation: Operation) -> str:
    return {CreateOperation: "create", UpdateOperation: "update", CompleteOperation: "complete"}.get(
        type(operation), "delete"
    )
