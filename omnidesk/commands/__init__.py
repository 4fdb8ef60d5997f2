"""One module per `omnidesk` subcommand; each has register(subparsers). The few helpers every
command's output uses live here, so the commands need not import the CLI that loads them."""

from __future__ import annotations

import os
import shlex
import shutil
import sys

from omnidesk.text import one_line_safe


def pasteable(*words: str, env: dict[str, str] | None = None) -> str:
    """A command line to print as a hint, quoted for a POSIX shell, to be pasted and run as
    it is: ``[NAME=value ...] omnidesk WORDS``. No placeholders: the caller gives real
    values (see `config_words`)."""
    assignments = [f"{name}={shlex.quote(value)}" for name, value in (env or {}).items()]
    return " ".join([*assignments, *(shlex.quote(w) for w in [*program_words(), *words])])


def program_words() -> list[str]:
    """How a pasted hint runs this same omnidesk: `omnidesk` when the shell's PATH finds this
    very program; its absolute path when it does not (a virtualenv not activated, as in the
    README's `.venv/bin/omnidesk demo`); `python -m omnidesk` when run as a module."""
    invoked = sys.argv[0] if sys.argv else ""
    if os.path.basename(invoked) != "omnidesk":
        return [sys.executable, "-m", "omnidesk"]
    found = shutil.which("omnidesk")
    if found and os.path.realpath(found) == os.path.realpath(invoked):
        return ["omnidesk"]
    return [os.path.abspath(invoked)]


def config_words(config: str | os.PathLike[str] | None) -> list[str]:
    """``--config ABSOLUTE-PATH`` of the config a command used, for its hints: the hint then
    runs from any folder, with the same config."""
    from omnidesk.configload import config_path

    return ["--config", str(config_path(config).resolve())]


def one_line(exc: BaseException) -> str:
    return one_line_safe(str(exc)) or type(exc).__name__
