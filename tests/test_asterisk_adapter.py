"""scripts/asterisk_ami_adapter.py: AMI frames of an answered call, a missed one and a
voicemail map to Omnidesk's call events, and what it signs passes the server's own check; a
bad Timestamp is taken as now, and an event is resent through an outage until it is taken
(a local http.server answering 503s), while a refusal no resend can cure is dropped."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def test_a_timestamp_that_is_no_number_is_taken_as_now() -> None:
    mapper, now = ami.CallMapper(), 1764950400.0
    legs = {"Uniqueid": "1.1", "Linkedid": "1.1"}
    assert mapper.map({"Event": "Newchannel", **legs, "Timestamp": "soon"}, now)
    for stamp in ("soon", "nan", "inf", "1e300"):
        mapper.answered_at.clear()
        frame = {"Event": "BridgeEnter", "Channel": "PJSIP/2001-1", "Uniqueid": "1.2",
                 "Linkedid": "1.1", "Timestamp": stamp}  # fmt: skip
        answered = mapper.map(frame, now)
        assert answered is not None and answered["at"] == "2025-12-05T16:00:00+00:00"
    hangup = mapper.map({"Event": "Hangup", **legs, "Timestamp": "later"}, now + 30)
    assert hangup is not None and hangup["duration_s"] == 30  # both taken as their "now"


class Omnidesk(BaseHTTPRequestHandler):
    """Answers each POST with the next status of the server's `statuses`."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        assert isinstance(self.server, Scripted)
        status = self.server.statuses.pop(0)
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


class Scripted(ThreadingHTTPServer):
    def __init__(self, statuses: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), Omnidesk)
        self.statuses = statuses


@pytest.fixture
def omnidesk_at() -> Iterator[Callable[[list[int]], str]]:
    servers: list[Scripted] = []

    def start(statuses: list[int]) -> str:
        server = Scripted(statuses)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_event_is_resent_through_an_outage_and_a_refusal_is_dropped(
    omnidesk_at: Callable[[list[int]], str],
) -> None:
    event = {"event_id": "1.1:new", "type": "new", "call_id": "1.1", "at": "2026-12-05T10:00"}
    waits: list[float] = []
    statuses = [503, 503, 401, 502, 201]  # PostgreSQL away, a clock being fixed, a proxy
    assert ami.post(omnidesk_at(statuses), "riyadh", b"s", event, sleep=waits.append)
    assert statuses == [] and waits == [1, 2, 4, 8]
    statuses = [400, 201]  # a refusal no resend can cure: dropped at once
    assert not ami.post(omnidesk_at(statuses), "riyadh", b"s", event, sleep=waits.append)
    assert statuses == [201] and len(waits) == 4
    assert [ami.worth_resending(s) for s in (None, 500, 503, 401, 400, 404, 413)] == [
        True, True, True, True, False, False, False,
    ]  # fmt: skip
    many: list[float] = []
    statuses = [503] * 9 + [201]  # longer than the old eight tries; the wait stops at a minute
    assert ami.post(omnidesk_at(statuses), "riyadh", b"s", event, sleep=many.append)
    assert many == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_ami_is_read_on_while_omnidesk_is_away() -> None:
    """The AMI reader fills its queue from a live AMI socket with nobody posting: an outage
    on Omnidesk's side never stalls the reading (Asterisk drops a session it cannot write)."""
    import queue
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)  # the login
            conn.sendall(AMI_TEXT.encode())
            time.sleep(5)  # the session stays open, as Asterisk's does

    threading.Thread(target=serve, daemon=True).start()
    events: queue.Queue[dict[str, object]] = queue.Queue()
    threading.Thread(
        target=ami.read_ami, args=("127.0.0.1", port, "omnidesk", "s3cret", events), daemon=True
    ).start()
    taken = [events.get(timeout=10) for _ in range(2)]
    assert [e["type"] for e in taken] == ["new", "answered"]
    server.close()
