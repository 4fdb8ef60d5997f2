"""`omnidesk report --format pdf`: Chromium prints the branded page, in Arabic and English,
through the real CLI; without Chromium it is one line and exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest

from omnidesk.cli import main
from tests.reportkit import history, seeded_database

NAME_AR = "وزارة التجارة"
NAME_EN = "Ministry of Commerce"
LOGO = ('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
        '<circle cx="20" cy="20" r="18" fill="#006c35"/></svg>')  # fmt: skip

pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="chromium is not installed (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def database(pg_template):
    """30 generated tickets' events in PostgreSQL, where every report is computed."""
    with seeded_database(pg_template, history(5, 30)) as url:
        yield url


@pytest.fixture
def records(database, monkeypatch):
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", database)
    return database


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The shipped config plus a `branding` section with a logo beside it."""
    (tmp_path / "logo.svg").write_text(LOGO, "utf-8")
    text = Path("queue_config.yaml").read_text("utf-8")
    text += (f"\nbranding:\n  name_ar: {NAME_AR}\n  name_en: {NAME_EN}\n"
             "  logo: logo.svg\n  colour: '#00594f'\n")  # fmt: skip
    path = tmp_path / "queue_config.yaml"
    path.write_text(text, "utf-8")
    (tmp_path / "examples").symlink_to(Path("examples").resolve())  # its rule tests' files
    return path


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
    return unicodedata.normalize("NFKC", text)  # Arabic comes out in presentation forms


def run(records: str, config: Path, *extra: str) -> int:
    return main(["report", "--config", str(config), "--from", "2026-02-27", "--to", "2026-03-20",
                 "--format", "pdf", *extra])  # fmt: skip


@pytest.mark.slow
def test_arabic_and_english_pdfs_carry_the_branding_and_the_figures(records, config, tmp_path):
    ar, en = tmp_path / "ar.pdf", tmp_path / "en.pdf"
    assert run(records, config, "--lang", "ar", "--digits", "arab", "--out", str(ar)) == 0
    assert run(records, config, "--lang", "en", "--out", str(en)) == 0
    for path in (ar, en):
        assert path.read_bytes().startswith(b"%PDF-")
    ar_text, en_text = pdf_text(ar), pdf_text(en)
    assert NAME_AR in ar_text and "تقرير الأداء" in ar_text and "لا توجد بيانات" in ar_text
    assert "٣٠" in ar_text  # the 30 tickets, in Arabic-Indic digits
    assert NAME_EN in en_text and "Performance report" in en_text and "30" in en_text
    assert NAME_AR not in en_text
    if os.environ.get("OMNIDESK_SCREENSHOTS") == "1":  # the README's picture of the PDF
        assert shutil.which("pdftoppm"), "apt-get install poppler-utils to render the PDF"
        shot = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "report-ar"
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
                        str(ar), str(shot)], check=True)  # fmt: skip


def test_pdf_needs_an_output_file(records, config, capsys):
    assert run(records, config) == 2
    assert "--out" in capsys.readouterr().err


def test_without_chromium_it_is_one_clear_line(records, config, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMNIDESK_CHROMIUM", str(tmp_path / "no-such-chromium"))
    assert run(records, config, "--out", str(tmp_path / "x.pdf")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Chromium" in err
    assert not (tmp_path / "x.pdf").exists()


def test_a_missing_logo_is_named(records, config, tmp_path, capsys):
    (tmp_path / "logo.svg").unlink()
    assert run(records, config, "--out", str(tmp_path / "x.pdf")) == 2
    assert "logo.svg" in capsys.readouterr().err
