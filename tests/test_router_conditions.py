"""Each condition type of a rule's `when`, matched and not matched.

Every `route` here also runs the naive evaluator and asserts it agrees.
"""

from __future__ import annotations

from typing import Any

import pytest

from omnidesk.model import (
    Attachment,
    Author,
    Customer,
    Flag,
    Identity,
    IdentityKind,
    Language,
    Segment,
)
from router import Facts
from tests.routerkit import facts, inbound, queue_of


def hit(when: dict[str, Any], f: Facts) -> bool:
    """Whether a single rule with this `when` sends the message to its queue."""
    return queue_of([{"id": "r", "when": when, "then": {"queue": "cr"}}], f) == "cr"


def test_channel() -> None:
    assert hit({"channel": ["email", "web"]}, facts("email"))
    assert not hit({"channel": ["email", "web"]}, facts("telegram"))
    assert hit({"channel": "whatsapp"}, facts("whatsapp"))  # a single value is a list of one


def test_account() -> None:
    assert hit({"account": "cr-mailbox"}, facts(account="cr-mailbox"))
    assert not hit({"account": "cr-mailbox"}, facts(account="info"))


def test_segment() -> None:
    assert hit({"segment": "business"}, facts(segment=Segment.BUSINESS))
    assert not hit({"segment": "business"}, facts(segment=Segment.CONSUMER))
    assert hit({"segment": ["unknown"]}, facts())


def test_language() -> None:
    assert hit({"language": "ar"}, facts(language=Language.AR))
    assert not hit({"language": "ar"}, facts(language=Language.MIXED))
    assert hit({"language": ["ar", "mixed"]}, facts(language=Language.MIXED))


def test_sender_address_and_domain() -> None:
    when = {"sender": {"address": ["Ali@Example.com"], "domain": ["gov.sa"]}}
    assert hit(when, facts(sender_address="ali@example.COM"))
    assert hit(when, facts(sender_address="x@mc.gov.sa"))  # a subdomain of a listed domain
    assert hit(when, facts(sender_address="x@gov.sa"))
    assert not hit(when, facts(sender_address="x@notgov.sa"))  # not a label boundary
    assert not hit(when, facts(sender_address="bob@example.com"))
    assert not hit(when, facts())


def test_sender_phone_on_whatsapp() -> None:
    when = {"sender": {"address": ["+966500000001"]}}
    assert hit(when, facts("whatsapp", sender_address="+966500000001"))
    assert not hit({"sender": {"domain": ["966500000001"]}}, facts(sender_address="+966500000001"))


def test_has_attachment_and_outside_hours() -> None:
    assert hit({"has_attachment": True}, facts(has_attachment=True))
    assert not hit({"has_attachment": True}, facts())
    assert hit({"has_attachment": False}, facts())
    assert hit({"outside_business_hours": True}, facts(outside_business_hours=True))
    assert not hit({"outside_business_hours": True}, facts(outside_business_hours=False))


def test_customer_tag_region_service_flag() -> None:
    assert hit({"customer_tag": ["VIP", "media"]}, facts(customer_tags=frozenset({"vip"})))
    assert not hit({"customer_tag": "vip"}, facts(customer_tags=frozenset({"press"})))
    assert hit({"region": ["Riyadh", "جدة"]}, facts(region="riyadh"))
    assert hit({"region": "جدة"}, facts(region="جده"))  # folded: ة → ه
    assert not hit({"region": "riyadh"}, facts())  # no region known
    assert hit({"service": "trademarks"}, facts(service="Trademarks"))
    assert not hit({"service": "trademarks"}, facts(service="cr"))
    assert hit({"flag": ["auto_reply", "bounce"]}, facts(flags=frozenset({Flag.BOUNCE})))
    assert not hit({"flag": "auto_reply"}, facts(flags=frozenset({Flag.REPLY})))


def test_keywords_any_all_and_fields() -> None:
    f = facts(subject="Trademark renewal", text="please help with my commercial registration")
    assert hit({"keywords": ["renewal", "nothing"]}, f)
    assert hit({"keywords": {"all": ["renewal", "commercial registration"]}}, f)  # across fields
    assert not hit({"keywords": {"all": ["renewal", "absent"]}}, f)
    assert hit({"keywords": {"any": ["renewal"], "in": ["subject"]}}, f)
    assert not hit({"keywords": {"any": ["renewal"], "in": ["text"]}}, f)
    assert hit({"keywords": {"any": ["help"], "in": ["text"]}}, f)
    assert not hit({"keywords": {"any": ["help"], "in": ["subject"]}}, f)
    # any and all together: both must hold
    assert hit({"keywords": {"any": ["x", "help"], "all": ["trademark"]}}, f)
    assert not hit({"keywords": {"any": ["x", "y"], "all": ["trademark"]}}, f)


def test_keywords_word_vs_substring() -> None:
    f = facts(text="trademarks and registrations")
    assert not hit({"keywords": ["trademark"]}, f)
    assert hit({"keywords": {"any": ["trademark"], "match": "substring"}}, f)
    assert hit({"keywords": ["trademarks"]}, facts(text="(trademarks)"))  # punctuation bounds
    assert hit({"keywords": ["cr_1"]}, facts(text="ref cr_1."))
    assert not hit({"keywords": ["cr"]}, facts(text="ref cr_1."))  # "_" is a word character
    assert not hit({"keywords": ["123"]}, facts(text="ref 41234"))


def test_multi_word_keywords_across_whitespace() -> None:
    assert hit({"keywords": ["سجل تجاري"]}, facts(text="بخصوص السجل\nسجل   تجاري جديد"))
    assert hit({"keywords": ["Commercial  Registration"]}, facts(text="commercial\tregistration"))
    assert not hit(
        {"keywords": ["commercial registration"]}, facts(text="commercial registrations")
    )


def test_regex_raw_text_and_case() -> None:
    f = facts(subject="CR 1010123456", text="رقم السجل ١٠١٠")
    assert hit({"regex": r"\b10\d{8}\b"}, f)
    assert hit({"regex": {"pattern": "^cr ", "in": ["subject"]}}, f)  # ignore_case by default
    assert not hit({"regex": {"pattern": "^cr ", "ignore_case": False}}, f)
    assert not hit({"regex": {"pattern": "10", "in": ["text"]}}, f)  # raw: digits not folded
    assert hit({"regex": {"pattern": "١٠١٠", "in": ["text"]}}, f)


def test_all_any_not_nesting() -> None:
    f = facts("email", subject="complaint", language=Language.EN)
    assert hit({"all": [{"channel": "email"}, {"keywords": ["complaint"]}]}, f)
    assert not hit({"all": [{"channel": "email"}, {"keywords": ["praise"]}]}, f)
    assert hit({"any": [{"channel": "web"}, {"keywords": ["complaint"]}]}, f)
    assert not hit({"any": [{"channel": "web"}, {"keywords": ["praise"]}]}, f)
    assert hit({"not": {"channel": "web"}}, f)
    assert not hit({"not": {"keywords": ["complaint"]}}, f)
    nested = {
        "all": [
            {"any": [{"language": "ar"}, {"not": {"channel": ["telegram", "web"]}}]},
            {"not": {"any": [{"has_attachment": True}, {"keywords": ["spam"]}]}},
        ]
    }
    assert hit(nested, f)
    assert not hit(nested, facts("web", subject="complaint", language=Language.EN))
    assert not hit(nested, facts("email", subject="complaint spam"))


def test_several_keys_in_one_node_must_all_hold() -> None:
    when = {"channel": "email", "keywords": ["complaint"], "not": {"has_attachment": True}}
    assert hit(when, facts("email", text="a complaint"))
    assert not hit(when, facts("web", text="a complaint"))
    assert not hit(when, facts("email", text="a question"))
    assert not hit(when, facts("email", text="a complaint", has_attachment=True))


@pytest.mark.parametrize(
    ("keyword", "text"),
    [
        ("أسعار", "ارتفاع اسعار الايجار"),  # أ → ا
        ("الاسعار", "ارتفاع الأسعار"),
        ("إلغاء", "الغاء السجل"),  # إ → ا
        ("آلية", "الية التسجيل"),  # آ → ا
        ("فتوى", "فتوي"),  # ى → ي
        ("فاتورة", "فاتوره"),  # ة → ه
        ("فاتوره", "فاتورة"),
        ("شكوى", "شَكْوَى"),  # tashkeel
        ("شكوى", "شكـــوى"),  # tatweel
        ("رقم 1010", "رقم ١٠١٠"),  # Arabic-Indic digits
        ("رقم ١٠١٠", "رقم 1010"),
        ("ORDER", "Where is my order؟"),
        ("تجديد trademark", "اريد تجديد Trademark لو سمحت"),  # mixed Arabic/English
    ],
)
def test_arabic_normalization(keyword: str, text: str) -> None:
    assert hit({"keywords": [keyword]}, facts(text=text))


def test_definite_article_is_part_of_the_word() -> None:
    f = facts(text="لدي عدد من الشكاوى")
    assert not hit({"keywords": ["شكوى"]}, f)
    assert not hit({"keywords": ["شكاوى"]}, f)  # "ال" prefix: a different word
    assert hit({"keywords": {"any": ["شكاوى"], "match": "substring"}}, f)
    assert hit({"keywords": ["الشكاوي"]}, f)  # ى/ي folded
    assert not hit({"keywords": {"any": ["شكوى"], "match": "substring"}}, f)  # not a substring
    assert hit({"keywords": ["شكوى"]}, facts(text="عندي شكوى، ارجو الرد"))


def test_from_inbound() -> None:
    msg = inbound(
        "whatsapp",
        author=Author(identities=[Identity(kind=IdentityKind.WHATSAPP, value="966500000001")]),
        text="مرحبا",
        attachments=[Attachment(inline=True)],
        segment_hint=Segment.CONSUMER,
        region_hint="Jeddah",
        service_hint="cr",
    )
    f = Facts.from_inbound(msg)
    assert (f.sender_address, f.sender_domain, f.has_attachment) == ("966500000001", "", False)
    assert (f.segment, f.region, f.service) == (Segment.CONSUMER, "jeddah", "cr")
    customer = Customer(id="c1", segment=Segment.BUSINESS, region="Riyadh", tags=["VIP"])
    f = Facts.from_inbound(msg, customer, outside_business_hours=True)
    assert (f.segment, f.region, f.customer_tags) == (Segment.BUSINESS, "riyadh", {"vip"})
    assert f.outside_business_hours
    email = inbound(
        "email",
        author=Author(identities=[Identity(kind=IdentityKind.EMAIL, value="A@Firm.com.sa")]),
        attachments=[Attachment(filename="cr.pdf")],
        html_text="from html",
    )
    f = Facts.from_inbound(email)
    assert (f.sender_address, f.sender_domain) == ("a@firm.com.sa", "firm.com.sa")
    assert f.has_attachment and f.folded_text == "from html"
