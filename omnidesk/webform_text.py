"""What the public endpoints (web form, track my request) say to a person, in Arabic and
English: per-field errors and the few whole-request answers. Arabic comes first: it is the
language of most submitters, and the default when nothing says otherwise."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from connectors.web.normalize import Problem

Lang = Literal["ar", "en"]

FIELD_NAMES: dict[str, dict[str, str]] = {
    "name": {"ar": "الاسم", "en": "name"},
    "email": {"ar": "البريد الإلكتروني", "en": "e-mail"},
    "phone": {"ar": "رقم الجوال", "en": "phone"},
    "subject": {"ar": "الموضوع", "en": "subject"},
    "message": {"ar": "نص الرسالة", "en": "message"},
    "segment": {"ar": "الفئة", "en": "segment"},
    "attachments": {"ar": "المرفقات", "en": "attachments"},
}

# code -> (Arabic, English); {limit} is filled in
PROBLEMS: dict[str, tuple[str, str]] = {
    "required": ("هذا الحقل مطلوب.", "This field is required."),
    "contact_required": (
        "يرجى إدخال البريد الإلكتروني أو رقم الجوال لنتمكن من الرد عليك.",
        "Please give an e-mail address or a phone number so we can reply.",
    ),
    "invalid_email": ("البريد الإلكتروني غير صحيح.", "This is not a valid e-mail address."),
    "invalid_phone": ("رقم الجوال غير صحيح.", "This is not a valid phone number."),
    "too_long": ("النص أطول من {limit} حرفًا.", "This is longer than {limit} characters."),
    "not_string": ("يجب أن تكون القيمة نصًا.", "This must be text."),
    "unknown_field": ("حقل غير معروف.", "Unknown field."),
    "invalid_segment": ("يجب أن تكون الفئة فردًا أو منشأة.", "Must be consumer or business."),
    "invalid_time": ("صيغة الوقت غير صحيحة.", "Not a valid time."),
    "invalid_id": ("رقم الإرسال غير صالح.", "Not a valid submission id."),
    "invalid_attachments": ("المرفقات غير صالحة.", "The attachments are not valid."),
    "too_many": ("عدد المرفقات أكثر من {limit}.", "More than {limit} attachments."),
    "too_large_file": (
        "حجم المرفقات أكبر من المسموح.",
        "The attachments are larger than allowed.",
    ),
}

ANSWERS: dict[str, tuple[str, str]] = {
    "not_json": ("تعذرت قراءة النموذج.", "The form could not be read."),
    "not_form": ("تعذرت قراءة النموذج.", "The form could not be read."),
    "unsupported_media_type": ("صيغة الإرسال غير مدعومة.", "This kind of body is not taken."),
    "too_large": ("حجم الطلب أكبر من المسموح.", "The request is larger than allowed."),
    "rate_limited": (
        "طلبات كثيرة في وقت قصير، يرجى المحاولة لاحقًا.",
        "Too many requests in a short time; please try again later.",
    ),
    "unavailable": (
        "الخدمة مشغولة حاليًا، يرجى المحاولة بعد قليل.",
        "The service is busy; please try again shortly.",
    ),
    "invalid_form": ("يرجى تصحيح الحقول المشار إليها.", "Please correct the fields shown."),
    "not_found": (
        "لا يوجد طلب بهذا الرقم وبيانات التواصل هذه.",
        "No request matches this number and contact.",
    ),
    "failed": (
        "تعذر تسجيل الطلب، وقد حُفظ للمراجعة.",
        "The request could not be registered; it was kept for review.",
    ),
}


def pick_lang(accept_language: str | None, asked: str | None = None) -> Lang:
    """`asked` (a `lang` field or parameter) when it is ar or en, else the first of ar/en in
    Accept-Language by its q-values, else Arabic."""
    if asked:
        short = asked.strip().lower()[:2]
        if short in ("ar", "en"):
            return short  # type: ignore[return-value]
    best: tuple[float, int, Lang] | None = None
    for i, item in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        short = tag.strip().lower()[:2]
        if short not in ("ar", "en"):
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or (q, -i) > (best[0], -best[1])):
            best = (q, i, short)  # type: ignore[assignment]
    return best[2] if best else "ar"


def answer(code: str) -> dict[str, str]:
    ar, en = ANSWERS[code]
    return {"ar": ar, "en": en}


def _field_label(field: str) -> str:
    """The field the error belongs to in the answer: attachments[2].size is attachments."""
    return field.split("[", 1)[0].split(".", 1)[0]


def field_errors(problems: Iterable[Problem]) -> dict[str, dict[str, str]]:
    """{field: {"ar": ..., "en": ...}}, one message per field (the first problem found)."""
    out: dict[str, dict[str, str]] = {}
    for problem in problems:
        field = _field_label(problem.field)
        if field in out:
            continue
        ar, en = PROBLEMS.get(problem.code, PROBLEMS["invalid_attachments"])
        out[field] = {
            "ar": ar.format(limit=problem.limit),
            "en": en.format(limit=problem.limit),
        }
    return out


def summary(errors: dict[str, dict[str, str]], lang: Lang) -> str:
    """One line in `lang` naming every bad field: for a page that shows a single message."""
    parts = []
    for field, text in errors.items():
        label = FIELD_NAMES.get(field, {}).get(lang, field)
        parts.append(f"{label}: {text[lang]}")
    return ("؛ " if lang == "ar" else "; ").join(parts)
