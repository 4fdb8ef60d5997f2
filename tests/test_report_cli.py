"""`omnidesk report` on generated data, in every format, through the real CLI entry."""

from __future__ import annotations

import csv
import io
import json
import sys
from html.parser import HTMLParser

import pytest

from omnidesk.cli import main
from tests.reportkit import history, seeded_database

CONFIG = "queue_config.yaml"


@pytest.fixture(scope="module")
def database(pg_template):
    """40 generated tickets' events in PostgreSQL, where every report is computed."""
    with seeded_database(pg_template, history(3, 40)) as url:
        yield url


@pytest.fixture
def records(database, monkeypatch):
    """The records every test's `omnidesk report` reads."""
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", database)
    return database


def report(capsys, records: str, *extra: str) -> str:
    argv = ["report", "--config", CONFIG,
            "--from", "2026-02-27", "--to", "2026-03-20", *extra]  # fmt: skip
    code = main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_json_counts_every_generated_ticket(capsys, records):
    figures = json.loads(report(capsys, records, "--format", "json"))
    assert figures["totals"]["opened"] == 40
    assert set(figures["by"]["queue"]) <= {"branch-riyadh", "branch-jeddah", "backoffice"}
    # branch-riyadh's region comes from queue_config.yaml
    assert "riyadh" in figures["by"]["region"]


def test_filters_narrow_the_figures(capsys, records):
    whole = json.loads(report(capsys, records, "--format", "json"))
    riyadh = json.loads(report(capsys, records, "--format", "json", "--queue", "branch-riyadh"))
    assert riyadh["totals"]["opened"] == whole["by"]["queue"]["branch-riyadh"]["opened"]
    assert riyadh["filters"] == {"queue": "branch-riyadh"}


def test_csv_has_a_total_row_and_one_row_per_slice(capsys, records):
    rows = list(csv.DictReader(io.StringIO(report(capsys, records, "--format", "csv"))))
    assert rows[0]["slice"] == "total" and rows[0]["opened"] == "40"
    assert sum(int(r["opened"]) for r in rows if r["slice"] == "channel") == 40


def test_table_names_the_period(capsys, records):
    text = report(capsys, records)
    assert text.startswith("Report 2026-02-27 .. 2026-03-20")
    assert "opened 40" in text


def test_an_arabic_table_is_arabic_and_csv_keeps_its_keys(capsys, records):
    text = report(capsys, records, "--format", "table", "--lang", "ar", "--digits", "arab")
    assert text.startswith("تقرير 2026-02-27 .. 2026-03-20")
    assert "مفتوحة ٤٠" in text and "الإجمالي" in text and "رضا العملاء" in text
    assert "opened" not in text and "total" not in text
    rows = list(csv.DictReader(io.StringIO(report(capsys, records, "--format", "csv",
                                                  "--lang", "ar"))))  # fmt: skip
    assert rows[0]["slice"] == "total" and rows[0]["opened"] == "40"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_has_charts_print_css_and_rtl(capsys, records, tmp_path):
    out = tmp_path / "r.html"
    report(capsys, records, "--format", "html", "--lang", "ar", "-o", str(out))
    page = out.read_text("utf-8")
    parser = _Tags()
    parser.feed(page)
    html_tag = next(attrs for tag, attrs in parser.tags if tag == "html")
    assert html_tag == {"lang": "ar", "dir": "rtl"}
    assert sum(1 for tag, _ in parser.tags if tag == "svg") == 4
    assert "@media print" in page
    assert "فرع الرياض" in page  # the queue's Arabic title, inside a <bdi>
    assert any(tag == "bdi" for tag, _ in parser.tags)


def test_bad_dates_and_filters_are_one_line_errors(capsys, records):
    assert main(["report", "--config", CONFIG, "--from", "yesterday"]) == 2
    assert "not a date" in capsys.readouterr().err
    argv = ["report", "--config", CONFIG,
            "--from", "2026-03-05", "--to", "2026-03-01"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "before" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("flag", "value"), [("--queue", "nope"), ("--region", "atlantis"), ("--agent", "ghost")]
)
def test_an_unknown_filter_value_is_an_error_naming_it(capsys, records, flag, value):
    """Not a report of zeros: the value is named, one line, exit 2."""
    argv = ["report", "--config", CONFIG,
            "--from", "2026-02-27", "--to", "2026-03-20", flag, value]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{flag} {value!r}" in err and len(err.strip().splitlines()) == 1


def test_channel_and_segment_are_closed_lists(capsys, records):
    for flag, value in (("--channel", "fax"), ("--segment", "vip")):
        with pytest.raises(SystemExit) as exited:
            main(["report", "--config", CONFIG, flag, value])
        assert exited.value.code == 2
        assert repr(value) in capsys.readouterr().err


def test_values_known_from_the_data_or_the_config_are_accepted(capsys, records):
    # sara is in no config, only in the events; makkah is a ticket's own region; omar and
    # riyadh come from the config
    for flag, value in (("--agent", "sara"), ("--region", "makkah"), ("--agent", "omar"),
                        ("--region", "riyadh"), ("--queue", "branch-jeddah")):  # fmt: skip
        figures = json.loads(report(capsys, records, "--format", "json", flag, value))
        assert figures["filters"] == {flag.lstrip("-"): value}


def test_html_without_the_charts_extra_is_one_line_naming_it_and_exit_2(
    capsys, records, monkeypatch
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    argv = ["report", "--config", CONFIG, "--from", "2026-02-27", "--to", "2026-03-20",
            "--format", "html"]  # fmt: skip
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "pip install 'omnidesk[charts]'" in err, err
