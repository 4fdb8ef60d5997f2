"""Helpers for store and pipeline tests: a runtime on the real Redis under a random prefix
(deleted at teardown), the real normalizers and router, and raw payload builders."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import dramatiq
import pytest

from omnidesk.configload import LoadedConfig, load_config
from omnidesk.model import Channel, RawPayload
from omnidesk.pipeline import Pipeline, make_broker
from omnidesk.runtime import Runtime
from omnidesk.store import Store

REDIS_URL = "redis://127.0.0.1:6379/0"
CONFIG = Path(__file__).parent / "fixtures" / "config" / "store.yaml"


def config_for(prefix: str, state_dir: Path) -> LoadedConfig:
    loaded = load_config(CONFIG)
    service = loaded.data.service.model_copy(
        update={"key_prefix": prefix, "state_dir": str(state_dir), "redis_url": REDIS_URL}
    )
    return replace(loaded, data=loaded.data.model_copy(update={"service": service}))


def write_config(prefix: str, state_dir: Path, path: Path) -> Path:
    """The test config as a file for a worker process, with this test's prefix and state."""
    text = CONFIG.read_text("utf-8")
    service = (
        f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n  state_dir: {state_dir}\n"
    )
    path.write_text(service + text, "utf-8")
    return path


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    Store.from_url(REDIS_URL, name).delete_all()


@pytest.fixture
def runtime(prefix: str, tmp_path: Path) -> Runtime:
    return Runtime.from_config(config_for(prefix, tmp_path / "state"))


@pytest.fixture
def pipeline(runtime: Runtime, prefix: str) -> Iterator[Pipeline]:
    """The dramatiq actors on the real Redis broker, under the test's prefix."""
    broker = make_broker(REDIS_URL, prefix)
    yield Pipeline(runtime, broker)
    broker.close()


@pytest.fixture
def worker(pipeline: Pipeline) -> Iterator[dramatiq.Worker]:
    """In-process worker threads for `pipeline`, drained at teardown."""
    w = pipeline.start_worker(threads=2)
    yield w
    w.stop(timeout=5_000)


def web(message: str, *, email: str = "", phone: str = "", **fields: str) -> RawPayload:
    form = {"message": message, **fields}
    if email:
        form["email"] = email
    if phone:
        form["phone"] = phone
    return RawPayload(
        channel=Channel.WEB,
        account="site",
        payload=json.dumps(form, ensure_ascii=False).encode(),
        received_at=datetime.now(UTC),
        source="test:web",
    )


def telegram(
    update_id: int, chat_id: int, message_id: int, text: str, **extra: object
) -> RawPayload:
    message = {
        "message_id": message_id,
        "date": 1_780_000_000 + update_id,
        "chat": {"id": chat_id, "type": "private", "first_name": "Sara"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Sara", "language_code": "ar"},
        "text": text,
        **extra,
    }
    kind = "edited_message" if "edit_date" in extra else "message"
    update = {"update_id": update_id, kind: message}
    return RawPayload(
        channel=Channel.TELEGRAM,
        account="bot",
        payload=json.dumps(update, ensure_ascii=False).encode(),
        received_at=datetime.now(UTC),
        source=f"telegram:{update_id}",
    )


def email(
    message_id: str,
    text: str,
    *,
    sender: str = "customer@example.com",
    subject: str = "Commercial registration",
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
) -> RawPayload:
    msg = EmailMessage()
    msg["From"] = f"Customer <{sender}>"
    msg["To"] = "care@mc.gov.sa"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    return RawPayload(
        channel=Channel.EMAIL,
        account="care",
        payload=msg.as_bytes(),
        received_at=datetime.now(UTC),
        source=f"imap:INBOX:{message_id}",
    )
