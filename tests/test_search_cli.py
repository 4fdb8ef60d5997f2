"""`omnidesk search` against a real PostgreSQL: a table with the match in [brackets], JSON
lines, --queue scoping; an empty query or PostgreSQL away is one line on stderr, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from omnidesk.cli import main
from tests.searchkit import add_ticket

CONFIG = str(Path(__file__).resolve().parent.parent / "queue_config.yaml")


@pytest.fixture
def db(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    with psycopg.connect(pg_url, autocommit=True) as c:
        add_ticket(
            c,
            "OD-2026-000001",
            "الشكاوى المقدمة ضد المحلات",
            queue="complaints",
            status="closed",
            customer="C-1",
            identities=(("phone", "+966501234567"),),
        )
        add_ticket(c, "OD-2026-000002", "Complaint about a shop", queue="general",
                   customer="C-2", minutes=1)  # fmt: skip
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    return pg_url


def test_table_and_json(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "شكوى محل", "--config", CONFIG]) == 0
    out = capsys.readouterr().out
    assert "OD-2026-000001" in out and "[الشكاوى] المقدمة ضد [المحلات]" in out
    assert "OD-2026-000002" not in out
    assert main(["search", "0501234567", "--json", "--config", CONFIG]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    hit = json.loads(line)
    assert hit["ticket"] == "OD-2026-000001" and hit["matched"] == "phone"
    assert hit["status"] == "closed"


def test_queue_scoping(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "complaint", "--queue", "complaints", "--config", CONFIG]) == 0
    assert capsys.readouterr().out.strip() == "no tickets found"
    args = ["search", "complaint", "--queue", "complaints", "--queue", "general", "--json"]
    assert main([*args, "--config", CONFIG]) == 0
    assert [json.loads(x)["ticket"] for x in capsys.readouterr().out.splitlines()] == [
        "OD-2026-000002"
    ]


@pytest.mark.parametrize("query", ["", "  ", "x" * 201])
def test_bad_query_is_one_line_exit_2(
    db: str, query: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", query, "--config", CONFIG]) == 2
    err = capsys.readouterr().err
    assert err.startswith("omnidesk search: the search query is") and err.count("\n") == 1


def test_postgresql_away_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    assert main(["search", "شكوى", "--config", CONFIG]) == 2
    err = capsys.readouterr().err
    assert err.startswith("omnidesk search: postgresql unavailable at 127.0.0.1:1/none")
    assert err.count("\n") == 1
