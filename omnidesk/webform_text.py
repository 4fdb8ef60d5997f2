"""What the public endpoints (web form, track my request) say to a person, in Arabic and
English: per-field errors and the few whole-request answers. Arabic comes first: it is the
language of most submitters, and the default when nothing says otherwise. The texts are
English msgids translated by the gettext catalogues (omnidesk.i18n); answers carry both
languages, so a page can switch without asking again."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from connectors.web.normalize import Problem
from omnidesk.i18n import N_, in_every_language, translator

Lang = Literal["ar", "en"]
_LANGS: dict[str, Lang] = {"ar": "ar", "en": "en"}  # a two-letter code -> a Lang

FIELD_NAMES: dict[str, str] = {
    "name": N_("name"),
    "email": N_("e-mail"),
    "phone": N_("phone"),
    "subject": N_("subject"),
    "message": N_("message"),
    "segment": N_("segment"),
    "attachments": N_("attachments"),
}

# code -> msgid; {limit} is filled in
PROBLEMS: dict[str, str] = {
    "required": N_("This field is required."),
    "contact_required": N_("Please give an e-mail address or a phone number so we can reply."),
    "invalid_email": N_("This is not a valid e-mail address."),
    "invalid_phone": N_("This is not a valid phone number."),
    "too_long": N_("This is longer than {limit} characters."),
    "not_string": N_("This must be text."),
    "unknown_field": N_("Unknown field."),
    "invalid_segment": N_("Must be consumer or business."),
    "invalid_time": N_("Not a valid time."),
    "invalid_id": N_("Not a valid submission id."),
    "invalid_attachments": N_("The attachments are not valid."),
    "too_many": N_("More than {limit} attachments."),
    "too_large_file": N_("The attachments are larger than allowed."),
}

ANSWERS: dict[str, str] = {
    "not_json": N_("The form could not be read."),
    "not_form": N_("The form could not be read."),
    "unsupported_media_type": N_("This kind of body is not taken."),
    "too_large": N_("The request is larger than allowed."),
    "rate_limited": N_("Too many requests in a short time; please try again later."),
    "unavailable": N_("The service is busy; please try again shortly."),
    "invalid_form": N_("Please correct the fields shown."),
    "not_found": N_("No request matches this number and contact."),
    "failed": N_("The request could not be registered; it was kept for review."),
}


def pick_lang(accept_language: str | None, asked: str | None = None) -> Lang:
    """`asked` (a `lang` field or parameter) when it is ar or en, else the first of ar/en in
    Accept-Language by its q-values, else Arabic."""
    if asked:
        lang = _LANGS.get(asked.strip().lower()[:2])
        if lang is not None:
            return lang
    best: tuple[float, int, Lang] | None = None
    for i, item in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        lang = _LANGS.get(tag.strip().lower()[:2])
        if lang is None:
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
            best = (q, i, lang)
    return best[2] if best else "ar"


def answer(code: str) -> dict[str, str]:
    return in_every_language(ANSWERS[code])


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
        msgid = PROBLEMS.get(problem.code, PROBLEMS["invalid_attachments"])
        out[field] = in_every_language(msgid, limit=problem.limit)
    return out


def summary(errors: dict[str, dict[str, str]], lang: Lang) -> str:
    """One line in `lang` naming every bad field: for a page that shows a single message."""
    tr = translator(lang)
    parts = []
    for field, text in errors.items():
        label = tr._(FIELD_NAMES[field]) if field in FIELD_NAMES else field
        parts.append(tr._("{field}: {problem}").format(field=label, problem=text[lang]))
    # TRANSLATORS: what separates one field's error from the next on a single line
    return tr._("; ").join(parts)
