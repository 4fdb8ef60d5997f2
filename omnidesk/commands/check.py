"""`omnidesk check [CONFIG]`: validate a config and run the rule tests it carries.

Exit 0 when all is well; otherwise exit 1 naming each problem as FILE:LINE: key: message.
"""

from __future__ import annotations

import argparse
import sys

from omnidesk.commands import pasteable
from omnidesk.configload import load_config
from omnidesk.errors import ConfigError
from omnidesk.routing import Routing
from omnidesk.ruletests import run_rule_tests


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("check", help="validate queue_config.yaml and run its rule tests")
    parser.add_argument(
        "config", nargs="?", help="default: $OMNIDESK_CONFIG or ./queue_config.yaml"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print problems only")
    parser.add_argument(
        "--allow-missing-files",
        action="store_true",
        help="rule tests whose sample file is not beside the config are skipped, not failed",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        loaded = load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    routing = Routing.from_config(loaded)
    results = run_rule_tests(routing)
    failed = [r for r in results if r.failures]
    skipped = [r for r in results if r.skipped]
    for result in failed:
        for key, message in result.failures:
            loc = (
                ("tests", result.index, "expect", key)
                if key != "file"
                else ("tests", result.index, "file")
            )
            print(loaded.problem(loc, f"test {result.test.name!r}: {message}"), file=sys.stderr)
    data = loaded.data
    if not args.quiet:
        print(
            f"{loaded.path}: {len(data.queues)} queues, {len(data.rules)} rules, "
            f"{len(data.sla_policies)} SLA policies, {len(data.calendars)} calendars; "
            f"rule tests: {len(results) - len(failed) - len(skipped)} passed, "
            f"{len(failed)} failed, {len(skipped)} skipped"
        )
    if skipped and not args.allow_missing_files:
        print(
            f"{loaded.path}: {len(skipped)} rule tests skipped: their sample files are not "
            "beside the config (copy them there, or accept with: "
            f"{pasteable('check', '--allow-missing-files', str(loaded.path.resolve()))})",
            file=sys.stderr,
        )
        return 1
    return 1 if failed else 0
