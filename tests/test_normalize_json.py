"""Every chat/social/web fixture with its expected fields: one row per fixture.

Each row names the fixture and what each of its results must be: an Inbound's fields
(only those listed are asserted, `meta` and `receipt` as subsets), a Skipped's reason,
or the error's reason and words from its message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors import registry
from connectors.telegram import normalize as telegram_normalize
from connectors.twitter import normalize as twitter_normalize
from connectors.web import normalize as web_normalize
from connectors.whatsapp import normalize as whatsapp_normalize
from omnidesk.errors import PayloadError
from omnidesk.model import Channel, Inbound, Skipped
from omnidesk.text import mask_pii, preview

FIXTURES = Path(__file__).parent / "fixtures"
TG_USER = ["telegram:5123456789"]
NOURA = ["twitter:1500000000000000001", "twitter_handle:noura_q"]
FAHD = ["whatsapp:966501234567", "phone:+966501234567"]
MARIA = ["whatsapp:966551112233", "phone:+966551112233"]
WA_THREAD = "whatsapp:106540352242922:966501234567"
WA_THREAD_MARIA = "whatsapp:106540352242922:966551112233"


def err(reason: str, *words: str) -> dict[str, Any]:
    return {"error": reason, "words": words}


def skip(reason: str, **receipt: Any) -> dict[str, Any]:
    return {"skipped": reason, "receipt": receipt}


CASES: dict[str, list[dict[str, Any]] | dict[str, Any]] = {
    # ---- Telegram
    "telegram/text_private_arabic.json": [
        {
            "external_id": "5123456789:101",
            "text": "السلام عليكم، أريد الاستعلام عن حالة طلب السجل التجاري",
            "name": "محمد العتيبي",
            "ids": TG_USER,
            "language_code": "ar",
            "language": "ar",
            "thread_keys": ["telegram:chat:5123456789"],
            "message_keys": ["telegram:msg:5123456789:101"],
            "received_at": "2024-05-01T08:00:00+00:00",
            "meta": {"chat_id": "5123456789", "message_id": "101", "username": "m_otaibi"},
            "flags": [],
            "segment": "unknown",
        }
    ],
    "telegram/text_english_cr_and_id.json": [
        {
            "external_id": "6001:102",
            "language": "en",
            "segment": "business",
            "hints": {"cr_number": "7001234567"},
            "masked": ["2123456789"],
        }
    ],
    "telegram/text_card_and_arabic_digits_id.json": [
        {
            "language": "ar",
            "segment": "unknown",  # a card number starting with 4 is not a CR number
            "hints": {},
            "masked": ["4111 1111 1111 1111"],
            "preview_hides": ["١٠٢٣٤٥٦٧٨٩", "1023456789"],
        }
    ],
    "telegram/edited_message.json": [
        {
            "external_id": "5123456789:101:edit:1714550700",
            "edit_of": "5123456789:101",
            "flags": ["edited"],
            "received_at": "2024-05-01T08:05:00+00:00",
            "message_keys": ["telegram:msg:5123456789:101"],
        }
    ],
    "telegram/photo_with_caption.json": [
        {
            "text": "صورة الفاتورة",
            "attachments": [("photo", "AgACAgQAAxkBAAIBlarge", "image/jpeg", 98765)],
        }
    ],
    "telegram/document_pdf.json": [
        {
            "text": "Invoice attached",
            "language": "en",
            "attachments": [("document", "BQACAgQAAxkBAAIBdoc", "application/pdf", 345678)],
            "filenames": ["invoice-2024.pdf"],
        }
    ],
    "telegram/voice_note.json": [
        {"text": "", "attachments": [("voice", "AwACAgQAAxkBAAIBvoice", "audio/ogg", 23456)]}
    ],
    "telegram/video.json": [
        {"attachments": [("video", "BAACAgQAAxkBAAIBvideo", "video/mp4", 1048576)]}
    ],
    "telegram/sticker_animated.json": [
        {
            "attachments": [
                ("sticker", "CAACAgIAAxkBAAIBsticker", "application/x-tgsticker", 4321)
            ],
            "language": "unknown",
        }
    ],
    "telegram/contact_shared.json": [
        {
            "attachments": [("contact", "+966501234567", "text/vcard", 0)],
            "filenames": ["Ahmad Saleh"],
        }
    ],
    "telegram/location.json": [
        {"attachments": [("location", "geo:24.7136,46.6753", "text/uri-list", 0)]}
    ],
    "telegram/forward_origin_user.json": [
        {"flags": ["forwarded"], "meta": {"forwarded_from": "khalid_k"}, "language": "ar"}
    ],
    "telegram/forward_legacy_chat.json": [
        {"flags": ["forwarded"], "meta": {"forwarded_from": "storenews"}}
    ],
    "telegram/reply_to_bot.json": [
        {
            "flags": ["reply"],
            "thread_keys": ["telegram:chat:5123456789", "telegram:msg:5123456789:98"],
            "meta": {"reply_to_message_id": "98"},
        }
    ],
    "telegram/group_reply_mixed.json": [
        {
            "external_id": "-1009876543210:113",
            "language": "mixed",
            "ids": ["telegram:6001"],
            "thread_keys": ["telegram:chat:-1009876543210", "telegram:msg:-1009876543210:77"],
            "meta": {"chat_type": "supergroup", "chat_id": "-1009876543210"},
        }
    ],
    "telegram/channel_post.json": [skip("channel_post")],
    "telegram/my_chat_member.json": [skip("my_chat_member")],
    "telegram/chat_member.json": [skip("chat_member")],
    "telegram/poll_update.json": [skip("poll")],
    "telegram/group_new_members.json": [skip("service_message")],
    "telegram/callback_query_csat.json": [
        {
            "external_id": "callback:4382bfdwdsb323b2d9",
            "ids": TG_USER,
            "meta": {
                "callback_data": "csat:5:OD-2024-000123",
                "callback_query_id": "4382bfdwdsb323b2d9",
                "chat_id": "5123456789",
            },
            "thread_keys": ["telegram:chat:5123456789", "telegram:msg:5123456789:150"],
        }
    ],
    # an update kind the normalizer does not know is skipped and counted, not quarantined
    "telegram/not_an_update.json": [skip("unknown_update:foo")],
    "telegram/unknown_update_kind.json": [skip("unknown_update:guest_story_reply")],
    "telegram/unknown_update_odd_key.json": [skip("unknown_update")],
    "telegram/update_id_only.json": [skip("empty_update")],
    "telegram/message_reaction.json": [skip("message_reaction")],
    # ... but a message missing what it must have is still refused, naming the path
    "telegram/message_without_chat.json": err("missing_field", "telegram:", "message.chat"),
    "telegram/no_update_id.json": err("missing_field", "telegram:", "update_id"),
    "telegram/truncated_json.json": err("not_json", "telegram:", "not JSON"),
    # ---- X
    "twitter/single_mention.json": [
        {
            "external_id": "tweet:1785600000000000001",
            "text": "متجر إلكتروني لم يسلم طلبي منذ أسبوعين",
            "name": "نورة",
            "ids": NOURA,
            "thread_keys": ["twitter:conv:1785600000000000001"],
            "message_keys": ["twitter:tweet:1785600000000000001"],
            "received_at": "2024-05-01T09:15:00+00:00",
            "meta": {
                "kind": "mention",
                "mentions": "mci_sa",
                "in_reply_to_user_id": "1400000000000000000",
            },
            "language": "ar",
        }
    ],
    "twitter/page_with_includes.json": [
        {"text": "How do I renew my CR?", "name": "Omar", "language": "en"},
        {"text": "شكراً على سرعة الرد", "ids": NOURA},
        {
            "text": "where is my parcel?",
            "ids": ["twitter:1500000000000000003", "twitter_handle:linar"],
            "meta": {"mentions": "mci_sa,saudipost", "username": "LinaR"},
        },
    ],
    "twitter/tco_expansion.json": [
        {
            "text": "this store is fake https://fake-store.example/offer?id=9 "
            "see also https://mc.gov.sa/ar/complaints"
        }
    ],
    "twitter/reply_in_conversation.json": [
        {
            "flags": ["reply"],
            "text": "رقم البلاغ 99812 ولم يتم الرد",
            "thread_keys": [
                "twitter:conv:1785600000000000001",
                "twitter:tweet:1785600000000000006",
            ],
            "meta": {"in_reply_to_tweet_id": "1785600000000000006", "mentions": "mci_sa,noura_q"},
        }
    ],
    "twitter/dm_event_page.json": [
        {
            "external_id": "dm:1785700000000000001",
            "ids": NOURA,
            "thread_keys": ["twitter:dm:1400000000000000000-1500000000000000001"],
            "meta": {"kind": "dm", "sender_id": "1500000000000000001"},
            "received_at": "2024-05-01T10:00:00+00:00",
        },
        skip("dm_event:ParticipantsJoin"),
    ],
    "twitter/dm_events_with_media.json": [
        {
            "text": "Receipt attached https://x.com/messages/media/1785700000000000003",
            "attachments": [("photo", "3_1785700000000000099", "image/jpeg", 0)],
            "meta": {"kind": "dm", "dm_conversation_id": "1400000000000000000-1500000000000000002"},
        }
    ],
    "twitter/retweet_in_page.json": [
        skip("retweet"),
        {"external_id": "tweet:1785600000000000009", "text": "الخدمة متوقفة", "flags": []},
    ],
    "twitter/note_tweet_long.json": [
        {"segment": "business", "hints": {"cr_number": "4030123456"}, "text_contains": "الفرع"}
    ],
    "twitter/empty_page.json": [skip("empty_page")],
    "twitter/mention_without_created_at.json": [
        {"received_at": "2024-05-01T09:19:49.500000+00:00", "text": "hello", "name": ""}
    ],
    "twitter/bad_data_type.json": err("bad_field", "x:", "data"),
    # an item with no author is skipped alone; the page's other items stay
    "twitter/page_item_without_author.json": [
        {"external_id": "tweet:1785600000000000021", "ids": NOURA},
        skip("no_author_id"),
        {
            "external_id": "tweet:1785600000000000023",
            "text": "where is my refund?",
            "ids": ["twitter:1500000000000000003", "twitter_handle:linar"],
        },
    ],
    "twitter/single_mention_without_author.json": [skip("no_author_id")],
    "twitter/dm_event_without_sender.json": [
        skip("no_sender_id"),
        {"external_id": "dm:1785700000000000042", "ids": NOURA[:1]},
    ],
    # an author_id that is there but not an id is malformed: refused, with its path
    "twitter/author_id_wrong_type.json": err("bad_field", "x:", "data[0].author_id"),
    # "RT @user:" is a retweet even without referenced_tweets; a comment that quotes one is not
    "twitter/manual_retweet_in_page.json": [
        skip("retweet"),
        {"text": "RT @saudipost: is this true? my parcel is late", "flags": []},
        {"text": "ART @MCI_SA: exhibition permit question"},
    ],
    # ---- WhatsApp
    "whatsapp/text.json": [
        {
            "text": "السلام عليكم، متى يصدر الترخيص؟",
            "name": "فهد",
            "ids": FAHD,
            "thread_keys": [WA_THREAD],
            "meta": {
                "phone_number_id": "106540352242922",
                "wa_id": "966501234567",
                "timestamp": "1714550400",
            },
            "language": "ar",
        }
    ],
    "whatsapp/batch_several.json": [
        {
            "external_id": "wamid.A1",
            "name": "Maria",
            "ids": MARIA,
            "thread_keys": [WA_THREAD_MARIA],
        },
        {
            "external_id": "wamid.A2",
            "name": "فهد",
            "segment": "business",
            "meta": {"timestamp": "1714550405"},
        },
        {"external_id": "wamid.A3", "name": "Maria", "language": "en"},
    ],
    "whatsapp/statuses_only.json": [
        skip("delivery_status", status="sent", message_id="wamid.OUT1"),
        skip("delivery_status", status="delivered", timestamp=1714550402),
        skip("delivery_status", status="read", recipient_id="966501234567"),
    ],
    "whatsapp/mixed_message_and_failed_status.json": [
        {"external_id": "wamid.B1", "text": "لم تصلني رسالتكم"},
        skip(
            "delivery_status",
            status="failed",
            errors=[{"code": 131047, "title": "Re-engagement message"}],
        ),
    ],
    "whatsapp/image_caption.json": [
        {
            "text": "صورة الإيصال",
            "attachments": [("image", "1479537139650973", "image/jpeg", 0)],
            "sha256": ["6f32860910ca0fb2a20c7fda143666b09dbf8db5238195c90a586fb542ff0cad"],
        }
    ],
    "whatsapp/document.json": [
        {
            "attachments": [("document", "1479537139650974", "application/pdf", 0)],
            "filenames": ["CR-7001234567.pdf"],
            "segment": "unknown",  # the CR in a filename is not the sender's text
        }
    ],
    "whatsapp/audio_voice.json": [
        {"attachments": [("voice", "1479537139650975", "audio/ogg", 0)], "sha256": [""]}
    ],
    "whatsapp/video_sticker.json": [
        {"attachments": [("video", "1479537139650976", "video/mp4", 0)]},
        {"attachments": [("sticker", "1479537139650977", "image/webp", 0)]},
    ],
    "whatsapp/location.json": [
        {
            "text": "فرع جدة - طريق الملك عبدالعزيز",
            "attachments": [("location", "geo:21.5433,39.1728", "text/uri-list", 0)],
        }
    ],
    "whatsapp/contacts_shared.json": [
        {
            "attachments": [("contact", "+966509876543", "text/vcard", 0)],
            "filenames": ["Ali Hassan"],
        }
    ],
    "whatsapp/interactive_button_reply.json": [
        {
            "text": "ممتاز",
            "flags": ["reply"],
            "thread_keys": [WA_THREAD, "whatsapp:msg:wamid.OUT3"],
            "meta": {"reply_id": "csat_5", "interactive_type": "button_reply"},
        }
    ],
    "whatsapp/interactive_list_reply.json": [
        {
            "text": "Trademarks",
            "name": "Maria",
            "meta": {"reply_id": "svc_trademark", "interactive_type": "list_reply"},
        }
    ],
    "whatsapp/template_button.json": [
        {"text": "Talk to an agent", "meta": {"button_payload": "talk_to_agent"}, "ids": MARIA}
    ],
    "whatsapp/reaction.json": [skip("reaction")],
    "whatsapp/forwarded_text.json": [{"flags": ["forwarded"], "thread_keys": [WA_THREAD]}],
    "whatsapp/unsupported_type.json": [skip("unsupported:unsupported")],
    "whatsapp/template_status_field.json": [skip("field:message_template_status_update")],
    # a call-permission answer, call events and opt-outs are no customer message: skipped
    "whatsapp/call_permission_reply.json": [skip("call_permission_reply")],
    "whatsapp/calls_field.json": [skip("field:calls")],
    "whatsapp/calls_without_field.json": [skip("calls")],
    "whatsapp/user_preferences.json": [skip("field:user_preferences")],
    "whatsapp/user_preferences_in_messages_field.json": [skip("user_preferences")],
    # an interactive kind we cannot read would be an empty ticket
    "whatsapp/interactive_unknown_kind.json": [skip("unsupported:interactive")],
    # an order: the customer's note, then one line per item and the total
    "whatsapp/order.json": [
        {
            "external_id": "wamid.ORD1",
            "text": "أرجو التوصيل إلى الرياض\n"
            "طلب / Order (1385574212355436)\n"
            "2 × SKU-ABAYA-52 @ 250 SAR\n"
            "1 × 7001234567 @ 99.50 SAR\n"
            "المجموع / Total: 599.50 SAR",
            "language": "ar",
            "segment": "unknown",  # a product id is not a CR number
            "hints": {},
            "thread_keys": [WA_THREAD],
            "meta": {"type": "order", "catalog_id": "1385574212355436", "order_items": "2"},
        }
    ],
    "whatsapp/order_without_text.json": [
        {
            "text": "طلب / Order (1385574212355436)\n"
            "3 × SKU-1 @ 1.25 USD\n"
            "1 × SKU-2 @ 10 SAR\n"
            "المجموع / Total: 3.75 USD\n"
            "المجموع / Total: 10 SAR",
            "language": "unknown",
        }
    ],
    "whatsapp/order_bad_quantity.json": err(
        "bad_field", "whatsapp:", "order.product_items[0].quantity", "positive whole number"
    ),
    # an edit joins the original's ticket (its message key) and says what it edits
    "whatsapp/edit_text.json": [
        {
            "external_id": "wamid.EDIT1",
            "edit_of": "wamid.C1",
            "text": "السلام عليكم، متى يصدر الترخيص التجاري؟",
            "flags": ["edited"],
            "thread_keys": [WA_THREAD, "whatsapp:msg:wamid.C1"],
            "message_keys": ["whatsapp:msg:wamid.EDIT1"],
            "meta": {"type": "edit", "edit_of": "wamid.C1", "edited_type": "text"},
        }
    ],
    "whatsapp/edit_caption.json": [
        {
            "edit_of": "wamid.C4",
            "text": "صورة الفاتورة الصحيحة",
            "flags": ["edited", "reply"],
            "thread_keys": [WA_THREAD, "whatsapp:msg:wamid.OUT9", "whatsapp:msg:wamid.C4"],
            "attachments": [],
            "meta": {"edited_type": "image"},
        }
    ],
    "whatsapp/edit_of_location.json": [skip("unsupported:edit")],
    # WhatsApp's errors array: skipped with them when nothing can be read, never refused
    "whatsapp/interactive_with_errors.json": [
        skip("unsupported:interactive", errors=[{"code": 131051, "title": "Message type unknown"}]),
        {"external_id": "wamid.IE2", "text": "وهذه رسالتي"},
    ],
    "whatsapp/unsupported_with_errors_and_text.json": [
        skip("unsupported:unsupported", errors=[{"code": 131051, "title": "Message type unknown"}]),
        {"external_id": "wamid.UE2", "text": "ما زلت أنتظر الرد"},
    ],
    "whatsapp/missing_metadata.json": err(
        "missing_field", "whatsapp:", "entry[0].changes[0].value.metadata"
    ),
    "whatsapp/not_whatsapp_object.json": err("not_whatsapp", "whatsapp:", "page"),
    # ---- Web form
    "web/valid_arabic.json": [
        {
            "name": "عبدالله القحطاني",
            "ids": ["email:abdullah.q@example.sa", "phone:+966501234567"],
            "subject": "تأخر تسليم طلب",
            "language": "ar",
            "segment": "consumer",
            "region": "riyadh",
            "service": "consumer_protection",
            "sent_at": "2024-05-01T08:00:00+00:00",  # submitted_at: the browser's clock
            "masked": ["1012345678"],
            "external_id_len": 64,
        }
    ],
    "web/valid_english_attachments.json": [
        {
            "external_id": "web-2024-0001",
            "segment": "business",
            "region": "jeddah",
            "language": "en",
            "attachments": [("", "", "application/pdf", 204800), ("", "", "image/png", 5120)],
            "filenames": ["certificate.pdf", "logo.png"],
            "sha256": ["a" * 64, ""],
            "masked": ["1445012345"],
        }
    ],
    "web/business_cr_in_text.json": [
        {
            "segment": "business",
            "hints": {"cr_number": "7001234567"},
            "ids": ["email:info@almarai-trading.sa"],
        }
    ],
    "web/phone_only_international.json": [{"ids": ["phone:+966551112233"], "language": "en"}],
    "web/bad_email.json": err("invalid_form", "web form: email: not a valid address"),
    "web/missing_message.json": err("invalid_form", "web form: message: required"),
    "web/unknown_field.json": err("invalid_form", "web form: priority: unknown field"),
    "web/bad_phone_and_segment.json": err(
        "invalid_form", "phone: not a valid phone number; segment: must be consumer or business"
    ),
    "web/bad_attachment.json": err(
        "invalid_form",
        "attachments[0].filename",
        "attachments[0].content_type",
        "attachments[0].size",
        "attachments[0].sha256",
    ),
    "web/not_json.json": err("not_json", "web form: not JSON"),
}


def test_every_fixture_has_a_row() -> None:
    channels = ("telegram", "twitter", "whatsapp", "web")
    on_disk = {str(p.relative_to(FIXTURES)) for c in channels for p in FIXTURES.glob(f"{c}/*.json")}
    assert on_disk == set(CASES)
    assert len(on_disk) >= 40


def _check_inbound(result: Inbound, want: dict[str, Any]) -> None:
    simple = {
        "external_id": result.external_id,
        "text": result.text,
        "name": result.author.name,
        "language_code": result.author.language_code,
        "language": result.language.value,
        "thread_keys": result.thread_keys,
        "message_keys": result.message_keys,
        "edit_of": result.edit_of,
        "received_at": result.received_at.isoformat(),
        "sent_at": result.sent_at.isoformat() if result.sent_at else None,
        "segment": result.segment_hint.value,
        "hints": result.hints,
        "subject": result.subject,
        "region": result.region_hint,
        "service": result.service_hint,
        "ids": [i.key for i in result.author.identities],
        "flags": sorted(f.value for f in result.flags),
        "attachments": [(a.kind, a.ref, a.content_type, a.size) for a in result.attachments],
        "filenames": [a.filename for a in result.attachments],
        "sha256": [a.sha256 for a in result.attachments],
    }
    for key, expected in want.items():
        if key == "meta":
            assert {k: result.meta.get(k) for k in expected} == expected
        elif key == "masked":  # raw text keeps the ID; previews and logs do not show it
            for secret in expected:
                assert secret in result.text
                assert secret not in mask_pii(result.text)
                assert secret not in preview(result.text)
        elif key == "preview_hides":  # written in Arabic-Indic digits in the raw text
            assert expected[0] in result.text
            for secret in expected:
                assert secret not in preview(result.text)
        elif key == "text_contains":
            assert expected in result.text
        elif key == "external_id_len":
            assert len(result.external_id) == expected
        elif key == "flags":
            assert simple[key] == sorted(expected)
        else:
            assert simple[key] == expected, key


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture(name: str) -> None:
    channel = Channel(name.split("/")[0])
    raw = (FIXTURES / name).read_bytes()
    want = CASES[name]
    if isinstance(want, dict):
        with pytest.raises(PayloadError) as caught:
            registry.normalize(channel, raw, account="acct")
        assert caught.value.reason == want["error"]
        message = str(caught.value)
        assert "\n" not in message
        for word in want["words"]:
            assert word in message
        return
    results = registry.normalize(channel, raw, account="acct")
    assert len(results) == len(want)
    for result, expected in zip(results, want, strict=True):
        if "skipped" in expected:
            assert isinstance(result, Skipped), result
            assert result.reason == expected["skipped"]
            for key, value in expected["receipt"].items():
                assert result.receipt is not None and result.receipt[key] == value
        else:
            assert isinstance(result, Inbound), result
            assert result.channel == channel and result.account == "acct"
            _check_inbound(result, expected)


def test_dict_and_bytes_give_the_same_result() -> None:
    import json

    raw = (FIXTURES / "whatsapp/batch_several.json").read_bytes()
    assert whatsapp_normalize(raw) == whatsapp_normalize(json.loads(raw))
    raw = (FIXTURES / "telegram/reply_to_bot.json").read_bytes()
    assert telegram_normalize(raw) == telegram_normalize(json.loads(raw))


def test_single_object_and_page_agree() -> None:
    """A tweet given alone and the same tweet inside a page normalize the same."""
    import json

    single = json.loads((FIXTURES / "twitter/single_mention.json").read_bytes())
    page = {"data": [single["data"]], "includes": single["includes"], "meta": {"result_count": 1}}
    assert twitter_normalize(single) == twitter_normalize(page)


def test_web_form_same_submission_dedupes_and_different_does_not() -> None:
    form = {"email": "a@example.com", "message": "hello", "submitted_at": "2024-05-01T08:00:00Z"}
    first = web_normalize(form)
    assert web_normalize(dict(reversed(list(form.items())))).external_id == first.external_id
    assert web_normalize(form | {"message": "hello!"}).external_id != first.external_id


def test_web_form_names_every_bad_field_in_one_line() -> None:
    with pytest.raises(PayloadError) as caught:
        web_normalize({"email": "nope", "name": 5, "colour": "red"})
    message = str(caught.value)
    assert message == (
        "web form: colour: unknown field; name: must be a string; "
        "email: not a valid address; message: required"
    )


def test_too_large_payload_is_refused_before_parsing() -> None:
    with pytest.raises(PayloadError) as caught:
        telegram_normalize(b"{" + b" " * 100 + b"}", max_bytes=50)
    assert caught.value.reason == "too_large"
    assert str(caught.value).startswith("telegram: payload is 102 bytes")


def test_registry_wraps_single_results_and_refuses_unknown_channels() -> None:
    raw = (FIXTURES / "web/valid_arabic.json").read_bytes()
    results = registry.normalize("web", raw, account="site")
    assert [type(r) for r in results] == [Inbound]
    assert results[0].account == "site"
    with pytest.raises(Exception, match="unknown channel"):
        registry.normalize("fax", raw, account="x")


def test_registry_refuses_a_dict_for_email_before_loading_it() -> None:
    with pytest.raises(PayloadError) as caught:
        registry.normalize(Channel.EMAIL, {"subject": "hi"}, account="inbox")
    assert caught.value.reason == "not_email"


def test_telegram_edit_keeps_the_originals_message_key() -> None:
    original = telegram_normalize((FIXTURES / "telegram/text_private_arabic.json").read_bytes())
    edit = telegram_normalize((FIXTURES / "telegram/edited_message.json").read_bytes())
    assert isinstance(original, Inbound) and isinstance(edit, Inbound)
    assert edit.edit_of == original.external_id
    assert edit.external_id != original.external_id
    assert edit.message_keys == original.message_keys
