"""What the OpenAPI document says about failures (the problem+json body and one response spec per status,
shared by every controller: ``responses=problems(401, 403, ...)``) and about times of day."""

from __future__ import annotations

from datetime import time
from typing import TYPE_CHECKING, Any

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.plugins import OpenAPISchemaPlugin
from pydantic import BaseModel, Field

from service.api.errors import PROBLEM_JSON

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition


class ProblemView(BaseModel):
    """An error (RFC 9457 problem details) with the request id to quote."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    request_id: str


class UpstreamProblemView(ProblemView):
    """A live read the GivEnergy cloud refused or failed."""

    code: str = Field(description="Why, e.g. UPSTREAM_UNAUTHORISED, UPSTREAM_NO_SUBSCRIPTION, "
                                  "UPSTREAM_RATE_LIMITED, UPSTREAM_NOT_CONFIGURED.")
    upstream_status: int | None = Field(None, description="GivEnergy's HTTP status, when it answered.")


_DESCRIPTIONS: dict[int, str] = {
    400: "A parameter or the body failed validation.",
    401: "Missing, unknown, expired or revoked API key.",
    403: "The key's role is too low, or a subtree-restricted key asked for something outside any subtree.",
    404: "No such object in the caller's scope.",
    409: "The request conflicts with the current state.",
    422: "A value was refused (e.g. an invalid cursor, sort, filter or date range).",
    429: "Too many failed authentication attempts (see Retry-After).",
    424: "GivEnergy refused the read: the tenant has no working API token, or its credential, subscription or "
         "the device does not allow it (``code`` says which). Retrying will not help.",
    502: "GivEnergy answered unexpectedly.",
    503: "GivEnergy is unavailable or the tenant's request budget is exhausted; retry (see Retry-After).",
}
_UPSTREAM = {424, 502, 503}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """The documented problem responses for ``statuses``."""
    return {status: ResponseSpec(UpstreamProblemView if status in _UPSTREAM else ProblemView,
                                 description=_DESCRIPTIONS[status], media_type=PROBLEM_JSON)
            for status in statuses}


UPSTREAM_STATUSES = tuple(sorted(_UPSTREAM))
"""The statuses a live (pass-through) read adds to an endpoint's problems."""

TIME_OF_DAY_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-][01][0-9]:[0-5][0-9])?$"
"""A time of day as ``HH:MM``, ``HH:MM:SS`` or with a fraction of a second, and an offset when one was given
(what pydantic reads and writes)."""


class TimeOfDaySchemaPlugin(OpenAPISchemaPlugin):
    """Documents ``datetime.time`` fields (a notification channel's quiet hours) as times of day.

    Litestar types them as format ``duration`` (ISO 8601, e.g. ``PT22H``), which the API refuses. Format ``time``
    would be no better: it means an RFC 3339 time with seconds and a UTC offset, so ``22:00`` would not be one.
    Only the document changes; pydantic still reads and validates the values.
    """

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is time

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        return Schema(type=OpenAPIType.STRING, pattern=TIME_OF_DAY_PATTERN, examples=["22:00"])


__all__ = ["TIME_OF_DAY_PATTERN", "UPSTREAM_STATUSES", "ProblemView", "TimeOfDaySchemaPlugin", "UpstreamProblemView",
           "problems"]
