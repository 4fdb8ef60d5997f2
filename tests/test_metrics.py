"""/metrics figures are read per scrape: fresh families, counters typed as counters."""

from __future__ import annotations

from prometheus_client import Counter

from omnidesk.metrics import Metrics, Scrape


def scrape_of(**counts) -> Scrape:
    scrape = Scrape()
    scrape.update_store(counts)
    return scrape


def test_a_label_gone_from_redis_is_gone_from_the_next_scrape():
    metrics = Metrics()
    first = metrics.render(scrape_of(waiting_by_queue={"cr": 3, "billing": 1})).decode()
    assert 'omnidesk_queue_depth{queue="billing"} 1.0' in first
    second = metrics.render(scrape_of(waiting_by_queue={"cr": 2})).decode()
    assert 'omnidesk_queue_depth{queue="cr"} 2.0' in second
    assert 'queue="billing"' not in second


def test_nothing_read_nothing_shown():
    """A scrape where Redis did not answer shows no stale store figures."""
    metrics = Metrics()
    metrics.render(scrape_of(stats={"in:web": 5}))
    down = Scrape()
    down.update_dependency("redis", False)
    text = metrics.render(down).decode()
    assert "omnidesk_messages_in_total" not in text
    assert 'omnidesk_dependency_up{dependency="redis"} 0.0' in text


def test_total_names_are_counters_and_sla_steps_appear_once():
    scrape = scrape_of(stats={"in:web": 5, "opened": 4, "sla:warned": 1, "sla:paged": 2})
    scrape.update_sla({"warned": 3, "breached": 0})
    text = Metrics().render(scrape).decode()
    assert "# TYPE omnidesk_messages_in_total counter" in text
    assert 'omnidesk_messages_in_total{channel="web"} 5.0' in text
    assert "# TYPE omnidesk_pipeline_total counter" in text
    assert 'omnidesk_pipeline_total{counter="opened"} 4.0' in text
    assert text.count('omnidesk_sla_steps{kind="warned"}') == 1
    assert 'omnidesk_sla_steps{kind="warned"} 3.0' in text  # the sweeper's count wins
    assert 'omnidesk_sla_steps{kind="paged"} 2.0' in text


def test_metrics_registered_elsewhere_render_beside_the_scrape():
    metrics = Metrics()
    Counter("omnidesk_web_rejected", "refused forms", ["reason"], registry=metrics.registry).labels(
        reason="spam"
    ).inc()
    text = metrics.render(scrape_of(quarantine=2)).decode()
    assert 'omnidesk_web_rejected_total{reason="spam"} 1.0' in text
    assert "omnidesk_quarantine_size 2.0" in text
    assert "omnidesk_ingest_seconds_count 0.0" in text
