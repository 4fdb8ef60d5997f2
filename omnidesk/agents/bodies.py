"""The JSON bodies the agents' API accepts, as pydantic models: one per endpoint.

openapi.yaml documents the same bodies; tests/test_api_bodies.py checks that each
documented request body has its model here with the same fields, required ones and
types. Validation is strict (a number is not a string) and unknown keys are ignored,
as the API did before; a problem reads `field: message`, answered 400.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from omnidesk.agents.desk import BadRequest


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class PresenceBody(Body):
    status: str


class ClaimBody(Body):
    queue: str | None = None


class ReplyBody(Body):
    text: str | None = None  # required unless a template is named
    template: str | None = None
    language: str | None = None


class TextBody(Body):
    text: str


class TransferBody(Body):
    queue: str
    reason: str


class AssignBody(Body):
    agent: str


class PendingBody(Body):
    reason: str | None = None


class MergeBody(Body):
    into: str


class TagsBody(Body):
    add: list[str] = []
    remove: list[str] = []


class PriorityBody(Body):
    priority: str


class CallEventBody(Body):
    """One PBX call event (omnidesk/agents/cti.py): new, answered, hangup, missed, voicemail."""

    event_id: Annotated[str, Field(min_length=1, max_length=200)]
    type: str
    call_id: Annotated[str, Field(min_length=1, max_length=200)]
    at: Annotated[str, Field(max_length=64)]
    caller: Annotated[str, Field(max_length=64)] | None = None
    agent: Annotated[str, Field(max_length=64)] | None = None
    extension: Annotated[str, Field(max_length=32)] | None = None
    duration_s: Annotated[int, Field(ge=0, le=7 * 86400)] | None = None
    recording: Annotated[str, Field(max_length=1000)] | None = None


class CallDispositionBody(Body):
    action: str  # ticket, attach, log
    ticket: str | None = None
    note: Annotated[str, Field(max_length=4000)] | None = None


class LoginBody(Body):
    user: Annotated[str, Field(max_length=256)]
    password: Annotated[str, Field(max_length=1024)]


# (method, path as openapi.yaml writes it) -> the model of its request body
REQUEST_BODIES: dict[tuple[str, str], type[Body]] = {
    ("put", "/v1/me/presence"): PresenceBody,
    ("post", "/v1/claims"): ClaimBody,
    ("post", "/v1/tickets/{ticket}/reply"): ReplyBody,
    ("post", "/v1/tickets/{ticket}/notes"): TextBody,
    ("post", "/v1/tickets/{ticket}/transfer"): TransferBody,
    ("post", "/v1/tickets/{ticket}/assign"): AssignBody,
    ("post", "/v1/tickets/{ticket}/pending"): PendingBody,
    ("post", "/v1/tickets/{ticket}/merge"): MergeBody,
    ("post", "/v1/tickets/{ticket}/tags"): TagsBody,
    ("post", "/v1/tickets/{ticket}/priority"): PriorityBody,
    ("post", "/v1/customers/{customer}/merge"): MergeBody,
    ("post", "/v1/customers/{customer}/tags"): TagsBody,
    ("post", "/v1/cti/events"): CallEventBody,
    ("post", "/v1/cti/calls/{call}/disposition"): CallDispositionBody,
    ("post", "/v1/login"): LoginBody,
}

_B = TypeVar("_B", bound=Body)
_TYPE_NAMES = {"string_type": "str", "list_type": "list"}


def parse_body(data: dict[str, Any], model: type[_B]) -> _B:
    """`data` (a JSON object) as `model`; BadRequest naming the first field at fault."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(_problem(exc.errors(include_url=False)[0])) from None


def _problem(err: Any) -> str:
    where = ""
    for part in err["loc"]:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    if err["type"] == "missing" or err["input"] is None:
        return f"{where}: required"
    if err["type"] in _TYPE_NAMES:
        return f"{where}: must be a {_TYPE_NAMES[err['type']]}"
    return f"{where}: {err['msg']}"
