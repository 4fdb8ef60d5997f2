"""SLA clocks: pure clocks and transitions, their stored form, the engine over Redis.

Modules, each with one job (import from them; this package re-exports nothing):

- `clock`: one clock (`Clock`, its ladder `Step`s and `Pause`s) and its pure transitions;
- `policy`: `SlaContext`, the calendars and policies the transitions count in;
- `ticket`: a ticket's clocks (`SlaState`), its transitions, and its one `standing`;
- `codec`: `SlaState` as JSON and as the packed record, and the sweeper's packed hot path;
- `records`: the packed records in Redis, bucketed, written by compare-and-set;
- `hooks`: the transitions intake and agents cause, applied to the records;
- `sweeper`: the exactly-once sweeper that fires due ladder steps;
- `queries`: summaries, explanations, the at-risk list and /metrics counts;
- `repair`: the sweep that starts clocks an open ticket is missing;
- `engine`: `SlaClocks`, all of the above over one store and one configuration;
- `protocol`: `SlaEngine`, what the desk, the runtime and the daemon call;
- `errors`: `SlaError` and `SlaConflict`.
"""
