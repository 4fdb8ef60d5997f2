"""`omnidesk agents token AGENT` / `omnidesk agents revoke AGENT` / `omnidesk agents list`:
bearer tokens for the API and console (printed once, stored hashed)."""

from __future__ import annotations

import argparse

from omnidesk.commands.agent import open_service
from omnidesk.events import EventType


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("agents", help="agents' API tokens and presence")
    acts = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="default: $OMNIDESK_CONFIG or ./queue_config.yaml")
    token = acts.add_parser(
        "token", help="create a token for AGENT (printed once)", parents=[common]
    )
    token.add_argument("agent")
    token.set_defaults(func=create_token)
    revoke = acts.add_parser(
        "revoke", help="revoke every token and login session of AGENT", parents=[common]
    )
    revoke.add_argument("agent")
    revoke.set_defaults(func=revoke_tokens)
    listing = acts.add_parser(
        "list", help="agents with presence, load and capacity", parents=[common]
    )
    listing.set_defaults(func=list_agents)


def create_token(args: argparse.Namespace) -> int:
    service = open_service(args.config, with_pipeline=False)
    agent = service.agent(args.agent)  # NoSuchAgent: one line, exit 2
    print(service.tokens.create(agent.id))
    return 0


def revoke_tokens(args: argparse.Namespace) -> int:
    service = open_service(args.config, with_pipeline=False)
    count = service.tokens.revoke(args.agent)
    sessions = service.sessions.revoke(args.agent)  # a directory login's, too
    if sessions:
        service.store.add_event(EventType.ACCESS_REVOKED, actor="operator", agent=args.agent,
                                reason="omnidesk agents revoke", sessions=sessions)  # fmt: skip
    more = f" and {sessions} login session(s)" if sessions else ""
    print(f"revoked {count} token(s){more} of {args.agent}")
    return 0


def list_agents(args: argparse.Namespace) -> int:
    service = open_service(args.config, with_pipeline=False)
    from omnidesk.tables import format_table

    rows = []
    for a in service.roster().agents:  # the config's, then the directory's
        rows.append(
            [
                a.id,
                a.role,
                service.assigner.presence(a.id),
                f"{service.assigner.load(a.id)}/{a.capacity}",
                ",".join(a.languages),
                ",".join(service.roster().queues_of(a)),
            ]
        )
    print(format_table(["agent", "role", "presence", "load", "languages", "queues"], rows))
    return 0
