"""The typed shape of queue_config.yaml.

Pydantic models with unknown keys forbidden; `omnidesk schema` prints their JSON
Schema. Loading, line numbers and cross-reference checks live in `configload`.
Rule conditions are data: nothing in a config file is ever evaluated as code.

Kept whole though over 500 lines: it is only the typed shape of queue_config.yaml, one
model per section, read as one tree by configload and `omnidesk schema`.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from omnidesk.model import SYSTEM_ACTORS, Channel, Flag, Language, Priority, Segment, Status
from omnidesk.text import PatternError, compile_pattern

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|bd)\s*$")
_SLOT = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HEARTBEATS_PER_TIMEOUT = 3  # broker_maintenance_s <= broker_heartbeat_s / this


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def parse_duration(text: str, *, business_day_seconds: int | None = None) -> float:
    """Seconds of business time in "30m", "4h", "2d" ("d"/"bd" are business days).

    A business day counts as `business_day_seconds` (the calendar's usual working
    day) when given, else 8 hours.
    """
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 4h, 5d)")
    amount, unit = float(match.group(1)), match.group(2)
    day = business_day_seconds or 8 * 3600
    scale = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": day, "bd": day}[unit]
    return amount * scale


Duration = Annotated[str, Field(pattern=_DURATION.pattern, examples=["4h", "30m", "5d"])]
Slot = Annotated[str, Field(pattern=_SLOT.pattern, examples=["08:00-12:00"])]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str | int | float | bool) else value


# ---------------------------------------------------------------- calendars


class HolidaySource(Strict):
    country: str = "SA"
    subdivision: str | None = None
    observed: bool = True


class SpecialHours(Strict):
    """Different slots on given dates, e.g. Ramadan hours; `slots: []` closes the day."""

    name: str = ""
    on: date | None = None
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    slots: list[Slot]

    @model_validator(mode="after")
    def _dates(self) -> SpecialHours:
        if self.on is None and (self.from_ is None or self.to is None):
            raise ValueError("give either 'on' or both 'from' and 'to'")
        if self.from_ and self.to and self.to < self.from_:
            raise ValueError("'to' is before 'from'")
        return self


class CalendarConfig(Strict):
    inherits: str | None = None  # a calendar whose settings this one starts from
    timezone: str | None = None  # default Asia/Riyadh
    working_days: list[Weekday] | None = None  # default sun..thu
    slots: list[Slot] | None = None  # default 08:00-16:00
    day_slots: dict[Weekday, list[Slot]] = Field(default_factory=dict)
    holidays: HolidaySource | None = None  # default SA
    closures: list[date] = Field(default_factory=list)
    special_hours: list[SpecialHours] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value


# ---------------------------------------------------------------- SLA policies

SlaTarget = Literal["first_response", "next_response", "resolution"]
SLA_TARGETS: tuple[SlaTarget, ...] = ("first_response", "next_response", "resolution")


class Action(Strict):
    """One thing a ladder step does; exactly one key."""

    notify: Literal["agent", "supervisors", "customer"] | None = None
    via: Literal["email", "telegram", "log"] | None = None  # with notify
    raise_priority: int | None = Field(default=None, ge=1, le=3)
    set_priority: Priority | None = None
    move_to: str | None = None  # a queue
    reassign: bool | None = None
    tag: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Action:
        keys = [
            k
            for k in ("notify", "raise_priority", "set_priority", "move_to", "reassign", "tag")
            if getattr(self, k) is not None
        ]
        if len(keys) != 1:
            raise ValueError(
                "an action has exactly one of notify, raise_priority, set_priority, "
                "move_to, reassign, tag"
            )
        if self.via is not None and self.notify is None:
            raise ValueError("'via' goes with 'notify'")
        return self


class LadderStep(Strict):
    at: float = Field(gt=0, le=2.0, description="fraction of the target: 0.5, 0.8, 1.0 (breach)")
    targets: list[SlaTarget] = Field(default_factory=lambda: list(SLA_TARGETS))
    actions: list[Action] = Field(min_length=1)


class SlaPolicyConfig(Strict):
    description: str = ""
    calendar: str | None = None  # default: the ticket's queue's calendar
    first_response: Duration | None = None
    next_response: Duration | None = None
    resolution: Duration | None = None
    pause_on: list[Status] = Field(default_factory=lambda: [Status.PENDING_CUSTOMER])
    ladder: list[LadderStep] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_target(self) -> SlaPolicyConfig:
        if not (self.first_response or self.next_response or self.resolution):
            raise ValueError("give at least one of first_response, next_response, resolution")
        return self


# ---------------------------------------------------------------- queues


class QueueConfig(Strict):
    kind: Literal["branch", "backoffice", "escalation", "contact_centre"]
    title: str = ""
    # What a customer reads as the team handling their request ("track my request"); the
    # title and the name are for staff and may say more than a customer should read.
    public_title: dict[Literal["ar", "en"], str] | None = None
    region: str | None = None
    service: str | None = None
    calendar: str = "national"
    sla_policy: str | None = None  # default policy when a rule names none
    assignment: Literal["pull", "round_robin", "least_loaded"] = "pull"
    escalates_to: str | None = None
    supervisors: list[str] = Field(default_factory=list)
    csat: bool = True


# ---------------------------------------------------------------- agents


_BOTH_LANGUAGES: tuple[Literal["ar", "en"], ...] = ("ar", "en")


class AgentConfig(Strict):
    """One person working queues; `capacity` is how many open tickets they hold at once."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)]
    name: str = ""
    queues: list[str] = Field(min_length=1)
    languages: list[Literal["ar", "en"]] = Field(default_factory=lambda: list(_BOTH_LANGUAGES))
    capacity: int = Field(default=5, ge=1, le=1000)
    role: Literal["agent", "supervisor"] = "agent"
    email: str | None = None  # where SLA notifications for this agent go
    # the PBX extension this agent answers calls on: the call's screen-pop goes to them
    extension: Annotated[str, Field(pattern=r"^[0-9A-Za-z*#+_-]{1,32}$")] | None = None

    @model_validator(mode="after")
    def _not_a_system_actor(self) -> AgentConfig:
        if self.id in SYSTEM_ACTORS:  # the reports would credit this person to nobody
            raise ValueError(f"agent id {self.id!r} is the name of one of the daemon's own "
                             "actors (csat, sla, system, ...): choose another")  # fmt: skip
        return self


# ---------------------------------------------------------------- rules

TextField = Literal["subject", "text", "any"]
_ANY_TEXT: tuple[TextField, ...] = ("any",)


class KeywordCondition(Strict):
    """Keywords matched after `omnidesk.text.fold`; whole words unless match: substring."""

    any: list[str] = Field(default_factory=list)
    all: list[str] = Field(default_factory=list)
    in_: list[TextField] = Field(default_factory=lambda: list(_ANY_TEXT), alias="in")
    match: Literal["word", "substring"] = "word"

    @model_validator(mode="after")
    def _some(self) -> KeywordCondition:
        if not self.any and not self.all:
            raise ValueError("give 'any' or 'all' keywords")
        for word in (*self.any, *self.all):
            if not word.strip():
                raise ValueError("empty keyword")
        return self


class RegexCondition(Strict):
    """An RE2 pattern (linear time, cannot hang the router), matched on the raw text."""

    pattern: str
    in_: list[TextField] = Field(default_factory=lambda: list(_ANY_TEXT), alias="in")
    ignore_case: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compile_pattern(value)
        except PatternError as exc:
            raise ValueError(f"bad regular expression: {exc}") from None
        return value


class SenderCondition(Strict):
    address: list[str] = Field(default_factory=list)
    domain: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some(self) -> SenderCondition:
        if not self.address and not self.domain:
            raise ValueError("give 'address' or 'domain'")
        return self


class Condition(Strict):
    """A node of the `when` tree. Several keys in one mapping must all hold."""

    all: list[Condition] | None = None
    any: list[Condition] | None = None
    not_: Condition | None = Field(default=None, alias="not")
    channel: list[Channel] | None = None
    account: list[str] | None = None
    segment: list[Segment] | None = None
    language: list[Language] | None = None
    sender: SenderCondition | None = None
    keywords: KeywordCondition | None = None
    regex: RegexCondition | None = None
    has_attachment: bool | None = None
    outside_business_hours: bool | None = None
    customer_tag: list[str] | None = None
    region: list[str] | None = None
    service: list[str] | None = None
    flag: list[Flag] | None = None

    @field_validator(
        "channel",
        "account",
        "segment",
        "language",
        "customer_tag",
        "region",
        "service",
        "flag",
        mode="before",
    )
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return _one_or_many(value)

    @field_validator("keywords", mode="before")
    @classmethod
    def _keywords_short(cls, value: Any) -> Any:
        return {"any": value} if isinstance(value, list | str) else value

    @field_validator("regex", mode="before")
    @classmethod
    def _regex_short(cls, value: Any) -> Any:
        return {"pattern": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.model_fields_set:
            raise ValueError("empty condition")
        return self


class RuleAction(Strict):
    queue: str | None = None
    priority: Priority | None = None
    sla_policy: str | None = None
    tags: list[str] = Field(default_factory=list)
    segment: Segment | None = None
    region: str | None = None
    auto_reply: str | None = None  # a template name
    # On a new Telegram or WhatsApp ticket, answer with the best-matching awareness guide
    # (omnidesk.guides.answers), labelled automatic; the ticket stays open for a human.
    answer_with_guide: bool = False
    continue_: bool = Field(default=False, alias="continue")


class Rule(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]+$")]
    description: str = ""
    enabled: bool = True
    when: Condition | None = None  # None matches everything (a catch-all)
    then: RuleAction


class DefaultRoute(Strict):
    queue: str
    priority: Priority = Priority.NORMAL
    sla_policy: str | None = None


# ---------------------------------------------------------------- rule tests


class TestInbound(Strict):
    """A message described inline for a rule test; fields mirror a web form plus extras."""

    __test__: ClassVar[bool] = False  # pytest: a config model, not a test class

    channel: Channel = Channel.WEB
    account: str = "default"
    sender: str = Field(default="", alias="from")
    name: str = ""
    subject: str = ""
    text: str = ""
    language: Language | None = None  # detected from the text when not given
    attachments: int = 0
    flags: list[Flag] = Field(default_factory=list)
    received_at: str | None = None  # ISO 8601; default a Sunday 10:00 Riyadh time
    customer_tags: list[str] = Field(default_factory=list)
    segment: Segment | None = None
    region: str | None = None
    service: str | None = None


class Expectation(Strict):
    queue: str | None = None
    priority: Priority | None = None
    sla_policy: str | None = None
    tags: list[str] | None = None  # each must be present
    rule: str | None = None


class RuleTest(Strict):
    __test__ = False  # not a pytest class

    name: str
    inbound: TestInbound | None = None
    file: str | None = None  # a raw payload, relative to the config file
    channel: Channel | None = None  # with file
    expect: Expectation

    @model_validator(mode="after")
    def _source(self) -> RuleTest:
        if (self.inbound is None) == (self.file is None):
            raise ValueError("give exactly one of 'inbound' or 'file'")
        if self.file is not None and self.channel is None:
            raise ValueError("'file' needs 'channel'")
        return self


# ---------------------------------------------------------------- service settings


class Limits(Strict):
    max_raw_bytes: int = 25 * 1024 * 1024
    max_text_chars: int = 100_000
    # JSON bytes per `ingest` message (a larger single payload goes alone): far under
    # Redis's 512 MB bulk limit, and small enough that a batch never bloats a process.
    max_batch_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024, le=256 * 1024 * 1024)


class SmtpConfig(Strict):
    """Where the daemon sends e-mail (scheduled reports). The password comes from the env var
    named by `password_env`, never from this file."""

    host: str
    port: int = Field(default=25, ge=1, le=65535)
    from_address: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
    username: str | None = None
    password_env: str | None = None
    starttls: bool = False
    use_tls: bool = False
    timeout: float = 30.0


class ParseBudget(Strict):
    """What normalizing one payload may cost. Over budget, it goes to the quarantine with the
    reason too_large or parse_budget, and the rest of its batch goes on."""

    max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)  # bigger: never parsed
    cpu_s: int = Field(default=10, ge=1)  # CPU seconds (RLIMIT_CPU counts whole seconds)
    inline_bytes: int = Field(default=256 * 1024, ge=0)  # bigger: parsed in a child process
    max_memory_mb: int = Field(default=1024, ge=16)  # a child's memory past what it forked with


class QuarantineLimits(Strict):
    """What the quarantine keeps in Redis; a payload it does not keep whole stays on disk in
    the archive, and every rejection is counted either way."""

    item_max_bytes: int = Field(default=256 * 1024, ge=0)  # bigger: a head excerpt only
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)  # all payload bytes kept
    max_age_days: float = Field(default=30.0, gt=0)  # older items are purged
    excerpt_bytes: int = Field(default=4096, ge=0)


class RetentionConfig(Strict):
    """How long personal data is kept (the PDPL asks for a limit). `personal_data_years`:
    resolved and closed tickets whose last change is older lose their personal data (text,
    names, identities, raw payloads) at the daemon's archive pass or `omnidesk customer
    retention`; their statistics stay. None: kept forever."""

    personal_data_years: int | None = Field(default=None, ge=1, le=100)


class WebFormConfig(Strict):
    """The public web form and "track my request" (POST /v1/intake/web, /v1/status): who
    may post from a browser, and the abuse limits per IP and per identity."""

    # Origins (scheme://host[:port]) whose pages may call these endpoints from a browser
    # (CORS); any other origin gets no CORS headers, so its browser refuses the answer.
    allowed_origins: list[Annotated[str, Field(pattern=r"^https?://[^/\s]+$")]] = Field(
        default_factory=list
    )
    # A field real visitors never see (hidden by the page): filled, the post gets an
    # accepted-looking answer, opens nothing and is counted.
    honeypot_field: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "website"
    rate_window_s: int = Field(default=600, ge=1)  # the window the counts below are per
    posts_per_ip: int = Field(default=30, ge=1)
    posts_per_identity: int = Field(default=5, ge=1)  # per e-mail or phone
    status_lookups_per_ip: int = Field(default=30, ge=1)  # per IPv4 address or IPv6 /64
    # failed lookups (wrong contact, or no such ticket) of one ticket number, from anyone;
    # past it every lookup of that number gets 429 until the window ends
    status_failures_per_ticket: int = Field(default=10, ge=1)
    # status answers to one sender in a chat or by e-mail (omnidesk.status_replies)
    status_replies_per_sender: int = Field(default=10, ge=1)
    max_attachments: int = Field(default=5, ge=0, le=20)  # files in a multipart post
    # Batches of posts taken in within their requests at once (each post waits with those
    # that came at the same moment); a post that no batch took within sync_wait_s is queued
    # for the workers and answered 202 with a reference that later names the ticket.
    sync_concurrency: int = Field(default=1, ge=1, le=16)
    sync_wait_s: float = Field(default=2.0, ge=0)  # 0: every post queued (202)
    reference_ttl_s: int = Field(default=86_400, ge=60)  # how long a 202 reference resolves


class AttachmentsConfig(Strict):
    """Serving attachments to agents (GET /v1/tickets/{id}/attachments/{aid}): bigger ones
    are refused with 413 rather than read into memory and sent."""

    max_serve_bytes: int = Field(default=25 * 1024 * 1024, ge=1)


class ReceiptsConfig(Strict):
    """The acknowledgements a rule's `auto_reply` sends (omnidesk.receipts). A sender past
    `max_per_sender_per_hour` receipts in the last hour gets no more: a mail loop with
    another robot, or a flood, stops there (0: no receipts at all)."""

    max_per_sender_per_hour: int = Field(default=3, ge=0, le=1000)


class ServiceConfig(Strict):
    """Where the daemon keeps its state. Secrets never live here: only env var names."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str | None = None  # default: redis_url; amqp://... for RabbitMQ
    key_prefix: str = "od"
    # PostgreSQL, the system of record; the password comes from the variable named by
    # database_password_env (or libpq's PGPASSWORD), never from this file
    database_url: str = "postgresql://postgres@127.0.0.1:5432/omnidesk"
    database_password_env: str | None = None
    state_dir: str = "./state"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    archive_retention_days: int = 365
    public_url: str | None = None  # how customers reach /csat/... links; default http_host:port
    presence_ttl_s: int = Field(default=90, ge=5)  # heartbeat expiry of online/away
    archive_interval_s: float = Field(default=3600.0, gt=0)  # how often the eviction pass runs
    # A resolved ticket takes a customer's reply (and reopens) this long; after it, and once
    # PostgreSQL holds it, it leaves Redis. A closed one leaves after evict_closed_after_s.
    reopen_window_days: float = Field(default=7.0, gt=0)
    evict_closed_after_s: float = Field(default=0.0, ge=0)
    # How long Redis remembers an auto-reply that opened nothing (a TTL): after that
    # PostgreSQL's unique (channel, account, external_id) is the dedupe backstop.
    dedupe_window_days: float = Field(default=30.0, gt=0)
    parse: ParseBudget = Field(default_factory=ParseBudget)
    quarantine: QuarantineLimits = Field(default_factory=QuarantineLimits)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    attachments: AttachmentsConfig = Field(default_factory=AttachmentsConfig)
    receipts: ReceiptsConfig = Field(default_factory=ReceiptsConfig)
    # A worker silent this long is dead and its batches go back to the queue; workers check
    # every maintenance interval, so a dead worker's batches are back within the sum.
    broker_heartbeat_s: float = Field(default=15.0, ge=1, le=600)
    # validate_default: a lowered heartbeat with the default interval is checked too
    broker_maintenance_s: float = Field(default=5.0, gt=0, le=60, validate_default=True)
    sla_repair_interval_s: float = Field(default=300.0, gt=0)  # the sweep for missed SLA clocks
    smtp: SmtpConfig | None = None
    # Limits at the HTTP door: web-form body size, slow clients, and when intake says 503.
    web_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)  # POST /v1/intake/web
    web_form: WebFormConfig = Field(default_factory=WebFormConfig)
    http_keepalive_timeout_s: float = Field(default=5.0, gt=0)  # idle, and to finish headers
    http_body_timeout_s: float = Field(default=15.0, gt=0)  # to finish sending a body
    intake_max_backlog: int = Field(default=2000, ge=0)  # ingest messages; 0: no bound
    intake_retry_after_s: int = Field(default=5, ge=1)  # the Retry-After of a 503

    @field_validator("broker_maintenance_s")
    @classmethod
    def _maintenance_within_heartbeat(cls, value: float, info: ValidationInfo) -> float:
        """A live worker heartbeats once per maintenance interval: at a third of the timeout
        or less, one late beat does not make it look dead and lose its batches."""
        heartbeat = info.data.get("broker_heartbeat_s")
        if heartbeat is not None and value > heartbeat / HEARTBEATS_PER_TIMEOUT:
            raise ValueError(
                f"must be at most broker_heartbeat_s / {HEARTBEATS_PER_TIMEOUT} "
                f"({heartbeat / HEARTBEATS_PER_TIMEOUT:g}), or live workers look dead"
            )
        return value


# ---------------------------------------------------------------- calls (CTI)


class PbxConfig(Strict):
    """One PBX that posts call events; its shared secret is in the named env variable."""

    secret_env: str  # HMAC-SHA256 key; never in this file
    branch: str = ""  # the branch or centre its calls count for in the call report
    default_region: str = "SA"  # how a caller number without a country code is read


class CtiConfig(Strict):
    """POST /v1/cti/events (omnidesk/agents/cti.py): PBXes by id, and where a missed call
    or a voicemail outside business hours goes as a ticket to call back."""

    pbx: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")], PbxConfig] = Field(
        min_length=1
    )
    callback_queue: str
    callback_sla_policy: str | None = None  # default: the callback queue's policy
    max_skew_s: int = Field(default=300, ge=5, le=3600)  # a signed timestamp older: refused
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)


# ---------------------------------------------------------------- scheduled reports


class ReportFilters(Strict):
    queue: str | None = None
    region: str | None = None
    channel: Channel | None = None
    segment: Segment | None = None
    agent: str | None = None


class ScheduledReport(Strict):
    """A report e-mailed every day, week or month at a local time, for the period just ended
    (yesterday, last week Sun-Sat, last month)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    schedule: Literal["daily", "weekly", "monthly"]
    at: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = "07:00"
    weekday: Weekday | None = None  # weekly: the day it is sent (default sun)
    day: int = Field(default=1, ge=1, le=28)  # monthly: the day of the month it is sent
    recipients: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    filters: ReportFilters = Field(default_factory=ReportFilters)
    format: Literal["html", "pdf", "csv", "json", "table"] = "html"
    lang: Literal["en", "ar"] = "en"
    digits: Literal["latn", "arab"] = "latn"  # the html and pdf page's numerals
    timezone: str | None = None  # default: the national calendar's

    @model_validator(mode="after")
    def _weekday(self) -> ScheduledReport:
        if self.weekday is not None and self.schedule != "weekly":
            raise ValueError("'weekday' goes with schedule: weekly")
        return self


class BrandingConfig(Strict):
    """Whose report it is: the ministry's name in both languages, its logo and colour, on
    the printable report (HTML and PDF)."""

    name_ar: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    logo: str | None = None  # a .png, .svg or .jpg file; relative paths from the config's folder
    colour: Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$")] = "#006c35"


class GuidesConfig(Strict):
    """The awareness guides (omnidesk.guides): Markdown files with YAML front matter in
    `folder` (relative paths from the config's folder), read again on every SIGHUP."""

    folder: str = Field(min_length=1)
    # How customers reach /guides/<slug> in links the console and automatic answers give;
    # default: service.public_url, else http_host:http_port
    public_url: str | None = None
    suggestions: int = Field(default=3, ge=1, le=10)  # guides suggested for a ticket
    # the least score a guide needs to answer a chat by itself (then.answer_with_guide)
    answer_min_score: float = Field(default=2.0, ge=0)


# ---------------------------------------------------------------- the whole file


class QueueConfigFile(Strict):
    """queue_config.yaml."""

    version: Literal[1] = 1
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    limits: Limits = Field(default_factory=Limits)
    calendars: dict[str, CalendarConfig] = Field(default_factory=dict)
    sla_policies: dict[str, SlaPolicyConfig] = Field(default_factory=dict)
    queues: dict[str, QueueConfig]
    rules: list[Rule] = Field(default_factory=list)
    default: DefaultRoute
    templates: dict[str, dict[Literal["ar", "en"], str]] = Field(default_factory=dict)
    tests: list[RuleTest] = Field(default_factory=list)
    # Sections the daemon's later parts own; validated by their own models when present.
    connectors: list[dict[str, Any]] = Field(default_factory=list)
    agents: list[AgentConfig] = Field(default_factory=list)
    reports: list[ScheduledReport] = Field(default_factory=list)
    branding: BrandingConfig | None = None
    cti: CtiConfig | None = None  # calls from the communication centre's PBX
    directory: DirectoryConfig | None = None  # agents who log in with LDAP credentials
    guides: GuidesConfig | None = None


# ---------------------------------------------------------------- directory login


class DirectoryGroup(Strict):
    """A directory group whose members are agents: their role and the queues they work."""

    dn: str = Field(min_length=3)
    role: Literal["agent", "supervisor"] = "agent"
    queues: list[str] = Field(default_factory=list)


class DirectoryConfig(Strict):
    """Console login against Active Directory or OpenLDAP (omnidesk.agents.directory): the
    service account finds the user, the user's own bind checks the password."""

    url: Annotated[str, Field(pattern=r"^ldaps?://[^/\s]+/?$")]
    start_tls: bool = False  # required for ldap://: no password crosses the wire in clear
    ca_file: str | None = None  # the CA that signed the server's certificate; default: system
    bind_dn: str = Field(min_length=3)
    bind_password_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    user_base: str = Field(min_length=3)
    user_filter: str = "(objectClass=person)"  # AD: add (!(userAccountControl:...:=2))
    login_attribute: str = "uid"  # AD: sAMAccountName; its value is the agent id
    name_attribute: str = "cn"
    mail_attribute: str = "mail"
    member_attribute: str = "member"  # of the group entries: member or uniqueMember
    groups: list[DirectoryGroup] = Field(min_length=1)
    languages_attribute: str | None = None  # values ar / en; else `languages`
    capacity_attribute: str | None = None  # an integer; else `capacity`
    languages: list[Literal["ar", "en"]] = Field(default_factory=lambda: list(_BOTH_LANGUAGES))
    capacity: int = Field(default=5, ge=1, le=1000)
    sync_interval_s: float = Field(default=300.0, ge=5)
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    session_ttl_s: int = Field(default=3600, ge=60)  # idle: renewed by each request
    session_max_s: int = Field(default=12 * 3600, ge=60)  # from login, whatever the use
    lockout_attempts: int = Field(default=5, ge=1, le=100)
    lockout_window_s: int = Field(default=900, ge=10)
    extension_attribute: str | None = None  # the PBX extension (telephoneNumber, ipPhone)

    @model_validator(mode="after")
    def _never_in_clear(self) -> DirectoryConfig:
        if self.url.startswith("ldap://") and not self.start_tls:
            raise ValueError("an ldap:// url needs start_tls: true (or use ldaps://)")
        if self.url.startswith("ldaps://") and self.start_tls:
            raise ValueError("start_tls is for ldap:// urls; ldaps:// is TLS already")
        return self


Condition.model_rebuild()
QueueConfigFile.model_rebuild()
