"""What the guides tests share: the reference guides, a config with a `guides:` section on
the real Redis, and an aiohttp app serving the public guide routes and the agents' API."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from aiohttp import web

from omnidesk.agents.routes import add_routes as agent_routes
from omnidesk.agents.service import AgentService
from omnidesk.api import DAEMON_KEY
from omnidesk.config import GuidesConfig
from omnidesk.configload import LoadedConfig, load_config, parse_config
from omnidesk.guides import pages
from omnidesk.webguard import install
from tests.storekit import CONFIG as STORE_CONFIG
from tests.storekit import REDIS_URL

ROOT = Path(__file__).resolve().parent.parent
GUIDES = ROOT / "guides"
PUBLIC_URL = "https://moc.example.sa"
FORM_ORIGIN = "https://www.mc.gov.sa"

# the store tests' config with a first rule that answers chats with a guide
ANSWER_RULE = """rules:
  - id: answer-chat
    when: {channel: [telegram, whatsapp]}
    then: {answer_with_guide: true, continue: true}
"""


def with_guides(loaded: LoadedConfig, folder: Path = GUIDES, **options: object) -> LoadedConfig:
    section = GuidesConfig.model_validate(
        {"folder": str(folder), "public_url": PUBLIC_URL, **options}
    )
    return replace(loaded, data=loaded.data.model_copy(update={"guides": section}))


# The same rule owing a receipt too (template `ack`): a chat ticket gets both.
RECEIPT_TEMPLATE = """templates:
  ack: {ar: "سُجلت رسالتك برقم {ticket_id}.", en: "Your message is {ticket_id}."}
"""


def answering_config(
    prefix: str, state_dir: Path, min_score: float = 6.0, *, receipt: bool = False
) -> LoadedConfig:
    rule = ANSWER_RULE.replace("continue: true", "auto_reply: ack, continue: true")
    text = STORE_CONFIG.read_text("utf-8").replace("rules:\n", rule if receipt else ANSWER_RULE, 1)
    if receipt:
        text += RECEIPT_TEMPLATE
    text += (
        f"guides: {{folder: {GUIDES}, public_url: {PUBLIC_URL}, answer_min_score: {min_score}}}\n"
    )
    loaded = parse_config(text, STORE_CONFIG)
    service = loaded.data.service.model_copy(
        update={"key_prefix": prefix, "state_dir": str(state_dir), "redis_url": REDIS_URL}
    )
    return replace(loaded, data=loaded.data.model_copy(update={"service": service}))


def guide_app(loaded: LoadedConfig, service: AgentService | None = None) -> web.Application:
    """The public guide routes over `loaded` (as the daemon serves them), and the agents'
    routes when a service is given. The web form may call from FORM_ORIGIN."""
    web_form = loaded.data.service.web_form.model_copy(update={"allowed_origins": [FORM_ORIGIN]})
    service_cfg = loaded.data.service.model_copy(update={"web_form": web_form})
    loaded = replace(loaded, data=loaded.data.model_copy(update={"service": service_cfg}))
    app = web.Application()
    install(app)
    app[DAEMON_KEY] = SimpleNamespace(loaded=loaded)  # the daemon's config in force
    pages.add_routes(app)
    if service is not None:
        agent_routes(service)(app)
    return app


def reference() -> LoadedConfig:
    return load_config(ROOT / "queue_config.yaml")
