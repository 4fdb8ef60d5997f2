"""An attachment's bytes, taken again from the archived raw message.

Only metadata is kept at intake (connectors/email/parts.py: name, type, size, sha256); the
raw message is archived whole (omnidesk/archive.py), so the bytes are re-parsed on demand.
The part is picked by the sha256 of its decoded content, which normalize recorded: a
stable id that does not depend on the walk order, and that proves the bytes are the same.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from connectors.email.normalize import parse
from connectors.email.parts import collect, content

_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,40}")


@dataclass(frozen=True)
class Extracted:
    data: bytes
    charset: str | None  # the part's declared charset, for a text/* part; None otherwise


def extract(raw: bytes, sha256: str, index: int | None = None) -> Extracted | None:
    """The attachment of `raw` whose content hashes to `sha256` (the one at `index` among
    the message's attachments first, as normalize listed them); None when none does."""
    body = collect(parse(raw, []), [])
    order = list(range(len(body.attachments)))
    if index is not None and 0 <= index < len(order):
        order.insert(0, order.pop(index))
    for i in order:
        if body.attachments[i].sha256 != sha256:
            continue
        part = body.attachment_parts[i]
        data = content(part)
        if hashlib.sha256(data).hexdigest() != sha256:  # cannot differ; checked, not assumed
            continue
        charset = part.get_param("charset") if part.get_content_maintype() == "text" else None
        if not isinstance(charset, str) or not _TOKEN.fullmatch(charset):
            charset = None  # absent, RFC 2231-encoded (a tuple) or not a charset name
        return Extracted(data=data, charset=charset.lower() if charset else None)
    return None
