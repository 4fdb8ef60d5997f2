"""connectors/phone/normalize.py: a call the CTI endpoint hands over becomes an Inbound whose
external id is call + purpose (so the same call taken in twice is one message, a callback and
a ticket of the same call two), threaded onto the ticket it is attached to; anything else is
a PayloadError naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from connectors.registry import normalize
from omnidesk.errors import PayloadError
from omnidesk.model import Channel, IdentityKind

CALL = {"call": "riyadh-pbx:17", "purpose": "callback", "at": "2026-11-29T21:00:40+03:00",
        "caller": "+966112345678", "subject": "missed", "text": "call back",
        "recording": "vm/17.wav"}  # fmt: skip


def test_a_callback_is_a_phone_message_of_the_caller() -> None:
    (inbound,) = normalize("phone", json.dumps(CALL).encode(), account="riyadh-pbx")
    assert inbound.channel == Channel.PHONE and inbound.dedupe_key == (
        "phone:riyadh-pbx:riyadh-pbx:17:callback"
    )
    assert inbound.received_at == datetime(2026, 11, 29, 18, 0, 40, tzinfo=UTC)
    assert inbound.author.identity(IdentityKind.PHONE) == "+966112345678"
    assert inbound.thread_keys == [] and inbound.attachments[0].ref == "vm/17.wav"


def test_an_attached_call_threads_onto_its_ticket() -> None:
    attach = {**CALL, "purpose": "attach", "ticket": "OD-2026-000042", "recording": ""}
    (inbound,) = normalize("phone", json.dumps(attach).encode(), account="riyadh-pbx")
    assert inbound.thread_keys == ["ticket:OD-2026-000042"] and inbound.attachments == []
    assert inbound.external_id == "riyadh-pbx:17:attach"


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"{nope", "not JSON"),
        (b"[1]", "not a JSON object"),
        (json.dumps({**CALL, "purpose": "fax"}).encode(), "purpose"),
        (json.dumps({**CALL, "purpose": "attach"}).encode(), "ticket"),
        (json.dumps({**CALL, "at": "yesterday"}).encode(), "at"),
        (json.dumps({**CALL, "call": ""}).encode(), "call"),
    ],
)
def test_what_is_not_a_call_is_refused_by_field(payload: bytes, words: str) -> None:
    with pytest.raises(PayloadError, match=words):
        normalize("phone", payload, account="riyadh-pbx")
