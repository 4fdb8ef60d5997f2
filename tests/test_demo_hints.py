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

from omnidesk.commands import program_words
from tests.pgkit import SERVER

ROOT = Path(__file__).resolve().parent.parent


def run_pasted(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A printed command line run by a shell exactly as printed, from another folder."""
    return subprocess.run(["bash", "-c", line], cwd=cwd, capture_output=True, text=True, timeout=60)


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
    program = program_words()
    assert words[: len(program)] == program
    again = build_parser().parse_args(words[len(program) :])
    assert again.config == str(config.resolve())
    assert (again.queue, again.limit, again.before) == ("cc-consumers", 5, "eyJ0IjoiMjAyNiJ9")
    assert again.func is args.func


def test_a_hint_names_the_program_the_shell_would_find(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`.venv/bin/omnidesk demo` with the virtualenv not activated: the hint carries the
    program's absolute path, as `omnidesk` alone is not found; on PATH, plain `omnidesk`."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    program = bin_dir / "omnidesk"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["venv/bin/omnidesk", "demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert program_words() == [str(program)]
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert program_words() == ["omnidesk"]
    monkeypatch.setattr(sys, "argv", ["/somewhere/omnidesk/cli.py"])
    assert program_words() == [sys.executable, "-m", "omnidesk"]
