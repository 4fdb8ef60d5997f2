"""`omnidesk report` on generated data, in every format, through the real CLI entry."""

from __future__ import annotations

import csv
import io
import json
import uuid
from html.parser import HTMLParser

import pytest

from omnidesk.cli import main
from omnidesk.store import Store
from tests.reportkit import history

REDIS_URL = "redis://127.0.0.1:6379/0"
CONFIG = "queue_config.yaml"


@pytest.fixture(autouse=True)
def no_records(monkeypatch):
    """These tests read the rollups: `auto` falls back to them with PostgreSQL away."""
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/od_absent")


@pytest.fixture(scope="module")
def prefix():
    name = f"test-repcli-{uuid.uuid4().hex[:10]}"
    store = Store.from_url(REDIS_URL, name)
    pipe = store.r.pipeline(transaction=False)
    for ev in history(3, 40):
        pipe.xadd(store.key("events"), ev)
    pipe.execute()
    yield name
    store.delete_all()


def report(capsys, prefix: str, *extra: str) -> str:
    argv = ["report", "--config", CONFIG, "--prefix", prefix, "--redis-url", REDIS_URL,
            "--from", "2026-02-27", "--to", "2026-03-20", *extra]  # fmt: skip
    code = main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_json_counts_every_generated_ticket(capsys, prefix):
    figures = json.loads(report(capsys, prefix, "--format", "json"))
    assert figures["totals"]["opened"] == 40
    assert set(figures["by"]["queue"]) <= {"branch-riyadh", "branch-jeddah", "backoffice"}
    # branch-riyadh's region comes from queue_config.yaml
    assert "riyadh" in figures["by"]["region"]


def test_filters_narrow_the_figures(capsys, prefix):
    whole = json.loads(report(capsys, prefix, "--format", "json"))
    riyadh = json.loads(report(capsys, prefix, "--format", "json", "--queue", "branch-riyadh"))
    assert riyadh["totals"]["opened"] == whole["by"]["queue"]["branch-riyadh"]["opened"]
    assert riyadh["filters"] == {"queue": "branch-riyadh"}


def test_csv_has_a_total_row_and_one_row_per_slice(capsys, prefix):
    rows = list(csv.DictReader(io.StringIO(report(capsys, prefix, "--format", "csv"))))
    assert rows[0]["slice"] == "total" and rows[0]["opened"] == "40"
    assert sum(int(r["opened"]) for r in rows if r["slice"] == "channel") == 40


def test_table_names_the_period(capsys, prefix):
    text = report(capsys, prefix)
    assert text.startswith("Report 2026-02-27 .. 2026-03-20")
    assert "opened 40" in text


def test_an_arabic_table_is_arabic_and_csv_keeps_its_keys(capsys, prefix):
    text = report(capsys, prefix, "--format", "table", "--lang", "ar", "--digits", "arab")
    assert text.startswith("تقرير 2026-02-27 .. 2026-03-20")
    assert "مفتوحة ٤٠" in text and "الإجمالي" in text and "رضا العملاء" in text
    assert "opened" not in text and "total" not in text
    rows = list(csv.DictReader(io.StringIO(report(capsys, prefix, "--format", "csv",
                                                  "--lang", "ar"))))  # fmt: skip
    assert rows[0]["slice"] == "total" and rows[0]["opened"] == "40"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_has_charts_print_css_and_rtl(capsys, prefix, tmp_path):
    out = tmp_path / "r.html"
    report(capsys, prefix, "--format", "html", "--lang", "ar", "-o", str(out))
    page = out.read_text("utf-8")
    parser = _Tags()
    parser.feed(page)
    html_tag = next(attrs for tag, attrs in parser.tags if tag == "html")
    assert html_tag == {"lang": "ar", "dir": "rtl"}
    assert sum(1 for tag, _ in parser.tags if tag == "svg") == 4
    assert "@media print" in page
    assert "فرع الرياض" in page  # the queue's Arabic title, inside a <bdi>
    assert any(tag == "bdi" for tag, _ in parser.tags)


def test_bad_dates_and_filters_are_one_line_errors(capsys, prefix):
    assert main(["report", "--config", CONFIG, "--prefix", prefix, "--from", "yesterday"]) == 2
    assert "not a date" in capsys.readouterr().err
    argv = ["report", "--config", CONFIG, "--prefix", prefix, "--redis-url", REDIS_URL,
            "--from", "2026-03-05", "--to", "2026-03-01"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "before" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("flag", "value"), [("--queue", "nope"), ("--region", "atlantis"), ("--agent", "ghost")]
)
def test_an_unknown_filter_value_is_an_error_naming_it(capsys, prefix, flag, value):
    """Not a report of zeros: the value is named, one line, exit 2."""
    argv = ["report", "--config", CONFIG, "--prefix", prefix, "--redis-url", REDIS_URL,
            "--from", "2026-02-27", "--to", "2026-03-20", flag, value]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{flag} {value!r}" in err and len(err.strip().splitlines()) == 1


def test_channel_and_segment_are_closed_lists(capsys, prefix):
    for flag, value in (("--channel", "fax"), ("--segment", "vip")):
        with pytest.raises(SystemExit) as exited:
            main(["report", "--config", CONFIG, "--prefix", prefix, flag, value])
        assert exited.value.code == 2
        assert repr(value) in capsys.readouterr().err


def test_values_known_from_the_data_or_the_config_are_accepted(capsys, prefix):
    # sara is in no config, only in the events; makkah is a ticket's own region; omar and
    # riyadh come from the config
    for flag, value in (("--agent", "sara"), ("--region", "makkah"), ("--agent", "omar"),
                        ("--region", "riyadh"), ("--queue", "branch-jeddah")):  # fmt: skip
        figures = json.loads(report(capsys, prefix, "--format", "json", flag, value))
        assert figures["filters"] == {flag.lstrip("-"): value}
