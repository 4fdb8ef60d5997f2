"""Supervisor reports: rollups kept from the events stream, figures read from them, the
`omnidesk report` outputs (table, CSV, JSON, HTML), scheduled e-mails and the dashboard.

Layout: `fold` (pure: how one event changes the figures), `rollup` (the Redis hashes and the
consumer that keeps them), `recompute` (pure: the same figures straight from raw events, the
check on the rollups), `figures` (read the rollups for a period and filters), `render` and
`html` (outputs), `schedule` (scheduled reports), `dashboard` (the live page).
"""
