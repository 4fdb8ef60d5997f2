"""The desk past Redis: a ticket's history outlives the trimmed events stream, and a ticket
that has left Redis is still viewed from PostgreSQL, never changed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from omnidesk.agents.desk import BadRequest, NotFound
from omnidesk.agents.roster import Forbidden
from omnidesk.db.records import Records
from omnidesk.db.writer import RecordWriter
from tests.agentkit import make
from tests.storekit import web


def test_history_and_a_ticket_that_left_redis(prefix: str, tmp_path: Path, pg_url: str) -> None:
    records = Records(pg_url)
    runtime, service, _ = make(prefix, tmp_path, records=records)
    store = runtime.store
    tid = runtime.process([web("استفسار عام", email="h@example.sa")]).results[0].ticket_id
    assert tid is not None
    amal = service.agent("amal")
    service.desk.reply(amal, tid, "أهلا، كيف نخدمك؟")
    service.desk.resolve(amal, tid)
    kinds = [e["type"] for e in service.desk.history(tid)]
    asyncio.run(RecordWriter(store, pg_url).drain())
    assert store.r.xlen(store.key("events")) == 0  # trimmed behind the writer
    assert [e["type"] for e in service.desk.history(tid)] == kinds
    assert kinds[0] == "ticket_opened" and "replied" in kinds and "status_changed" in kinds

    # the ticket leaves Redis (as the eviction pass does): still viewed, from PostgreSQL
    store.r.delete(store.key("ticket", tid), store.key("ticket", tid, "msgs"))
    view = service.desk.view(amal, tid)
    assert view["ticket"]["live"] is False and view["ticket"]["status"] == "resolved"
    texts = [m["text"] for m in view["messages"]]
    assert texts[:2] == ["استفسار عام", "أهلا، كيف نخدمك؟"] and "csat" in texts[2]  # the survey
    assert view["customer"]["identities"] == [{"kind": "email", "value": "h@example.sa"}]
    assert [e["type"] for e in view["history"]] == kinds
    with pytest.raises(BadRequest, match="left the live desk") as refused:
        service.desk.reply(amal, tid, "again")
    assert refused.value.code == "left_live_desk" and refused.value.params == {"ticket": tid}
    # a canned reply is still previewed for it (read-only), from the record
    preview = service.desk.preview_template(amal, tid, "thanks", "en")
    assert tid in preview and "{" not in preview
    with pytest.raises(Forbidden):
        service.desk.view(service.agent("omar"), tid)  # not his queue, live or not
    with pytest.raises(NotFound):
        service.desk.view(amal, "OD-2020-999999")
    records.close()
