"""Connector kinds and normalizers come from the installed entry points, not string tables."""

from __future__ import annotations

import pytest

from connectors import catalog, registry
from connectors.telegram.connector import TelegramConnector
from connectors.telegram.normalize import normalize as telegram_normalize
from omnidesk.errors import PermanentError
from omnidesk.model import Channel


def test_every_built_in_connector_kind_is_an_entry_point() -> None:
    assert set(catalog.kinds()) == {"maildir", "imap", "telegram", "twitter", "whatsapp"}
    assert catalog.connector_class("telegram") is TelegramConnector
    with pytest.raises(ValueError, match=r"unknown connector kind 'fax' \(known: imap, maildir"):
        catalog.connector_class("fax")


def test_every_channel_has_its_normalizer_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registry", {})
    assert registry.normalizer(Channel.TELEGRAM) is telegram_normalize
    for channel in Channel:
        assert callable(registry.normalizer(channel))


def test_a_channel_without_a_normalizer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registry", {})
    monkeypatch.setattr(registry, "GROUP", "omnidesk.no-such-group")
    with pytest.raises(PermanentError, match="no normalizer registered for channel web"):
        registry.normalizer(Channel.WEB)
