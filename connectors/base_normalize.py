"""Helpers the JSON-channel normalizers share: loading with a size limit, typed field access
that names the JSON path of what is wrong, E.164 phones and the cross-channel hints.

Pure, no I/O. Every failure is a `PayloadError` whose message names the path and whose
`reason` is a short machine word (not_json, too_large, missing_field, bad_field, ...).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import msgspec
import phonenumbers

from omnidesk.errors import PayloadError
from omnidesk.model import Inbound, Language, Segment
from omnidesk.text import detect_language

MAX_JSON_BYTES = 2 * 1024 * 1024  # a webhook body or an API page; anything bigger is not ours
MAX_TEXT_CHARS = 100_000  # longer message text is cut, with a defect recorded

_decoder = msgspec.json.Decoder()

P = ParamSpec("P")
R = TypeVar("R")


def load_json(payload: bytes | bytearray | memoryview | str | dict, *, max_bytes: int) -> dict:
    """The payload as a JSON object; bytes over `max_bytes` or not JSON are a PayloadError."""
    if isinstance(payload, dict):
        return payload
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise PayloadError(f"payload is a {type(payload).__name__}, not JSON", reason="not_json")
    if len(payload) > max_bytes:
        raise PayloadError(
            f"payload is {len(payload)} bytes, over the {max_bytes}-byte limit", reason="too_large"
        )
    try:
        data = _decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        # msgspec raises UnicodeDecodeError for invalid UTF-8 inside a string
        raise PayloadError(f"not JSON: {exc}", reason="not_json") from None
    if not isinstance(data, dict):
        raise PayloadError(
            f"JSON top level is {_kind(data)}, expected an object", reason="not_json"
        )
    return data


def with_prefix(prefix: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Prefix every PayloadError a normalizer raises with its channel, in one place."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except PayloadError as exc:
                raise PayloadError(f"{prefix}: {exc}", reason=exc.reason) from None

        return inner

    return wrap


def printable(text: str, limit: int = 40) -> str:
    """A caller-supplied name made safe to echo in a one-line error: short, no control chars."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


# ---- typed field access; `at` is the JSON path of the container, e.g. "message.chat"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _path(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


def missing(at: str, key: str) -> PayloadError:
    return PayloadError(f"{_path(at, key)}: missing field", reason="missing_field")


def bad(at: str, key: str, expected: str, value: Any) -> PayloadError:
    return PayloadError(
        f"{_path(at, key)}: expected {expected}, got {_kind(value)}", reason="bad_field"
    )


_REQUIRED = object()


def _field(d: dict, key: str, at: str, kind: Any, expected: str, default: Any = _REQUIRED) -> Any:
    """`d[key]` if it is of `kind` (bool is never a number here); absent or null gives
    `default`, or a missing-field error when there is none."""
    value = d.get(key)
    if value is None:
        if default is _REQUIRED:
            raise missing(at, key)
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise bad(at, key, expected, value)
    return value


def obj(d: dict, key: str, at: str) -> dict:
    return _field(d, key, at, dict, "an object")


def opt_obj(d: dict, key: str, at: str) -> dict | None:
    return _field(d, key, at, dict, "an object", None)


def arr(d: dict, key: str, at: str) -> list:
    return _field(d, key, at, list, "an array")


def opt_arr(d: dict, key: str, at: str) -> list:
    return _field(d, key, at, list, "an array", [])


def string(d: dict, key: str, at: str) -> str:
    return _field(d, key, at, str, "a string")


def opt_string(d: dict, key: str, at: str) -> str:
    return _field(d, key, at, str, "a string", "")


def integer(d: dict, key: str, at: str) -> int:
    return _field(d, key, at, int, "an integer")


def opt_int(d: dict, key: str, at: str, default: int = 0) -> int:
    return _field(d, key, at, int, "an integer", default)


def item_obj(value: Any, at: str, index: int) -> dict:
    """One element of an array that must be an object."""
    if not isinstance(value, dict):
        raise PayloadError(
            f"{at}[{index}]: expected an object, got {_kind(value)}", reason="bad_field"
        )
    return value


def id_string(d: dict, key: str, at: str) -> str:
    """An id that APIs send as a string of digits (X, WhatsApp); an integer is accepted too."""
    value = d.get(key)
    if value is None:
        raise missing(at, key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value or len(value) > 128:
        raise bad(at, key, "an id string", value)
    return value


def number(d: dict, key: str, at: str) -> float:
    return float(_field(d, key, at, int | float, "a number"))


def boolean(d: dict, key: str, at: str) -> bool:
    value = d.get(key, False)
    if not isinstance(value, bool):
        raise bad(at, key, "a boolean", value)
    return value


# ---- times

_MAX_UNIX = 253_402_300_799  # 9999-12-31T23:59:59Z; beyond it datetime cannot hold the value


def unix_time(value: int | float | str, at: str, key: str) -> datetime:
    """A Unix timestamp (number, or a string of digits as WhatsApp sends) as an aware UTC time."""
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > 12:
            raise bad(at, key, "a Unix timestamp", value)
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (0 <= value <= _MAX_UNIX)
    ):
        raise bad(at, key, "a Unix timestamp", value)
    return datetime.fromtimestamp(value, UTC)


def iso_time(value: Any, at: str, key: str) -> datetime:
    """An ISO 8601 time with a zone (X's `2024-03-01T09:00:00.000Z`) as an aware UTC time."""
    if not isinstance(value, str) or len(value) > 40:
        raise bad(at, key, "an ISO 8601 time", value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad(at, key, "an ISO 8601 time", value) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise bad(at, key, "an ISO 8601 time", value) from None


# ---- phones

_PHONE_CHARS = re.compile(r"[+0-9 ()\-.\u0660-\u0669\u06f0-\u06f9]{4,32}")
_DIGITS = str.maketrans({chr(0x0660 + i): str(i) for i in range(10)}) | str.maketrans(
    {chr(0x06F0 + i): str(i) for i in range(10)}
)


@functools.lru_cache(maxsize=65536)
def e164(raw: str, default_region: str = "SA") -> str | None:
    """The phone number in E.164 (`+9665...`), or None when it is not a valid number.

    Cached: parsing is the slowest step of a WhatsApp message and customers repeat.
    """
    if not raw or not _PHONE_CHARS.fullmatch(raw):
        return None
    try:
        parsed = phonenumbers.parse(raw.translate(_DIGITS), default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# ---- hints across channels

# A commercial registration number: 10 digits starting with 7 (unified) or 4 (legacy CR),
# in ASCII or Arabic-Indic digits (matched as written; only the match is translated).
_D = "0-9\u0660-\u0669\u06f0-\u06f9"
_CR_NUMBER = re.compile(rf"(?<![{_D}])[47\u0664\u0667\u06f4\u06f7][{_D}]{{9}}(?![{_D}])")


def apply_text_hints(inbound: Inbound) -> None:
    """Language from the text's script; a CR number in the text marks a business sender."""
    text = inbound.text
    if len(text) > MAX_TEXT_CHARS:
        inbound.text = text = text[:MAX_TEXT_CHARS]
        inbound.defects.append(f"text cut to {MAX_TEXT_CHARS} characters")
    seen = f"{inbound.subject}\n{text}" if inbound.subject else text
    inbound.language = detect_language(seen) if seen else Language.UNKNOWN
    match = _CR_NUMBER.search(seen)
    if match:
        inbound.hints["cr_number"] = match.group(0).translate(_DIGITS)
        if inbound.segment_hint == Segment.UNKNOWN:
            inbound.segment_hint = Segment.BUSINESS


_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def hex_sha256(value: str) -> str:
    """A media hash as lowercase hex; WhatsApp sends base64, others hex. '' when neither."""
    if _HEX64.fullmatch(value):
        return value.lower()
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ""
    return digest.hex() if len(digest) == 32 else ""
