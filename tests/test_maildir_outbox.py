"""Replies to what came through a drop folder: with `outbox: true` they are written to its
outbox/ as JSON, and they are sent by the daemon even when intake runs only in `omnidesk
worker` processes (which hold no connector, so never take `deliver`, but do take a share of
writing the records)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

from omnidesk.db.writer import GROUP
from omnidesk.model import Direction
from tests.services import free_port, wait_for
from tests.storekit import REDIS_URL
from tests.test_daemon import ROOT, DaemonProc, daemon_yaml
from tests.workerkit import writers_of

# every customer message is acknowledged (its `service:` lines are the daemon's own here)
RECEIPTS = ROOT / "tests" / "fixtures" / "config" / "receipts.yaml"


def drop_mail(proc: DaemonProc, name: str, sender: str) -> None:
    msg = EmailMessage()
    msg["From"] = f"أم خالد <{sender}>"
    msg["To"] = "care@mc.gov.sa"
    msg["Subject"] = "فاتورة مكررة"
    msg["Message-ID"] = f"<{name}@example.sa>"
    msg.set_content("السلام عليكم، وصلتني الفاتورة مرتين.")
    tmp = proc.drop / "new" / f".{name}.tmp"
    tmp.write_bytes(msg.as_bytes())
    tmp.rename(proc.drop / "new" / f"{name}.eml")


def test_a_receipt_goes_to_the_outbox_when_only_worker_processes_take_intake(
    prefix: str, tmp_path: Path
) -> None:
    body = RECEIPTS.read_text("utf-8").replace("service:\n  receipts:", "receipts_of_the_fixture:")
    body = "\n".join(line for line in body.splitlines() if "receipts_of_the_fixture" not in line)
    drop = tmp_path / "drop"
    (drop / "new").mkdir(parents=True)
    port = free_port()
    text = daemon_yaml(body + "\n", prefix=prefix, state=tmp_path / "state", port=port, drop=drop)
    assert "poll_interval: 0.1}" in text
    config = tmp_path / "queue_config.yaml"
    config.write_text(text.replace("poll_interval: 0.1}", "poll_interval: 0.1, outbox: true}"))
    daemon = DaemonProc(
        config=config,
        drop=drop,
        port=port,
        prefix=prefix,
        log=tmp_path / "daemon.log",
        redis_url=REDIS_URL,
        args=["--workers", "0"],
    )  # fmt: skip  (the daemon takes no intake)
    daemon.start()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker_log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "omnidesk", "worker", "--config", str(daemon.config)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=worker_log.open("wb"),
    )  # fmt: skip
    try:
        drop_mail(daemon, "outbox-1", "umm.khalid@example.sa")
        store = daemon.store()
        assert wait_for(lambda: store.ticket_count() == 1, timeout=30), daemon.logs()
        (ticket,) = store.list_tickets()
        outbox = daemon.drop / "outbox"
        assert wait_for(lambda: any(outbox.glob("*.json")), timeout=30), daemon.logs()
        (written,) = outbox.glob("*.json")
        reply = json.loads(written.read_text("utf-8"))
        assert reply["ticket_id"] == ticket.id and reply["channel"] == "email"
        assert ticket.id in reply["text"]  # the receipt carries the ticket number
        assert reply["to"] == [{"kind": "email", "value": "umm.khalid@example.sa"}], reply["to"]
        assert reply["in_reply_to"] == "<outbox-1@example.sa>"
        assert not list((daemon.drop / "tmp").iterdir())  # written there, renamed in

        def delivery() -> str | None:
            out = [m for m in store.ticket_messages(ticket.id) if m.direction == Direction.OUT]
            return out[0].delivery if out else None

        assert wait_for(lambda: delivery() == "sent", timeout=10), delivery()

        # the worker process writes PostgreSQL too, in a child process of its own: one more
        # consumer of the records group
        def consumers() -> list[str]:
            found = store.r.xinfo_consumers(store.key("events"), GROUP)
            return [str(c["name"]) for c in found]

        def the_workers_writer_reads() -> bool:
            writers = writers_of(worker.pid)
            return any(f":{pid}:" in c for pid in writers for c in consumers())

        assert wait_for(the_workers_writer_reads, 10), (consumers(), writers_of(worker.pid))
        # the worker process never took the reply: it has no sender and would have failed it
        assert "deliver" not in worker_log.read_text("utf-8", "replace")
        assert daemon.stop() == 0
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
