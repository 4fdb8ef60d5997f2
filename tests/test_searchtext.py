"""The search fold and stemmer: Arabic plurals meet their singulars, English plurals and
-ing forms meet their stems, unrelated words stay apart, and no user input is a tsquery
syntax error. Matching is checked by PostgreSQL itself (`simple` configuration)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnidesk.db.searchtext import forms, query_words, search_document, search_query


@pytest.fixture(scope="module")
def pg() -> Iterator[psycopg.Connection[Any]]:
    from tests.pgkit import SERVER

    with psycopg.connect(SERVER, autocommit=True) as conn:
        yield conn


def matches(pg: psycopg.Connection[Any], text: str, query: str) -> bool:
    row = pg.execute(
        "SELECT to_tsvector('simple', %s) @@ to_tsquery('simple', %s)",
        (search_document(text), search_query(query)),
    ).fetchone()
    return bool(row and row[0])


def test_the_required_pair_matches(pg: psycopg.Connection[Any]) -> None:
    assert matches(pg, "الشكاوى المقدمة ضد المحلات", "شكوى محل")


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("لدي مشاكل كثيرة مع الموقع", "مشكلة"),  # broken plural → singular
        ("تم إغلاق الشركات المخالفة", "شركة مخالفة"),  # sound feminine plural, ة and ات
        ("وبالمحلات التجارية", "محل تجاري"),  # clitic و + بال
        ("قدّمتُ شكوى ضدّ المحلِّ", "الشكاوى المحلات"),  # tashkeel, and plural in the query
        ("السجل التجاري رقم ٧٠٠١٢٣٤٥٦٧", "7001234567"),  # Arabic-Indic digits
        ("تأخير في المتجر الإلكتروني", "إلكتروني"),  # a word that itself begins with ال
        ("تأخير في المتجر الإلكتروني", "الكتروني"),
        ("عدم الالتزام بالضمان", "التزام ضمان"),
        ("Several complaints about the shops", "complaint shop"),
        ("I was charged twice when shopping", "charge shop"),
        ("The Registered company", "registered COMPANY"),
        ("طلب تجديد license للمحل", "تجديد licenses"),  # mixed
    ],
)
def test_forms_meet(pg: psycopg.Connection[Any], text: str, query: str) -> None:
    assert matches(pg, text, query)


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("شكرا على سرعة الاستجابة", "شكوى"),  # thanks is not a complaint
        ("الشكاوى المقدمة ضد المحلات", "شكوى مطعم"),  # every word must match
        ("مشكلة في الفاتورة", "محل"),
        ("Several complaints about the shops", "invoice"),
        ("Several complaints about the shops", "complaint restaurant"),
        ("my order shipped late", "shopping"),
    ],
)
def test_unrelated_words_do_not_match(pg: psycopg.Connection[Any], text: str, query: str) -> None:
    assert not matches(pg, text, query)


def test_document_keeps_the_word_then_its_forms() -> None:
    doc = search_document("Subject", "الشكاوى المقدمة").split()
    assert doc == ["subject", "الشكاوي", "شكاو", "شك", "المقدمه", "مقدم"]
    assert forms("شكوي") == ("شكوي", "شكو", "شك")
    assert forms("2026") == ("2026",)


def test_query_is_an_and_of_ors() -> None:
    assert search_query("شكوى محل") == "('شكوي' | 'شكو' | 'شك') & ('محل')"
    assert search_query("the shops") == "('shops' | 'shop')"  # stopword dropped
    assert search_query("the") == "('the')"  # unless nothing else is left
    assert search_query("!!! ... ***") == ""
    assert len(query_words(" ".join(f"w{i}" for i in range(50)))) == 12


@pytest.mark.parametrize(
    "nasty",
    [
        "a' | b & !c:* <-> ()",
        "'''",
        "\\'",
        "foo:*AB",
        "(((",
        "!",
        "a & | b",
        "OD-2026-000123",
        "x" * 5000,
        "\x00\x01 \u202e شكوى",
        "<2> <-> <0>",
        "ahmed@example.com",
    ],
)
def test_no_input_is_a_tsquery_syntax_error(pg: psycopg.Connection[Any], nasty: str) -> None:
    query = search_query(nasty)
    pg.execute("SELECT to_tsquery('simple', %s)", (query,))  # raises on a syntax error
    for lexeme in query.replace("(", " ").replace(")", " ").replace("&", " ").split():
        assert lexeme == "|" or (lexeme.startswith("'") and lexeme.endswith("'"))


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from("&|!():*<->'\"\\ \t\nab1٣شكوىال_-@.é\u064e\u0640"), max_size=60
    )
)
def test_random_input_is_never_a_tsquery_syntax_error(
    pg: psycopg.Connection[Any], text: str
) -> None:
    pg.execute("SELECT to_tsquery('simple', %s)", (search_query(text),))
