"""Load queue_config.yaml: parse with line numbers, validate the types, check the
cross-references, and name every problem as ``FILE:LINE: key: message``.

Kept whole though over 500 lines: the type check and each cross-check report through the
same locator of lines (`_Locator`), and `omnidesk check` lists their problems in one order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from omnidesk.config import (
    AgentConfig,
    CalendarConfig,
    QueueConfig,
    QueueConfigFile,
    Rule,
    RuleTest,
    SlaPolicyConfig,
)
from omnidesk.errors import ConfigError
from omnidesk.templates import template_problem
from omnidesk.yamltree import plain_tree

DEFAULT_CONFIG = "queue_config.yaml"
# Overrides service.key_prefix for one process, as $OMNIDESK_DATABASE_URL does the database:
# how a command looks at the demo's data (`omnidesk demo` prints the commands).
KEY_PREFIX_ENV = "OMNIDESK_KEY_PREFIX"
MAX_CONFIG_BYTES = 5 * 1024 * 1024

Loc = tuple[str | int, ...]


@dataclass
class LoadedConfig:
    path: Path
    data: QueueConfigFile
    warnings: list[str] = field(default_factory=list)
    locator: _Locator | None = None

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def problem(self, loc: Loc, message: str) -> str:
        """A `FILE:LINE: key: message` line for a place in this config."""
        line = self.locator.line(loc) if self.locator else 0
        return f"{self.path}:{line}: {dotted(loc)}: {message}"


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config every command uses: explicit, else $OMNIDESK_CONFIG, else ./queue_config.yaml."""
    return Path(explicit or os.environ.get("OMNIDESK_CONFIG") or DEFAULT_CONFIG)


def load_config(path: str | os.PathLike[str] | None = None) -> LoadedConfig:
    """Load and fully validate a config; raise ConfigError listing every problem."""
    cfg_path = config_path(path)
    try:
        raw = cfg_path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{cfg_path}:0: (file): cannot read: {exc.strerror}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{cfg_path}:0: (file): larger than {MAX_CONFIG_BYTES} bytes"])
    loaded = parse_config(raw, cfg_path)
    mask_secrets_of(loaded.data)
    if prefix := os.environ.get(KEY_PREFIX_ENV):
        loaded.data = _with_key_prefix(loaded.data, prefix)
    return loaded


def _with_key_prefix(cfg: QueueConfigFile, prefix: str) -> QueueConfigFile:
    service = cfg.service.model_copy(update={"key_prefix": prefix})
    return cfg.model_copy(update={"service": service})


# Secrets the config does not name with an `*_env` key, read by fixed names.
FIXED_SECRET_ENVS = ("OMNIDESK_DASHBOARD_TOKEN",)


def secret_env_names(cfg: QueueConfigFile) -> list[str]:
    """Every environment variable the config names through an `*_env` key, anywhere (the
    connectors' passwords and tokens, service.database_password_env, the SMTP password):
    by the project's rule, those are the keys that name secrets."""
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if str(key).endswith("_env") and isinstance(value, str):
                    names.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(cfg.model_dump())
    return [*names, *FIXED_SECRET_ENVS]


def mask_secrets_of(cfg: QueueConfigFile) -> None:
    """From now on no log line of this process shows a secret this config names: called at
    every load (daemon, worker, each CLI command, each SIGHUP reload)."""
    from omnidesk import logs
    from omnidesk.db.connect import URL_ENV

    logs.register_secret_env(*secret_env_names(cfg))
    urls = ((URL_ENV, os.environ.get(URL_ENV)), ("service.database_url", cfg.service.database_url))
    for source, url in urls:  # a password in a URL
        for password in url_passwords(url):
            logs.register_secret(password, source)
    logs.mask_root_handlers()


# scheme://user:PASSWORD@ : the password up to the last "@" before the path (a password
# written without percent-encoding may hold an "@")
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:([^/?#\s]*)@")


def url_passwords(url: str | None) -> set[str]:
    """Every form the password of a database URL can be printed in: decoded (``p@ss``) and
    as written (``p%40ss``), also from a URL psycopg cannot parse, whose error quotes it."""
    if not url:
        return set()
    from psycopg.conninfo import conninfo_to_dict

    found: set[str] = set()
    try:
        password = conninfo_to_dict(url).get("password")
    except Exception:  # not a valid URL: connecting will say so, quoting it
        password = None
    if password:
        found.add(str(password))
    if match := _URL_PASSWORD.search(url):
        found |= {match.group(1), unquote(match.group(1))}
    return {p for p in found if p}


def parse_config(raw: bytes | str, path: Path) -> LoadedConfig:
    tree = _parse_yaml(raw, path)
    if not isinstance(tree, dict):
        raise ConfigError([f"{path}:1: (file): the top level must be a mapping"])
    locator = _Locator(path, tree)
    plain = plain_tree(tree)
    # Validate section items one by one, so one bad queue does not hide a bad rule.
    problems: list[str] = []
    names: dict[str, set[str]] = {}
    broken_rules: list[tuple[int, Any]] = []  # still checked for references below
    for section, model in _ITEM_SECTIONS.items():
        items = plain.get(section)
        if isinstance(items, dict):
            names[section] = set(items)
            good: dict[str, Any] | list[Any] = {}
            pairs: Iterable[tuple[str | int, Any]] = items.items()
        elif isinstance(items, list):
            good = []
            pairs = enumerate(items)
        else:
            continue
        for key, item in pairs:
            try:
                valid = model.model_validate(item)
            except ValidationError as exc:
                problems.extend(locator.from_validation(exc, prefix=(section, key)))
                if section == "rules":
                    broken_rules.append((int(key), item))
                continue
            if isinstance(good, dict):
                good[str(key)] = valid
            else:
                good.append(valid)
        plain[section] = good
    try:
        data = QueueConfigFile.model_validate(plain)
    except ValidationError as exc:
        problems.extend(locator.from_validation(exc))
        # Leave the broken top-level sections out and look again, so that references
        # elsewhere (a rule's missing queue) are still named in the same run.
        broken = {err["loc"][0] for err in exc.errors() if err["loc"]}
        try:
            data = QueueConfigFile.model_validate(
                {k: v for k, v in plain.items() if k not in broken}
            )
        except ValidationError:
            raise ConfigError(sorted(problems, key=_line_of)) from None
    problems.extend(_check_connectors(data.connectors, locator))
    cross_problems, warnings = _cross_check(data, locator, names)
    problems.extend(cross_problems)
    problems.extend(_broken_rule_references(broken_rules, data, locator, names))
    problems.extend(_guide_problems(data, path, locator))
    if problems:
        raise ConfigError(sorted(problems, key=_line_of))
    return LoadedConfig(
        path=path, data=_with_default_calendar(data), warnings=warnings, locator=locator
    )


_ITEM_SECTIONS: dict[str, type[BaseModel]] = {
    "calendars": CalendarConfig,
    "sla_policies": SlaPolicyConfig,
    "queues": QueueConfig,
    "rules": Rule,
    "tests": RuleTest,
    "agents": AgentConfig,
}


def _line_of(problem: str) -> int:
    parts = problem.split(":", 2)
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0


def _parse_yaml(raw: bytes | str, path: Path) -> Any:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return yaml.load(text)
    except UnicodeDecodeError:
        raise ConfigError([f"{path}:0: (file): not UTF-8"]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = " ".join(str(exc.problem or exc.context or "bad YAML").split())
        raise ConfigError([f"{path}:{line}: (yaml): {problem}"]) from None
    except Exception as exc:  # ruamel raises a few unmarked errors on odd input
        raise ConfigError([f"{path}:0: (yaml): {' '.join(str(exc).split())[:200]}"]) from None


class _Locator:
    """Maps a path into the config (rules[3].when...) to its line in the file."""

    def __init__(self, path: Path, tree: Any) -> None:
        self.path = path
        self.tree = tree

    def line(self, loc: Loc) -> int:
        node, line = self.tree, 1
        for part in loc:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            # other parts (pydantic's union tags) do not move in the file
        return line

    def problem(self, loc: Loc, message: str) -> str:
        return f"{self.path}:{self.line(loc)}: {dotted(loc)}: {message}"

    def from_validation(
        self, exc: ValidationError, prefix: Loc = (), *, tagged: bool = False
    ) -> list[str]:
        """One problem line per error. `tagged`: `exc` is from a union discriminated by a
        field, whose errors name the chosen member first (dropped) or the field itself."""
        seen: set[str] = set()
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
            if tagged and err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                loc += (err["ctx"]["discriminator"].strip("'"),)
            elif tagged and loc:
                loc = loc[1:]
            loc = prefix + loc
            message = _message(err)
            text = self.problem(loc, message)
            if text not in seen:
                seen.add(text)
                problems.append(text)
        return problems


def _is_union_tag(part: str | int) -> bool:
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] in ("missing", "union_tag_not_found"):
        return "required"
    if err["type"] == "union_tag_invalid":
        return f"unknown {err['ctx']['tag']!r} (known: {err['ctx']['expected_tags']})"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


# ---------------------------------------------------------------- cross-references


def _cross_check(
    cfg: QueueConfigFile, at: _Locator, names: dict[str, set[str]]
) -> tuple[list[str], list[str]]:
    """References between sections; names of invalid items count as existing."""
    check = _CrossCheck(cfg, at, names)
    check.calendars_and_policies()
    check.queues_and_reports()
    rule_ids = check.rules()
    check.agents_and_templates()
    check.tests(rule_ids)
    check.cti()
    check.directory()
    return check.problems, check.warnings


class _CrossCheck:
    """What `_cross_check` finds, section by section, in the config's order."""

    def __init__(self, cfg: QueueConfigFile, at: _Locator, names: dict[str, set[str]]) -> None:
        self.cfg, self.at = cfg, at
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.queues = set(cfg.queues) | names.get("queues", set())
        self.policies = set(cfg.sla_policies) | names.get("sla_policies", set())
        self.templates = set(cfg.templates)
        self.calendars = set(cfg.calendars) | names.get("calendars", set()) | {"national"}

    def need(self, kind: str, name: str | None, known: set[str], loc: Loc) -> None:
        if name is not None and name not in known:
            self.problems.append(self.at.problem(loc, f"{kind} {name!r} does not exist"))

    def calendars_and_policies(self) -> None:
        cfg, need = self.cfg, self.need
        for name, cal in cfg.calendars.items():
            need("calendar", cal.inherits, self.calendars, ("calendars", name, "inherits"))
        self.problems.extend(_calendar_cycles(cfg.calendars, self.at))
        for name, pol in cfg.sla_policies.items():
            need("calendar", pol.calendar, self.calendars, ("sla_policies", name, "calendar"))
            for i, step in enumerate(pol.ladder):
                for j, action in enumerate(step.actions):
                    need(
                        "queue",
                        action.move_to,
                        self.queues,
                        ("sla_policies", name, "ladder", i, "actions", j, "move_to"),
                    )

    def queues_and_reports(self) -> None:
        cfg, at, need, queues, policies = self.cfg, self.at, self.need, self.queues, self.policies
        for name, queue in cfg.queues.items():
            need("calendar", queue.calendar, self.calendars, ("queues", name, "calendar"))
            need("SLA policy", queue.sla_policy, policies, ("queues", name, "sla_policy"))
            need("queue", queue.escalates_to, queues, ("queues", name, "escalates_to"))
        need("queue", cfg.default.queue, queues, ("default", "queue"))
        report_names: set[str] = set()
        for i, report in enumerate(cfg.reports):
            if report.name in report_names:
                self.problems.append(
                    at.problem(("reports", i, "name"), f"duplicate report {report.name!r}")
                )
            report_names.add(report.name)
            need("queue", report.filters.queue, queues, ("reports", i, "filters", "queue"))
        if cfg.reports and cfg.service.smtp is None:
            self.warnings.append(
                at.problem(("reports",), "scheduled reports need service.smtp to be sent")
            )
        need("SLA policy", cfg.default.sla_policy, policies, ("default", "sla_policy"))
        if (
            cfg.default.sla_policy is None
            and cfg.queues.get(cfg.default.queue)
            and cfg.queues[cfg.default.queue].sla_policy is None
        ):
            self.warnings.append(at.problem(("default",), "no SLA policy for the default queue"))

    def cti(self) -> None:
        """The call centre's callback queue and policy, and extensions held by one agent."""
        cti = self.cfg.cti
        if cti is not None:
            self.need("queue", cti.callback_queue, self.queues, ("cti", "callback_queue"))
            policy = cti.callback_sla_policy
            self.need("SLA policy", policy, self.policies, ("cti", "callback_sla_policy"))
            self.pbx_branches()
        held: dict[str, str] = {}
        for i, agent in enumerate(self.cfg.agents):
            if agent.extension is None:
                continue
            if agent.extension in held:
                other = held[agent.extension]
                self.problems.append(self.at.problem(
                    ("agents", i, "extension"),
                    f"extension {agent.extension!r} is also held by agent {other!r}",
                ))  # fmt: skip
            held.setdefault(agent.extension, agent.id)

    def pbx_branches(self) -> None:
        """A PBX's branch is where the reports count its calls: a queue or a region, else
        only the operator's unfiltered reports ever show them."""
        cti = self.cfg.cti
        regions = {q.region for q in self.cfg.queues.values() if q.region}
        for pbx_id, pbx in cti.pbx.items() if cti is not None else ():
            if pbx.branch and pbx.branch not in self.queues | regions:
                self.warnings.append(self.at.problem(
                    ("cti", "pbx", pbx_id, "branch"),
                    f"branch {pbx.branch!r} is neither a queue nor a region: its calls show "
                    "only in reports without a queue or region filter",
                ))  # fmt: skip

    def rules(self) -> dict[str, int]:
        """Duplicate ids, references, rules after a catch-all; returns id -> first index."""
        at, need = self.at, self.need
        seen_ids: dict[str, int] = {}
        catch_all: str | None = None
        for i, rule in enumerate(self.cfg.rules):
            base: Loc = ("rules", i)
            if rule.id in seen_ids:
                self.problems.append(
                    at.problem(
                        (*base, "id"),
                        f"duplicate rule id {rule.id!r} (also rules[{seen_ids[rule.id]}])",
                    )
                )
            seen_ids.setdefault(rule.id, i)
            need("queue", rule.then.queue, self.queues, (*base, "then", "queue"))
            need("SLA policy", rule.then.sla_policy, self.policies, (*base, "then", "sla_policy"))
            need("template", rule.then.auto_reply, self.templates, (*base, "then", "auto_reply"))
            if not rule.enabled:
                continue
            if catch_all is not None:
                self.warnings.append(
                    at.problem(
                        base,
                        f"rule {rule.id!r} can never match: "
                        f"the catch-all rule {catch_all!r} comes first",
                    )
                )
            elif rule.when is None and not rule.then.continue_ and rule.then.queue:
                catch_all = rule.id
        return seen_ids

    def agents_and_templates(self) -> None:
        at = self.at
        seen_agents: dict[str, int] = {}
        for i, agent in enumerate(self.cfg.agents):
            if agent.id in seen_agents:
                self.problems.append(
                    at.problem(
                        ("agents", i, "id"),
                        f"duplicate agent id {agent.id!r} (also agents[{seen_agents[agent.id]}])",
                    )
                )
            seen_agents.setdefault(agent.id, i)
            for j, queue_name in enumerate(agent.queues):
                self.need("queue", queue_name, self.queues, ("agents", i, "queues", j))
        for name, template in self.cfg.templates.items():
            for lang, text in template.items():
                problem = template_problem(text)
                if problem:
                    self.problems.append(at.problem(("templates", name, lang), problem))

    def directory(self) -> None:
        for i, group in enumerate(self.cfg.directory.groups if self.cfg.directory else []):
            for j, name in enumerate(group.queues):
                self.need("queue", name, self.queues, ("directory", "groups", i, "queues", j))

    def tests(self, rule_ids: dict[str, int]) -> None:
        at = self.at
        for i, test in enumerate(self.cfg.tests):
            self.need("queue", test.expect.queue, self.queues, ("tests", i, "expect", "queue"))
            if test.expect.rule is not None and test.expect.rule not in rule_ids:
                self.problems.append(
                    at.problem(
                        ("tests", i, "expect", "rule"), f"rule {test.expect.rule!r} does not exist"
                    )
                )
            if test.file is not None and not (at.path.parent / test.file).is_file():
                # a config copied away from its samples still runs; `check` says what it skipped
                self.warnings.append(at.problem(("tests", i, "file"), missing_test_file(test.file)))


def missing_test_file(file: str) -> str:
    return f"no such file {file!r} beside the config: this rule test is skipped"


def _check_connectors(entries: list[Any], at: _Locator) -> list[str]:
    """Each `connectors:` entry as its kind's own model (connectors.catalog's union on
    `kind`), its connector available; names must be unique."""
    from connectors.catalog import another_package_kind, connector_class, validate_entry

    problems, seen = [], set()
    for i, entry in enumerate(entries):
        where: Loc = ("connectors", i)
        try:
            validate_entry(entry)
        except ValidationError as exc:  # our union's errors start with the tag: dropped
            tagged = not another_package_kind(entry)
            problems.extend(at.from_validation(exc, prefix=where, tagged=tagged))
        except ValueError as exc:  # another package's kind that cannot be loaded
            problems.append(at.problem((*where, "kind"), str(exc)))
        else:
            try:
                connector_class(entry["kind"])  # its client library is installed
            except ValueError as exc:
                problems.append(at.problem((*where, "kind"), str(exc)))
        name = entry.get("name") if isinstance(entry, dict) else None
        if name is not None and name in seen:
            problems.append(at.problem((*where, "name"), f"duplicate connector {name!r}"))
        seen.add(name)
    return problems


def _broken_rule_references(
    broken: list[tuple[int, Any]], cfg: QueueConfigFile, at: _Locator, names: dict[str, set[str]]
) -> list[str]:
    """A rule that failed validation may still point at a missing queue: say so too."""
    problems = []
    queues = set(cfg.queues) | names.get("queues", set())
    policies = set(cfg.sla_policies) | names.get("sla_policies", set())
    for index, item in broken:
        then = item.get("then") if isinstance(item, dict) else None
        if not isinstance(then, dict):
            continue
        for key, known, kind in (
            ("queue", queues, "queue"),
            ("sla_policy", policies, "SLA policy"),
        ):
            value = then.get(key)
            if isinstance(value, str) and value not in known:
                problems.append(
                    at.problem(("rules", index, "then", key), f"{kind} {value!r} does not exist")
                )
    return problems


def _calendar_cycles(calendars: dict[str, CalendarConfig], at: _Locator) -> list[str]:
    problems = []
    for name in calendars:
        seen = [name]
        current = calendars[name].inherits
        while current is not None and current in calendars:
            if current in seen:
                problems.append(
                    at.problem(
                        ("calendars", name, "inherits"),
                        f"inheritance cycle: {' -> '.join([*seen, current])}",
                    )
                )
                break
            seen.append(current)
            current = calendars[current].inherits
    return problems


def _guide_problems(cfg: QueueConfigFile, path: Path, at: _Locator) -> list[str]:
    """The guides folder's files, each checked as the config is (omnidesk.guides.loader):
    a broken guide stops a start or a reload as a broken rule does. A missing folder is no
    problem here (a config copied without its guides still runs): the daemon logs it. A
    rule that answers with a guide needs a `guides:` section."""
    if cfg.guides is None:
        return [
            at.problem(("rules", i, "then", "answer_with_guide"), "needs a `guides:` section")
            for i, rule in enumerate(cfg.rules)
            if rule.then.answer_with_guide
        ]
    from omnidesk.guides.loader import load_folder

    folder = Path(cfg.guides.folder)
    folder = folder if folder.is_absolute() else path.parent / folder
    return load_folder(folder)[1] if folder.is_dir() else []


def _with_default_calendar(cfg: QueueConfigFile) -> QueueConfigFile:
    """Every config has a 'national' calendar: the SA defaults when the file gives none."""
    if "national" in cfg.calendars:
        return cfg
    return cfg.model_copy(update={"calendars": {"national": CalendarConfig(), **cfg.calendars}})
