"""The guides a process serves: read from the folder the config names, indexed, and kept
per loaded config, so a SIGHUP that loads the config again reads the guides again.

Every part asks `library_for(loaded)` with the config it holds now (the daemon's `loaded`,
the runtime's `config`): the first call for a config reads and indexes the folder, later
calls get the same library. A reload is accepted only when the guides read cleanly
(omnidesk.configload checks them), so a library never drops a guide that was in service.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from omnidesk.guides.index import GuideIndex, Hit
from omnidesk.guides.loader import Guide, load_folder

if TYPE_CHECKING:
    from omnidesk.configload import LoadedConfig

log = logging.getLogger("omnidesk.guides")

KEEP = 4  # libraries kept: the config in service and a few before it (requests in flight)


@dataclass
class GuideLibrary:
    guides: list[Guide]
    base_url: str  # how customers reach /guides/<slug>
    suggestions: int = 3
    answer_min_score: float = 2.0
    index: GuideIndex = field(init=False)
    by_slug: dict[str, Guide] = field(init=False)

    def __post_init__(self) -> None:
        self.index = GuideIndex(self.guides)
        self.by_slug = {g.slug: g for g in self.guides}

    def url(self, guide: Guide) -> str:
        return f"{self.base_url.rstrip('/')}/guides/{guide.slug}"

    def search(self, text: str, *, limit: int = 10, public_only: bool = False) -> list[Hit]:
        """What an agent (all guides) or a customer (`public_only`) searches for."""
        return self.index.search(text, limit=limit, public_only=public_only)

    def suggest(self, text: str, language: str | None) -> list[Hit]:
        """The guides for a ticket's text: in its language when it has one (ar, en), else
        either; staff guides included (agents read them)."""
        lang = language if language in ("ar", "en") else None
        return self.index.search(text, limit=self.suggestions, lang=lang)


def folder_of(loaded: LoadedConfig) -> Path | None:
    section = loaded.data.guides
    if section is None:
        return None
    folder = Path(section.folder)
    return folder if folder.is_absolute() else loaded.base_dir / folder


def base_url_of(loaded: LoadedConfig) -> str:
    section = loaded.data.guides
    service = loaded.data.service
    return (
        (section.public_url if section else None)
        or service.public_url
        or f"http://{service.http_host}:{service.http_port}"
    )


def build(loaded: LoadedConfig) -> GuideLibrary:
    """Read and index the guides `loaded` names (none when it has no `guides:` section)."""
    folder = folder_of(loaded)
    guides: list[Guide] = []
    if folder is not None and not folder.is_dir():
        log.warning("guides.folder %s is not a folder: no guides", folder)
    elif folder is not None:
        guides, problems = load_folder(folder)
        for problem in problems:  # checked at load; a file changed since is left out
            log.error("guide left out: %s", problem)
    section = loaded.data.guides
    return GuideLibrary(
        guides,
        base_url_of(loaded),
        suggestions=section.suggestions if section else 3,
        answer_min_score=section.answer_min_score if section else 2.0,
    )


_cache: OrderedDict[int, tuple[LoadedConfig, GuideLibrary]] = OrderedDict()
_lock = threading.Lock()


def library_for(loaded: LoadedConfig) -> GuideLibrary:
    """The library of this loaded config, built on first use (the config object is kept
    with it, so its id is not reused while cached)."""
    key = id(loaded)
    with _lock:
        found = _cache.get(key)
        if found is not None and found[0] is loaded:
            _cache.move_to_end(key)
            return found[1]
    library = build(loaded)
    with _lock:
        _cache[key] = (loaded, library)
        while len(_cache) > KEEP:
            _cache.popitem(last=False)
    return library
