"""One module per `omnidesk` subcommand; each has register(subparsers). The few helpers every
command's output uses live here, so the commands need not import the CLI that loads them."""

from __future__ import annotations

import os
import shlex

from omnidesk.text import one_line_safe


def pasteable(*words: str, env: dict[str, str] | None = None) -> str:
    """A command line to print as a hint, quoted for a POSIX shell, to be pasted and run as
    it is: ``[NAME=value ...] omnidesk WORDS``. No placeholders: the caller gives real
    values (see `config_words`)."""
    assignments = [f"{name}={shlex.quote(value)}" for name, value in (env or {}).items()]
    return " ".join([*assignments, "omnidesk", *(shlex.quote(w) for w in words)])


def config_words(config: str | os.PathLike[str] | None) -> list[str]:
    """``--config ABSOLUTE-PATH`` of the config a command used, for its hints: the hint then
    runs from any folder, with the same config."""
    from omnidesk.configload import config_path

    return ["--config", str(config_path(config).resolve())]


def one_line(exc: BaseException) -> str:
    return one_line_safe(str(exc)) or type(exc).__name__
