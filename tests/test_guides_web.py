"""The guides over HTTP: the public /guides pages (Arabic first, right to left, Markdown
rendered with raw HTML escaped, staff guides hidden), the web form's /guides/suggest with
CORS, and the agents' /v1/guides and /v1/tickets/{id}/guide-suggestions with their token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from omnidesk.guides.render import to_html
from tests.agentkit import make
from tests.guidekit import FORM_ORIGIN, GUIDES, PUBLIC_URL, guide_app, reference, with_guides
from tests.storekit import web as web_form


@pytest.fixture
async def public() -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(guide_app(reference())))
    await client.start_server()
    yield client
    await client.close()


async def test_the_guides_page_is_arabic_first_and_right_to_left(public: TestClient) -> None:
    r = await public.get("/guides")
    page = await r.text()
    assert r.status == 200 and r.headers["Content-Security-Policy"].startswith("default-src")
    assert '<html lang="ar" dir="rtl">' in page
    assert '<section lang="ar" dir="rtl">' in page and '<section lang="en" dir="ltr">' in page
    assert page.index('<section lang="ar"') < page.index('<section lang="en"')
    assert "الاستبدال والاسترجاع" in page and "Exchanges and refunds" in page
    assert "staff-escalation" not in page  # staff guides are not the public's


async def test_the_page_searches_with_folding_and_plurals(public: TestClient) -> None:
    r = await public.get("/guides", params={"q": "الضمانات"})
    page = await r.text()
    assert page.index("/guides/warranty-ar") < page.index("</ul>")  # the first section's first
    r = await public.get("/guides", params={"audience": "businesses"})
    page = await r.text()
    assert "/guides/franchise-ar" in page and "/guides/refund-ar" not in page
    r = await public.get("/guides", params={"q": "الضمانات", "audience": "businesses"})
    assert "/guides/warranty-ar" not in await r.text()  # a consumers' guide
    r = await public.get("/guides", params={"q": "zzzz"})
    assert "لا يوجد دليل يطابق بحثك." in await r.text()


async def test_a_guide_page_in_its_language_with_its_translation(public: TestClient) -> None:
    r = await public.get("/guides/refund-ar")
    page = await r.text()
    assert r.status == 200 and '<html lang="ar" dir="rtl">' in page
    assert "<h2>الشروط</h2>" in page and "<li>احتفظ بالفاتورة.</li>" in page
    assert 'href="/guides/refund-en"' in page
    r = await public.get("/guides/refund-en")
    assert '<html lang="en" dir="ltr">' in await r.text()
    for missing in ("/guides/staff-escalation-en", "/guides/nothing-ar", "/guides/..%2Fetc"):
        assert (await public.get(missing)).status == 404, missing


def test_raw_html_in_a_guide_is_shown_as_text() -> None:
    html = to_html("<script>alert(1)</script>\n\n[x](javascript:alert(1)) <img src=x onerror=y>")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html and 'href="javascript' not in html


async def test_the_web_form_asks_for_guides_as_the_customer_types(public: TestClient) -> None:
    r = await public.get(
        "/guides/suggest",
        params={"q": "ابغى ارجع الثوب واسترد فلوسي"},
        headers={"Origin": FORM_ORIGIN},
    )
    body = await r.json()
    assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == FORM_ORIGIN
    assert body["guides"][0]["slug"] == "refund-ar"
    assert body["guides"][0]["url"].endswith("/guides/refund-ar") and len(body["guides"]) <= 3
    r = await public.get(
        "/guides/suggest", params={"q": "x"}, headers={"Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in r.headers
    r = await public.options(
        "/guides/suggest",
        headers={"Origin": FORM_ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert r.status == 204
    r = await public.get("/guides/suggest", params={"q": "refund", "lang": "fr"})
    assert r.status == 400 and "lang" in (await r.json())["error"]
    staff = await public.get("/guides/suggest", params={"q": "field inspection escalation"})
    assert all(g["slug"] != "staff-escalation-en" for g in (await staff.json())["guides"])
    script = await public.get("/static/guide-suggest.js")
    assert script.status == 200 and "/guides/suggest?q=" in await script.text()


@pytest.fixture
async def agents(prefix: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    runtime, service, _ = make(prefix, tmp_path)
    loaded = with_guides(runtime.config)
    client = TestClient(TestServer(guide_app(loaded, service)))
    await client.start_server()
    yield {"client": client, "runtime": runtime, "token": service.tokens.create("amal")}
    await client.close()


async def test_agents_search_guides_and_get_suggestions_for_a_ticket(
    agents: dict[str, Any],
) -> None:
    client, runtime = agents["client"], agents["runtime"]
    h = {"Authorization": f"Bearer {agents['token']}"}
    assert (await client.get("/v1/guides", params={"q": "ضمان"})).status == 401
    r = await client.get("/v1/guides", params={"q": "الشكاوى", "limit": "3"}, headers=h)
    found = (await r.json())["guides"]
    assert found[0]["slug"] == "consumer-complaint-ar"
    assert found[0]["url"] == f"{PUBLIC_URL}/guides/consumer-complaint-ar"
    assert found[0]["excerpt"] and "#" not in found[0]["excerpt"]  # plain text to insert
    staff = await client.get("/v1/guides", params={"q": "field inspection"}, headers=h)
    assert (await staff.json())["guides"][0]["slug"] == "staff-escalation-en"  # agents see it
    assert (await client.get("/v1/guides", headers=h)).status == 400

    (opened,) = runtime.process(
        [web_form("اشتريت غسالة وتعطلت خلال الضمان والمحل رافض يصلحها", email="c@example.sa")]
    ).results
    r = await client.get(f"/v1/tickets/{opened.ticket_id}/guide-suggestions", headers=h)
    body = await r.json()
    assert r.status == 200 and body["language"] == "ar"
    assert body["guides"][0]["slug"] == "warranty-ar" and len(body["guides"]) == 3
    assert all(g["lang"] == "ar" for g in body["guides"])
    r = await client.get("/v1/tickets/OD-2020-999999/guide-suggestions", headers=h)
    assert r.status == 404


def test_the_reference_guides_folder_is_what_the_reference_config_names() -> None:
    loaded = reference()
    section = loaded.data.guides
    assert section is not None and (loaded.base_dir / section.folder).resolve() == GUIDES
