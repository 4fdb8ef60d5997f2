"""SIGHUP reload reaches the plugins' parts: after a reload that adds a scheduled report and an
agent, the report scheduler sends the new report and the new agent takes work, in a daemon
running in this process on the real Redis with a real aiosmtpd."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from omnidesk.agents.roster import NoSuchAgent
from omnidesk.service import Daemon, DaemonOptions
from tests.agentkit import AGENTS_CONFIG
from tests.services import SmtpSink, eventually
from tests.storekit import REDIS_URL, web


def write_config(path: Path, prefix: str, state: Path, smtp: SmtpSink, extra: str = "") -> None:
    service = (
        f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n  state_dir: {state}\n"
        f"  smtp: {{host: {smtp.host}, port: {smtp.port}, from_address: od@moc.example.sa}}\n"
    )
    path.write_text(service + AGENTS_CONFIG.read_text("utf-8") + extra, "utf-8")


NEW_PARTS = """\
  - {id: newbie, name: Nada, queues: [cr], languages: [ar, en], capacity: 2}
reports:
  - {name: daily-ops, schedule: daily, at: "00:00", recipients: [ops@moc.example.sa],
     format: csv}
"""


@pytest.fixture
async def daemon(prefix: str, tmp_path: Path, smtp_server: SmtpSink):
    config = tmp_path / "queue_config.yaml"
    write_config(config, prefix, tmp_path / "state", smtp_server)
    d = Daemon(DaemonOptions(config=str(config), workers=0, http=False, drain_timeout=5))
    async with d:
        yield d


async def test_reload_adds_a_scheduled_report_and_an_agent(
    daemon: Daemon, prefix: str, tmp_path: Path, smtp_server: SmtpSink
) -> None:
    agents = daemon.agents
    with pytest.raises(NoSuchAgent):
        agents.agent("newbie")
    assert await daemon.report_scheduler.tick() == []  # no reports configured yet
    (opened,) = (
        await asyncio.to_thread(
            daemon.runtime.process, [web("السجل التجاري: تجديد", email="c@example.sa")]
        )
    ).results
    await asyncio.sleep(1.2)  # a push round: nobody works the cr queue yet
    assert daemon.runtime.store.get_ticket(opened.ticket_id).assignee is None

    write_config(Path(daemon.options.config), prefix, tmp_path / "state", smtp_server, NEW_PARTS)
    daemon.reload()

    assert agents.agent("newbie").name == "Nada"
    assert daemon.dashboard.config is daemon.loaded.data  # the dashboard's view too
    await asyncio.to_thread(agents.assigner.set_presence, "newbie", "online")
    assert await eventually(
        lambda: daemon.runtime.store.get_ticket(opened.ticket_id).assignee == "newbie", 5
    )
    (sent,) = await daemon.report_scheduler.tick()
    assert sent.startswith(f"{prefix}:report:daily-ops:")
    (mail,) = smtp_server.messages
    assert mail["Subject"].startswith("Omnidesk report daily-ops: ")
    assert mail["To"] == "ops@moc.example.sa"


async def test_a_failing_reload_hook_leaves_the_others_applied(
    daemon: Daemon, prefix: str, tmp_path: Path, smtp_server: SmtpSink
) -> None:
    seen: list[str] = []

    def broken(loaded: object) -> None:
        raise RuntimeError("this part cannot take it")

    daemon.reload_hooks.insert(0, broken)
    daemon.reload_hooks.append(lambda loaded: seen.append(loaded.data.reports[0].name))
    write_config(Path(daemon.options.config), prefix, tmp_path / "state", smtp_server, NEW_PARTS)
    daemon.reload()
    assert seen == ["daily-ops"]
    assert [r.name for r in daemon.report_scheduler.config.reports] == ["daily-ops"]


async def test_sighup_reads_off_the_loop_and_the_last_edit_wins(
    daemon: Daemon, prefix: str, tmp_path: Path, smtp_server: SmtpSink
) -> None:
    """The SIGHUP handler reads the config in a thread; a SIGHUP while one is under way runs
    one more reload after it, so the second edit is the one in force."""
    readers: list[bool] = []

    def on_which_thread(loaded: object) -> None:
        readers.append(threading.current_thread() is threading.main_thread())

    daemon.reload_hooks.append(on_which_thread)
    config = Path(daemon.options.config)
    write_config(config, prefix, tmp_path / "state", smtp_server, NEW_PARTS)
    daemon._reload_in_background()
    write_config(
        config, prefix, tmp_path / "state", smtp_server, NEW_PARTS.replace("Nada", "Nawal")
    )
    daemon._reload_in_background()  # while the first is under way
    assert daemon._reloading is not None
    await asyncio.wait_for(daemon._reloading, 20)
    assert daemon.agents.agent("newbie").name == "Nawal"
    assert readers and not any(readers)  # every hook ran off the event loop
