"""Benchmark the channel normalizers on a generated mix, all rates measured in this run.

Email: our normalize vs the modern stdlib parse a typical implementation does
(policy=default + get_body().get_content()) and vs the floor (compat32 parse + decode the
first text part). JSON channels: Telegram / WhatsApp / web / X normalize; one that cannot
be imported stops the run with exit status 1 naming it, rather than being left out.
The last line printed is one JSON object with the figures.

Before any side is timed, every message it will be timed on is checked: the subject and
text it extracted must be the ones the generator put in (`Expected`, built from the
generator's inputs, never from a normalizer's output). A side that gets one wrong stops
the run with exit status 1 and the message it got wrong: a fast wrong answer scores nothing.

Run: python bench/normalize.py [--seconds 2] [--emails 200] [--json 50]
"""

from __future__ import annotations

import argparse
import base64
import email
import email.header
import email.policy
import importlib
import json
import os
import quopri
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from connectors.email import normalize as normalize_email

AR_LINES = [
    "السلام عليكم ورحمة الله وبركاته",
    "أرغب في تجديد السجل التجاري لمؤسستي قبل نهاية الشهر",
    "لدي شكوى بخصوص متجر إلكتروني لم يسلم الطلب حتى الآن",
    "رقم الطلب 55123 وتاريخ الشراء الأسبوع الماضي",
    "نرجو منكم التكرم بالإفادة في أقرب وقت ممكن",
]
EN_LINES = [
    "Hello, I would like to renew my commercial registration.",
    "The online store has not delivered my order after three weeks.",
    "Please find the signed form attached to this message.",
    "Could you tell me which documents are needed for a trademark?",
]


@dataclass(frozen=True)
class Expected:
    """What a side must extract from one generated message, from the generator's inputs.

    `text` is the readable new text a normalizer gives (quoted history split off, HTML as
    text with a link as `words (url)`); `body` is what a plain parse gives: the decoded
    content of the part it picks (the text/plain part, else the HTML source as written).
    """

    subject: str
    text: str
    body: str = ""


class WrongResult(Exception):
    """A side extracted the wrong subject or text: its rate would mean nothing."""


class MissingSide(WrongResult):
    """A side's normalizer cannot be imported: the run would silently measure less."""


JSON_CHANNELS = ("telegram", "whatsapp", "web", "twitter")


def _b64word(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def _headers(rng: random.Random, i: int, subject: str, long_block: bool) -> str:
    lines = []
    if long_block:
        for hop in range(rng.randint(8, 20)):
            lines.append(
                f"Received: from relay{hop}.mail.example.net (relay{hop}.mail.example.net "
                f"[10.1.{hop}.{i % 250}])\n\tby mx{hop}.mc.gov.sa (Postfix) with ESMTPS id "
                f"{i:06X}{hop:02X}\n\tfor <care@mc.gov.sa>; Sun, 4 Jan 2026 10:{hop:02d}:00 +0300"
            )
        lines.append(
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=s1;\n"
            "\th=from:to:subject:date:message-id; bh=" + "A" * 44 + ";\n\tb=" + "B" * 340
        )
        lines.append("ARC-Authentication-Results: i=1; mx.example.net; dkim=pass; spf=pass")
        lines.append("X-MS-Exchange-Organization-SCL: 1")
        lines.append(f"Thread-Index: AQHZ{i:08d}")
    names = [_b64word("محمد العتيبي", "utf-8"), "Sara Ahmed", _b64word("علي", "windows-1256")]
    name = rng.choice(names)
    lines += [
        f"From: {name} <user{i}@{rng.choice(['gmail.com', 'company.com.sa', 'hotmail.com'])}>",
        "To: Customer Care <care@mc.gov.sa>",
        f"Subject: {subject}",
        f"Date: Sun, 4 Jan 2026 10:{i % 60:02d}:00 +0300",
        f"Message-ID: <msg{i}.{rng.randint(0, 10**9)}@mail.example.net>",
        "MIME-Version: 1.0",
    ]
    if rng.random() < 0.4:
        lines.append(f"In-Reply-To: <out{i}@mc.gov.sa>")
        lines.append(f"References: <first{i}@mail.example.net> <out{i}@mc.gov.sa>")
    return "\n".join(lines) + "\n"


def _arabic_body(rng: random.Random) -> str:
    return "\n".join(rng.choice(AR_LINES) for _ in range(rng.randint(3, 10)))


def _english_body(rng: random.Random) -> str:
    return "\n".join(rng.choice(EN_LINES) for _ in range(rng.randint(3, 10)))


# (as written in the Subject: header, as a reader sees it)
SUBJECTS = [
    (_b64word("طلب تجديد السجل التجاري", "utf-8"), "طلب تجديد السجل التجاري"),
    ("Re: order not delivered [#OD-2026-000123]", "Re: order not delivered [#OD-2026-000123]"),
    (_b64word("شكوى", "windows-1256"), "شكوى"),
    ("Trademark question", "Trademark question"),
]


def make_emails(count: int = 200, seed: int = 7) -> list[tuple[bytes, Expected]]:
    """A mix of plain, HTML-only, multipart with attachments, Arabic in three charsets,
    and long header blocks; each with the subject and text it was made from."""
    rng = random.Random(seed)
    pdf = bytes(rng.getrandbits(8) for _ in range(24_000))
    out: list[tuple[bytes, Expected]] = []
    for i in range(count):
        kind = i % 6
        long_block = rng.random() < 0.5
        subject, subject_text = rng.choice(SUBJECTS)
        head = _headers(rng, i, subject, long_block)
        if kind == 0:  # plain English
            text = _english_body(rng)
            ctype = "Content-Type: text/plain; charset=us-ascii\n\n"
            raw = (head + ctype + text).encode()
            expected = Expected(subject_text, text, text)
        elif kind == 1:  # Arabic UTF-8 quoted-printable, with quoted history
            text = _arabic_body(rng)
            history = "\n\nOn Sun, 4 Jan 2026 Care <care@mc.gov.sa> wrote:\n> old\n"
            body = quopri.encodestring((text + history).encode())
            raw = (
                head.encode()
                + b"Content-Type: text/plain; charset=utf-8\n"
                + (b"Content-Transfer-Encoding: quoted-printable\n\n" + body)
            )
            expected = Expected(subject_text, text, text + history)
        elif kind == 2:  # Arabic windows-1256 / ISO-8859-6, 8bit
            charset = rng.choice(["windows-1256", "iso-8859-6"])
            text = "\n".join(rng.choice(AR_LINES[:3]) for _ in range(5))
            raw = (
                head.encode()
                + f"Content-Type: text/plain; charset={charset}\n".encode()
                + (b"Content-Transfer-Encoding: 8bit\n\n" + text.encode(charset))
            )
            expected = Expected(subject_text, text, text)
        elif kind == 3:  # HTML only
            lines = _arabic_body(rng).split("\n")
            paras = "".join(f"<p>{line}</p>" for line in lines)
            html = (
                "<html><head><style>p{margin:0}</style></head><body>"
                + paras
                + '<p>See <a href="https://mc.gov.sa/case">the case</a></p></body></html>'
            )
            raw = (head + "Content-Type: text/html; charset=utf-8\n\n" + html).encode()
            readable = "\n".join([*lines, "See the case (https://mc.gov.sa/case)"])
            expected = Expected(subject_text, readable, html)
        elif kind == 4:  # alternative plain + html
            text = _english_body(rng)
            html = "<div>" + text.replace("\n", "<br>") + "</div>"
            raw = (
                head + 'Content-Type: multipart/alternative; boundary="ALT"\n\n'
                f"--ALT\nContent-Type: text/plain; charset=utf-8\n\n{text}\n"
                f"--ALT\nContent-Type: text/html; charset=utf-8\n\n{html}\n--ALT--\n"
            ).encode()
            expected = Expected(subject_text, text, text)
        else:  # multipart with attachments
            text = _arabic_body(rng)
            att = base64.encodebytes(pdf[: rng.randint(2_000, 24_000)]).decode()
            raw = (
                head + 'Content-Type: multipart/mixed; boundary="MIX"\n\n'
                "--MIX\nContent-Type: text/plain; charset=utf-8\n\n" + text + "\n"
                "--MIX\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n"
                "Content-Disposition: attachment; filename*=UTF-8''%D8%B9%D9%82%D8%AF.pdf\n\n"
                + att
                + "--MIX--\n"
            ).encode()
            expected = Expected(subject_text, text, text)
        out.append((raw, expected))
    return out


def modern_parse(raw: bytes) -> tuple[str, str]:
    """Subject and body text as a typical implementation gets them (policy=default)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    body = msg.get_body(preferencelist=("plain", "html"))
    return str(msg["subject"] or ""), body.get_content() if body is not None else ""


def floor_parse(raw: bytes) -> tuple[str, str]:
    """The least a parse must do: compat32, the subject's encoded words, the first text part."""
    msg = email.message_from_bytes(raw)
    subject = str(email.header.make_header(email.header.decode_header(msg["subject"] or "")))
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            data = part.get_payload(decode=True) or b""
            return subject, data.decode(part.get_content_charset() or "utf-8", "replace")
    return subject, ""


def _lines(text: str) -> str:
    """Text compared line by line, without the line ends and trailing blanks a part carries."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _short(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:117] + "...")


def check_side(
    name: str,
    extract: Callable[[Any], tuple[str, str]],
    samples: list[tuple[Any, Expected]],
    want: Callable[[Expected], tuple[str, str]],
) -> None:
    """Raise WrongResult unless `extract` gives, for every sample, the subject and text
    `want` says it must (an exception from the side counts as wrong too)."""
    for i, (item, expected) in enumerate(samples):
        try:
            got = extract(item)
        except Exception as exc:
            raise WrongResult(f"{name}: message {i}: {type(exc).__name__}: {exc}") from None
        must = want(expected)
        for what, value, right in zip(("subject", "text"), got, must, strict=True):
            if not isinstance(value, str) or _lines(value) != _lines(right):
                raise WrongResult(
                    f"{name}: message {i}: wrong {what}: expected {_short(right)}, "
                    f"got {_short(value) if isinstance(value, str) else type(value).__name__}"
                )


def ours(raw: bytes) -> tuple[str, str]:
    inbound = normalize_email(raw)
    return inbound.subject, inbound.text


def readable(expected: Expected) -> tuple[str, str]:
    return expected.subject, expected.text


def part_content(expected: Expected) -> tuple[str, str]:
    return expected.subject, expected.body


def rate(fn: Callable[[Any], Any], items: list[Any], seconds: float) -> float:
    """Messages per second of fn over items, looping for about `seconds`."""
    for item in items[:20]:
        fn(item)  # warm up imports and caches
    done = 0
    start = time.perf_counter()
    while True:
        for item in items:
            fn(item)
        done += len(items)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def interleaved(
    fns: list[Callable[[Any], Any]], items: list[Any], seconds: float, rounds: int
) -> list[float]:
    """Best rate of each fn over `rounds` interleaved rounds, so a burst of load on this
    shared machine hits all of them alike instead of skewing one ratio."""
    best = [0.0] * len(fns)
    for _ in range(max(1, rounds)):
        for i, fn in enumerate(fns):
            best[i] = max(best[i], rate(fn, items, seconds / max(1, rounds)))
    return best


def json_payloads(rounds: int = 50) -> list[tuple[str, dict[str, Any], Expected]]:
    """Telegram, WhatsApp, web-form and X payloads, built inline, `rounds` of each, with
    the subject and text each carries."""
    out: list[tuple[str, dict[str, Any], Expected]] = []
    for i in range(rounds):
        ar, en = AR_LINES[i % len(AR_LINES)], EN_LINES[i % len(EN_LINES)]
        out.append(
            (
                "telegram",
                {
                    "update_id": 1000 + i,
                    "message": {
                        "message_id": i,
                        "date": 1767510000 + i,
                        "chat": {"id": 5000 + i, "type": "private", "first_name": "علي"},
                        "from": {
                            "id": 5000 + i,
                            "is_bot": False,
                            "first_name": "علي",
                            "language_code": "ar",
                        },
                        "text": ar,
                    },
                },
                Expected("", ar),
            )
        )
        out.append(
            (
                "whatsapp",
                {
                    "object": "whatsapp_business_account",
                    "entry": [
                        {
                            "id": "WABA1",
                            "changes": [
                                {
                                    "field": "messages",
                                    "value": {
                                        "messaging_product": "whatsapp",
                                        "metadata": {
                                            "display_phone_number": "966110000000",
                                            "phone_number_id": "PN1",
                                        },
                                        "contacts": [
                                            {
                                                "profile": {"name": "Sara"},
                                                "wa_id": f"96650000{i:04d}",
                                            }
                                        ],
                                        "messages": [
                                            {
                                                "from": f"96650000{i:04d}",
                                                "id": f"wamid.{i}",
                                                "timestamp": "1767510000",
                                                "type": "text",
                                                "text": {"body": en},
                                            }
                                        ],
                                    },
                                }
                            ],
                        }
                    ],
                },
                Expected("", en),
            )
        )
        out.append(
            (
                "web",
                {
                    "name": "Sara Ahmed",
                    "email": f"sara{i}@gmail.com",
                    "phone": "+966500000000",
                    "subject": "Trademark question",
                    "message": en,
                    "service": "trademarks",
                    "region": "riyadh",
                    "segment": "consumer",
                },
                Expected("Trademark question", en),
            )
        )
        out.append(
            (
                "twitter",
                {
                    "data": {
                        "id": f"17{i:08d}",
                        "text": "@MCgovSA " + ar,  # the @handles X puts before a reply
                        "author_id": f"99{i}",
                        "conversation_id": f"17{i:08d}",
                        "created_at": "2026-01-04T07:00:00.000Z",
                    },
                    "includes": {
                        "users": [{"id": f"99{i}", "username": f"user{i}", "name": "User"}]
                    },
                },
                Expected("", ar),
            )
        )
    return out


def one_message(result: Any) -> tuple[str, str]:
    """Subject and text of the one message a JSON normalizer must return for a payload."""
    results = result if isinstance(result, list) else [result]
    if len(results) != 1 or not hasattr(results[0], "text"):
        raise WrongResult(f"expected one message, got {[type(r).__name__ for r in results]}")
    return results[0].subject, results[0].text


def json_rate(seconds: float, rounds: int = 50) -> tuple[float, list[str], int, int]:
    normalizers: dict[str, Callable[[Any], Any]] = {}
    for channel in JSON_CHANNELS:
        try:
            normalizers[channel] = importlib.import_module(f"connectors.{channel}").normalize
        except (ImportError, AttributeError) as exc:
            raise MissingSide(
                f"{channel} normalize: connectors.{channel}.normalize cannot be loaded "
                f"({type(exc).__name__}: {exc}); a JSON channel is never left out silently"
            ) from exc
    payloads = [(c, p, e) for c, p, e in json_payloads(rounds) if c in normalizers]
    for channel in normalizers:
        check_side(
            f"{channel} normalize",
            lambda payload, fn=normalizers[channel]: one_message(fn(payload)),
            [(p, e) for c, p, e in payloads if c == channel],
            readable,
        )
    items = [(normalizers[c], p) for c, p, _ in payloads]

    def run(item: tuple[Callable[[Any], Any], dict[str, Any]]) -> None:
        fn, payload = item
        fn(payload)

    return rate(run, items, seconds), sorted(normalizers), len(items), len(items)


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measured rate")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds, best kept")
    parser.add_argument("--emails", type=int, default=200, help="generated e-mails")
    parser.add_argument("--json", type=int, default=50, help="payloads of each JSON channel")
    args = parser.parse_args(list(argv) if argv is not None else None)
    samples = make_emails(max(6, args.emails))
    emails = [raw for raw, _ in samples]
    size = sum(map(len, emails)) / len(emails)
    print(f"{len(emails)} generated emails, mean size {size / 1024:.1f} KiB")
    try:
        check_side("email normalize", ours, samples, readable)
        check_side("modern stdlib parse", modern_parse, samples, part_content)
        check_side("compat32 floor", floor_parse, samples, part_content)
    except WrongResult as exc:
        sys.exit(f"normalize bench: {exc}")
    print(f"subject and text checked on all {len(emails)} e-mails, every side")
    email_rate, modern, floor = interleaved(
        [normalize_email, modern_parse, floor_parse], emails, args.seconds, args.rounds
    )
    print(f"email normalize      {email_rate:10.0f} msg/s")
    vs_modern, vs_floor = email_rate / modern, email_rate / floor
    print(f"modern stdlib parse  {modern:10.0f} msg/s   ratio {vs_modern:.2f}x (target >= 2)")
    print(f"compat32 floor       {floor:10.0f} msg/s   ratio {vs_floor:.2f}x (target >= 0.3)")
    try:
        json_per_s, channels, accepted, total = json_rate(args.seconds, max(1, args.json))
    except WrongResult as exc:
        sys.exit(f"normalize bench: {exc}")
    print(
        f"json channels        {json_per_s:10.0f} msg/s   ({', '.join(channels)}; "
        f"{accepted}/{total} payloads accepted; target >= 20000)"
    )
    print(
        json.dumps(
            {
                "email_per_s": round(email_rate, 1),
                "modern_parse_per_s": round(modern, 1),
                "floor_per_s": round(floor, 1),
                "ratio_vs_modern": round(vs_modern, 2),
                "ratio_vs_floor": round(vs_floor, 2),
                "json_per_s": round(json_per_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
