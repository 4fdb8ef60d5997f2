"""The WhatsApp connector (Cloud API): webhook in, Graph API out, for one number.

Meta pushes messages to a webhook on the daemon's HTTP server (`add_routes` is its
route hook): a GET handshake with the verify token, then POSTs signed with the app
secret. A POST whose signature does not match is refused with 401 and nothing is
ingested; a valid one is handed over whole and answered 200, or 503 if the hand-over
failed so that Meta delivers it again. There is nothing to poll: `run_once` idles.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any, ClassVar

from aiohttp import web

from connectors.base import Connector, Sink
from connectors.whatsapp.config import Secrets, WhatsAppConfig
from connectors.whatsapp.graph import GraphClient
from connectors.whatsapp.messages import (
    inside_window,
    interactive_message,
    template_message,
    text_messages,
)
from omnidesk.errors import PermanentError, retry_after_header
from omnidesk.model import Channel, IdentityKind, Outbound, RawPayload, Receipt, utcnow

log = logging.getLogger("omnidesk.connectors.whatsapp")

IDLE = 60.0


def signature_ok(app_secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, compared in
    constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256=") :].strip().lower())


class WhatsAppConnector(Connector):
    kind: ClassVar[str] = "whatsapp"
    config_model = WhatsAppConfig

    uses_lease = False

    def __init__(self, config: WhatsAppConfig, cursors: Any = None, lease: Any = None) -> None:
        # Webhooks are pushed to whichever instance Meta reaches: no cursor, no lease.
        super().__init__(config.name)
        self.config = config
        self._secrets: Secrets | None = None
        self._graph: GraphClient | None = None

    # ------------------------------------------------------------ lifecycle

    async def initialize(self) -> None:
        """Read the secrets now, so a missing variable stops the start-up with its name."""
        if self._secrets is None:
            self._secrets = self.config.secrets()
            self._graph = GraphClient(
                self.config.graph_base,
                self.config.api_version,
                self._secrets.access_token,
                self.config.request_timeout,
            )

    async def shutdown(self) -> None:
        if self._graph is not None:
            await self._graph.close()

    async def download(self, media_id: str, max_bytes: int) -> bytes:
        """A customer's file by its media id (the webhook gives only the id): an agent
        opens it."""
        await self.initialize()
        assert self._graph is not None
        return await self._graph.media(media_id, max_bytes)

    async def run_once(self, sink: Sink) -> float | None:
        return IDLE  # webhook-driven

    async def check(self) -> None:
        """Read the phone number's record: proves the token and the phone_number_id."""
        await self.initialize()
        assert self._graph is not None
        await self._graph.get(self.config.phone_number_id)

    # ------------------------------------------------------------ the webhook

    def add_routes(self, app: web.Application) -> None:
        """The daemon's route hook: GET handshake and signed POSTs on `webhook_path`."""
        app.router.add_get(self.config.path, self.handshake)
        app.router.add_post(self.config.path, self.receive)

    async def handshake(self, request: web.Request) -> web.Response:
        assert self._secrets is not None, "initialize() first"
        query = request.query
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(
            token.encode(), self._secrets.verify_token.encode()
        ):
            return web.Response(text=query.get("hub.challenge", ""))
        log.warning("%s: webhook verification refused (wrong token or mode)", self.name)
        return web.Response(status=403, text="verification failed")

    async def receive(self, request: web.Request) -> web.Response:
        assert self._secrets is not None, "initialize() first"
        body = await request.read()
        header = request.headers.get("X-Hub-Signature-256")
        if not signature_ok(self._secrets.app_secret, body, header):
            why = "missing" if not header else "invalid"
            log.warning(
                "%s: webhook POST with %s signature from %s refused (%d bytes)",
                self.name,
                why,
                request.remote,
                len(body),
            )
            self.status.errors["signature"] = self.status.errors.get("signature", 0) + 1
            return web.Response(status=401, text=f"{why} signature")
        sink = self.sink
        if sink is None:
            return web.Response(status=503, text="not receiving")
        raw = RawPayload(
            channel=Channel.WHATSAPP,
            account=self.name,
            payload=body,
            received_at=utcnow(),
            source=f"whatsapp:webhook:{hashlib.sha256(body).hexdigest()[:16]}",
        )
        self.status.received += 1
        self.status.last_fetch = raw.received_at
        try:
            await sink([raw])
        except Exception as exc:  # Meta retries a non-2xx delivery: nothing is lost
            log.error("%s: hand-over failed, answering 503: %s", self.name, exc)
            self.status.errors["handover"] = self.status.errors.get("handover", 0) + 1
            return web.Response(status=503, text="try again", headers=retry_after_header(exc))
        self.status.handed_over += 1
        return web.Response(text="ok")

    # ------------------------------------------------------------ replying

    async def send(self, reply: Outbound) -> Receipt:
        """Text (or buttons) inside the customer-service window; outside it, the
        configured template, or a refusal that tells the agent why."""
        await self.initialize()
        assert self._graph is not None
        to = self._recipient(reply)
        path = f"{self.config.phone_number_id}/messages"
        window = self.config.reply_window_hours
        if not inside_window(reply.meta.get("last_customer_at"), window, utcnow()):
            template = self.config.template
            if template is None:
                raise PermanentError(
                    f"outside the {window:g}-hour window: free-text replies need an approved "
                    "template (none is configured for this number)"
                )
            values = {"ticket_id": reply.ticket_id, **_template_values(reply)}
            answer = await self._graph.post(path, template_message(to, template, values))
            return Receipt(
                outbound_id=reply.id,
                status="sent",
                external_id=_message_id(answer),
                detail=f"outside the {window:g}-hour window: sent template "
                f"{template.name!r} ({template.language}) instead of the free text",
            )
        if reply.meta.get("buttons"):
            bodies = [interactive_message(to, reply.text, reply.meta["buttons"])]
        else:
            context = reply.meta.get("context_id") or reply.in_reply_to
            bodies = text_messages(to, reply.text, context if _is_wamid(context) else None)
        ids = [_message_id(await self._graph.post(path, body)) for body in bodies]
        detail = f"{len(ids)} messages" if len(ids) > 1 else ""
        return Receipt(
            outbound_id=reply.id,
            status="sent",
            external_id=ids[0],
            external_ids=[i for i in ids if i] if len(ids) > 1 else [],
            detail=detail,
        )

    def _recipient(self, reply: Outbound) -> str:
        wa_id = reply.meta.get("wa_id")
        if not wa_id:
            for identity in reply.to:
                if identity.kind in (IdentityKind.WHATSAPP, IdentityKind.PHONE):
                    wa_id = identity.value.lstrip("+")
                    break
        if not wa_id or not wa_id.isdigit():
            raise PermanentError(f"WhatsApp reply {reply.id}: no recipient (meta.wa_id)")
        return wa_id


def _template_values(reply: Outbound) -> dict[str, str]:
    """The placeholder values the sender gave (`meta.template_values`, a JSON object: a
    receipt gives all it rendered); anything else there is ignored."""
    raw = reply.meta.get("template_values")
    if not raw:
        return {}
    try:
        values = json.loads(raw)
    except ValueError:
        raise PermanentError("meta.template_values: not a JSON object") from None
    if not isinstance(values, dict):
        raise PermanentError("meta.template_values: not a JSON object")
    return {str(k): v for k, v in values.items() if isinstance(v, str)}


def _is_wamid(value: str | None) -> bool:
    return bool(value) and str(value).startswith("wamid.")


def _message_id(answer: dict[str, Any]) -> str | None:
    messages = answer.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        return str(messages[0].get("id"))
    return None
