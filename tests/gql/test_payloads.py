"""Mutation payloads (:class:`service.gql.mutation.MutationPayload`): each one can say a failure with its errors
alone, and an attempt gives either the payload its work made or that failure."""

from __future__ import annotations

import dataclasses

import pytest

from service.core.errors import ConflictError, GivfleetError
from service.gql.campaigns.mutations import CreateCampaignPayload
from service.gql.monitoring.mutations import AlertPayload
from service.gql.mutation import InvalidFieldsError, MutationError, MutationPayload
from service.gql.notifications.mutations import NotificationDonePayload
from service.gql.schema import schema
from service.gql.tenants.mutations import RevokeApiKeyPayload

ERRORS = [MutationError(code="CONFLICT", field=None, message="already done")]


def payload_types() -> list[type[MutationPayload]]:
    """Every payload type of the schema built on :class:`MutationPayload`."""
    origins = [getattr(concrete.definition, "origin", None) for concrete in schema.schema_converter.type_map.values()]
    return [origin for origin in origins if isinstance(origin, type) and issubclass(origin, MutationPayload)]


def test_the_payloads_share_their_base_but_the_schema_does_not_show_it() -> None:
    assert {AlertPayload, CreateCampaignPayload, RevokeApiKeyPayload} <= set(payload_types())
    assert schema.get_type_by_name("MutationPayload") is None


@pytest.mark.parametrize("payload", payload_types(), ids=lambda payload: payload.__name__)
def test_every_payload_says_a_failure_with_its_errors_and_no_result(payload: type[MutationPayload]) -> None:
    failed = payload.failed(ERRORS)

    assert failed.errors == ERRORS
    results = {field.name: getattr(failed, field.name) for field in dataclasses.fields(failed)
               if field.name != "errors"}
    assert results
    assert all(value is None or value is False for value in results.values()), results


async def test_an_attempt_gives_the_payload_its_work_made() -> None:
    done = NotificationDonePayload(ok=True)

    async def work() -> NotificationDonePayload:
        return done

    assert await NotificationDonePayload.of_attempt(work()) is done
    assert done.errors == []


@pytest.mark.parametrize(("error", "expected"), [
    (ConflictError("already revoked"), [MutationError(code="CONFLICT", field=None, message="already revoked")]),
    (InvalidFieldsError([("input.name", "too long"), ("input.role", "unknown")]),
     [MutationError(code="BAD_USER_INPUT", field="input.name", message="too long"),
      MutationError(code="BAD_USER_INPUT", field="input.role", message="unknown")]),
])
async def test_an_expected_failure_gives_the_payload_of_its_errors(error: GivfleetError,
                                                                   expected: list[MutationError]) -> None:
    async def work() -> RevokeApiKeyPayload:
        raise error

    failed = await RevokeApiKeyPayload.of_attempt(work())

    assert failed == RevokeApiKeyPayload(api_key=None, errors=expected)
