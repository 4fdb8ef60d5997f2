"""An ingest that fails: dramatiq's log records name the message, never its payload (the
base64 batch), whatever the level."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from omnidesk.pipeline import Pipeline, make_broker
from omnidesk.runtime import Runtime
from tests.services import wait_for
from tests.storekit import REDIS_URL, web


def test_a_failed_ingest_logs_no_payload(
    runtime: Runtime, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    raw = web("my national id is 1012345678", email="secret.person@example.sa")
    calls: list[int] = []
    real = runtime.process

    def fail_once(batch: Any) -> Any:
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("a bug in the ingest")  # not transient: dramatiq's retry path
        return real(batch)

    runtime.process = fail_once  # type: ignore[method-assign]
    broker = make_broker(REDIS_URL, prefix)
    pipeline = Pipeline(runtime, broker)
    caplog.set_level(logging.DEBUG)
    worker = pipeline.start_worker(threads=1)
    try:
        pipeline.handover_sync([raw])
        assert wait_for(lambda: runtime.store.ticket_count() == 1, timeout=30)
    finally:
        worker.stop(timeout=5_000)
        broker.close()
    failures = [r for r in caplog.records if "Failed to process message" in r.getMessage()]
    assert failures, "the forced failure was not logged"
    encoded = base64.b64encode(raw.payload).decode()
    for record in caplog.records:
        text = record.getMessage() + (caplog.handler.format(record) if record.exc_info else "")
        assert encoded[:24] not in text, record.name
        assert "1012345678" not in text and "secret.person" not in text, record.name
    assert f"ingest#{failures[0].args[0].split('#')[1]}" in failures[0].getMessage()  # type: ignore[index,union-attr]
