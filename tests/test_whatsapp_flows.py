"""WhatsApp flow completions (`interactive.nfm_reply`) carry the customer's answers in
`response_json`: they are the message, not an empty ticket."""

from __future__ import annotations

import json

from connectors.whatsapp.normalize import normalize
from omnidesk.model import Inbound


def webhook(interactive: dict) -> dict:
    message = {
        "from": "966501234567",
        "id": "wamid.FLOW1",
        "timestamp": "1714550400",
        "type": "interactive",
        "interactive": interactive,
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "966920000000", "phone_number_id": "1065"},
        "contacts": [{"profile": {"name": "فهد"}, "wa_id": "966501234567"}],
        "messages": [message],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


def test_a_completed_flow_brings_the_customers_answers() -> None:
    answers = {
        "flow_token": "ours-123",
        "complaint_type": "تأخير التسليم",
        "shop_name": "محل النور",
        "amount": 250,
    }
    (inbound,) = normalize(
        webhook(
            {
                "type": "nfm_reply",
                "nfm_reply": {
                    "name": "complaint_form",
                    "body": "Sent",
                    "response_json": json.dumps(answers, ensure_ascii=False),
                },
            }
        ),
        account="wa",
    )
    assert isinstance(inbound, Inbound)
    assert inbound.text.splitlines() == [
        "Sent",
        "complaint_type: تأخير التسليم",
        "shop_name: محل النور",
        "amount: 250",
    ]
    assert "ours-123" not in inbound.text
    assert inbound.meta["interactive_type"] == "nfm_reply"
    assert inbound.meta["flow_name"] == "complaint_form"


def test_unreadable_flow_answers_keep_the_body_and_say_why() -> None:
    (inbound,) = normalize(
        webhook({"type": "nfm_reply", "nfm_reply": {"body": "Sent", "response_json": "{oops"}}),
        account="wa",
    )
    assert isinstance(inbound, Inbound)
    assert inbound.text == "Sent"
    assert any("response_json" in d for d in inbound.defects)
