#!/usr/bin/env python3
"""An example bridge from Asterisk to Omnidesk: reads AMI events from a socket, maps
Newchannel / BridgeEnter / Hangup / VoiceMail to Omnidesk's call events, signs each with the
PBX's shared secret (HMAC-SHA256 over "<timestamp>.<body>") and posts it to
POST /v1/cti/events. Standard library only, so it runs on the PBX host as it is.

    AMI_SECRET=... OMNIDESK_PBX_SECRET=... scripts/asterisk_ami_adapter.py \\
        --ami 127.0.0.1:5038 --ami-user omnidesk --url http://omnidesk:8080 --pbx riyadh-pbx

What it maps (a call is its Linkedid; the caller's leg is the channel whose Uniqueid is it):
- Newchannel of the caller's leg: `new`, caller = CallerIDNum;
- BridgeEnter of another leg of the call (the agent's phone joining): `answered`, the
  extension read from the channel name (PJSIP/2001-00000012 -> 2001);
- Hangup of the caller's leg: `hangup` with the talk time when it was answered, else `missed`;
- VoiceMail, as the dialplan announces it after VoiceMail() with
  `UserEvent(VoiceMail,Recording: ${VM_MESSAGEFILE})` (AMI: Event: UserEvent,
  UserEvent: VoiceMail): `voicemail` with the recording's reference.
Anything else is ignored. An event Omnidesk does not take (503 while PostgreSQL is away, any
5xx, no connection) is tried again, without limit, with a doubling wait capped at a minute;
so is a 401, which a fixed clock or secret cures (logged as an error each time). Any other
4xx is logged and dropped: resending cannot help. AMI is read on a thread of its own into a
queue in memory, so an outage never stalls the reading (Asterisk ends a manager session it
cannot write to); what is queued is lost only if the adapter itself stops.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import math
import os
import queue
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

log = logging.getLogger("asterisk_ami_adapter")

Frame = dict[str, str]


def frames(lines: Iterator[str]) -> Iterator[Frame]:
    """AMI's wire format: `Key: Value` lines, a blank line ends each message."""
    frame: Frame = {}
    for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if frame:
                yield frame
            frame = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            frame[key.strip()] = value.strip()
    if frame:
        yield frame


def extension_of(channel: str) -> str:
    """The endpoint of a channel name: PJSIP/2001-00000012 -> 2001, SIP/2001-1a -> 2001."""
    resource = channel.partition("/")[2] or channel
    return resource.rpartition("-")[0] or resource


def _seconds(frame: Frame, now: float) -> float:
    """The event's Unix time (AMI's Timestamp with `timestampevents = yes`), else now: a
    Timestamp that is no number of this era is taken as now, never the adapter's end."""
    try:
        seconds = float(frame.get("Timestamp") or now)
    except ValueError:
        return now
    return seconds if math.isfinite(seconds) and 0 <= seconds < 1e10 else now


def _moment(frame: Frame, now: float) -> str:
    """The event's time in ISO."""
    return datetime.fromtimestamp(_seconds(frame, now), UTC).isoformat()


@dataclass
class CallMapper:
    """AMI frames -> Omnidesk call events; remembers each open call's answer time."""

    answered_at: dict[str, float] = field(default_factory=dict)
    open_calls: set[str] = field(default_factory=set)

    def map(self, frame: Frame, now: float | None = None) -> dict[str, object] | None:
        """The Omnidesk event one AMI frame stands for, or None when it stands for none."""
        now = time.time() if now is None else now
        kind = frame.get("Event", "")
        if kind == "UserEvent" and frame.get("UserEvent") == "VoiceMail":
            kind = "VoiceMail"
        call = frame.get("Linkedid") or frame.get("Uniqueid", "")
        caller_leg = frame.get("Uniqueid", "") == call
        if not call:
            return None
        at = _moment(frame, now)
        if kind == "Newchannel" and caller_leg:
            self.open_calls.add(call)
            return _event(call, "new", at, caller=frame.get("CallerIDNum", ""))
        if kind == "BridgeEnter" and not caller_leg and call in self.open_calls:
            if call in self.answered_at:
                return None  # a second leg (a transfer): the call was answered already
            self.answered_at[call] = _seconds(frame, now)
            return _event(call, "answered", at, extension=extension_of(frame.get("Channel", "")))
        if kind == "VoiceMail":
            return _event(call, "voicemail", at, recording=frame.get("Recording", ""))
        if kind == "Hangup" and caller_leg and call in self.open_calls:
            self.open_calls.discard(call)
            answered = self.answered_at.pop(call, None)
            if answered is None:
                return _event(call, "missed", at)
            talk = max(0, round(_seconds(frame, now) - answered))
            return _event(call, "hangup", at, duration_s=talk)
        return None


def _event(call: str, kind: str, at: str, **extra: object) -> dict[str, object]:
    return {"event_id": f"{call}:{kind}", "type": kind, "call_id": call, "at": at, **extra}


def signed_request(
    url: str, pbx: str, secret: bytes, event: dict[str, object]
) -> urllib.request.Request:
    body = json.dumps(event, separators=(",", ":")).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Omnidesk-Pbx": pbx,
        "X-Omnidesk-Timestamp": stamp,
        "X-Omnidesk-Signature": f"sha256={digest}",
    }
    return urllib.request.Request(f"{url.rstrip('/')}/v1/cti/events", body, headers)


MAX_WAIT_S = 60.0


def worth_resending(status: int | None) -> bool:
    """Whether an answer (None: no connection) may turn out otherwise later: a 5xx (503 while
    PostgreSQL is away) or no answer may; so may a 401 (a clock or secret being fixed); any
    other 4xx never will."""
    return status is None or status >= 500 or status == 401


def post(
    url: str,
    pbx: str,
    secret: bytes,
    event: dict[str, object],
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Send one event (signed afresh each try) until Omnidesk takes it: True, or False when
    it refused it for good."""
    wait = 1.0
    while True:
        try:
            with urllib.request.urlopen(signed_request(url, pbx, secret, event), timeout=10):
                return True
        except urllib.error.HTTPError as exc:
            status: int | None = exc.code
            detail = f"{exc.code} {exc.read()[:200]!r}"
        except OSError as exc:
            status, detail = None, str(exc)
        if not worth_resending(status):
            log.error("event %s refused, dropped: %s", event["event_id"], detail)
            return False
        level = logging.ERROR if status == 401 else logging.WARNING  # a secret or clock to fix
        log.log(level, "event %s: %s, trying again in %.0f s", event["event_id"], detail, wait)
        sleep(wait)
        wait = min(wait * 2, MAX_WAIT_S)


def ami_lines(host: str, port: int, user: str, secret: str) -> Iterator[str]:
    """Log in to AMI and yield its lines until the connection ends."""
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.settimeout(None)
        sock.sendall(f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\n"
                     "Events: call,user\r\n\r\n".encode())  # fmt: skip
        with sock.makefile("r", encoding="utf-8", errors="replace", newline="\r\n") as stream:
            yield from stream


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ami", default="127.0.0.1:5038", help="AMI host:port")
    p.add_argument("--ami-user", default="omnidesk")
    p.add_argument("--url", required=True, help="Omnidesk's base URL")
    p.add_argument("--pbx", required=True, help="this PBX's id in Omnidesk's cti.pbx")
    args = p.parse_args(argv)
    ami_secret = os.environ.get("AMI_SECRET", "")
    pbx_secret = os.environ.get("OMNIDESK_PBX_SECRET", "")
    if not ami_secret or not pbx_secret:
        print("set AMI_SECRET and OMNIDESK_PBX_SECRET in the environment", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    host, _, port = args.ami.rpartition(":")
    events: queue.Queue[dict[str, object]] = queue.Queue()
    reader = threading.Thread(
        target=read_ami, args=(host, int(port), args.ami_user, ami_secret, events),
        name="ami", daemon=True,
    )  # fmt: skip
    reader.start()
    while True:
        post(args.url, args.pbx, pbx_secret.encode(), events.get())


def read_ami(
    host: str, port: int, user: str, secret: str, events: queue.Queue[dict[str, object]]
) -> None:
    """Read AMI for good (reconnecting), its call events mapped into `events`: never held up
    by Omnidesk being away, which `post` waits out on the main thread."""
    mapper = CallMapper()
    while True:
        try:
            for frame in frames(ami_lines(host, port, user, secret)):
                event = mapper.map(frame)
                if event is not None:
                    events.put(event)
        except OSError as exc:
            log.warning("AMI connection: %s; reconnecting in 5 s", exc)
        time.sleep(5)


if __name__ == "__main__":
    sys.exit(main())
