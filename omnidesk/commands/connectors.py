"""`omnidesk connectors` lists the configured accounts with their live status;
`omnidesk connectors check` connects each once and says what works and what does not."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from omnidesk.configload import load_config
from omnidesk.errors import AuthError, OmnideskError, PermanentError, TransientError
from omnidesk.tables import format_table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("connectors", help="list connectors with status, or check them")
    parser.add_argument("action", nargs="?", choices=["list", "check"], default="list")
    parser.add_argument("--config")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per account (check)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.config)
    if args.action == "check":
        results = asyncio.run(check_all(loaded.data.connectors, args.timeout))
        _print(args, ["connector", "kind", "result", "detail"], results)
        return 0 if all(r["result"] == "ok" for r in results) else 2
    live = _live_statuses(loaded.data.service.http_host, loaded.data.service.http_port)
    rows = []
    for entry in loaded.data.connectors:
        status = live.get(entry.get("name", ""), {}) if live is not None else {}
        rows.append(
            {
                "connector": entry.get("name", "?"),
                "kind": entry.get("kind", "?"),
                "state": status.get("state", "daemon not running" if live is None else "unknown"),
                "last_fetch": status.get("last_fetch") or "-",
                "handed_over": status.get("handed_over", "-"),
                "last_error": status.get("last_error") or "-",
            }
        )
    _print(args, ["connector", "kind", "state", "last_fetch", "handed_over", "last_error"], rows)
    return 0


async def check_all(entries: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
    from connectors.catalog import build

    results = []
    for entry in entries:
        name, kind = entry.get("name", "?"), entry.get("kind", "?")
        try:
            connector = build(entry)
            try:
                await asyncio.wait_for(_check_one(connector), timeout)
            finally:
                await connector.shutdown()
            result, detail = "ok", "connected"
        except TimeoutError:
            result, detail = "unreachable", f"no answer within {timeout:.0f}s"
        except AuthError as exc:
            result, detail = "bad credentials", _line(exc)
        except TransientError as exc:
            result, detail = "unreachable", _line(exc)
        except PermanentError as exc:
            result, detail = "misconfigured", _line(exc)
        except (OmnideskError, ValueError) as exc:
            result, detail = "invalid config", _line(exc)
        results.append({"connector": name, "kind": kind, "result": result, "detail": detail})
    return results


async def _check_one(connector: Any) -> None:
    await connector.initialize()
    await connector.check()


def _live_statuses(host: str, port: int) -> dict[str, dict[str, Any]] | None:
    """The running daemon's view from /healthz; None when no daemon answers."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=3) as reply:
            body = json.loads(reply.read())
    except urllib.error.HTTPError as exc:  # 503 still carries the report
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return None
    return {c["name"]: c for c in body.get("connectors", [])}


def _print(args: argparse.Namespace, header: list[str], rows: list[dict[str, Any]]) -> None:
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False, default=str))
        return
    if not rows:
        print("no connectors configured", file=sys.stderr)
        return
    print(format_table(header, [[str(r[h]) for h in header] for r in rows]))


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
