"""The convention every GraphQL mutation follows (Saleor's ``BaseMutation`` shape).

- It belongs to the ``Mutation`` root (per-domain classes merged in :mod:`service.gql.schema`).
- It owns one unit of work: its work runs in :meth:`MutationPayload.of_work`; the service inside starts with its policy
  check and writes its audit row in the same transaction; deferred jobs are enqueued only after the commit.
  Work that calls GivEnergy (e.g. a credential check) never holds the unit of work across the call: the service
  reads, releases, calls upstream and then opens its own short one.
- Its payload is a :class:`MutationPayload`: the result (each field with a default: null, or false for a flag)
  and ``errors: [MutationError!]!`` for expected failures (any :class:`~service.core.errors.GivfleetError`: forbidden,
  not found, bad input, conflict, upstream refusal), with the code from the one error map
  (:func:`service.core.errors.kind_of`). The transaction is rolled back before the payload is built.
  One payload is built otherwise: ``RequestSyncPayload`` echoes its non-null ``kind`` on failure too, so its
  mutation runs its work with :func:`in_unit_of_work` and builds the payload from the result and the errors.
- Anything else propagates: the transaction rolls back and :class:`service.gql.errors.ErrorPolicy` masks it as
  ``INTERNAL_SERVER_ERROR`` with the request id.

Writing one::

    @strawberry.type
    class CampaignMutation:
        @strawberry.mutation(description="...")
        async def start_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
            async def work(session: UnitOfWork) -> CampaignPayload:
                row = await CampaignService(session, info.context.principal).start(parse_id(id))
                return CampaignPayload(campaign=...)

            return await CampaignPayload.of_work(info, work)

Work that must not run inside the unit of work (a call upstream first) opens it itself, inside a coroutine handed
to :meth:`MutationPayload.of_attempt` (or :func:`attempt`, for a payload that is built otherwise).
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Self, TypeVar

import strawberry
from pydantic import BaseModel, ValidationError
from strawberry.utils.str_converters import to_camel_case

from service.core.errors import GivfleetError, InvalidInputError, kind_of
from service.db.uow import UnitOfWork
from service.gql.context import Info
from service.jobs.enqueue import unit_of_work
from service.runtime import Resources

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@strawberry.type(description="An expected failure of a mutation (nothing was changed).")
class MutationError:
    code: str = strawberry.field(description="FORBIDDEN, NOT_FOUND, BAD_USER_INPUT, CONFLICT or UPSTREAM_*.")
    field: str | None = strawberry.field(description="The input field at fault, when one is.")
    message: str = strawberry.field(description="What went wrong, for a person.")

    @classmethod
    def of(cls, error: GivfleetError) -> MutationError:
        """The payload error of a domain error, its field named as the GraphQL input names it (the domain's
        ``expires_at`` is ``expiresAt``)."""
        field = to_camel_case(error.field) if error.field is not None else None
        return cls(code=kind_of(error).code, field=field, message=str(error))


def resources_of(info: Info) -> Resources:
    """The process's resources (a mutation needs them; read-only contexts may have none)."""
    resources = info.context.resources
    if resources is None:
        raise RuntimeError("this GraphQL context was built without resources: mutations cannot run")
    return resources


@asynccontextmanager
async def unit_of_work_of(info: Info) -> AsyncIterator[UnitOfWork]:
    """The mutation's unit of work: committed when the block ends normally (then deferred jobs are enqueued),
    rolled back when it raises."""
    resources = resources_of(info)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        yield UnitOfWork(session)


class InvalidFieldsError(InvalidInputError):
    """Several input fields at fault at once: each problem becomes one payload error on its field.

    Attributes:
        problems: ``(field, message)`` pairs; ``field`` is the GraphQL path (``input.targets.modelIn``).
    """

    def __init__(self, problems: Sequence[tuple[str | None, str]]) -> None:
        super().__init__("; ".join(f"{field}: {message}" if field else message for field, message in problems),
                         field=problems[0][0])
        self.problems = list(problems)


def _input_data(value: object) -> Any:
    """A strawberry input as plain data under its Python names (fields left null are left out, so the domain
    model's defaults apply; enums become their values)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _input_data(getattr(value, field.name)) for field in dataclasses.fields(value)
                if getattr(value, field.name) is not None}
    if isinstance(value, list):
        return [_input_data(item) for item in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _field_path(root: str, value: object, location: Sequence[int | str]) -> str:
    """The GraphQL path of a pydantic error location inside input ``value`` (Python names become the GraphQL
    names the input types declare, camelCase by default)."""
    parts = [root]
    for part in location:
        if isinstance(part, int):
            parts.append(str(part))
            value = value[part] if isinstance(value, list) and 0 <= part < len(value) else None
            continue
        definition = getattr(type(value), "__strawberry_definition__", None)
        declared = next((f for f in definition.fields if f.python_name == part), None) if definition else None
        parts.append(declared.graphql_name or to_camel_case(part) if declared else to_camel_case(part))
        value = getattr(value, part, None)
    return ".".join(parts)


def validated(model: type[M], value: object, *, root: str = "input") -> M:
    """Strawberry input ``value`` checked by ``model`` (the domain's own rules, shared with REST and the CLI).

    Raises:
        InvalidFieldsError: Every problem, on its GraphQL field path (``input.targets.modelIn``).
    """
    try:
        return model.model_validate(_input_data(value))
    except ValidationError as exc:
        raise InvalidFieldsError([(_field_path(root, value, error["loc"]), error["msg"].removeprefix("Value error, "))
                                  for error in exc.errors()]) from None


@contextmanager
def fields_on(value: object, *, root: str = "input") -> Iterator[None]:
    """Inside it, a domain error naming a field names it as :func:`validated` does: by its GraphQL path inside
    input ``value`` (the domain's ``targets.account_id`` is ``input.targets.accountId``); an error naming no field
    is unchanged."""
    try:
        yield
    except InvalidInputError as error:
        if error.field is None or isinstance(error, InvalidFieldsError):
            raise
        raise InvalidFieldsError([(_field_path(root, value, error.field.split(".")), str(error))]) from None


async def _committed(info: Info, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """What ``work`` returns on the mutation's unit of work (:func:`unit_of_work_of`), once it is committed."""
    async with unit_of_work_of(info) as session:
        return await work(session)


async def in_unit_of_work(info: Info, work: Callable[[UnitOfWork], Awaitable[T]]
                         ) -> tuple[T | None, list[MutationError]]:
    """``work`` on the mutation's unit of work (:func:`unit_of_work_of`), as :func:`attempt` runs it."""
    return await attempt(_committed(info, work))


async def attempt(work: Awaitable[T]) -> tuple[T | None, list[MutationError]]:
    """Run ``work``; an expected failure becomes the payload's errors (its transaction already rolled back)."""
    try:
        return await work, []
    except InvalidFieldsError as error:
        code = kind_of(error).code
        return None, [MutationError(code=code, field=field, message=message) for field, message in error.problems]
    except GivfleetError as error:
        return None, [MutationError.of(error)]


@strawberry.type
class MutationPayload:
    """What every mutation payload has: ``errors``, the expected failures (empty when the mutation did its work).

    Each payload subclasses it (this base is not in the schema itself) and gives its result fields a default (null,
    or false for a flag), so that :meth:`failed` can build it from the errors alone.
    """

    errors: list[MutationError] = strawberry.field(default_factory=list)

    @classmethod
    def failed(cls, errors: list[MutationError]) -> Self:
        """The payload of a mutation that changed nothing: ``errors`` and no result."""
        return cls(errors=errors)

    @classmethod
    async def of_attempt(cls, work: Awaitable[Self]) -> Self:
        """The payload ``work`` makes, or (as :func:`attempt` runs it) the payload of its expected failure."""
        done, errors = await attempt(work)
        return cls.failed(errors) if done is None else done

    @classmethod
    async def of_work(cls, info: Info, work: Callable[[UnitOfWork], Awaitable[Self]]) -> Self:
        """The payload ``work`` makes on the mutation's unit of work (committed once it returns), or the payload of
        its expected failure (the unit of work rolled back)."""
        return await cls.of_attempt(_committed(info, work))


def parse_id(value: strawberry.ID, field: str = "id") -> uuid.UUID:
    """A UUID argument.

    Raises:
        InvalidInputError: ``value`` is not a UUID (reported on ``field``).
    """
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInputError(f"{field} is not a valid id", field=field) from None


__all__ = ["InvalidFieldsError", "MutationError", "MutationPayload", "attempt", "in_unit_of_work", "parse_id",
           "resources_of", "unit_of_work_of", "validated"]
