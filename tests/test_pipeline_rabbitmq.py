"""RabbitMQ as the broker (`service.broker_url: amqp://...`): a hand-over goes through a real
RabbitMQ to the ingest actor and becomes a ticket in Redis. Queues are named after the test's
namespace (runs share the "/" vhost) and deleted at teardown."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pika
import pytest

from omnidesk.pipeline import Pipeline, make_broker, queue_name
from omnidesk.runtime import Runtime
from tests.storekit import web

AMQP_URL = os.environ.get("OMNIDESK_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _rabbit_answers() -> bool:
    params = pika.URLParameters(AMQP_URL)
    try:
        with socket.create_connection((params.host, params.port), timeout=1):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    not _rabbit_answers(), reason=f"nothing answers on {AMQP_URL.split('@')[-1]} (RabbitMQ)"
)


def server_queues(names: list[str]) -> dict[str, int]:
    """Message counts of the named queues as RabbitMQ itself reports them (passive declare)."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        return {
            name: channel.queue_declare(name, passive=True).method.message_count for name in names
        }
    finally:
        connection.close()


@pytest.fixture
def rabbit_pipeline(runtime: Runtime, prefix: str) -> Iterator[Pipeline]:
    broker = make_broker(AMQP_URL, prefix)
    pipeline = Pipeline(runtime, broker)
    try:
        yield pipeline
    finally:
        broker.close()
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = connection.channel()
        for base in ("ingest", "deliver", "sla"):
            name = queue_name(broker, base)
            for q in (name, f"{name}.DQ", f"{name}.XQ"):
                channel.queue_delete(q)
        connection.close()


def test_an_ingest_round_trip_through_rabbitmq(
    rabbit_pipeline: Pipeline, runtime: Runtime, prefix: str
) -> None:
    broker = rabbit_pipeline.broker
    assert type(broker).__name__ == "RabbitmqBroker"
    ingest = queue_name(broker, "ingest")
    assert ingest == f"{prefix}.ingest"
    payloads = [web(f"شكوى رقم {i} about a shop", email=f"c{i}@example.sa") for i in range(3)]
    rabbit_pipeline.handover_sync(payloads, batch_size=2)  # two messages, both confirmed
    assert server_queues([ingest]) == {ingest: 2}  # held by RabbitMQ until a worker runs
    assert runtime.store.ticket_count() == 0

    worker = rabbit_pipeline.start_worker(threads=2)
    try:
        deadline = time.monotonic() + 15
        while runtime.store.ticket_count() < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop(timeout=5_000)
    tickets = runtime.store.list_tickets(limit=10)
    assert len(tickets) == 3
    assert {t.queue for t in tickets} == {"complaints"}
    assert server_queues([ingest]) == {ingest: 0}  # acked, nothing left over
