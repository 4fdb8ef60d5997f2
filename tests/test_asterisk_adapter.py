"""scripts/asterisk_ami_adapter.py: AMI frames of an answered call, a missed one and a
voicemail map to Omnidesk's call events, and what it signs passes the server's own check."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from omnidesk.agents.cti_sign import verify
from omnidesk.config import CtiConfig
from omnidesk.errors import AuthError

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "asterisk_ami_adapter.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("asterisk_ami_adapter", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


ami = load()

AMI_TEXT = """Asterisk Call Manager/5.0.1\r
Response: Success\r
Message: Authentication accepted\r
\r
Event: Newchannel\r
Channel: PJSIP/trunk-00000001\r
CallerIDNum: 0501234567\r
Uniqueid: 1764950400.1\r
Linkedid: 1764950400.1\r
Timestamp: 1764950400.000000\r
\r
Event: Newchannel\r
Channel: PJSIP/2001-00000002\r
CallerIDNum: 2001\r
Uniqueid: 1764950401.2\r
Linkedid: 1764950400.1\r
Timestamp: 1764950401.000000\r
\r
Event: BridgeEnter\r
Channel: PJSIP/2001-00000002\r
Uniqueid: 1764950401.2\r
Linkedid: 1764950400.1\r
Timestamp: 1764950410.000000\r
\r
Event: BridgeEnter\r
Channel: PJSIP/trunk-00000001\r
Uniqueid: 1764950400.1\r
Linkedid: 1764950400.1\r
Timestamp: 1764950410.000000\r
\r
Event: Hangup\r
Channel: PJSIP/2001-00000002\r
Uniqueid: 1764950401.2\r
Linkedid: 1764950400.1\r
Timestamp: 1764950600.000000\r
\r
Event: Hangup\r
Channel: PJSIP/trunk-00000001\r
Uniqueid: 1764950400.1\r
Linkedid: 1764950400.1\r
Cause: 16\r
Timestamp: 1764950600.400000\r
\r
Event: Newchannel\r
Channel: PJSIP/trunk-00000003\r
CallerIDNum: +966112345678\r
Uniqueid: 1764980000.3\r
Linkedid: 1764980000.3\r
Timestamp: 1764980000.000000\r
\r
Event: Hangup\r
Channel: PJSIP/trunk-00000003\r
Uniqueid: 1764980000.3\r
Linkedid: 1764980000.3\r
Timestamp: 1764980030.000000\r
\r
Event: Newchannel\r
Channel: PJSIP/trunk-00000004\r
CallerIDNum: 0551112222\r
Uniqueid: 1764990000.4\r
Linkedid: 1764990000.4\r
Timestamp: 1764990000.000000\r
\r
Event: UserEvent\r
UserEvent: VoiceMail\r
Recording: /var/spool/asterisk/voicemail/default/100/INBOX/msg0003\r
Uniqueid: 1764990000.4\r
Linkedid: 1764990000.4\r
Timestamp: 1764990050.000000\r
\r
Event: Hangup\r
Channel: PJSIP/trunk-00000004\r
Uniqueid: 1764990000.4\r
Linkedid: 1764990000.4\r
Timestamp: 1764990051.000000\r
\r
"""


def test_a_day_of_ami_frames_maps_to_call_events() -> None:
    mapper = ami.CallMapper()
    events = [e for f in ami.frames(iter(AMI_TEXT.splitlines(True))) if (e := mapper.map(f))]
    assert [(e["call_id"], e["type"]) for e in events] == [
        ("1764950400.1", "new"), ("1764950400.1", "answered"), ("1764950400.1", "hangup"),
        ("1764980000.3", "new"), ("1764980000.3", "missed"),
        ("1764990000.4", "new"), ("1764990000.4", "voicemail"), ("1764990000.4", "missed"),
    ]  # fmt: skip
    new, answered, hangup = events[:3]
    assert new["caller"] == "0501234567" and new["at"] == "2025-12-05T16:00:00+00:00"
    assert answered["extension"] == "2001"
    assert hangup["duration_s"] == 190  # bridged at :10, the caller hung up at :600.4
    assert events[6]["recording"].endswith("INBOX/msg0003")
    assert len({e["event_id"] for e in events}) == len(events)  # each resend is a duplicate
    assert not mapper.open_calls and not mapper.answered_at  # nothing kept after the day


def test_an_unknown_or_partial_frame_maps_to_nothing() -> None:
    mapper = ami.CallMapper()
    assert mapper.map({"Event": "PeerStatus", "Peer": "PJSIP/2001"}) is None
    assert mapper.map({"Event": "Hangup", "Uniqueid": "9.9", "Linkedid": "9.9"}) is None
    assert mapper.map({"Event": "Newchannel"}) is None
    assert ami.extension_of("SIP/2001-0000001a") == "2001"


def test_what_it_signs_the_server_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PBX_SECRET_FOR_TEST", "s3cret-of-the-pbx")
    config = CtiConfig(pbx={"riyadh": {"secret_env": "PBX_SECRET_FOR_TEST"}},
                       callback_queue="callbacks")  # fmt: skip
    event = {"event_id": "1.1:new", "type": "new", "call_id": "1.1", "at": "2026-12-05T10:00:00"}
    request = ami.signed_request("http://omnidesk:8080/", "riyadh", b"s3cret-of-the-pbx", event)
    assert request.full_url == "http://omnidesk:8080/v1/cti/events"
    headers = {k.lower(): v for k, v in request.header_items()}
    body = request.data
    assert json.loads(body) == event
    args = ("riyadh", headers["x-omnidesk-timestamp"], headers["x-omnidesk-signature"])
    verify(config, *args, body, time.time())
    with pytest.raises(AuthError, match="Signature"):
        verify(config, *args, body.replace(b"new", b"old"), time.time())
