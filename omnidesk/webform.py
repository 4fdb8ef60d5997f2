"""The public web form: `POST /v1/intake/web` answers with the ticket number.

The submission is taken in within the request (archive, normalize, route, intake: the same
`Runtime.process` the `ingest` actor runs, in a thread, with the posts that arrived at the
same moment: omnidesk.webintake), so the visitor sees 201 and the ticket id, or 200 and the
existing id for a submission already taken. A post that no batch took within `sync_wait_s`
is queued for the workers and answered 202 with a reference that
`GET /v1/intake/web/{reference}` later turns into the ticket id. The overload gate still
answers 503 + Retry-After first.

The form takes JSON, form-encoded and multipart bodies (files are archived and listed as
attachments; the post's RawPayload names them in `uploads`, so agents are served those
files and never one a form only lists by sha256). A browser on an origin in
`service.web_form.allowed_origins` may call it (CORS, with preflight); other origins get
no CORS headers. Bad fields come back per field in Arabic and English. Abuse limits: the
body size, a honeypot field, and posts per IP and per e-mail/phone (omnidesk.ratelimit; an
IPv6 client by its /64), files per post (`web_form.max_attachments`) and bytes per file
(`attachments.max_serve_bytes`: no bigger file could be served to agents); what they
refuse is counted, never stored.

    P:webref:<reference>  string  the dedupe key of a queued post ("-": a honeypot's, which
                                  never resolves); expires after reference_ttl_s
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import Counter

from connectors.web.formdata import Submission, UnsupportedMedia, decode
from connectors.web.normalize import FormInvalid, Problem
from omnidesk.api import (
    DAEMON_KEY,
    WEB_MAX_BODY_KEY,
    WEB_REJECTED_KEY,
    read_at_most,
)
from omnidesk.config import WebFormConfig
from omnidesk.errors import (
    OmnideskError,
    PayloadError,
    StoreUnavailable,
    TransientError,
    retry_after_header,
)
from omnidesk.intake import IntakeResult
from omnidesk.model import Channel, Inbound, RawPayload
from omnidesk.ratelimit import RateLimiter, client_key
from omnidesk.webform_text import Lang, answer, field_errors, pick_lang, summary
from omnidesk.webintake import WITHDRAWN, IntakeBatcher

log = logging.getLogger("omnidesk.webform")

INTAKE_PATH = "/v1/intake/web"
ACCOUNT = "web"
_REFERENCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class PublicDaemon(Protocol):
    """What the public endpoints use of the daemon (omnidesk.service.Daemon)."""

    runtime: Any
    records: Any
    loaded: Any

    async def admit(self, *, count: bool = True) -> None: ...
    async def handover(self, items: list[RawPayload]) -> None: ...
    async def intake_now(self, items: list[RawPayload]) -> Any: ...
    def store_refused(self, exc: StoreUnavailable) -> OmnideskError: ...


def web_form(request: web.Request) -> WebFormConfig:
    """The current `service.web_form` (a SIGHUP may have changed it)."""
    # DAEMON_KEY is typed as api's narrow DaemonView; the daemon behind it is the whole
    # omnidesk.service.Daemon, which has `loaded` (PublicDaemon's fields)
    return request.app[DAEMON_KEY].loaded.data.service.web_form  # type: ignore[attr-defined]


def max_file_bytes(request: web.Request) -> int:
    """The largest file a multipart post may carry: `service.attachments.max_serve_bytes`,
    what agents can be served (a bigger file would be archived and never shown to them)."""
    service = request.app[DAEMON_KEY].loaded.data.service  # type: ignore[attr-defined]
    return int(service.attachments.max_serve_bytes)


# ---------------------------------------------------------------- CORS


def allowed_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if origin and origin in web_form(request).allowed_origins:
        return origin
    return None


def cors(paths: tuple[str, ...]) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """`on_response_prepare`: an allowed origin gets Access-Control-Allow-Origin on every
    answer under `paths` (errors included, so its page can show them); others get nothing."""

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        if not request.path.startswith(paths):
            return
        response.headers.add("Vary", "Origin")
        origin = allowed_origin(request)
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "Retry-After, Location"

    return add


async def preflight(request: web.Request) -> web.Response:
    """OPTIONS: 204 with what the browser may send, for an allowed origin; 403 (and no CORS
    headers, so the browser refuses) for any other."""
    method = request.headers.get("Access-Control-Request-Method", "")
    if allowed_origin(request) is None or method not in ("GET", "POST"):
        return web.Response(status=403)
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, Accept-Language",
            "Access-Control-Max-Age": "600",
        },
    )


# ---------------------------------------------------------------- answers


def json_answer(body: dict[str, Any], status: int, **headers: str) -> web.Response:
    return web.json_response(
        body,
        status=status,
        headers={"Cache-Control": "no-store", **headers},
        dumps=lambda obj: json.dumps(obj, ensure_ascii=False, default=str),
    )


def refusal(code: str, status: int, lang: Lang, **headers: str) -> web.Response:
    """A whole-request refusal: `error` in the visitor's language, `message` in both."""
    text = answer(code)
    return json_answer({"error": text[lang], "code": code, "message": text}, status, **headers)


def bad_fields(problems: list[Problem], lang: Lang) -> web.Response:
    errors = field_errors(problems)
    return json_answer(
        {"error": summary(errors, lang), "code": "invalid_form", "lang": lang, "errors": errors},
        400,
    )


def unavailable(exc: OmnideskError, lang: Lang) -> web.Response:
    return refusal("unavailable", 503, lang, **retry_after_header(exc))


class Refused(Exception):
    """A post refused at the door: the answer to give, and the reason it is counted under."""

    def __init__(self, response: web.Response, reason: str) -> None:
        super().__init__(reason)
        self.response = response
        self.reason = reason


# ---------------------------------------------------------------- the form


class WebForm:
    """The handlers, with the state they share: the rate limiter and the intake batcher."""

    def __init__(self, daemon: PublicDaemon) -> None:
        self.daemon = daemon
        self.limits = RateLimiter(daemon.runtime.store)
        runners = daemon.loaded.data.service.web_form.sync_concurrency
        self.batcher = IntakeBatcher(daemon.intake_now, runners=runners)

    async def close(self, app: web.Application) -> None:
        await self.batcher.close()

    async def limit(self, scope: str, subject: str, limit: int, window_s: int, lang: Lang) -> None:
        retry = await asyncio.to_thread(self.limits.hit, scope, subject, limit, window_s)
        if retry is not None:
            raise Refused(refusal("rate_limited", 429, lang, **{"Retry-After": str(retry)}), scope)

    async def spent(self, scope: str, subject: str, limit: int, window_s: int, lang: Lang) -> None:
        """Refused (429) when `limit` hits were counted this window, counting nothing: for
        limits on failures, which the caller counts with `limits.hit` once a try failed."""
        retry = await asyncio.to_thread(self.limits.spent, scope, subject, limit, window_s)
        if retry is not None:
            raise Refused(refusal("rate_limited", 429, lang, **{"Retry-After": str(retry)}), scope)

    async def post(self, request: web.Request) -> web.Response:
        rejected: Counter = request.app[WEB_REJECTED_KEY]
        lang = pick_lang(request.headers.get("Accept-Language"))
        try:
            return await self._post(request, lang)
        except Refused as exc:
            rejected.labels(reason=exc.reason).inc()
            return exc.response
        except StoreUnavailable as exc:
            return unavailable(self.daemon.store_refused(exc), lang)
        except TransientError as exc:
            return unavailable(exc, lang)

    async def _post(self, request: web.Request, lang: Lang) -> web.Response:
        config = web_form(request)
        limit = request.app[WEB_MAX_BODY_KEY]
        if (request.content_length or 0) > limit:
            raise Refused(_too_large(lang), "too_large")
        await self.daemon.admit()
        ip = client_key(request.remote)
        await self.limit("web:ip", ip, config.posts_per_ip, config.rate_window_s, lang)
        body = await read_at_most(request, limit)
        if body is None:
            raise Refused(_too_large(lang), "too_large")
        submission = self._decode(request, body, lang)
        asked = submission.fields.pop("lang", None)
        asked_lang = asked if isinstance(asked, str) else None
        lang = pick_lang(request.headers.get("Accept-Language"), asked_lang)
        trap = submission.fields.pop(config.honeypot_field, None)
        if trap not in (None, ""):
            log.warning("web intake: honeypot field filled by %s; nothing opened", ip)
            request.app[WEB_REJECTED_KEY].labels(reason="honeypot").inc()
            return await self._queued_answer("-", config)
        changed = asked is not None or trap is not None
        payload = self._payload(submission, body, changed, config, max_file_bytes(request), lang)
        inbound = await asyncio.to_thread(self._validate, payload, lang)
        for ident in inbound.author.identities:
            await self.limit(
                "web:id", ident.key, config.posts_per_identity, config.rate_window_s, lang
            )
        archive = self.daemon.runtime.archive
        if archive is not None:
            for upload in submission.files:
                await asyncio.to_thread(archive.put, upload.data)
        item = RawPayload(
            channel=Channel.WEB,
            account=ACCOUNT,
            payload=payload,
            received_at=datetime.now(UTC),
            source=f"http:{ip}:{secrets.token_hex(6)}",  # unique: the batch's results by it
            uploads=[upload.sha256 for upload in submission.files] if archive else [],
        )
        return await self._take_in(item, inbound, config, lang)

    def _decode(self, request: web.Request, body: bytes, lang: Lang) -> Submission:
        try:
            return decode(request.headers.get("Content-Type"), body)
        except UnsupportedMedia as exc:
            raise Refused(refusal(exc.reason, 415, lang), exc.reason) from None
        except PayloadError as exc:
            log.warning("web intake: unreadable body (%s, %d bytes)", exc.reason, len(body))
            raise Refused(refusal(exc.reason, 400, lang), exc.reason) from None

    @staticmethod
    def _payload(
        submission: Submission,
        body: bytes,
        changed: bool,
        config: WebFormConfig,
        max_file: int,
        lang: Lang,
    ) -> bytes:
        """What is archived and normalized: a JSON body as it came, anything else (or a JSON
        body less its `lang` or honeypot field) as the JSON form it stands for. Too many
        files, or a file over `max_file` bytes, is refused per field (`attachments`)."""
        if submission.files:
            if len(submission.files) > config.max_attachments:
                raise Refused(
                    bad_fields(
                        [Problem("attachments", "too_many", "too many", config.max_attachments)],
                        lang,
                    ),
                    "too_many_files",
                )
            too_large = [
                Problem(f"attachments[{i}].size", "too_large_file", f"over {max_file}", max_file)
                for i, upload in enumerate(submission.files)
                if len(upload.data) > max_file
            ]
            if too_large:
                raise Refused(bad_fields(too_large, lang), "too_large_file")
            listed = submission.fields.get("attachments")
            listed = listed if isinstance(listed, list) else []
            submission.fields["attachments"] = listed + [f.described() for f in submission.files]
        if submission.kind == "json" and not changed and not submission.files:
            return body
        return json.dumps(submission.fields, ensure_ascii=False).encode()

    def _validate(self, payload: bytes, lang: Lang) -> Inbound:
        try:
            found = self.daemon.runtime.normalize(Channel.WEB, payload, account=ACCOUNT)
        except FormInvalid as exc:
            raise Refused(bad_fields(exc.problems, lang), exc.reason) from None
        except PayloadError as exc:
            code = "not_json" if exc.reason == "not_json" else "not_form"
            raise Refused(refusal(code, 400, lang), exc.reason) from None
        return found[0]

    async def _take_in(
        self, item: RawPayload, inbound: Inbound, config: WebFormConfig, lang: Lang
    ) -> web.Response:
        result = await self.batcher.take(item, config.sync_wait_s)
        if result is WITHDRAWN:
            return await self._queue(item, inbound, config, lang)
        if not isinstance(result, IntakeResult) or result.ticket_id is None:
            log.error("web intake: a validated form opened nothing (%s)", item.source)
            return refusal("failed", 500, lang)
        body = {"ticket": result.ticket_id, "outcome": result.outcome}
        location = {"Location": f"/status?ticket={result.ticket_id}"}
        return json_answer(body, 201 if result.created else 200, **location)

    async def _queue(
        self, item: RawPayload, inbound: Inbound, config: WebFormConfig, lang: Lang
    ) -> web.Response:
        """Every intake slot busy: the workers take it in; the visitor gets a reference."""
        try:
            await self.daemon.handover([item])
        except OmnideskError as exc:
            log.error("web intake: hand-over failed: %s", exc)
            return unavailable(exc, lang)
        return await self._queued_answer(inbound.dedupe_key, config)

    async def _queued_answer(self, dedupe_key: str, config: WebFormConfig) -> web.Response:
        reference = secrets.token_urlsafe(18)
        store = self.daemon.runtime.store
        await asyncio.to_thread(
            store.r.set, store.keys.webref(reference), dedupe_key, ex=config.reference_ttl_s
        )
        return json_answer(
            {"reference": reference, "outcome": "queued", "poll": f"{INTAKE_PATH}/{reference}"},
            202,
        )

    async def reference(self, request: web.Request) -> web.Response:
        """A queued post's reference: 200 with the ticket once taken in, 202 until then, 404
        when unknown or expired."""
        lang = pick_lang(request.headers.get("Accept-Language"), request.query.get("lang"))
        config = web_form(request)
        token = request.match_info["reference"]
        try:
            await self.limit(
                "ref:ip", client_key(request.remote), config.status_lookups_per_ip,
                config.rate_window_s, lang,
            )  # fmt: skip
            ticket = await asyncio.to_thread(self._resolve, token)
        except Refused as exc:
            return exc.response
        except TransientError as exc:
            return unavailable(exc, lang)
        if ticket is None:
            return refusal("not_found", 404, lang)
        if ticket == "":
            return json_answer({"reference": token, "outcome": "queued"}, 202)
        return json_answer({"reference": token, "ticket": ticket}, 200)

    def _resolve(self, token: str) -> str | None:
        """The ticket id ("" while queued), None for an unknown reference."""
        if not _REFERENCE.fullmatch(token):
            return None
        store = self.daemon.runtime.store
        key = store.r.get(store.keys.webref(token))
        if key is None:
            return None
        mid = store.r.hget(store.keys.seen(), key) if key != "-" else None
        if not mid or mid == "-":
            return ""
        return store.r.hget(store.keys.msg(mid), "ticket_id") or ""


def _too_large(lang: Lang) -> web.Response:
    response = refusal("too_large", 413, lang)
    response.force_close()  # the unread rest is not worth keeping the connection for
    return response


def add_routes(app: web.Application) -> None:
    """The web form's routes (the daemon adds them to its app; see omnidesk.api)."""
    # DaemonView is what api needs; the object stored is the Daemon, a PublicDaemon too
    form = WebForm(app[DAEMON_KEY])  # type: ignore[arg-type]
    app.on_response_prepare.append(cors((INTAKE_PATH,)))
    app.on_cleanup.append(form.close)
    app.router.add_post(INTAKE_PATH, form.post)
    app.router.add_route("OPTIONS", INTAKE_PATH, preflight)
    app.router.add_get(f"{INTAKE_PATH}/{{reference}}", form.reference)
    app.router.add_route("OPTIONS", f"{INTAKE_PATH}/{{reference}}", preflight)
