"""The PBX's signature on a call event: HMAC-SHA256 over "<timestamp>.<body>", in hex.

Each PBX has its own shared secret, read from the environment variable its config names
(never from the config file; the config loader masks its value in logs). The timestamp
(Unix seconds, signed with the body) bounds a replay to `max_skew_s`; within that window a
resent event is a duplicate by its event id (omnidesk/agents/cti_calls.py). Signatures are
compared with `hmac.compare_digest`, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

from omnidesk.config import CtiConfig
from omnidesk.errors import AuthError

PBX_HEADER = "X-Omnidesk-Pbx"
TIMESTAMP_HEADER = "X-Omnidesk-Timestamp"
SIGNATURE_HEADER = "X-Omnidesk-Signature"  # "sha256=<hex>" (or the bare hex)
# ASCII digits only: str.isdigit() takes '²', which int() then refuses (a 500, not a 401)
_STAMP = re.compile(r"[0-9]{1,12}")


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 a PBX sends for `body` at `timestamp` (scripts/ use the same)."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(
    config: CtiConfig, pbx: str, timestamp: str, signed: str, body: bytes, now: float
) -> None:
    """Accept the request as `pbx`'s, or raise AuthError saying why (the answer is 401)."""
    known = config.pbx.get(pbx)
    if known is None:
        raise AuthError(f"{PBX_HEADER}: unknown PBX")
    secret = os.environ.get(known.secret_env, "")
    if not secret:
        raise AuthError(f"PBX {pbx!r} has no secret set (${known.secret_env})")
    if not _STAMP.fullmatch(timestamp) or abs(now - int(timestamp)) > config.max_skew_s:
        raise AuthError(f"{TIMESTAMP_HEADER}: missing or more than {config.max_skew_s} s off")
    given = signed.strip().removeprefix("sha256=")
    expected = signature(secret.encode(), timestamp, body)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthError(f"{SIGNATURE_HEADER}: does not match the body")
