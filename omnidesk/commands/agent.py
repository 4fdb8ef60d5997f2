"""`omnidesk agent next|show|reply|note|transfer|pending|resolve --as AGENT`: an agent's
actions from the shell, for operators and scripts (the same checks as the API)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from omnidesk.agents.service import AgentService
from omnidesk.commands.tickets import attachment_line
from omnidesk.configload import load_config
from omnidesk.errors import PermanentError
from omnidesk.model import Outbound, to_builtins


def open_service(config: str | None, *, with_pipeline: bool = True) -> AgentService:
    """An AgentService on the config's Redis; replies go to the broker's `deliver` queue."""
    from omnidesk.store import Store

    loaded = load_config(config)
    service = loaded.data.service
    store = Store.from_url(service.redis_url, service.key_prefix)

    def no_send(outbound: Outbound) -> None:
        raise PermanentError("this command cannot send replies")

    send = no_send
    if with_pipeline:
        from omnidesk.pipeline import Pipeline, make_broker
        from omnidesk.runtime import Runtime

        broker = make_broker(service.broker_url or service.redis_url, service.key_prefix)
        send = Pipeline(Runtime.from_config(loaded, store=store), broker).send_reply
    from omnidesk.sla.engine import SlaClocks

    # The CLI's actions move the SLA clocks exactly as the console's do.
    sla = SlaClocks(store, loaded.data)
    return AgentService(store=store, config=lambda: loaded.data, send_reply=send, sla=sla)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("agent", help="act as an agent: next, show, reply, note, transfer, ...")
    acts = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_: str, *, ticket: bool = True) -> argparse.ArgumentParser:
        a = acts.add_parser(name, help=help_)
        a.add_argument("--as", dest="agent", required=True, metavar="AGENT")
        a.add_argument("--config")
        a.add_argument("--json", action="store_true")
        if ticket:
            a.add_argument("ticket")
        return a

    nxt = action("next", "claim the most urgent waiting ticket of my queues", ticket=False)
    nxt.add_argument("--queue")
    nxt.set_defaults(func=cmd_next)
    action("show", "a ticket's thread, customer, SLA and history").set_defaults(func=cmd_show)
    reply = action("reply", "reply to the customer on the ticket's channel")
    reply.add_argument("text", nargs="?", default="")
    reply.add_argument("--template")
    reply.add_argument("--language", choices=["ar", "en"])
    reply.set_defaults(func=cmd_reply)
    note = action("note", "add an internal note")
    note.add_argument("text")
    note.set_defaults(func=cmd_note)
    transfer = action("transfer", "move the ticket to another queue")
    transfer.add_argument("queue")
    transfer.add_argument("--reason", required=True)
    transfer.set_defaults(func=cmd_transfer)
    action("pending", "wait for the customer (pauses the SLA)").set_defaults(func=cmd_pending)
    action("resolve", "resolve (sends the CSAT survey)").set_defaults(func=cmd_resolve)


def _out(args: argparse.Namespace, obj: Any, line: str) -> int:
    print(json.dumps(to_builtins(obj), ensure_ascii=False, default=str) if args.json else line)
    return 0


def cmd_next(args: argparse.Namespace) -> int:
    service = open_service(args.config, with_pipeline=False)
    agent = service.agent(args.agent)
    if args.queue:
        service.roster().check(agent, args.queue)
    claim = service.assigner.claim(agent, [args.queue] if args.queue else None)
    if claim.outcome != "claimed":
        _out(args, {"outcome": claim.outcome}, f"nothing claimed: {claim.outcome}")
        return 1
    return _out(args, {"ticket": claim.ticket_id, "queue": claim.queue}, str(claim.ticket_id))


def cmd_show(args: argparse.Namespace) -> int:
    service = open_service(args.config, with_pipeline=False)
    view = service.desk.view(service.agent(args.agent), args.ticket)
    if args.json:
        return _out(args, view, "")
    t = view["ticket"]
    print(f"{t['id']}  [{t['status']}]  queue={t['queue']}  priority={t['priority']}")
    print(f"subject: {t['subject']}  assignee: {t.get('assignee') or '-'}")
    customer = view["customer"] or {}
    print(f"customer: {customer.get('id')} {customer.get('name', '')}")
    for other in view["other_tickets"]:
        if other.get("restricted"):
            print(f"  other: {other['id']} (restricted: not in your queues)")
            continue
        print(f"  other: {other['id']} {other['channel']} {other['status']} {other['subject']}")
    for m in view["messages"]:
        delivery = f" [{m['delivery']}]" if m.get("delivery") else ""
        print(f"\n--- {m['direction']} {m['created_at']} {m['author']}{delivery}\n{m['text']}")
        for item in m["attachments"]:
            print(attachment_line(item))
    return 0


def cmd_reply(args: argparse.Namespace) -> int:
    service = open_service(args.config)
    message = service.desk.reply(
        service.agent(args.agent),
        args.ticket,
        args.text,
        template=args.template,
        language=args.language,
    )
    return _out(args, message, f"{message.id} queued")


def cmd_note(args: argparse.Namespace) -> int:
    service = open_service(args.config, with_pipeline=False)
    message = service.desk.note(service.agent(args.agent), args.ticket, args.text)
    return _out(args, message, f"{message.id} noted")


def cmd_transfer(args: argparse.Namespace) -> int:
    service = open_service(args.config, with_pipeline=False)
    ticket = service.desk.transfer(service.agent(args.agent), args.ticket, args.queue, args.reason)
    return _out(args, ticket, f"{ticket.id} -> {ticket.queue}")


def cmd_pending(args: argparse.Namespace) -> int:
    service = open_service(args.config, with_pipeline=False)
    ticket = service.desk.pending(service.agent(args.agent), args.ticket)
    return _out(args, ticket, f"{ticket.id} {ticket.status.value}")


def cmd_resolve(args: argparse.Namespace) -> int:
    service = open_service(args.config)  # the survey is a reply
    ticket = service.desk.resolve(service.agent(args.agent), args.ticket)
    return _out(args, ticket, f"{ticket.id} {ticket.status.value}")
