"""One exception root for Omnidesk, split the way callers must react.

Library errors (IMAP, Telegram, X, Redis) are converted to these at the boundary,
so the reconnect loop and the CLI only ever see these types.
"""

from __future__ import annotations


class OmnideskError(Exception):
    """Root of every error Omnidesk raises on purpose."""


class TransientError(OmnideskError):
    """Try again later; `retry_after` (seconds) is the server's word when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


DEFAULT_RETRY_AFTER_S = 5


def retry_after_header(exc: BaseException) -> dict[str, str]:
    """The ``Retry-After`` header of a 503 for `exc`: its own delay when it carries one,
    rounded up to whole seconds as HTTP wants."""
    retry_after = getattr(exc, "retry_after", None) or DEFAULT_RETRY_AFTER_S
    return {"Retry-After": str(int(retry_after + 0.999))}


class PermanentError(OmnideskError):
    """Retrying the same thing will fail the same way."""


class CodedError(PermanentError):
    """A refusal a person reads: `code` (stable) and `params` let a page word it in its own
    language, the message being the English fallback."""

    def __init__(self, message: str, code: str = "", **params: str | int) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class AuthError(PermanentError):
    """Bad credentials or a revoked token: ask the operator, do not retry in a loop."""


class MissingExtra(PermanentError):
    """An optional part used without its extra installed (``omnidesk[charts]``, ...): the
    one-line message names the extra to install, as the CLI prints it (exit 2)."""

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what} needs the [{extra}] extra: pip install 'omnidesk[{extra}]'")
        self.extra = extra


class ConfigError(OmnideskError):
    """The configuration is invalid; `problems` are `FILE:LINE: key: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0] if problems else "invalid configuration")
        self.problems = problems


class TooLarge(PermanentError):
    """Over a configured size limit (an HTTP answer says 413)."""


class PayloadError(PermanentError):
    """A raw payload that cannot be normalized; the message says what is wrong in one line."""

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason  # short machine word: not_json, missing_field, too_large, ...


class StoreUnavailable(TransientError):
    """Redis (or the broker) cannot be reached right now."""


class StoreFull(StoreUnavailable):
    """Redis is at its memory limit and refuses writes until memory is freed."""


class PartialFailure(PermanentError):
    """Some items of a batch failed for good and were left out; the rest were done.
    `failed`: each left-out item's id -> its error; `done`: how many items were done."""

    def __init__(self, failed: dict[str, Exception], done: int = 0) -> None:
        first = next(iter(failed.items()), ("", ""))
        super().__init__(f"{len(failed)} left out; first: {first[0]}: {first[1]}")
        self.failed = failed
        self.done = done
