"""PostgreSQL, the system of record: tickets, messages, customers, events, audit.

Redis keeps the hot state of open work; everything kept for history lives here. The schema
is a small ordered set of SQL files (schema/NNNN_*.sql) applied by `omnidesk db upgrade`.
"""
