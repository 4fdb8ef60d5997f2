"""Property tests: whatever bytes or JSON arrive, a JSON-channel normalizer returns results or
raises exactly one PayloadError with a one-line message. No other exception escapes.

Three sources of input: random bytes, random JSON (biased towards the keys the channels
read, so deep paths are reached), and real fixtures with random keys deleted or replaced.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import registry
from omnidesk.errors import PayloadError
from omnidesk.model import Channel, Inbound, Skipped, to_json
from omnidesk.text import mask_pii

FIXTURES = Path(__file__).parent / "fixtures"
CHANNELS = [Channel.TELEGRAM, Channel.TWITTER, Channel.WHATSAPP, Channel.WEB]
PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Keys the normalizers look for, so random JSON walks their paths rather than bouncing off.
KEYS = sorted(
    {
        # telegram
        "update_id", "message", "edited_message", "callback_query", "channel_post",
        "message_id", "chat", "id", "type", "from", "is_bot", "date", "edit_date", "text",
        "caption", "photo", "file_id", "file_size", "width", "height", "document",
        "voice", "sticker", "is_animated", "contact", "phone_number", "location",
        "latitude", "longitude", "venue", "reply_to_message", "forward_origin",
        "sender_user", "forward_from", "data", "username", "first_name", "language_code",
        # x
        "includes", "users", "media", "media_key", "author_id", "conversation_id",
        "created_at", "entities", "urls", "url", "expanded_url", "referenced_tweets",
        "note_tweet", "attachments", "media_keys", "event_type", "dm_conversation_id",
        "sender_id", "dm_events", "meta", "in_reply_to_user_id",
        # whatsapp
        "object", "entry", "changes", "field", "value", "metadata", "phone_number_id",
        "contacts", "profile", "name", "wa_id", "messages", "statuses", "timestamp",
        "body", "image", "interactive", "button_reply", "context", "forwarded", "status",
        "recipient_id", "errors", "phones", "order", "product_items", "product_retailer_id",
        "quantity", "item_price", "currency", "catalog_id", "edit", "original_message_id",
        "call_permission_reply", "calls", "user_preferences",
        # web
        "email", "phone", "subject", "service", "region", "segment", "submission_id",
        "submitted_at", "filename", "content_type", "size", "sha256",
    }
)  # fmt: skip

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["966501234567", "whatsapp_business_account", "MessageCreate", "text",
                      "2024-05-01T08:00:00Z", "1714550400", "messages", "a@b.co", "retweeted",
                      "replied_to", "private", "channel", "+966501234567", "button_reply"])
)  # fmt: skip
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=30,
)
json_objects = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), json_values, max_size=8)


def run(channel: Channel, payload: Any) -> None:
    """Normalize and check the contract; the only exception allowed is PayloadError."""
    try:
        results = registry.normalize(channel, payload, account="prop")
    except PayloadError as exc:
        message = str(exc)
        assert message and "\n" not in message
        assert exc.reason and " " not in exc.reason
        return
    assert isinstance(results, list) and results
    for result in results:
        assert isinstance(result, Inbound | Skipped)
        if isinstance(result, Inbound):
            assert result.external_id and result.channel == channel
            to_json(result)  # everything it holds serializes
            mask_pii(result.text)


@PROPS
@given(channel=st.sampled_from(CHANNELS), raw=st.binary(max_size=300))
def test_random_bytes(channel: Channel, raw: bytes) -> None:
    run(channel, raw)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "raw", [b'"\x80"', b'{"update_id": "\xff"}', b"[" * 5000, b"\xef\xbb\xbf{}", b"{}" * 2]
)
def test_known_bad_bytes(channel: Channel, raw: bytes) -> None:
    """Cases hypothesis found or that broke other JSON parsers: bad UTF-8, deep nesting, BOM."""
    with pytest.raises(PayloadError):
        registry.normalize(channel, raw, account="prop")


@PROPS
@given(channel=st.sampled_from(CHANNELS), value=json_values)
def test_random_json_as_bytes(channel: Channel, value: Any) -> None:
    run(channel, json.dumps(value).encode())


@PROPS
@given(channel=st.sampled_from(CHANNELS), value=json_objects)
def test_random_json_objects_as_dicts(channel: Channel, value: dict) -> None:
    run(channel, value)


def _fixtures() -> list[tuple[Channel, Any]]:
    out = []
    for path in sorted(FIXTURES.glob("*/*.json")):
        try:
            data = json.loads(path.read_bytes())
        except ValueError:
            continue
        out.append((Channel(path.parent.name), data))
    return out


FIXTURE_DATA = _fixtures()


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_paths(value, (*prefix, i)))
    return found


def _mutate(doc: Any, path: tuple, op: str, value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "delete":
        del parent[last]
    else:
        parent[last] = value
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_fixtures(data: st.DataObject) -> None:
    channel, original = data.draw(st.sampled_from(FIXTURE_DATA), label="fixture")
    doc = copy.deepcopy(original)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths), label="path")
        op = data.draw(st.sampled_from(["delete", "replace"]), label="op")
        value = data.draw(json_values, label="value")
        doc = _mutate(doc, path, op, value)
    run(channel, doc)
    run(channel, msgspec.json.encode(doc))


@pytest.mark.parametrize("channel", CHANNELS)
def test_truncations_of_every_fixture(channel: Channel) -> None:
    """Every prefix of a real payload is either valid JSON or a not_json error."""
    for path in sorted((FIXTURES / channel.value).glob("*.json")):
        raw = path.read_bytes()
        for cut in range(0, len(raw), max(1, len(raw) // 40)):
            run(channel, raw[:cut])


@PROPS
@given(digits=st.from_regex(r"[12][0-9]{9}", fullmatch=True), words=st.text(max_size=20))
def test_ids_in_chat_text_are_masked_in_previews(digits: str, words: str) -> None:
    """The raw text keeps a national ID; mask_pii, used for previews and logs, hides it."""
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"changes": [{"field": "messages", "value": {
            "metadata": {"phone_number_id": "1"},
            "messages": [{"from": "966501234567", "id": "wamid.P", "timestamp": "1714550400",
                          "type": "text", "text": {"body": f"{words} هويتي {digits}."}}],
        }}]}],
    }  # fmt: skip
    [result] = registry.normalize(Channel.WHATSAPP, body, account="prop")
    assert isinstance(result, Inbound)
    assert digits in result.text
    assert digits not in mask_pii(result.text)
