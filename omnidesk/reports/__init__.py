"""Supervisor reports: figures computed in PostgreSQL, the `omnidesk report` outputs (table,
CSV, JSON, HTML, PDF), scheduled e-mails and the dashboard.

Layout: `fold` (the definitions: dimensions, buckets, time zone, regions, calendars and
policy targets), `figures` (the `Raw` counters and their summary), `source` (the figures
of a period, from PostgreSQL: omnidesk.reports.sql and omnidesk.reports.days),
`recompute` (pure: the same figures straight from raw events, the check on the SQL),
`render` and `html` (outputs), `schedule` (scheduled reports), `dashboard` (the live page),
`legacy` (removes older versions' Redis rollups).
"""
