"""What `omnidesk demo` tells a newcomer runs as printed: it says its data is kept apart,
and the commands it prints, pasted as they are, show the demo's tickets and quarantine."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.pgkit import SERVER

ROOT = Path(__file__).resolve().parent.parent


def run_pasted(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A printed command line as a shell would run it: NAME=value words, then omnidesk."""
    words = shlex.split(line)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    while "=" in words[0] and not words[0].startswith("-"):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    assert words[0] == "omnidesk", line
    return subprocess.run(
        [sys.executable, "-m", "omnidesk", *words[1:]],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.slow
def test_the_demos_printed_commands_show_its_tickets(pg_url: str, tmp_path: Path) -> None:
    demo_db = f"{conninfo_to_dict(pg_url)['dbname']}_demo"
    env = {**os.environ, "OMNIDESK_DATABASE_URL": pg_url}
    try:
        out = subprocess.run(
            [sys.executable, "-m", "omnidesk.cli", "demo"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=170,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        assert "..." not in out.stdout  # no placeholder anywhere
        assert "`omnidesk tickets` alone does not show it" in out.stdout
        lines = out.stdout.splitlines()
        start = next(i for i, line in enumerate(lines) if line.endswith("To look at it:"))
        tickets_cmd, quarantine_cmd = (line.strip() for line in lines[start + 1 : start + 3])
        assert "OMNIDESK_KEY_PREFIX=od-demo" in tickets_cmd
        demo_ids = set(re.findall(r"\bOD-[0-9A-Z-]+\b", "\n".join(lines[:start])))
        assert demo_ids, out.stdout[:1000]

        # pasted from another folder, with no OMNIDESK_DATABASE_URL of the caller's own
        shown = run_pasted(tickets_cmd, tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert demo_ids <= set(re.findall(r"\bOD-[0-9A-Z-]+\b", shown.stdout)), shown.stdout

        listed = run_pasted(quarantine_cmd, tmp_path)
        assert listed.returncode == 0, listed.stderr
        quarantined = int(re.search(r"quarantined: (\d+)", out.stdout).group(1))  # type: ignore[union-attr]
        assert len([x for x in listed.stdout.splitlines()[2:] if x.strip()]) == quarantined
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{demo_db}" WITH (FORCE)')


def test_the_next_page_hint_is_the_same_command_with_the_cursor(tmp_path: Path) -> None:
    """`omnidesk tickets` under a page prints the whole next command, not `--before X`."""
    from omnidesk.cli import build_parser
    from omnidesk.commands.tickets import next_page

    config = tmp_path / "my config.yaml"
    argv = ["tickets", "--config", str(config), "--queue", "cc-consumers", "--limit", "5"]
    args = build_parser().parse_args(argv)
    hint = next_page(args, "eyJ0IjoiMjAyNiJ9")
    words = shlex.split(hint)
    assert words[0] == "omnidesk"
    again = build_parser().parse_args(words[1:])
    assert again.config == str(config.resolve())
    assert (again.queue, again.limit, again.before) == ("cc-consumers", 5, "eyJ0IjoiMjAyNiJ9")
    assert again.func is args.func
