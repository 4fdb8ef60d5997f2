"""`omnidesk agent ... --as AGENT` and `omnidesk agents token|revoke` as an operator runs
them (in-process through tests/clikit.py, on the real Redis), and the daemon plugin's
push-after-intake hook."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from omnidesk.agents.plugin import push_after_intake
from tests.agentkit import AGENTS_CONFIG, make
from tests.clikit import Ran, omnidesk
from tests.storekit import REDIS_URL, web


def write(prefix: str, tmp: Path) -> Path:
    path = tmp / "queue_config.yaml"
    service = f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n  state_dir: {tmp}\n"
    path.write_text(service + AGENTS_CONFIG.read_text("utf-8"), "utf-8")
    return path


def run(config: Path, *args: str) -> Ran:
    return omnidesk(*args, "--config", str(config))


def test_agent_commands_next_show_note_pending_transfer_and_tokens(
    prefix: str, tmp_path: Path
) -> None:
    config = write(prefix, tmp_path)
    runtime, service, _ = make(prefix, tmp_path)
    runtime.process([web("سؤال عن الخدمات", email="c@example.sa", name="هدى")])

    done = run(config, "agent", "next", "--as", "amal", "--json")
    assert done.returncode == 0, done.stderr
    ticket = json.loads(done.stdout)["ticket"]
    assert run(config, "agent", "next", "--as", "amal").returncode == 1  # nothing left

    done = run(config, "agent", "note", ticket, "اتصلت بالفرع", "--as", "amal")
    assert done.returncode == 0 and "noted" in done.stdout
    done = run(config, "agent", "show", ticket, "--as", "amal")
    assert "هدى" in done.stdout and "اتصلت بالفرع" in done.stdout and "note" in done.stdout
    done = run(config, "agent", "pending", ticket, "--as", "amal")
    assert done.stdout.strip() == f"{ticket} pending_customer"
    denied = run(config, "agent", "show", ticket, "--as", "omar")
    assert denied.returncode == 2 and "no access to queue 'general'" in denied.stderr
    assert "Traceback" not in denied.stderr
    done = run(
        config, "agent", "transfer", ticket, "quiet", "--reason", "wrong queue", "--as", "amal"
    )
    assert done.returncode == 0 and done.stdout.strip() == f"{ticket} -> quiet"
    unknown = run(config, "agent", "next", "--as", "nobody")
    assert unknown.returncode == 2 and "no agent 'nobody'" in unknown.stderr

    token = run(config, "agents", "token", "sara").stdout.strip()
    assert service.authenticate(token).id == "sara"
    assert run(config, "agents", "revoke", "sara").stdout.startswith("revoked 1 token")
    listing = run(config, "agents", "list").stdout
    assert "amal" in listing and "0/3" in listing
    assert run(config, "agents", "token", "nobody").returncode == 2


def test_a_new_ticket_in_a_push_queue_is_assigned_by_the_intake_hook(
    prefix: str, tmp_path: Path
) -> None:
    agents = [{"id": "rr", "queues": ["cr"], "capacity": 2, "languages": ["ar"]}]
    runtime, service, _ = make(prefix, tmp_path, agents)
    runtime.intake.hooks.after_opened = partial(push_after_intake, service)
    service.assigner.set_presence("rr", "online")
    report = runtime.process([web("تجديد السجل التجاري", email="a@example.sa")])
    ticket = service.store.get_ticket(report.results[0].ticket_id)
    assert ticket.assignee == "rr" and ticket.status.value == "open"
    assert service.store.waiting("cr") == []
