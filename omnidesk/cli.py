"""`omnidesk` command line: one subcommand per module in `omnidesk.commands`.

Every error is one line on stderr: exit 2 for bad input or a failed service,
exit 1 where a command's contract says so (a failing `check`). No traceback
unless --debug. Whatever a command prints passes `display_safe`: customer text
cannot send escape sequences or bidi overrides to the operator's terminal.
Whatever it writes to stderr passes `mask_secrets`: an error quoting a database URL
shows no password.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from omnidesk.commands import one_line
from omnidesk.errors import ConfigError, OmnideskError
from omnidesk.logs import mask_root_handlers, mask_secrets
from omnidesk.text import display_safe


# Every module in omnidesk.commands has register(subparsers) and sets `func` on its parser;
# they are found by listing the package, so a new command is one new module.
def command_modules() -> list[str]:
    import omnidesk.commands

    return sorted(m.name for m in pkgutil.iter_modules(omnidesk.commands.__path__))


EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnidesk", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in command_modules():
        importlib.import_module(f"omnidesk.commands.{name}").register(sub)
    return parser


class TerminalSafeWriter:
    """A text stream that writes everything through `display_safe(visible=True)`: control
    characters and bidi overrides become visible ``\\uXXXX`` text. Every printer of every
    command goes through it, so none can forget; in a JSON line the result is the same JSON.

    A CR directly before a newline is kept: it is a line ending (CSV's, by RFC 4180), not a
    control, and a machine reading the output needs it. A write ending in CR waits for the
    next one to tell which it is.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._held_cr = False  # the last write ended in a CR not written yet

    def write(self, text: str) -> int:
        written = len(text)
        if self._held_cr:
            text, self._held_cr = "\r" + text, False
        if text.endswith("\r"):
            text, self._held_cr = text[:-1], True
        self.stream.write("\r\n".join(display_safe(p, visible=True) for p in text.split("\r\n")))
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """A CR held back and never followed by a newline is written, escaped, at a flush."""
        if self._held_cr:
            self._held_cr = False
            self.stream.write(display_safe("\r", visible=True))
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # flush, isatty, buffer, encoding, ...
        return getattr(self.stream, name)


@contextmanager
def terminal_safe_stdout() -> Iterator[None]:
    """sys.stdout is a TerminalSafeWriter for the length of a command."""
    original = sys.stdout
    sys.stdout = TerminalSafeWriter(original)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stdout = original


class SecretMaskingWriter:
    """sys.stderr for a command: every write passes `mask_secrets`, so an error line that
    quotes an exception (a database URL with its password) is masked like a log line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(mask_secrets(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, buffer, encoding, ...
        return getattr(self.stream, name)


@contextmanager
def secret_safe_stderr() -> Iterator[None]:
    """sys.stderr is a SecretMaskingWriter for the length of a command and its error line."""
    original = sys.stderr
    sys.stderr = SecretMaskingWriter(original)
    try:
        yield
    finally:
        sys.stderr = original


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with secret_safe_stderr():
        try:
            return _run(args)
        except Exception:  # raised only with --debug: its traceback, masked like the rest
            traceback.print_exc()
            return EXIT_FAILED


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    mask_root_handlers()  # the secrets are registered when a command loads its config
    try:
        with terminal_safe_stdout():
            return int(args.func(args) or 0)
    except ConfigError as exc:
        if args.debug:
            raise
        for problem in exc.problems:
            print(display_safe(str(problem), visible=True), file=sys.stderr)
        return EXIT_BAD_INPUT
    except OmnideskError as exc:
        if args.debug:
            raise
        print(f"omnidesk {args.command}: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: still one line, the traceback only with --debug
        if args.debug:
            raise
        logging.getLogger("omnidesk").error("unexpected error", exc_info=True)
        print(
            f"omnidesk {args.command}: unexpected {type(exc).__name__}: {one_line(exc)} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
