"""Telegram Bot API `Update` -> `Inbound` (or `Skipped`). Pure: no I/O, no clock.

Keys: a message is `<chat_id>:<message_id>`; an edit is `<chat_id>:<message_id>:edit:<edit_date>`
with `edit_of` pointing at the original, so intake updates the message instead of opening a
ticket. Thread keys are the chat and, for a reply, the replied-to message.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.base_normalize import (
    MAX_JSON_BYTES,
    apply_text_hints,
    boolean,
    e164,
    integer,
    item_obj,
    load_json,
    number,
    obj,
    opt_arr,
    opt_int,
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

# Update kinds that carry a customer's message, and whether they are edits.
_MESSAGE_KINDS = {
    "message": False,
    "edited_message": True,
    "business_message": False,
    "edited_business_message": True,
}
# Update kinds that are recognised and carry no customer message.
_SKIPPED_KINDS = (
    "channel_post",
    "edited_channel_post",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "poll",
    "poll_answer",
    "inline_query",
    "chosen_inline_result",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "message_reaction",
    "message_reaction_count",
    "chat_boost",
    "removed_chat_boost",
    "business_connection",
    "deleted_business_messages",
)
# What a Bot API update kind looks like; another key is not echoed into a counter name.
_KIND_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# Message fields that make it a service message (joins, pins, titles...) or a non-text game.
_SERVICE_FIELDS = frozenset(
    (
        "new_chat_members",
        "left_chat_member",
        "new_chat_title",
        "new_chat_photo",
        "delete_chat_photo",
        "group_chat_created",
        "supergroup_chat_created",
        "channel_chat_created",
        "message_auto_delete_timer_changed",
        "migrate_to_chat_id",
        "migrate_from_chat_id",
        "pinned_message",
        "successful_payment",
        "users_shared",
        "chat_shared",
        "write_access_allowed",
        "proximity_alert_triggered",
        "forum_topic_created",
        "forum_topic_edited",
        "forum_topic_closed",
        "forum_topic_reopened",
        "video_chat_scheduled",
        "video_chat_started",
        "video_chat_ended",
        "video_chat_participants_invited",
        "web_app_data",
        "poll",
        "dice",
        "game",
        "giveaway",
        "giveaway_winners",
    )
)
_NOT_SERVICE = ("poll", "dice", "game")  # skipped under their own name
# media field -> default content type when Telegram does not send mime_type
_MEDIA = {
    "document": "application/octet-stream",
    "video": "video/mp4",
    "audio": "audio/mpeg",
    "voice": "audio/ogg",
    "video_note": "video/mp4",
    "animation": "video/mp4",
}


@with_prefix("telegram")
def normalize(
    payload: bytes | str | dict, *, account: str = "default", max_bytes: int = MAX_JSON_BYTES
) -> Inbound | Skipped:
    """One Bot API Update as an Inbound, or Skipped with the update kind as the reason."""
    update = load_json(payload, max_bytes=max_bytes)
    update_id = integer(update, "update_id", "")
    for kind, is_edit in _MESSAGE_KINDS.items():
        if kind in update:
            message = obj(update, kind, "")
            return _message(message, kind, is_edit, account, update_id)
    if "callback_query" in update:
        return _callback_query(obj(update, "callback_query", ""), account, update_id)
    for kind in _SKIPPED_KINDS:
        if kind in update:
            return Skipped(reason=kind)
    # The Bot API adds update kinds often (every field but update_id is optional): one we
    # do not know yet is well-formed and carries no message we can read, so it is skipped
    # and counted, not quarantined. The reason (a counter name) says the kind only when the
    # key looks like one.
    others = sorted(k for k in update if k != "update_id")
    if not others:
        return Skipped(reason="empty_update")
    kind = others[0]
    return Skipped(
        reason=f"unknown_update:{kind}" if _KIND_NAME.fullmatch(kind) else "unknown_update"
    )


def _author(user: dict, at: str) -> Author:
    user_id = integer(user, "id", at)
    first = opt_string(user, "first_name", at)
    last = opt_string(user, "last_name", at)
    return Author(
        name=f"{first} {last}".strip(),
        identities=[Identity(kind=IdentityKind.TELEGRAM, value=str(user_id))],
        language_code=opt_string(user, "language_code", at) or None,
    )


def _message(
    message: dict, kind: str, is_edit: bool, account: str, update_id: int
) -> Inbound | Skipped:
    at = kind
    message_id = integer(message, "message_id", at)
    chat = obj(message, "chat", at)
    chat_id = integer(chat, "id", f"{at}.chat")
    chat_type = opt_string(chat, "type", f"{at}.chat")
    if chat_type == "channel":
        return Skipped(reason="channel_post")
    sender = opt_obj(message, "from", at)
    if sender is None:
        return Skipped(reason="no_sender")  # anonymous group admins post as the chat
    if boolean(sender, "is_bot", f"{at}.from"):
        return Skipped(reason="from_bot")
    service = [f for f in message.keys() & _SERVICE_FIELDS if message[f] is not None]
    if service:
        named = [f for f in _NOT_SERVICE if f in service]
        return Skipped(reason=named[0] if named else "service_message")

    date = unix_time(integer(message, "date", at), at, "date")
    base_id = f"{chat_id}:{message_id}"
    inbound = Inbound(
        channel=Channel.TELEGRAM,
        account=account,
        external_id=base_id,
        received_at=date,
        author=_author(sender, f"{at}.from"),
        text=opt_string(message, "text", at) or opt_string(message, "caption", at),
        thread_keys=[f"telegram:chat:{chat_id}"],
        message_keys=[f"telegram:msg:{chat_id}:{message_id}"],
        meta={
            "chat_id": str(chat_id),
            "message_id": str(message_id),
            "chat_type": chat_type,
            "update_id": str(update_id),
        },
    )
    username = opt_string(sender, "username", f"{at}.from")
    if username:
        inbound.meta["username"] = username
    if is_edit:
        edit_date = opt_int(message, "edit_date", at, default=message["date"])
        inbound.external_id = f"{base_id}:edit:{edit_date}"
        inbound.edit_of = base_id
        inbound.received_at = unix_time(edit_date, at, "edit_date")
        inbound.flags.append(Flag.EDITED)
    if "forward_origin" in message or "forward_date" in message:
        inbound.flags.append(Flag.FORWARDED)
        origin = _forward_origin(message, at)
        if origin:
            inbound.meta["forwarded_from"] = origin
    reply = opt_obj(message, "reply_to_message", at)
    if reply is not None:
        reply_id = integer(reply, "message_id", f"{at}.reply_to_message")
        inbound.thread_keys.append(f"telegram:msg:{chat_id}:{reply_id}")
        inbound.meta["reply_to_message_id"] = str(reply_id)
        inbound.flags.append(Flag.REPLY)
    inbound.attachments = _attachments(message, at)
    if not inbound.text and not inbound.attachments:
        return Skipped(reason="no_content")
    apply_text_hints(inbound)
    return inbound


def _forward_origin(message: dict, at: str) -> str:
    """Who the forwarded message came from, as far as Telegram tells (name or @username)."""
    origin = opt_obj(message, "forward_origin", at)
    if origin is not None:  # Bot API 7.0+: user, hidden_user, chat, channel
        oat = f"{at}.forward_origin"
        user = opt_obj(origin, "sender_user", oat)
        if user is not None:
            return opt_string(user, "username", f"{oat}.sender_user") or opt_string(
                user, "first_name", f"{oat}.sender_user"
            )
        chat = opt_obj(origin, "chat", oat) or opt_obj(origin, "sender_chat", oat)
        if chat is not None:
            return opt_string(chat, "username", oat) or opt_string(chat, "title", oat)
        return opt_string(origin, "sender_user_name", oat)
    user = opt_obj(message, "forward_from", at)  # before Bot API 7.0
    if user is not None:
        return opt_string(user, "username", f"{at}.forward_from") or opt_string(
            user, "first_name", f"{at}.forward_from"
        )
    chat = opt_obj(message, "forward_from_chat", at)
    if chat is not None:
        return opt_string(chat, "username", f"{at}.forward_from_chat") or opt_string(
            chat, "title", f"{at}.forward_from_chat"
        )
    return opt_string(message, "forward_sender_name", at)


def _file(media: dict, at: str, kind: str, content_type: str) -> Attachment:
    return Attachment(
        kind=kind,
        ref=string(media, "file_id", at),
        filename=opt_string(media, "file_name", at),
        content_type=opt_string(media, "mime_type", at) or content_type,
        size=max(0, opt_int(media, "file_size", at)),
    )


def _attachments(message: dict, at: str) -> list[Attachment]:
    found: list[Attachment] = []
    photos = opt_arr(message, "photo", at)
    if photos:  # sizes of one photo; keep the largest
        sizes = [item_obj(p, f"{at}.photo", i) for i, p in enumerate(photos)]
        largest = max(
            range(len(sizes)),
            key=lambda i: (
                opt_int(sizes[i], "width", f"{at}.photo[{i}]")
                * opt_int(sizes[i], "height", f"{at}.photo[{i}]"),
                i,
            ),
        )
        found.append(_file(sizes[largest], f"{at}.photo[{largest}]", "photo", "image/jpeg"))
    for field, content_type in _MEDIA.items():
        media = opt_obj(message, field, at)
        if media is not None:
            found.append(_file(media, f"{at}.{field}", field, content_type))
    sticker = opt_obj(message, "sticker", at)
    if sticker is not None:
        sat = f"{at}.sticker"
        content_type = (
            "application/x-tgsticker"
            if boolean(sticker, "is_animated", sat)
            else "video/webm"
            if boolean(sticker, "is_video", sat)
            else "image/webp"
        )
        attachment = _file(sticker, sat, "sticker", content_type)
        attachment.filename = opt_string(sticker, "emoji", sat)
        found.append(attachment)
    contact = opt_obj(message, "contact", at)
    if contact is not None:
        cat = f"{at}.contact"
        phone = string(contact, "phone_number", cat)
        name = f"{opt_string(contact, 'first_name', cat)} {opt_string(contact, 'last_name', cat)}"
        found.append(
            Attachment(
                kind="contact",
                content_type="text/vcard",
                filename=name.strip(),
                ref=e164(phone if phone.startswith("+") else f"+{phone}") or phone,
            )
        )
    venue = opt_obj(message, "venue", at)
    if venue is not None:
        found.append(_location(obj(venue, "location", f"{at}.venue"), f"{at}.venue.location"))
    else:
        location = opt_obj(message, "location", at)
        if location is not None:
            found.append(_location(location, f"{at}.location"))
    return found


def _location(location: dict[str, Any], at: str) -> Attachment:
    lat = number(location, "latitude", at)
    lon = number(location, "longitude", at)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise PayloadError(f"{at}: latitude/longitude out of range", reason="bad_field")
    return Attachment(kind="location", content_type="text/uri-list", ref=f"geo:{lat},{lon}")


def _callback_query(query: dict, account: str, update_id: int) -> Inbound | Skipped:
    """A button press. One carrying data (a CSAT rating, a menu choice) is a customer message."""
    at = "callback_query"
    query_id = string(query, "id", at)
    sender = obj(query, "from", at)
    data = opt_string(query, "data", at)
    if not data:
        return Skipped(reason="callback_query_without_data")
    message = opt_obj(query, "message", at)
    if message is None:
        return Skipped(reason="inline_callback_query")  # no chat to thread or reply in
    mat = f"{at}.message"
    message_id = integer(message, "message_id", mat)
    chat_id = integer(obj(message, "chat", mat), "id", f"{mat}.chat")
    inbound = Inbound(
        channel=Channel.TELEGRAM,
        account=account,
        external_id=f"callback:{query_id}",
        # The Bot API gives a press no time; the pressed message's date is the nearest fact.
        received_at=unix_time(integer(message, "date", mat), mat, "date"),
        author=_author(sender, f"{at}.from"),
        thread_keys=[f"telegram:chat:{chat_id}", f"telegram:msg:{chat_id}:{message_id}"],
        flags=[Flag.REPLY],
        meta={
            "chat_id": str(chat_id),
            "message_id": str(message_id),
            "callback_query_id": query_id,
            "callback_data": data,
            "update_id": str(update_id),
        },
    )
    username = opt_string(sender, "username", f"{at}.from")
    if username:
        inbound.meta["username"] = username
    return inbound
