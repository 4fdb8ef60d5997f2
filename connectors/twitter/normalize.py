"""X API v2 JSON -> Inbound per message. Pure: no I/O, no clock.

Accepts a single object (`{"data": {...}, "includes": {...}}`) or a response page
(`{"data": [...], "includes": {...}, "meta": {...}}`), of tweets (mentions) or of DM events
(`dm_events` or `data` items with `event_type`). One result per item, in order:
an Inbound for a message, a Skipped for a retweet (also one written as `RT @user:`), a
non-message DM event, or an item that names no author: one such item never refuses the page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from connectors.base_normalize import (
    MAX_JSON_BYTES,
    apply_text_hints,
    id_string,
    iso_time,
    item_obj,
    load_json,
    opt_arr,
    opt_obj,
    opt_string,
    string,
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

# The @handles X prefixes to a reply (everyone in the conversation, us included).
_LEADING_MENTIONS = re.compile(r"^(?:\s*@([A-Za-z0-9_]{1,15})\b)+\s*")
_HANDLE = re.compile(r"@([A-Za-z0-9_]{1,15})")
# A retweet written by hand or by an old client ("RT @user: ..."): X sends no
# referenced_tweets for it, and it is someone else's words, not a customer's message.
_MANUAL_RETWEET = re.compile(r"\s*RT @[A-Za-z0-9_]{1,15}:")
_TWITTER_EPOCH_MS = 1288834974657
_MEDIA_TYPES = {"photo": "image/jpeg", "video": "video/mp4", "animated_gif": "video/mp4"}


@with_prefix("x")
def normalize(
    payload: bytes | str | dict, *, account: str = "default", max_bytes: int = MAX_JSON_BYTES
) -> list[Inbound | Skipped]:
    """Every tweet or DM event of the payload, in order; `[Skipped]` for an empty page."""
    body = load_json(payload, max_bytes=max_bytes)
    key = "dm_events" if "dm_events" in body else "data"
    data = body.get(key)
    if data is None:
        if "errors" in body or "meta" in body:
            return [Skipped(reason="empty_page")]
        raise PayloadError("data: missing field", reason="missing_field")
    if isinstance(data, dict):
        items, single = [data], True
    elif isinstance(data, list):
        items, single = data, False
    else:
        raise PayloadError(f"{key}: expected an object or an array", reason="bad_field")
    if not items:
        return [Skipped(reason="empty_page")]
    includes = opt_obj(body, "includes", "") or {}
    users = _index(includes, "users", "id")
    media = _index(includes, "media", "media_key")
    results: list[Inbound | Skipped] = []
    for i, raw in enumerate(items):
        at = key if single else f"{key}[{i}]"
        item = item_obj(raw, key, i)
        if "event_type" in item or "dm_conversation_id" in item:
            results.append(_dm(item, at, account, users, media))
        else:
            results.append(_tweet(item, at, account, users, media))
    return results


def _index(includes: dict, field: str, key: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for i, raw in enumerate(opt_arr(includes, field, "includes")):
        item = item_obj(raw, f"includes.{field}", i)
        out[id_string(item, key, f"includes.{field}[{i}]")] = item
    return out


def _created(item: dict, at: str, item_id: str) -> datetime:
    """`created_at` when requested in the fields; else the time inside the snowflake id."""
    if item.get("created_at") is not None:
        return iso_time(item["created_at"], at, "created_at")
    if not item_id.isascii() or not item_id.isdigit() or len(item_id) > 20:
        raise PayloadError(f"{at}.created_at: missing field", reason="missing_field")
    ms = (int(item_id) >> 22) + _TWITTER_EPOCH_MS
    return datetime.fromtimestamp(min(ms, 253_402_300_799_000) / 1000, UTC)


def _author(users: dict[str, dict], user_id: str) -> tuple[Author, str]:
    identities = [Identity(kind=IdentityKind.TWITTER, value=user_id)]
    user = users.get(user_id)
    if user is None:
        return Author(identities=identities), ""
    at = f"includes.users[id={user_id}]"
    handle = opt_string(user, "username", at)
    if handle:
        identities.append(Identity(kind=IdentityKind.TWITTER_HANDLE, value=handle.lower()))
    return Author(name=opt_string(user, "name", at), identities=identities), handle


def _media(item: dict, at: str, media: dict[str, dict]) -> list[Attachment]:
    attachments = opt_obj(item, "attachments", at)
    if attachments is None:
        return []
    found = []
    for i, raw in enumerate(opt_arr(attachments, "media_keys", f"{at}.attachments")):
        if not isinstance(raw, str):
            raise PayloadError(
                f"{at}.attachments.media_keys[{i}]: expected a string", reason="bad_field"
            )
        info = media.get(raw, {})
        kind = opt_string(info, "type", f"includes.media[{raw}]") or "media"
        found.append(
            Attachment(
                kind=kind,
                ref=raw,
                content_type=_MEDIA_TYPES.get(kind, "application/octet-stream"),
                filename=opt_string(info, "url", f"includes.media[{raw}]"),
            )
        )
    return found


def _expand_urls(text: str, entities: dict | None, at: str) -> str:
    """Replace each t.co link with the address it stands for."""
    if entities is None:
        return text
    for i, raw in enumerate(opt_arr(entities, "urls", f"{at}.entities")):
        url = item_obj(raw, f"{at}.entities.urls", i)
        short = opt_string(url, "url", f"{at}.entities.urls[{i}]")
        expanded = opt_string(url, "expanded_url", f"{at}.entities.urls[{i}]")
        if short and expanded:
            text = text.replace(short, expanded)
    return text


def _tweet(
    item: dict, at: str, account: str, users: dict[str, dict], media: dict[str, dict]
) -> Inbound | Skipped:
    tweet_id = id_string(item, "id", at)
    text = string(item, "text", at)
    entities = opt_obj(item, "entities", at)
    note = opt_obj(item, "note_tweet", at)  # a long post: the full text lives here
    if note is not None and opt_string(note, "text", f"{at}.note_tweet"):
        text = string(note, "text", f"{at}.note_tweet")
        entities = opt_obj(note, "entities", f"{at}.note_tweet")
    replied_to = ""
    for i, raw in enumerate(opt_arr(item, "referenced_tweets", at)):
        ref = item_obj(raw, f"{at}.referenced_tweets", i)
        ref_type = string(ref, "type", f"{at}.referenced_tweets[{i}]")
        if ref_type == "retweeted":
            return Skipped(reason="retweet")
        if ref_type == "replied_to":
            replied_to = id_string(ref, "id", f"{at}.referenced_tweets[{i}]")
    if _MANUAL_RETWEET.match(text):
        return Skipped(reason="retweet")
    if item.get("author_id") is None:  # a withheld or deleted author: the rest of the page stays
        return Skipped(reason="no_author_id")
    author_id = id_string(item, "author_id", at)
    conversation_id = (
        id_string(item, "conversation_id", at) if "conversation_id" in item else tweet_id
    )
    author, handle = _author(users, author_id)
    text = _expand_urls(text, entities, at)
    leading = _LEADING_MENTIONS.match(text)
    mentions = [m.lower() for m in _HANDLE.findall(leading.group(0))] if leading else []
    if leading:
        text = text[leading.end() :]
    inbound = Inbound(
        channel=Channel.TWITTER,
        account=account,
        external_id=f"tweet:{tweet_id}",
        received_at=_created(item, at, tweet_id),
        author=author,
        text=text,
        thread_keys=[f"twitter:conv:{conversation_id}"],
        message_keys=[f"twitter:tweet:{tweet_id}"],
        attachments=_media(item, at, media),
        meta={
            "kind": "mention",
            "tweet_id": tweet_id,
            "conversation_id": conversation_id,
            "author_id": author_id,
        },
    )
    if handle:
        inbound.meta["username"] = handle
    if mentions:
        inbound.meta["mentions"] = ",".join(mentions)
    if replied_to:
        inbound.thread_keys.append(f"twitter:tweet:{replied_to}")
        inbound.meta["in_reply_to_tweet_id"] = replied_to
        inbound.flags.append(Flag.REPLY)
    if item.get("in_reply_to_user_id") is not None:
        inbound.meta["in_reply_to_user_id"] = id_string(item, "in_reply_to_user_id", at)
    lang = opt_string(item, "lang", at)
    if lang:
        inbound.meta["lang"] = lang
    apply_text_hints(inbound)
    return inbound


def _dm(
    item: dict, at: str, account: str, users: dict[str, dict], media: dict[str, dict]
) -> Inbound | Skipped:
    event_id = id_string(item, "id", at)
    event_type = opt_string(item, "event_type", at) or "MessageCreate"
    if event_type != "MessageCreate":
        return Skipped(reason=f"dm_event:{event_type}")  # ParticipantsJoin, ParticipantsLeave
    conversation = id_string(item, "dm_conversation_id", at)
    if item.get("sender_id") is None:  # as for a tweet: skip the one event, keep the page
        return Skipped(reason="no_sender_id")
    sender_id = id_string(item, "sender_id", at)
    author, handle = _author(users, sender_id)
    text = _expand_urls(opt_string(item, "text", at), opt_obj(item, "entities", at), at)
    inbound = Inbound(
        channel=Channel.TWITTER,
        account=account,
        external_id=f"dm:{event_id}",
        received_at=_created(item, at, event_id),
        author=author,
        text=text,
        thread_keys=[f"twitter:dm:{conversation}"],
        message_keys=[f"twitter:dm_event:{event_id}"],
        attachments=_media(item, at, media),
        meta={
            "kind": "dm",
            "event_id": event_id,
            "dm_conversation_id": conversation,
            "sender_id": sender_id,
        },
    )
    if handle:
        inbound.meta["username"] = handle
    for i, raw in enumerate(opt_arr(item, "referenced_tweets", at)):
        ref = item_obj(raw, f"{at}.referenced_tweets", i)
        inbound.meta["shared_tweet_id"] = id_string(ref, "id", f"{at}.referenced_tweets[{i}]")
    if not inbound.text and not inbound.attachments and "shared_tweet_id" not in inbound.meta:
        return Skipped(reason="no_content")
    apply_text_hints(inbound)
    return inbound
