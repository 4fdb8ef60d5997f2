"""Only re-exports: fixtures live in their own modules so branches merge cleanly."""

from tests.services import dovecot, redis_prefix, same_riyadh_day, smtp_server  # noqa: F401

pytest_plugins = ["tests.storekit", "tests.imapkit", "tests.pgkit", "tests.stages"]
