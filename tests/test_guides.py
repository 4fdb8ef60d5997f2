"""The awareness guides: the folder's files read with FILE:LINE problems, the config's
`guides:` section checked like the others, and search that finds Arabic guides through the
tickets' folding, stems and plurals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from omnidesk.configload import load_config, parse_config
from omnidesk.errors import ConfigError
from omnidesk.guides.index import GuideIndex
from omnidesk.guides.library import build, library_for
from omnidesk.guides.loader import load_file, load_folder
from tests.clikit import omnidesk

ROOT = Path(__file__).resolve().parent.parent
GUIDES = ROOT / "guides"
MINIMAL = ROOT / "tests" / "fixtures" / "config" / "minimal.yaml"

GOOD = """---
title: "حجز اسم تجاري"
lang: ar
service: trade_names
tags: ["اسم تجاري"]
audience: [businesses]
---

النص.
"""


@pytest.fixture(scope="module")
def index() -> GuideIndex:
    guides, problems = load_folder(GUIDES)
    assert problems == []
    return GuideIndex(guides)


def test_the_reference_guides_load_in_both_languages() -> None:
    guides, problems = load_folder(GUIDES)
    assert problems == []
    assert 25 <= len(guides) <= 40
    langs = {g.meta.lang for g in guides}
    assert langs == {"ar", "en"}
    by_slug = {g.slug: g for g in guides}
    for guide in guides:  # every guide has its translation, in the other language
        other = by_slug[guide.meta.translation or ""]
        assert other.meta.lang != guide.meta.lang and other.topic == guide.topic
    assert {a for g in guides for a in g.meta.audience} == {"consumers", "businesses", "staff"}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_front_matter_problems_name_file_line_and_key(tmp_path: Path) -> None:
    unknown = write(tmp_path, "a-ar.md", GOOD.replace("audience:", "colour: red\naudience:"))
    assert load_file(unknown)[1] == [f"{unknown}:6: colour: unknown key"]
    no_lang = write(tmp_path, "b-ar.md", GOOD.replace("lang: ar\n", ""))
    assert load_file(no_lang)[1] == [f"{no_lang}:2: lang: required"]
    bad_audience = write(tmp_path, "c-ar.md", GOOD.replace("[businesses]", "[everyone]"))
    (problem,) = load_file(bad_audience)[1]
    assert problem.startswith(f"{bad_audience}:6: audience.0: Input should be")
    no_fence = write(tmp_path, "d-ar.md", GOOD.removeprefix("---\n"))
    assert load_file(no_fence)[1] == [
        f"{no_fence}:1: (front matter): the file must begin with a --- line"
    ]
    bad_yaml = write(tmp_path, "e-ar.md", GOOD.replace("tags: [", "tags: [[["))
    (problem,) = load_file(bad_yaml)[1]
    assert problem.startswith(f"{bad_yaml}:") and "(front matter)" in problem
    wrong_suffix = write(tmp_path, "f-en.md", GOOD)
    assert load_file(wrong_suffix)[1] == [f"{wrong_suffix}:3: lang: the name must end in -ar"]
    bad_name = write(tmp_path, "Bad Name.md", GOOD)
    assert "lower-case" in load_file(bad_name)[1][0]
    good = write(tmp_path, "g-ar.md", GOOD)
    guide, problems = load_file(good)
    assert problems == [] and guide is not None and guide.body == "النص."


def config_with_guides(tmp_path: Path, folder: str) -> Path:
    text = (
        MINIMAL.read_text() + f"guides:\n  folder: {folder}\n  public_url: https://moc.example.sa\n"
    )
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_config_names_a_broken_guide_and_runs_without_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    shutil.copytree(GUIDES, folder)
    cfg = config_with_guides(tmp_path, "kb")
    loaded = load_config(cfg)
    library = build(loaded)
    assert len(library.guides) == len(list(GUIDES.glob("*.md")))
    assert library.url(library.guides[0]).startswith("https://moc.example.sa/guides/")
    broken = folder / "refund-ar.md"
    broken.write_text(broken.read_text().replace("lang: ar", "lang: fr"))
    ran = omnidesk("check", str(cfg))
    assert ran.returncode == 1
    assert f"{broken}:3: lang: Input should be 'ar' or 'en'" in ran.stderr
    # a config copied without its guides still runs, with none (the daemon logs it)
    nowhere = parse_config(
        MINIMAL.read_text() + "guides:\n  folder: nowhere\n", tmp_path / "c.yaml"
    )
    assert nowhere.warnings == []
    assert build(nowhere).guides == []


def test_a_rule_answering_with_a_guide_needs_the_guides_section(tmp_path: Path) -> None:
    text = MINIMAL.read_text().replace(
        "then: {queue: riyadh}", "then: {queue: riyadh, answer_with_guide: true}"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "c.yaml")
    (problem,) = info.value.problems
    line = next(i for i, x in enumerate(text.splitlines(), 1) if "answer_with_guide" in x)
    where = f"{tmp_path / 'c.yaml'}:{line}: rules[0].then.answer_with_guide"
    assert problem == f"{where}: needs a `guides:` section"


def test_a_config_has_one_library_until_it_is_loaded_again(tmp_path: Path) -> None:
    cfg = config_with_guides(tmp_path, str(GUIDES))
    first = load_config(cfg)
    assert library_for(first) is library_for(first)
    again = load_config(cfg)  # what SIGHUP does
    assert library_for(again) is not library_for(first)


def top(index: GuideIndex, text: str, lang: str | None = "ar") -> str:
    hits = index.search(text, limit=1, lang=lang)
    assert hits, text
    return hits[0].guide.slug


@pytest.mark.parametrize(
    ("query", "slug"),
    [
        ("الشكاوى", "consumer-complaint-ar"),  # broken plural of شكوى (the guide says شكوى)
        ("الضمانات", "warranty-ar"),  # sound plural, with the article
        ("ضَمَانٌ", "warranty-ar"),  # tashkeel
        ("الإمتياز", "franchise-ar"),  # alef with hamza below, folded
        ("بالأسعار", "price-monitoring-ar"),  # clitic and article
        ("التخفيضات", "discounts-ar"),
        ("السجلات", "cr-"),  # any of the registration guides
        ("المتاجر الالكترونيه", "ecommerce-ar"),  # taa marbuta written as haa
        ("العلامات التجاريه", "trademark-ar"),
    ],
)
def test_arabic_search_folds_and_meets_plurals(index: GuideIndex, query: str, slug: str) -> None:
    assert top(index, query).startswith(slug)


def test_english_search_stems_and_language_filter(index: GuideIndex) -> None:
    assert top(index, "refunds", "en") == "refund-en"
    assert top(index, "Warranties", None) == "warranty-en"
    assert index.search("zzzz qqqq") == []
    hits = index.search("warranty", lang="ar")
    assert all(h.guide.meta.lang == "ar" for h in hits)


def test_customers_never_see_staff_guides(index: GuideIndex) -> None:
    staff = index.search("field inspection escalation", limit=1)
    assert staff[0].guide.slug == "staff-escalation-en"
    public = index.search("field inspection escalation", public_only=True)
    assert all(h.guide.public for h in public) and public


def test_the_suggestions_bench_runs_and_beats_its_baseline() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "guides.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["questions"] >= 100
    assert figures["top3_accuracy"] > figures["baseline_top3_accuracy"]
    assert figures["top3_accuracy"] >= 0.9
