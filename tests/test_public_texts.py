"""What the public endpoints, chat replies and surveys say comes from the gettext
catalogues (omnidesk.i18n), in the submitter's language, with the wording they had."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.web.normalize import Problem
from omnidesk.agents import csat, csat_page
from omnidesk.ticket_status import PublicStatus, render_text, status_text
from omnidesk.webform_text import answer, field_errors, summary


def test_web_form_errors_per_field_and_on_one_line_in_each_language() -> None:
    errors = field_errors([
        Problem("email", "invalid_email", "bad", 0),
        Problem("message", "too_long", "long", 10),
        Problem("attachments[1].size", "too_large_file", "big", 0),
    ])  # fmt: skip
    assert errors["message"] == {
        "ar": "النص أطول من 10 حرفًا.", "en": "This is longer than 10 characters."
    }  # fmt: skip
    assert summary(errors, "ar") == (
        "البريد الإلكتروني: البريد الإلكتروني غير صحيح.؛ نص الرسالة: النص أطول من 10 حرفًا.؛ "
        "المرفقات: حجم المرفقات أكبر من المسموح."
    )
    assert summary(errors, "en").startswith(
        "e-mail: This is not a valid e-mail address.; message: This is longer than 10"
    )
    assert answer("rate_limited")["ar"] == "طلبات كثيرة في وقت قصير، يرجى المحاولة لاحقًا."


def test_a_resolved_request_reads_as_solved_not_as_the_reports_column() -> None:
    assert status_text("resolved") == {"ar": "تم الحل", "en": "Resolved"}
    assert status_text("no-such-status") == {"ar": "قيد المعالجة", "en": "In progress"}


def test_the_chat_reply_lines_in_each_language() -> None:
    status = PublicStatus(
        ticket_id="OD-2026-000007",
        status="resolved",
        status_text=status_text("resolved"),
        queue_title={"ar": "خدمة العملاء", "en": "Customer service"},
        updated_at=datetime(2026, 12, 4, 9, 5, tzinfo=UTC),
        resolution_due=datetime(2026, 12, 6, 7, 0, tzinfo=UTC),
    )
    assert render_text(status, "ar").splitlines() == [
        "الطلب OD-2026-000007: تم الحل",
        "الجهة المختصة: خدمة العملاء",
        "آخر تحديث: 2026-12-04 12:05 (بتوقيت الرياض)",
        "موعد الحل المتوقع: 2026-12-06 10:00",
    ]
    en = render_text(status, "en").splitlines()
    assert en[2] == "Last update: 2026-12-04 12:05 (Riyadh time)"


def test_survey_text_buttons_and_page_in_arabic_and_english() -> None:
    assert csat.score_labels("ar") == ["١", "٢", "٣", "٤", "٥"]
    assert csat.score_labels("en") == ["1", "2", "3", "4", "5"]
    html = csat_page.page(message=csat_page.thanks("<OD-1>", already=True)).text
    assert "تقييمك للطلب &lt;OD-1&gt; مسجل لدينا مسبقًا" in html
    assert "your rating for &lt;OD-1&gt; was already recorded" in html and "<OD-1>" not in html
    not_valid = csat_page.page(404, message=csat_page.both(csat_page.NOT_VALID)).text
    assert "<p>الرابط غير صالح أو منتهي.</p>" in not_valid


def test_the_status_page_carries_its_texts_from_the_catalogues_without_inline_script() -> None:
    import json
    import re
    from html import unescape

    from omnidesk.status_api import PAGE_TEXT, page_html

    html = page_html()
    assert "<title>متابعة الطلب - Track my request</title>" in html
    assert '<h1 id="title">متابعة الطلب</h1>' in html
    found = re.search(r'<main id="page" data-text="([^"]*)">', html)
    assert found is not None
    texts = json.loads(unescape(found.group(1)))
    assert set(texts) == {"ar", "en"} and set(texts["en"]) == set(PAGE_TEXT) | {"toggle"}
    assert texts["ar"]["when"] == "{time} (بتوقيت الرياض)" and texts["en"]["toggle"] == "العربية"
    assert texts["ar"]["toggle"] == "English" and texts["en"]["submit"] == "Show status"
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/status.js">']
