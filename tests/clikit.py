"""`omnidesk ...` run in this process: `omnidesk.cli.main` with stdout and stderr captured,
answering like `subprocess.run(..., capture_output=True, text=True)`. Starting a Python
per command cost the suite tens of seconds; tests of a command's logic use this, and a few
tests keep a real subprocess for the entry point and the exit code at the process boundary
(tests/test_cli.py, tests/test_db_schema.py)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass

from omnidesk.cli import main


@dataclass(frozen=True)
class Ran:
    """What the command printed and returned, named as on a CompletedProcess."""

    returncode: int
    stdout: str
    stderr: str


@contextmanager
def environment(env: Mapping[str, str] | None) -> Iterator[None]:
    """`env`'s variables set for the command's run, the process's own put back after."""
    before = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def omnidesk(*argv: str, env: Mapping[str, str] | None = None) -> Ran:
    """Run `omnidesk ARGV` in-process, with `env` added to the environment."""
    out, err = io.StringIO(), io.StringIO()
    with environment(env), redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return Ran(code, out.getvalue(), err.getvalue())
