"""Facts: what rules test, computed once per message.

The router never looks at an `Inbound` directly: the caller builds `Facts` (folding the
subject and text once) and every rule reads the same values. Business hours are the
caller's job (they need the calendar); the router only sees the resulting bool.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from omnidesk.model import (
    Channel,
    Customer,
    Flag,
    IdentityKind,
    Inbound,
    Language,
    Segment,
    Ticket,
)
from omnidesk.text import fold


def fold_words(text: str) -> str:
    """`fold` plus whitespace collapsed to single spaces, so multi-word keywords match
    across line breaks and double spaces. Keywords and texts go through the same call."""
    return " ".join(fold(text).split())


def _fold_opt(value: str | None) -> str | None:
    return fold(value).strip() if value else None


@dataclass(frozen=True, slots=True)
class Facts:
    """One message as rules see it. Construct directly (tests) or with `from_inbound`."""

    channel: Channel
    account: str = "default"
    segment: Segment = Segment.UNKNOWN
    language: Language = Language.UNKNOWN
    sender_address: str = ""  # email if any, else the channel identity (phone, handle, id)
    senders: frozenset[str] = frozenset()  # every identity value of the author, casefolded
    subject: str = ""  # raw, for regexes
    text: str = ""  # raw, for regexes
    has_attachment: bool = False
    outside_business_hours: bool = False
    customer_tags: frozenset[str] = frozenset()
    region: str | None = None
    service: str | None = None
    flags: frozenset[Flag] = frozenset()
    # derived in __post_init__
    sender_domain: str = field(init=False, default="")
    folded_subject: str = field(init=False, default="")
    folded_text: str = field(init=False, default="")

    def __post_init__(self) -> None:
        put = object.__setattr__
        address = self.sender_address.strip().casefold()
        put(self, "sender_address", address)
        senders = {s.strip().casefold() for s in self.senders} | {address}
        put(self, "senders", frozenset(senders - {""}))
        put(self, "sender_domain", address.rpartition("@")[2] if "@" in address else "")
        put(self, "folded_subject", fold_words(self.subject))
        put(self, "folded_text", fold_words(self.text))
        put(self, "customer_tags", frozenset(fold(t).strip() for t in self.customer_tags))
        put(self, "region", _fold_opt(self.region))
        put(self, "service", _fold_opt(self.service))
        put(self, "flags", frozenset(self.flags))

    @classmethod
    def from_inbound(
        cls,
        inbound: Inbound,
        customer: Customer | None = None,
        ticket: Ticket | None = None,
        outside_business_hours: bool = False,
    ) -> Facts:
        """Facts of one inbound message; the customer (if known) overrides the hints."""
        author = inbound.author
        email = author.identity(IdentityKind.EMAIL)
        identities = [i.value for i in author.identities if i.value]
        primary = email or (identities[0] if identities else "")
        segment = inbound.segment_hint
        region = inbound.region_hint
        tags: Iterable[str] = ()
        if customer is not None:
            if customer.segment != Segment.UNKNOWN:
                segment = customer.segment
            region = customer.region or region
            tags = customer.tags
        language = inbound.language
        if language == Language.UNKNOWN and ticket is not None:
            language = ticket.language
        return cls(
            channel=inbound.channel,
            account=inbound.account,
            segment=segment,
            language=language,
            sender_address=primary,
            senders=frozenset(identities),
            subject=inbound.subject,
            text=inbound.text or inbound.html_text,
            has_attachment=any(not a.inline for a in inbound.attachments),
            outside_business_hours=outside_business_hours,
            customer_tags=frozenset(tags),
            region=region,
            service=inbound.service_hint,
            flags=frozenset(inbound.flags),
        )
