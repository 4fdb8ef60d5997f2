"""The daemon's plugins: a class of named hooks with no-op defaults, in the manner of
dramatiq's `Middleware`, so the daemon calls the agents and reports parts without knowing
them and no part wraps or overwrites another's functions.

Plugins run in `order` (lower first), then by name. Every hook's failure is caught and
logged with the plugin's name, so one broken part never stops the daemon or the others; a
plugin whose `attach` failed gets no later hook. `authorize` and `authorize_session` alone
let the project's own errors through: a refusal (NotSupervisor) or an unreachable store is
the answer, not a fault.

Built-in and external plugins are found through the `omnidesk.plugins` entry point group.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from omnidesk.config import AgentConfig
from omnidesk.errors import OmnideskError
from omnidesk.model import Ticket
from omnidesk.viewers import Viewer, env_authorize, no_sessions

if TYPE_CHECKING:
    from omnidesk.configload import LoadedConfig

log = logging.getLogger("omnidesk.plugins")


class Plugin:
    """Override the hooks you need; each default does nothing."""

    name: ClassVar[str] = "plugin"
    order: ClassVar[int] = 100  # lower runs first

    def attach(self, daemon: Any) -> None:
        """Build this part on the running daemon: add `daemon.route_hooks` and
        `daemon.background` jobs. Called once, after the core parts exist."""

    def tickets_opened(self, tickets: list[Ticket]) -> None:
        """New tickets, after intake and the SLA clocks started (in a worker thread)."""

    def reload(self, loaded: LoadedConfig) -> None:
        """An accepted SIGHUP config. Raise to keep this part on its old config."""

    def authorize(self, token: str) -> Viewer | None:
        """The supervisors' pages: the viewer a bearer token stands for, None when this
        plugin does not know the token; raise a NotAuthorized to refuse it."""
        return None

    def authorize_session(self, cookie: str, method: str, csrf: str | None) -> Viewer | None:
        """The supervisors' pages: the viewer a login session cookie stands for (`csrf`: the
        request's X-CSRF-Token, which a state-changing `method` needs), None when this plugin
        does not know such cookies; raise a NotAuthorized to refuse it."""
        return None

    def more_agents(self) -> list[AgentConfig]:
        """Agents this plugin knows beyond the config's (a directory's), for the pages that
        list agents; a blocking call, made off the event loop."""
        return []


class Plugins:
    """The daemon's plugins in their order, and the calls into their hooks."""

    def __init__(self, plugins: Iterable[Plugin] = ()) -> None:
        self._plugins = sorted(plugins, key=lambda p: (p.order, p.name))

    def __iter__(self) -> Any:
        return iter(self._plugins)

    def __len__(self) -> int:
        return len(self._plugins)

    def attach(self, daemon: Any) -> None:
        attached = []
        for plugin in self._plugins:
            try:
                plugin.attach(daemon)
            except Exception:
                log.exception("plugin %s failed to attach; it is left out", plugin.name)
            else:
                attached.append(plugin)
        self._plugins = attached

    def tickets_opened(self, tickets: list[Ticket]) -> None:
        for plugin in self._plugins:
            try:
                plugin.tickets_opened(tickets)
            except Exception:
                log.exception("plugin %s: tickets_opened failed", plugin.name)

    def reload(self, loaded: LoadedConfig) -> None:
        for plugin in self._plugins:
            try:
                plugin.reload(loaded)
            except Exception:  # that part keeps its old config; the others move on
                log.exception("plugin %s: reload failed", plugin.name)

    def authorize(self, token: str) -> Viewer:
        """The first plugin that knows the token decides; else the operator's token."""
        for plugin in self._plugins:
            try:
                viewer = plugin.authorize(token)
            except OmnideskError:
                raise
            except Exception:
                log.exception("plugin %s: authorize failed", plugin.name)
                continue
            if viewer is not None:
                return viewer
        return env_authorize(token)

    def authorize_session(self, cookie: str, method: str, csrf: str | None) -> Viewer:
        """The first plugin that knows login sessions decides; none: refused (SessionEnded)."""
        for plugin in self._plugins:
            try:
                viewer = plugin.authorize_session(cookie, method, csrf)
            except OmnideskError:
                raise
            except Exception:
                log.exception("plugin %s: authorize_session failed", plugin.name)
                continue
            if viewer is not None:
                return viewer
        return no_sessions(cookie, method, csrf)

    def more_agents(self) -> list[AgentConfig]:
        """Every plugin's agents beyond the config's; one that fails is logged and left out."""
        found: list[AgentConfig] = []
        for plugin in self._plugins:
            try:
                found.extend(plugin.more_agents())
            except OmnideskError:  # Redis away: the page that asked says so itself
                raise
            except Exception:
                log.exception("plugin %s: more_agents failed", plugin.name)
        return found


def discover(group: str = "omnidesk.plugins") -> list[Plugin]:
    """One instance of every plugin class installed under the entry point group; one that
    cannot be loaded is logged and left out."""
    found: list[Plugin] = []
    for point in entry_points(group=group):
        try:
            cls = point.load()
            found.append(cls())
        except Exception:
            log.exception("plugin %s (%s) cannot be loaded; left out", point.name, point.value)
    return found
