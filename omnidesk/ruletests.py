"""Run the rule tests a config carries (`tests:` in queue_config.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from omnidesk.config import RuleTest, TestInbound
from omnidesk.errors import OmnideskError
from omnidesk.model import (
    Attachment,
    Author,
    Channel,
    Customer,
    Decision,
    Identity,
    IdentityKind,
    Inbound,
    Segment,
)
from omnidesk.routing import Routing
from omnidesk.text import detect_language

# A Sunday at 10:00 in Riyadh: inside business hours unless a test says otherwise.
DEFAULT_RECEIVED_AT = datetime(2026, 11, 1, 10, 0, tzinfo=ZoneInfo("Asia/Riyadh"))


@dataclass
class RuleTestResult:
    index: int
    test: RuleTest
    failures: list[tuple[str, str]]  # (expect key, message)
    decision: Decision | None = None
    skipped: bool = False  # its sample file is not beside the config (a copied config)

    @property
    def passed(self) -> bool:
        return not self.failures and not self.skipped


def inbound_from_test(spec: TestInbound) -> tuple[Inbound, Customer | None]:
    """An Inbound (and a customer carrying tags/segment/region) from an inline test."""
    identities = []
    if "@" in spec.sender:
        identities.append(Identity(kind=IdentityKind.EMAIL, value=spec.sender.strip().lower()))
    elif spec.sender:
        kind = {
            Channel.TELEGRAM: IdentityKind.TELEGRAM,
            Channel.TWITTER: IdentityKind.TWITTER_HANDLE,
            Channel.WHATSAPP: IdentityKind.WHATSAPP,
        }.get(spec.channel, IdentityKind.PHONE)
        identities.append(Identity(kind=kind, value=spec.sender.strip()))
    received = datetime.fromisoformat(spec.received_at) if spec.received_at else DEFAULT_RECEIVED_AT
    if received.tzinfo is None:
        received = received.replace(tzinfo=ZoneInfo("Asia/Riyadh"))
    inbound = Inbound(
        channel=spec.channel,
        account=spec.account,
        external_id="test",
        received_at=received,
        author=Author(name=spec.name, identities=identities),
        subject=spec.subject,
        text=spec.text,
        language=spec.language or detect_language(f"{spec.subject}\n{spec.text}"),
        attachments=[Attachment(filename=f"file{i}") for i in range(spec.attachments)],
        flags=list(spec.flags),
        segment_hint=spec.segment or Segment.UNKNOWN,
        region_hint=spec.region,
        service_hint=spec.service,
    )
    customer = None
    if spec.customer_tags:
        customer = Customer(
            id="test",
            identities=identities,
            tags=list(spec.customer_tags),
            segment=spec.segment or Segment.UNKNOWN,
            region=spec.region,
        )
    return inbound, customer


def run_rule_tests(routing: Routing) -> list[RuleTestResult]:
    from connectors.registry import normalize

    results = []
    for index, test in enumerate(routing.loaded.data.tests):
        try:
            if test.inbound is not None:
                inbound, customer = inbound_from_test(test.inbound)
            else:
                assert test.file is not None and test.channel is not None
                path = routing.loaded.base_dir / test.file
                if not path.is_file():  # the config's load warned about it
                    results.append(RuleTestResult(index, test, [], skipped=True))
                    continue
                payload = path.read_bytes()
                items = [
                    i
                    # a fixed receive time, as for inline tests: business hours must not
                    # depend on the day the tests run
                    for i in normalize(
                        test.channel, payload, account="test", received_at=DEFAULT_RECEIVED_AT
                    )
                    if isinstance(i, Inbound)
                ]
                if not items:
                    raise OmnideskError("the file holds no customer message")
                inbound, customer = items[0], None
        except (OmnideskError, OSError) as exc:
            results.append(RuleTestResult(index, test, [("file", f"cannot load: {exc}")]))
            continue
        decision = routing.decide(inbound, customer=customer)
        results.append(RuleTestResult(index, test, _compare(test, decision), decision))
    return results


def _compare(test: RuleTest, decision: Decision) -> list[tuple[str, str]]:
    expect, failures = test.expect, []
    for key in ("queue", "priority", "sla_policy", "rule"):
        want = getattr(expect, key)
        got = getattr(decision, key)
        if want is not None and str(want) != str(got):
            failures.append((key, f"expected {want}, got {got}"))
    if expect.tags is not None:
        missing = [t for t in expect.tags if t not in decision.tags]
        if missing:
            failures.append(("tags", f"missing {missing}, got {decision.tags}"))
    return failures
