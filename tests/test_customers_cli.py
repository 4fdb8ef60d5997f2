"""`omnidesk customer show|export|erase|merge|unmerge|tag|retention` as an operator runs them
(in process, on the real Redis and PostgreSQL): one line and exit 2 for an unknown customer
or PostgreSQL away; retention from the CLI and from the daemon's archive pass."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from omnidesk.archive_job import ArchiveJob
from omnidesk.cli import main
from omnidesk.configload import load_config
from omnidesk.db.records import Records
from omnidesk.runtime import Runtime
from tests.crmkit import customer, message, mirror, ticket
from tests.storekit import CONFIG, REDIS_URL, web


def write_config(tmp: Path, prefix: str, years: int | None = None) -> Path:
    path = tmp / "queue_config.yaml"
    service = (
        f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n"
        f"  state_dir: {tmp / 'state'}\n"
    )
    if years is not None:
        service += f"  retention: {{personal_data_years: {years}}}\n"
    path.write_text(service + CONFIG.read_text("utf-8"), "utf-8")
    return path


@pytest.fixture
def setup(
    pg_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    config = write_config(tmp_path, prefix)
    runtime = Runtime.from_config(load_config(config))
    return {"config": str(config), "runtime": runtime, "pg": pg_url}


def cli(setup: dict[str, Any], *args: str) -> int:
    return main(["customer", *args, "--config", setup["config"]])


def open_for(setup: dict[str, Any], text: str, **form: str) -> Any:
    result = setup["runtime"].process([web(text, name="Yousef", **form)]).results[0]
    with psycopg.connect(setup["pg"], autocommit=True) as conn:
        mirror(conn, setup["runtime"].store, result.ticket_id)
    return result


def test_show_tag_export_merge_unmerge_and_erase(
    setup: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = open_for(setup, "السلام عليكم، استفسار عن السجل", email="y@example.sa")
    b = open_for(setup, "a question by phone", phone="0559998888")
    capsys.readouterr()

    assert cli(setup, "show", "y@example.sa") == 0
    out = capsys.readouterr().out
    assert a.customer_id in out and "Yousef" in out and "email: y@example.sa" in out
    assert a.ticket_id in out and "general" in out
    assert cli(setup, "show", a.customer_id, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in doc["tickets"]] == [a.ticket_id]

    assert cli(setup, "tag", "y@example.sa", "+vip", "+gov", "--actor", "noura") == 0
    assert capsys.readouterr().out.strip() == f"{a.customer_id}: vip, gov"
    assert cli(setup, "tag", a.customer_id, "-vip") == 0
    assert setup["runtime"].store.get_customer(a.customer_id).tags == ["gov"]
    assert cli(setup, "tag", a.customer_id, "vip") == 2
    assert "+tag to add" in capsys.readouterr().err

    out_file = tmp_path / "export.json"
    assert cli(setup, "export", a.customer_id, "--out", str(out_file)) == 0
    exported = json.loads(out_file.read_text("utf-8"))
    assert [m["body"] for m in exported["messages"]] == ["السلام عليكم، استفسار عن السجل"]

    assert cli(setup, "merge", "+966559998888", a.customer_id) == 0
    out = capsys.readouterr().out
    assert f"{b.customer_id} -> {a.customer_id}" in out
    merge_id = out.split(":", 1)[0].split()[-1]
    assert cli(setup, "show", b.customer_id) == 0
    assert f"merged into {a.customer_id}" in capsys.readouterr().out
    assert cli(setup, "unmerge", merge_id) == 0
    assert "stands alone again" in capsys.readouterr().out
    assert cli(setup, "unmerge", merge_id) == 2
    assert "already undone" in capsys.readouterr().err

    assert cli(setup, "erase", a.customer_id) == 2
    assert "--yes" in capsys.readouterr().err
    assert cli(setup, "erase", "y@example.sa", "--yes") == 0
    assert "1 tickets" in capsys.readouterr().out
    assert cli(setup, "show", "y@example.sa") == 2  # the identity is gone
    assert cli(setup, "show", a.customer_id) == 0
    assert "ERASED" in capsys.readouterr().out

    with psycopg.connect(setup["pg"]) as conn:
        audit = conn.execute("SELECT actor, action FROM audit ORDER BY id").fetchall()
    assert [x for _, x in audit] == ["tag", "tag", "export", "merge", "unmerge", "erase"]
    assert audit[0][0] == "noura" and audit[1][0].startswith("operator")


def test_unknown_customer_and_postgres_away_are_one_line_and_exit_2(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli(setup, "show", "C-00000042") == 2
    err = capsys.readouterr().err
    assert err.strip() == "omnidesk customer: no customer C-00000042"
    assert cli(setup, "show", "nobody@example.sa") == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    assert cli(setup, "show", "C-00000042") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "postgresql unavailable at 127.0.0.1:1" in err


def seed_old_and_new(pg: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(pg, autocommit=True) as conn:
        customer(conn, "C-00000500", "Old", created=now - timedelta(days=1200))
        ticket(
            conn,
            "OD-2022-000001",
            "C-00000500",
            "general",
            "closed",
            created=now - timedelta(days=1200),
            closed=now - timedelta(days=1100),
            subject="old",
        )
        message(conn, "OD-2022-000001", "old body")
        customer(conn, "C-00000501", "New", created=now - timedelta(days=10))
        ticket(
            conn,
            "OD-2026-000501",
            "C-00000501",
            "general",
            "closed",
            created=now - timedelta(days=10),
            closed=now - timedelta(days=9),
            subject="new",
        )


def subjects(pg: str) -> dict[str, str]:
    with psycopg.connect(pg) as conn:
        return dict(conn.execute("SELECT id, subject FROM tickets").fetchall())


def test_retention_from_the_cli(
    setup: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], prefix: str
) -> None:
    seed_old_and_new(setup["pg"])
    assert cli(setup, "retention") == 0
    assert "is not set" in capsys.readouterr().out
    setup["config"] = str(write_config(tmp_path, prefix, years=2))
    assert cli(setup, "retention", "--dry-run") == 0
    assert "would erase the personal data of 1 tickets and 1 customers" in capsys.readouterr().out
    assert subjects(setup["pg"])["OD-2022-000001"] == "old"
    assert cli(setup, "retention") == 0
    assert "erased the personal data of 1 tickets" in capsys.readouterr().out
    assert subjects(setup["pg"]) == {"OD-2022-000001": "", "OD-2026-000501": "new"}


def test_the_archive_pass_applies_retention(
    pg_url: str, prefix: str, tmp_path: Path, runtime: Runtime
) -> None:
    seed_old_and_new(pg_url)
    loaded = load_config(write_config(tmp_path, prefix, years=2))
    records = Records(pg_url)
    try:
        job = ArchiveJob(runtime.store, lambda: loaded.data, records=lambda: records)
        summary = job.run_once()
        assert summary is not None and summary["retention"]["tickets"] == 1
        assert subjects(pg_url)["OD-2022-000001"] == ""
        # no policy: the pass leaves personal data alone and says nothing of retention
        none = load_config(write_config(tmp_path, prefix))
        quiet = ArchiveJob(
            runtime.store, lambda: none.data, records=lambda: records, clock=lambda: 10**9
        )
        assert quiet.run_once()["retention"] is None
    finally:
        records.close()
