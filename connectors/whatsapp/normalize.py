"""WhatsApp Cloud API webhook body -> one result per message or status. Pure: no I/O, no clock.

A body holds entries, each with changes; a `messages` change holds messages (customer
messages: Inbound), and statuses (receipts for what we sent: Skipped with reason
`delivery_status` and the receipt). Reactions, system notices, call-permission answers, call
events and opt-outs are Skipped with a reason, as is a message WhatsApp marks with `errors`
when nothing of it can be read. An order's items become its text; an edit (`type: edit`)
carries `edit_of` and the original's message key as a thread key, so it joins its ticket.
`meta["timestamp"]` is the customer's message time: the 24-hour reply window starts there.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base_normalize import (
    MAX_JSON_BYTES,
    apply_text_hints,
    arr,
    bad,
    boolean,
    e164,
    hex_sha256,
    id_string,
    item_obj,
    load_json,
    missing,
    number,
    obj,
    opt_arr,
    opt_obj,
    opt_string,
    string,
    unix_time,
    with_prefix,
)
from omnidesk.errors import PayloadError
from omnidesk.model import (
    Attachment,
    Author,
    Channel,
    Flag,
    Identity,
    IdentityKind,
    Inbound,
    Skipped,
)

_MEDIA = {
    "image": "image/jpeg",
    "document": "application/octet-stream",
    "audio": "audio/ogg",
    "video": "video/mp4",
    "sticker": "image/webp",
}
_SKIPPED_TYPES = {"reaction": "reaction", "system": "system", "request_welcome": "request_welcome"}
# A customer's answer to a business's request to call them. Omnidesk sends no such request
# (messages.py: text, buttons, lists, templates) and cannot call: the answer belongs to the
# system that asked, and when WhatsApp answers by itself there are no customer words at all.
_SKIPPED_INTERACTIVE = frozenset({"call_permission_reply"})
# Interactive answers that carry the customer's choice or words.
_INTERACTIVE_REPLIES = frozenset({"button_reply", "list_reply", "nfm_reply"})
# Arrays of a webhook value that are not messages, when they come under the messages field.
_NOT_MESSAGES = ("calls", "user_preferences")


@with_prefix("whatsapp")
def normalize(
    payload: bytes | str | dict, *, account: str = "default", max_bytes: int = MAX_JSON_BYTES
) -> list[Inbound | Skipped]:
    """Every message and status of the body, in order; `[Skipped]` when it holds neither."""
    body = load_json(payload, max_bytes=max_bytes)
    kind = opt_string(body, "object", "")
    if kind and kind != "whatsapp_business_account":
        raise PayloadError(
            f"object: {kind!r} is not a WhatsApp Business Account webhook", reason="not_whatsapp"
        )
    results: list[Inbound | Skipped] = []
    for e, raw_entry in enumerate(arr(body, "entry", "")):
        entry = item_obj(raw_entry, "entry", e)
        for c, raw_change in enumerate(arr(entry, "changes", f"entry[{e}]")):
            at = f"entry[{e}].changes[{c}]"
            change = item_obj(raw_change, f"entry[{e}].changes", c)
            field = opt_string(change, "field", at) or "messages"
            if field != "messages":
                results.append(Skipped(reason=f"field:{field}"))
                continue
            results.extend(_value(obj(change, "value", at), f"{at}.value", account))
    return results or [Skipped(reason="empty")]


def _value(value: dict, at: str, account: str) -> list[Inbound | Skipped]:
    metadata = obj(value, "metadata", at)
    phone_number_id = id_string(metadata, "phone_number_id", f"{at}.metadata")
    display = opt_string(metadata, "display_phone_number", f"{at}.metadata")
    names: dict[str, str] = {}
    for i, raw in enumerate(opt_arr(value, "contacts", at)):
        contact = item_obj(raw, f"{at}.contacts", i)
        cat = f"{at}.contacts[{i}]"
        profile = opt_obj(contact, "profile", cat) or {}
        names[id_string(contact, "wa_id", cat)] = opt_string(profile, "name", f"{cat}.profile")
    out: list[Inbound | Skipped] = []
    for i, raw in enumerate(opt_arr(value, "messages", at)):
        message = item_obj(raw, f"{at}.messages", i)
        out.append(_message(message, f"{at}.messages[{i}]", account, phone_number_id, names))
        if display and isinstance(out[-1], Inbound):
            out[-1].meta["display_phone_number"] = display
    for i, raw in enumerate(opt_arr(value, "statuses", at)):
        status = item_obj(raw, f"{at}.statuses", i)
        out.append(_status(status, f"{at}.statuses[{i}]", phone_number_id))
    if not out and value.get("errors"):
        out.append(Skipped(reason="webhook_error", receipt={"errors": value["errors"]}))
    if not out:  # call events and marketing opt-outs: facts about the number, no message
        out.extend(Skipped(reason=key) for key in _NOT_MESSAGES if value.get(key))
    return out


def _status(status: dict, at: str, phone_number_id: str) -> Skipped:
    """A receipt for a message we sent: sent, delivered, read or failed (with the errors)."""
    receipt: dict[str, Any] = {
        "message_id": id_string(status, "id", at),
        "status": string(status, "status", at),
        "timestamp": int(unix_time(status.get("timestamp", 0), at, "timestamp").timestamp()),
        "recipient_id": id_string(status, "recipient_id", at),
        "phone_number_id": phone_number_id,
    }
    errors = _errors(status, at)
    if errors:
        receipt["errors"] = errors
    return Skipped(reason="delivery_status", receipt=receipt)


def _message(
    message: dict, at: str, account: str, phone_number_id: str, names: dict[str, str]
) -> Inbound | Skipped:
    message_id = id_string(message, "id", at)
    wa_id = id_string(message, "from", at)
    msg_type = string(message, "type", at)
    if msg_type in _SKIPPED_TYPES:
        return Skipped(reason=_SKIPPED_TYPES[msg_type])
    if msg_type == "interactive" and _interactive_kind(message, at) in _SKIPPED_INTERACTIVE:
        return Skipped(reason=_interactive_kind(message, at))
    raw_time = message.get("timestamp")
    if raw_time is None:
        raise PayloadError(f"{at}.timestamp: missing field", reason="missing_field")
    received_at = unix_time(raw_time, at, "timestamp")
    identities = [Identity(kind=IdentityKind.WHATSAPP, value=wa_id)]
    phone = e164(f"+{wa_id}") if wa_id.isascii() and wa_id.isdigit() else None
    if phone:
        identities.append(Identity(kind=IdentityKind.PHONE, value=phone))
    inbound = Inbound(
        channel=Channel.WHATSAPP,
        account=account,
        external_id=message_id,
        received_at=received_at,
        author=Author(name=names.get(wa_id, ""), identities=identities),
        thread_keys=[f"whatsapp:{phone_number_id}:{wa_id}"],
        message_keys=[f"whatsapp:msg:{message_id}"],
        meta={
            "phone_number_id": phone_number_id,
            "wa_id": wa_id,
            "message_id": message_id,
            "timestamp": str(int(received_at.timestamp())),
            "type": msg_type,
        },
    )
    if not phone:
        inbound.defects.append(f"wa_id {wa_id!r} is not a valid phone number")
    errors = _errors(message, at)
    try:
        order_lines = _read(message, msg_type, at, inbound)
    except PayloadError:
        if not errors:
            raise
        order_lines = None  # WhatsApp said it could not give us this message: nothing to read
    if errors and not (inbound.text or inbound.attachments or order_lines):
        order_lines = None
    if order_lines is None:
        return Skipped(
            reason=f"unsupported:{msg_type}", receipt={"errors": errors} if errors else None
        )
    for err in errors:  # readable despite them: kept, and the agent sees what WhatsApp said
        inbound.defects.append(f"whatsapp error {err['code']}: {err['title']}")
    apply_text_hints(inbound)  # an order's: from the customer's note, not from product ids
    if order_lines:
        inbound.text = "\n".join([inbound.text, *order_lines] if inbound.text else order_lines)
    return inbound


def _read(message: dict, msg_type: str, at: str, inbound: Inbound) -> list[str] | None:
    """Fill text, attachments and meta from the content; None when there is nothing we can
    read, else the lines an order adds after the customer's note (none for other types)."""
    if msg_type == "edit":
        return [] if _edit(message, at, inbound) else None
    _context(message, at, inbound)
    if msg_type == "order":
        return _order(obj(message, "order", at), f"{at}.order", inbound)
    return [] if _content(message, msg_type, at, inbound) else None


def _errors(item: dict, at: str) -> list[dict[str, Any]]:
    """The `errors` array WhatsApp puts on a message or status it could not process."""
    return [
        {
            "code": item_obj(err, f"{at}.errors", i).get("code"),
            "title": opt_string(err, "title", f"{at}.errors[{i}]"),
        }
        for i, err in enumerate(opt_arr(item, "errors", at))
    ]


def _interactive_kind(message: dict, at: str) -> str:
    interactive = opt_obj(message, "interactive", at) or {}
    return opt_string(interactive, "type", f"{at}.interactive")


def _edit(message: dict, at: str, inbound: Inbound) -> bool:
    """A customer's edit of an earlier message: the new text, joined to the original's
    ticket (its message key is a thread key); intake updates the original in place."""
    edit = obj(message, "edit", at)
    eat = f"{at}.edit"
    original = id_string(edit, "original_message_id", eat)
    inner = obj(edit, "message", eat)
    iat = f"{eat}.message"
    # the edited message's type; when it is not said, the content key there tells
    inner_type = opt_string(inner, "type", iat) or next(
        (k for k in ("text", *_MEDIA) if isinstance(inner.get(k), dict)), ""
    )
    _context(inner, iat, inbound)
    if inner_type == "text":
        inbound.text = string(obj(inner, "text", iat), "body", f"{iat}.text")
    elif inner_type in _MEDIA:  # a new caption; the media is the original's, not sent again
        inbound.text = opt_string(obj(inner, inner_type, iat), "caption", f"{iat}.{inner_type}")
    else:
        return False
    if inbound.external_id == original:  # the edit must not pass for the original's duplicate
        inbound.external_id = f"{original}:edit:{inbound.meta['timestamp']}"
    inbound.edit_of = original
    inbound.thread_keys.append(f"whatsapp:msg:{original}")
    inbound.flags.append(Flag.EDITED)
    inbound.meta["edit_of"] = original
    inbound.meta["edited_type"] = inner_type
    return True


def _context(message: dict, at: str, inbound: Inbound) -> None:
    context = opt_obj(message, "context", at)
    if context is None:
        return
    cat = f"{at}.context"
    if boolean(context, "forwarded", cat) or boolean(context, "frequently_forwarded", cat):
        inbound.flags.append(Flag.FORWARDED)
    replied = opt_string(context, "id", cat)
    if replied:  # a reply to one of our messages (or a button press on it)
        inbound.thread_keys.append(f"whatsapp:msg:{replied}")
        inbound.meta["context_id"] = replied
        inbound.flags.append(Flag.REPLY)


def _content(message: dict, msg_type: str, at: str, inbound: Inbound) -> bool:
    """Fill text, attachments and meta for the message's type; False for an unknown type."""
    tat = f"{at}.{msg_type}"
    if msg_type == "text":
        inbound.text = string(obj(message, "text", at), "body", tat)
    elif msg_type in _MEDIA:
        media = obj(message, msg_type, at)
        inbound.text = opt_string(media, "caption", tat)
        inbound.attachments.append(
            Attachment(
                kind="voice" if boolean(media, "voice", tat) else msg_type,
                ref=id_string(media, "id", tat),
                filename=opt_string(media, "filename", tat),
                content_type=opt_string(media, "mime_type", tat).split(";")[0].strip()
                or _MEDIA[msg_type],
                sha256=hex_sha256(opt_string(media, "sha256", tat)),
            )
        )
    elif msg_type == "location":
        location = obj(message, "location", at)
        lat, lon = number(location, "latitude", tat), number(location, "longitude", tat)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise PayloadError(f"{tat}: latitude/longitude out of range", reason="bad_field")
        parts = (opt_string(location, "name", tat), opt_string(location, "address", tat))
        inbound.text = " - ".join(s for s in parts if s)
        inbound.attachments.append(
            Attachment(kind="location", content_type="text/uri-list", ref=f"geo:{lat},{lon}")
        )
    elif msg_type == "contacts":
        for i, raw in enumerate(arr(message, "contacts", at)):
            inbound.attachments.append(_shared_contact(item_obj(raw, tat, i), f"{tat}[{i}]"))
    elif msg_type == "interactive":
        interactive = obj(message, "interactive", at)
        kind = string(interactive, "type", tat)
        if kind not in _INTERACTIVE_REPLIES:  # a kind we cannot read would be an empty ticket
            return False
        reply = obj(interactive, kind, tat)
        if kind == "nfm_reply":  # a completed flow: the customer's answers are the message
            inbound.text = _flow_answers(reply, f"{tat}.{kind}", inbound)
        else:
            inbound.text = opt_string(reply, "title", f"{tat}.{kind}")
            inbound.meta["reply_id"] = opt_string(reply, "id", f"{tat}.{kind}")
        inbound.meta["interactive_type"] = kind
    elif msg_type == "button":  # a quick-reply button of a template we sent
        button = obj(message, "button", at)
        inbound.text = opt_string(button, "text", tat)
        inbound.meta["button_payload"] = opt_string(button, "payload", tat)
    else:
        return False
    return True


def _order(order: dict, at: str, inbound: Inbound) -> list[str]:
    """A cart sent from our catalog: the customer's note becomes the text; returned, the
    lines that follow it: one per item (`2 × SKU @ 25.00 SAR`) and the total per currency,
    labelled in Arabic and English."""
    inbound.text = opt_string(order, "text", at)
    catalog = opt_string(order, "catalog_id", at)
    inbound.meta["catalog_id"] = catalog
    items = arr(order, "product_items", at)
    lines = [f"طلب / Order ({catalog})" if catalog else "طلب / Order"]
    totals: dict[str, Decimal] = {}
    for i, raw in enumerate(items):
        iat = f"{at}.product_items[{i}]"
        item = item_obj(raw, f"{at}.product_items", i)
        product = string(item, "product_retailer_id", iat)
        quantity = _decimal(item, "quantity", iat)
        price = _decimal(item, "item_price", iat)
        currency = opt_string(item, "currency", iat).upper()
        if quantity != quantity.to_integral_value() or quantity <= 0:
            raise bad(iat, "quantity", "a positive whole number", item["quantity"])
        lines.append(f"{quantity:f} × {product} @ {price:f} {currency}".rstrip())
        totals[currency] = totals.get(currency, Decimal(0)) + quantity * price
    for currency, total in totals.items():
        lines.append(f"المجموع / Total: {total:f} {currency}".rstrip())
    inbound.meta["order_items"] = str(len(items))
    return lines


def _decimal(item: dict, key: str, at: str) -> Decimal:
    """A quantity or price, which WhatsApp sends as a number or a string of one."""
    value = item.get(key)
    if value is None:
        raise missing(at, key)
    if isinstance(value, bool) or not isinstance(value, int | float | str) or len(str(value)) > 24:
        raise bad(at, key, "a number", value)
    try:
        number_ = Decimal(str(value).strip())
    except InvalidOperation:
        raise bad(at, key, "a number", value) from None
    if not number_.is_finite() or number_ < 0:
        raise bad(at, key, "a number", value)
    return number_


def _flow_answers(reply: dict, at: str, inbound: Inbound) -> str:
    """A flow completion's text: its body line, then one `field: answer` line per answer in
    `response_json` (a JSON string; the flow_token is ours, not the customer's)."""
    lines = [opt_string(reply, "body", at)]
    inbound.meta["flow_name"] = opt_string(reply, "name", at)
    raw = opt_string(reply, "response_json", at)
    try:
        answers = json.loads(raw) if raw else {}
    except ValueError:
        answers = None
    if not isinstance(answers, dict):
        inbound.defects.append(f"{at}.response_json: not a JSON object")
        answers = {}
    for name, value in answers.items():
        if name == "flow_token":
            continue
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"{name}: {shown}")
    return "\n".join(line for line in lines if line)


def _shared_contact(contact: dict, at: str) -> Attachment:
    name = opt_obj(contact, "name", at) or {}
    formatted = opt_string(name, "formatted_name", f"{at}.name")
    phones = opt_arr(contact, "phones", at)
    ref = ""
    if phones:
        first = item_obj(phones[0], f"{at}.phones", 0)
        raw = opt_string(first, "wa_id", f"{at}.phones[0]") or opt_string(
            first, "phone", f"{at}.phones[0]"
        )
        ref = e164(f"+{raw}" if raw.isdigit() else raw) or raw
    return Attachment(kind="contact", content_type="text/vcard", filename=formatted, ref=ref)
