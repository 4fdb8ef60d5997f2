"""What the supervisor's dashboard says, in Arabic or English: its labels, business time
left as a person reads it ("٣ س ١٠ د", "breached 25 min ago"), risk levels and shares.

Every string goes through the gettext catalogues (omnidesk.i18n); the page's script only
places the text it is given, so no translation lives in JavaScript.
"""

from __future__ import annotations

from typing import Any, Literal

from omnidesk.i18n import N_, Translator, translator

Level = Literal["breached", "risk", "ok"]
RISK_S = 3600  # business time left under which a clock is "at risk" (as the console's count)

# the page's fixed text, by the element key dashboard.js fills
LABELS = {
    "title": N_("Supervisor dashboard"),
    "skip": N_("Skip to the figures"),
    "token": N_("Supervisor token"),
    "sign_in": N_("Sign in"),
    "sign_out": N_("Sign out"),
    "queues": N_("Queue depths"),
    "waiting": N_("Waiting"),
    "opened_today": N_("Opened today"),
    "resolved_today": N_("Resolved today"),
    "risk": N_("At-risk and breached tickets"),
    "no_risk": N_("No ticket is at risk."),
    "ticket": N_("Ticket"),
    "queue": N_("Queue"),
    "subject": N_("Subject and customer"),
    "left": N_("Time left (business)"),
    "state": N_("State"),
    "holder": N_("Held by"),
    "action": N_("Reassign"),
    "agents": N_("Agents"),
    "agent": N_("Agent"),
    "presence": N_("Presence"),
    "load": N_("Load"),
    "held": N_("Held tickets"),
    "compliance": N_("Today's SLA compliance"),
    "by_branch": N_("Per branch (queue)"),
    "by_region": N_("Per region"),
    "region": N_("Region"),
    "first_response": N_("First response"),
    "resolution": N_("Resolution"),
    "csat": N_("Customer satisfaction today"),
    "csat_avg": N_("Average score (1–5)"),
    "csat_n": N_("Answers"),
    "trend": N_("Waiting tickets, last minutes"),
    "reassign_title": N_("Reassign a ticket"),
    "to_agent": N_("To an agent"),
    "to_queue": N_("To a queue"),
    "reason": N_("Reason"),
    "send": N_("Reassign"),
    "cancel": N_("Cancel"),
    "live": N_("Live"),
    "reconnecting": N_("Connection lost; reconnecting…"),
    "moved": N_("Reassigned."),
    "failed": N_("The reassignment failed:"),
    "need_reason": N_("Give a reason for the transfer."),
    "no_target": N_("Choose an agent or a queue."),
    "operator_only": N_("Reassigning needs a supervisor's own token."),
    "updated": N_("Updated"),
    "unnamed": N_("(no subject)"),
    "calls_today": N_("Calls today"),
    "answer_rate": N_("Answer rate"),
    "awaiting_callback": N_("Missed, awaiting callback"),
    "directory_sign_in": N_("Sign in with your directory account"),
}
ERRORS = {
    "no_token": N_("Enter your supervisor token to open the dashboard."),
    "bad_token": N_("This token is not valid (wrong, revoked or expired). Check it and try again."),
    "not_supervisor": N_(
        "This token belongs to an agent without the supervisor role. Ask for a supervisor's "
        "token, or use the agent console."
    ),
    "unavailable": N_("The dashboard's data cannot be read right now; it will retry."),
    "session_not_supervisor": N_(
        "You are signed in as an agent without the supervisor role. Use the agent console, "
        "or enter a supervisor token."
    ),
    "session_ended": N_("Your sign-in has ended. Sign in again, or enter a supervisor token."),
    "csrf_refused": N_("This request lacked its security token. Reload the page and try again."),
}
# the today block (figures, compliance, CSAT) while PostgreSQL cannot be reached
TODAY_UNAVAILABLE = N_(
    "Today's figures are unavailable right now: the records database (PostgreSQL) cannot "
    "be reached. The rest of the dashboard is live."
)
# the reassign API's refusals by their stable code (omnidesk.agents.supervise), worded here;
# dashboard.js fills the {params} the API sends
REFUSALS = {
    "moved_meanwhile": N_("{ticket} was moved to another queue meanwhile: look again."),
    "agent_full": N_("{agent} is at capacity ({capacity} open tickets)."),
    "ticket_closed": N_("{ticket} is closed: reopen it first."),
    "already_assigned": N_("{ticket} is already {agent}'s."),
    "no_agent": N_("There is no agent {agent}."),
    "not_their_queue": N_("{agent} does not work queue {queue}: transfer the ticket first."),
    "no_queue": N_("There is no queue {queue}."),
    "needs_reason": N_("Give a reason for the transfer."),
    "already_in_queue": N_("{ticket} is already in {queue}."),
}
LEVELS: dict[str, str] = {
    "breached": N_("Breached"),
    "risk": N_("At risk"),
    "ok": N_("On track"),
}
PRESENCE = {"online": N_("Online"), "away": N_("Away"), "offline": N_("Offline")}
CLOCKS = {
    "first_response": N_("first response"),
    "next_response": N_("next response"),
    "resolution": N_("resolution"),
}


def lang_translator(lang: str) -> Translator:
    """Arabic pages write Arabic-Indic digits ("٣ س ١٠ د"), English Latin ones."""
    return translator(lang, digits="arab" if lang == "ar" else "latn")


def duration(tr: Translator, seconds: float) -> str:
    """Business seconds as hours and minutes: "3 h 10 min", "45 min", "35 h"."""
    minutes = int(abs(seconds) // 60)
    hours, mins = divmod(minutes, 60)
    if minutes == 0:
        return tr._("under a minute")
    if hours == 0:
        return tr._("{m} min").format(m=tr.number(mins))
    if mins == 0:
        return tr._("{h} h").format(h=tr.number(hours))
    return tr._("{h} h {m} min").format(h=tr.number(hours), m=tr.number(mins))


def level(seconds: float) -> Level:
    if seconds < 0:
        return "breached"
    return "risk" if seconds < RISK_S else "ok"


def time_left(tr: Translator, seconds: float) -> str:
    if seconds < 0:
        return tr._("breached {time} ago").format(time=duration(tr, seconds))
    return tr._("{time} left").format(time=duration(tr, seconds))


def share(tr: Translator, value: float | None) -> str:
    """A compliance share, or "no data" when nothing was measured (never 0 %)."""
    return tr._("no data") if value is None else tr.percent(value)


def load(tr: Translator, held: int, capacity: int) -> str:
    return tr._("{held} of {capacity}").format(held=tr.number(held), capacity=tr.number(capacity))


def held_elsewhere(tr: Translator, count: int) -> str:
    """The agent's tickets outside the viewer's queues (counted in the load, not listed)."""
    return tr._("+{n} in other queues").format(n=tr.number(count)) if count > 0 else ""


def agents_note(tr: Translator, configured: int, online: int) -> str | None:
    """Why the agents list looks as it does: nobody online is a fact about the people, not a
    sign that the agents part is down."""
    if configured == 0:
        return tr._("No agent is configured for these queues.")
    if online == 0:
        return tr._("No agent is online right now.")
    return None


def calls_today(tr: Translator, calls: dict[str, Any] | None) -> dict[str, Any]:
    """Today's calls, answer rate and missed calls awaiting a callback (the call report's
    total, omnidesk.reports.calls); no calls yet reads "no calls", never a 0 % rate;
    `phone` False: the config has no `cti`, the page hides the figures."""
    total = (calls or {}).get("total")
    if total is None:
        return {"phone": False, "calls": None, "calls_text": "—", "answer_rate": None,
                "answer_rate_text": "—", "awaiting_callback": None,
                "awaiting_callback_text": "—"}  # fmt: skip
    rate = total["answer_rate"]
    return {
        "phone": True,
        "calls": total["calls"],
        "calls_text": tr.number(total["calls"]) if total["calls"] else tr._("no calls"),
        "answer_rate": rate,
        "answer_rate_text": share(tr, rate),
        "awaiting_callback": total["awaiting_callback"],
        "awaiting_callback_text": tr.number(total["awaiting_callback"]),
    }


def texts(tr: Translator) -> dict[str, dict[str, str]]:
    """Every fixed string of the page in the translator's language."""
    return {
        "labels": {k: tr._(v) for k, v in LABELS.items()},
        "errors": {k: tr._(v) for k, v in ERRORS.items()},
        "refusals": {k: tr._(v) for k, v in REFUSALS.items()},
        "levels": {k: tr._(v) for k, v in LEVELS.items()},
        "presence": {k: tr._(v) for k, v in PRESENCE.items()},
    }
