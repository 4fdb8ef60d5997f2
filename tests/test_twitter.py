"""The X connector against a local server speaking the v2 wire format, through real tweepy."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.catalog import validate_entry
from connectors.registry import normalize
from connectors.state import CursorStore
from connectors.twitter.config import TwitterConfig
from connectors.twitter.connector import TwitterConnector
from connectors.twitter.thread import split_thread, weighted_length
from omnidesk.errors import AuthError, ConfigError, TransientError
from omnidesk.model import Channel, Inbound, Outbound, RawPayload, Skipped
from tests.fakex import OUR_ID, FakeX, fake_x_server  # noqa: F401
from tests.services import eventually

pytestmark = pytest.mark.timeout(30)


class Collect:
    """A sink that keeps what it is given, or fails while `fail` is set."""

    def __init__(self) -> None:
        self.batches: list[list[RawPayload]] = []
        self.fail = False

    async def __call__(self, items: list[RawPayload]) -> None:
        if self.fail:
            raise TransientError("broker unavailable")
        self.batches.append(items)

    @property
    def raws(self) -> list[RawPayload]:
        return [raw for batch in self.batches for raw in batch]

    def tweet_ids(self) -> list[str]:
        return [
            r.meta["tweet_id"] if r.meta.get("kind") == "mention" else r.meta["event_id"]
            for raw in self.raws
            for r in normalize(Channel.TWITTER, raw.payload, account=raw.account)
            if isinstance(r, Inbound)
        ]


def config(fake: FakeX, **extra: object) -> TwitterConfig:
    entry = {
        "name": "mci_x",
        "kind": "twitter",
        "user_id": OUR_ID,
        "bearer_token_env": "TEST_X_BEARER",
        "api_base": fake.base,
        "poll_interval": 0.05,
        **extra,
    }
    model = validate_entry(entry)
    assert isinstance(model, TwitterConfig)
    return model


@pytest.fixture(autouse=True)
def x_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_X_BEARER", "bearer-secret")
    for name in ("CK", "CS", "AT", "ATS"):
        monkeypatch.setenv(f"TEST_X_{name}", f"{name.lower()}-secret")


@pytest.fixture
async def cursors(redis_prefix) -> CursorStore:
    client, prefix = redis_prefix
    return CursorStore(client, prefix)


async def connector(fake: FakeX, cursors: CursorStore, **extra: object) -> TwitterConnector:
    c = TwitterConnector(config(fake, **extra), cursors)
    await c.initialize()
    return c


async def test_mentions_arrive_and_since_id_advances(fake_x: FakeX, cursors: CursorStore) -> None:
    first = fake_x.mention("How do I renew my CR?")
    second = fake_x.mention("متى يصدر السجل التجاري؟", author="1500000000000000002")
    sink = Collect()
    async with await connector(fake_x, cursors) as x:
        assert await x.run_once(sink) == pytest.approx(0.05)
        assert sorted(sink.tweet_ids()) == [first, second]
        raw = sink.raws[0]
        assert raw.channel == Channel.TWITTER and raw.account == "mci_x"
        assert raw.source == f"x:mentions:{second}"
        body = json.loads(raw.payload)
        assert {u["username"] for u in body["includes"]["users"]} == {"Noura_Q", "omar_biz"}
        assert await cursors.get("mci_x") == {"mentions": {"since_id": second}}
        request = fake_x.requests[0]
        assert request.headers["Authorization"] == "Bearer bearer-secret"
        assert "since_id" not in request.query
        assert "author_id" in request.query["expansions"]
        assert "conversation_id" in request.query["tweet.fields"]
        assert request.query["user.fields"] == "username,name"

        third = fake_x.mention("Any news?")
        await x.run_once(sink)
        assert fake_x.requests[-1].query["since_id"] == second
        assert sink.tweet_ids()[-1] == third and len(sink.tweet_ids()) == 3
        await x.run_once(sink)  # nothing new: nothing handed over
        assert len(sink.raws) == 2
        assert x.status.received == 3 and x.status.handed_over == 3


async def test_failed_hand_over_keeps_cursor_and_fetches_same_page(
    fake_x: FakeX, cursors: CursorStore
) -> None:
    tweet = fake_x.mention("my trademark application")
    sink = Collect()
    sink.fail = True
    async with await connector(fake_x, cursors) as x:
        with pytest.raises(TransientError):
            await x.run_once(sink)
        assert await cursors.get("mci_x") is None
        sink.fail = False
        await x.run_once(sink)
    assert sink.tweet_ids() == [tweet]
    assert "since_id" not in fake_x.requests[1].query  # the same page again
    assert await cursors.get("mci_x") == {"mentions": {"since_id": tweet}}


async def test_pagination_hands_over_every_page_then_advances(
    fake_x: FakeX, cursors: CursorStore
) -> None:
    ids = [fake_x.mention(f"question {i}") for i in range(12)]
    sink = Collect()
    async with await connector(fake_x, cursors, max_results=5) as x:
        await x.run_once(sink)
    assert sorted(sink.tweet_ids()) == ids
    assert len(sink.raws) == 3  # one RawPayload per page
    tokens = [r.query.get("pagination_token") for r in fake_x.requests]
    assert tokens == [None, "p5", "p10"]
    assert await cursors.get("mci_x") == {"mentions": {"since_id": ids[-1]}}


async def test_failure_on_a_later_page_resumes_there(fake_x: FakeX, cursors: CursorStore) -> None:
    ids = [fake_x.mention(f"q{i}") for i in range(7)]
    sink = Collect()
    async with await connector(fake_x, cursors, max_results=5) as x:
        calls = 0

        async def fail_second(items: list[RawPayload]) -> None:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise TransientError("broker unavailable")
            await sink(items)

        with pytest.raises(TransientError):
            await x.run_once(fail_second)
        # the first page is safe; the cursor keeps the old since_id and where to resume
        assert await cursors.get("mci_x") == {"mentions": {"next_token": "p5", "newest": ids[-1]}}
        await x.run_once(sink)
    assert fake_x.requests[-1].query["pagination_token"] == "p5"
    assert sorted(sink.tweet_ids()) == ids
    assert await cursors.get("mci_x") == {"mentions": {"since_id": ids[-1]}}


async def test_429_backs_off_until_reset_and_reports_it(
    fake_x: FakeX, cursors: CursorStore
) -> None:
    reset = int(time.time()) + 120
    fake_x.rate_limited_until = reset
    x = await connector(fake_x, cursors)
    with pytest.raises(TransientError) as caught:
        await x.run_once(Collect())
    assert 110 <= (caught.value.retry_after or 0) <= 121

    task = asyncio.create_task(x.start(Collect()))
    try:
        assert await eventually(lambda: x.status.state == "backoff")
        report = x.status.as_dict()
        assert "429" in report["last_error"] and report["last_error_kind"] == "transient"
        assert report["details"]["rate_limit_reset"].startswith(
            time.strftime("%Y-%m-%dT%H:%M", time.gmtime(reset))
        )
        assert report["details"]["rate_limits"]["mentions"]["remaining"] == 0
        seen = len(fake_x.requests)
        await asyncio.sleep(0.5)
        assert len(fake_x.requests) == seen  # asleep until the reset, not hammering
    finally:
        await x.stop()
        await asyncio.wait_for(task, 5)
        await x.shutdown()


async def test_spent_window_waits_until_reset(fake_x: FakeX, cursors: CursorStore) -> None:
    fake_x.mention("hello")
    fake_x.remaining = 0  # the last call of the window succeeded
    async with await connector(fake_x, cursors) as x:
        wait = await x.run_once(Collect())
    assert wait is not None and 800 < wait <= 900
    assert x.status.as_dict()["details"]["rate_limits"]["mentions"]["remaining"] == 0


async def test_401_is_an_auth_error(fake_x: FakeX, cursors: CursorStore) -> None:
    fake_x.status_override = 401
    async with await connector(fake_x, cursors) as x:
        with pytest.raises(AuthError, match="401"):
            await x.run_once(Collect())


async def test_dm_events_stop_at_cursor_and_skip_our_own(
    fake_x: FakeX, cursors: CursorStore
) -> None:
    a = fake_x.dm("مرحبا، عندي استفسار عن العلامة التجارية")
    fake_x.dm("Thank you, we are looking into it", sender=OUR_ID)
    sink = Collect()
    async with await connector(fake_x, cursors, read=["dm_events"], max_results=5) as x:
        await x.run_once(sink)
        assert sink.tweet_ids() == [a]
        assert fake_x.requests[0].query["event_types"] == "MessageCreate"
        state = await cursors.get("mci_x")
        assert int(state["dm_events"]["since_id"]) > int(a)
        for i in range(6):
            fake_x.dm(f"follow-up {i}")
        await x.run_once(sink)
    assert len(sink.tweet_ids()) == 7 and len(set(sink.tweet_ids())) == 7
    # the second page reached the cursor: no third request
    assert [r.query.get("pagination_token") for r in fake_x.requests[1:]] == [None, "p5"]


async def test_reply_as_tweet_thread_or_dm_as_the_ticket_came_in(
    fake_x: FakeX, cursors: CursorStore
) -> None:
    x = TwitterConnector(
        config(
            fake_x,
            bearer_token_env=None,
            consumer_key_env="TEST_X_CK",
            consumer_secret_env="TEST_X_CS",
            access_token_env="TEST_X_AT",
            access_token_secret_env="TEST_X_ATS",
        ),
        cursors,
    )
    async with x:
        short = Outbound(
            id="o1",
            ticket_id="t",
            channel=Channel.TWITTER,
            account="mci_x",
            text="تم تجديد سجلكم التجاري",
            meta={"kind": "mention", "tweet_id": "1785600000000000002"},
        )
        receipt = await x.send(short)
        assert receipt.status == "sent" and receipt.external_id == fake_x.posted[0]["id"]
        assert fake_x.posted[0]["reply"] == {"in_reply_to_tweet_id": "1785600000000000002"}
        assert fake_x.requests[-1].headers["Authorization"].startswith("OAuth ")

        long_text = " ".join(["كلمة"] * 120)  # 599 characters: three posts
        receipt = await x.send(
            Outbound(
                id="o2",
                ticket_id="t",
                channel=Channel.TWITTER,
                account="mci_x",
                text=long_text,
                meta={"kind": "mention", "tweet_id": "1785600000000000009"},
            )
        )
        thread = fake_x.posted[1:]
        assert len(thread) == 3 and receipt.detail.startswith("thread of 3 posts")
        assert thread[0]["reply"]["in_reply_to_tweet_id"] == "1785600000000000009"
        assert thread[1]["reply"]["in_reply_to_tweet_id"] == thread[0]["id"]
        assert thread[2]["reply"]["in_reply_to_tweet_id"] == thread[1]["id"]
        assert " ".join(p["text"] for p in thread) == long_text

        conversation = f"{OUR_ID}-1500000000000000001"
        receipt = await x.send(
            Outbound(
                id="o3",
                ticket_id="t",
                channel=Channel.TWITTER,
                account="mci_x",
                text="Your request is registered",
                meta={"kind": "dm", "dm_conversation_id": conversation},
            )
        )
    dm = fake_x.posted[-1]
    assert dm["kind"] == "dm" and dm["conversation"] == conversation
    assert dm["text"] == "Your request is registered" and receipt.external_id == dm["id"]


def test_thread_split_counts_like_x() -> None:
    assert weighted_length("abc") == 3
    assert weighted_length("مرحبا") == 5
    assert weighted_length("日本") == 4
    assert weighted_length("see https://example.com/a/very/long/path/indeed") == 4 + 23
    parts = split_thread("word " * 100)
    assert all(weighted_length(p) <= 280 for p in parts) and len(parts) == 2
    assert split_thread("x" * 600) == ["x" * 280, "x" * 280, "x" * 40]


async def test_missing_secret_names_the_variable(
    fake_x: FakeX, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_X_BEARER")
    x = TwitterConnector(config(fake_x))
    with pytest.raises(ConfigError, match="TEST_X_BEARER"):
        await x.initialize()


def test_config_rejects_unknown_keys_and_half_oauth1() -> None:
    with pytest.raises(ValueError, match="poll_intervall"):
        validate_entry({"name": "x", "kind": "twitter", "user_id": "1", "poll_intervall": 5})
    with pytest.raises(ValueError, match="consumer_secret_env"):
        validate_entry({"name": "x", "kind": "twitter", "user_id": "1", "consumer_key_env": "CK"})


async def test_end_to_end_mention_becomes_a_ticket(
    fake_x: FakeX,
    cursors: CursorStore,
    runtime,
) -> None:
    tweet = fake_x.mention("How do I renew my commercial registration?")

    async def sink(items: list[RawPayload]) -> None:
        await asyncio.to_thread(runtime.process, items)

    async with await connector(fake_x, cursors) as x:
        await x.run_once(sink)
    tickets = runtime.store.list_tickets()
    assert len(tickets) == 1
    ticket = tickets[0]
    assert ticket.channel == Channel.TWITTER
    messages = runtime.store.ticket_messages(ticket.id)
    assert "renew my commercial registration" in messages[0].text
    assert messages[0].external_id == f"tweet:{tweet}"


async def test_a_page_with_an_authorless_item_and_a_manual_retweet_keeps_the_rest(
    fake_x: FakeX,
    cursors: CursorStore,
    runtime,
) -> None:
    """Through the connector and intake: the item with no author_id and the `RT @user:`
    are skipped and counted; the page's two customer mentions become tickets; nothing is
    quarantined."""
    first = fake_x.mention("How do I renew my commercial registration?")
    fake_x.mention("posted by an account since suspended")
    del fake_x.mentions[-1]["author_id"]
    fake_x.mention("ignored")
    fake_x.mentions[-1]["text"] = "RT @saudipost: shipments are delayed this week"
    last = fake_x.mention("متى يصدر الترخيص؟", author="1500000000000000002")

    async def sink(items: list[RawPayload]) -> None:
        await asyncio.to_thread(runtime.process, items)

    async with await connector(fake_x, cursors) as x:
        await x.run_once(sink)
    store = runtime.store
    external = sorted(
        m.external_id for t in store.list_tickets() for m in store.ticket_messages(t.id)
    )
    assert external == [f"tweet:{first}", f"tweet:{last}"]
    counts = store.counts()
    assert counts["quarantine"] == 0
    assert counts["stats"].get("skipped:no_author_id") == 1
    assert counts["stats"].get("skipped:retweet") == 1


_HANDLES = st.from_regex(r"[A-Za-z0-9_]{1,15}", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(authored=st.lists(st.booleans(), min_size=1, max_size=8))
def test_only_the_items_without_author_are_skipped(authored: list[bool]) -> None:
    """Whichever items of a page lack author_id, each of those is skipped alone and every
    other item is a message, in the page's order."""
    page = {
        "data": [
            {"id": str(1785600000000000100 + i), "text": f"@MCI_SA question {i}",
             "created_at": "2024-05-01T11:00:00.000Z"}
            | ({"author_id": str(1500000000000000100 + i)} if has else {})
            for i, has in enumerate(authored)
        ]
    }  # fmt: skip
    results = normalize(Channel.TWITTER, page, account="x")
    assert len(results) == len(authored)
    for i, (has, result) in enumerate(zip(authored, results, strict=True)):
        if has:
            assert isinstance(result, Inbound) and result.text == f"question {i}"
        else:
            assert isinstance(result, Skipped) and result.reason == "no_author_id"


@settings(max_examples=100, deadline=None)
@given(handle=_HANDLES, words=st.text(max_size=40), lead=st.sampled_from(["", " ", "\n"]))
def test_text_starting_rt_at_user_colon_is_a_retweet(handle: str, words: str, lead: str) -> None:
    tweet = {"id": "1785600000000000200", "text": f"{lead}RT @{handle}:{words}",
             "author_id": "1500000000000000001"}  # fmt: skip
    assert normalize(Channel.TWITTER, {"data": tweet}, account="x") == [Skipped(reason="retweet")]
    # the same words as a comment (not at the start) are the customer's own: a message
    tweet["text"] = f"@MCI_SA see RT @{handle}: {words}"
    [result] = normalize(Channel.TWITTER, {"data": tweet}, account="x")
    assert isinstance(result, Inbound)
