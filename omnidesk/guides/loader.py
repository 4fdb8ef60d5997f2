"""Read a folder of guides: Markdown files with YAML front matter, one guide each.

A guide's slug is its file name without `.md` (``cr-renewal-ar.md`` is ``/guides/cr-renewal-ar``);
its front matter says its title, language, service, tags and audience. Every problem is one
``FILE:LINE: key: message`` line, like the config's, so `omnidesk check` and a SIGHUP reload
name a broken guide the same way they name a broken rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError

from omnidesk.yamltree import plain_tree

MAX_GUIDE_BYTES = 256 * 1024
MAX_GUIDES = 2000
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")
_FENCE = "---"

Audience = Literal["consumers", "businesses", "staff"]
Tag = Annotated[str, Field(min_length=1, max_length=60)]


class GuideMeta(BaseModel):
    """A guide's front matter; unknown keys are refused by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=200)
    lang: Literal["ar", "en"]
    service: str = Field(min_length=1, max_length=60)
    tags: list[Tag] = Field(default_factory=list)
    audience: list[Audience] = Field(min_length=1)
    summary: str = Field(default="", max_length=500)
    # the slug of the same guide in the other language, for the page's language link
    translation: str | None = None


@dataclass(frozen=True)
class Guide:
    slug: str
    meta: GuideMeta
    body: str  # the Markdown after the front matter
    path: Path

    @property
    def topic(self) -> str:
        """The slug without its language suffix: what the two translations share."""
        return self.slug.removesuffix(f"-{self.meta.lang}")

    @property
    def public(self) -> bool:
        """Customers see it (/guides, the web form, automatic answers): not staff-only."""
        return any(a != "staff" for a in self.meta.audience)


def load_folder(folder: Path) -> tuple[list[Guide], list[str]]:
    """Every readable guide of `folder` (sorted by slug), and a problem line for each file
    that is not one. A missing folder is one problem."""
    if not folder.is_dir():
        return [], [f"{folder}:0: (folder): not a folder of guides"]
    guides: list[Guide] = []
    problems: list[str] = []
    files = sorted(folder.glob("*.md"))
    if len(files) > MAX_GUIDES:
        problems.append(f"{folder}:0: (folder): more than {MAX_GUIDES} guides; the rest ignored")
        files = files[:MAX_GUIDES]
    for path in files:
        guide, problem = load_file(path)
        if guide is not None:
            guides.append(guide)
        problems.extend(problem)
    problems.extend(_translations(guides))
    return guides, problems


def load_file(path: Path) -> tuple[Guide | None, list[str]]:
    """One guide, or None and its problems."""
    slug = path.stem
    if not SLUG.match(slug):
        return None, [f"{path}:0: (file): the name must be lower-case letters, digits and -"]
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [f"{path}:0: (file): cannot read: {exc.strerror}"]
    if len(raw) > MAX_GUIDE_BYTES:
        return None, [f"{path}:0: (file): larger than {MAX_GUIDE_BYTES} bytes"]
    try:
        text = raw.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError:
        return None, [f"{path}:0: (file): not UTF-8"]
    lines = text.split("\n")
    if not lines or lines[0].strip() != _FENCE:
        return None, [f"{path}:1: (front matter): the file must begin with a --- line"]
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == _FENCE)
    except StopIteration:
        return None, [f"{path}:1: (front matter): no closing --- line"]
    front, problem = _front_matter("\n".join(lines[1:end]), path)
    if problem:
        return None, [problem]
    try:
        meta = GuideMeta.model_validate(plain_tree(front))
    except ValidationError as exc:
        return None, [_problem(path, front, err) for err in exc.errors(include_url=False)]
    body = "\n".join(lines[end + 1 :]).strip()
    if not body:
        return None, [f"{path}:{end + 1}: (body): empty"]
    if not meta.lang or not slug.endswith(f"-{meta.lang}"):
        return None, [f"{path}:{_line(front, 'lang')}: lang: the name must end in -{meta.lang}"]
    return Guide(slug=slug, meta=meta, body=body, path=path), []


def _front_matter(text: str, path: Path) -> tuple[Any, str | None]:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        front = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 2 if mark else 1
        detail = " ".join(str(exc.problem or exc.context or "bad YAML").split())
        return None, f"{path}:{line}: (front matter): {detail}"
    if not isinstance(front, dict):
        return None, f"{path}:2: (front matter): must be a mapping"
    return front, None


def _line(front: Any, key: str) -> int:
    """The file line of a front-matter key (the front matter starts on line 2)."""
    if isinstance(front, CommentedMap) and key in front:
        return int(front.lc.key(key)[0]) + 2
    return 2


def _problem(path: Path, front: Any, err: Any) -> str:
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc) or "(front matter)"
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    elif err["type"] == "missing":
        message = "required"
    else:
        message = str(err["msg"])
    return f"{path}:{_line(front, loc[0]) if loc else 2}: {key}: {message}"


def _translations(guides: list[Guide]) -> list[str]:
    """A translation must name a guide of the folder, in the other language."""
    by_slug = {g.slug: g for g in guides}
    problems = []
    for guide in guides:
        other = guide.meta.translation
        if other is None:
            continue
        found = by_slug.get(other)
        if found is None or found.meta.lang == guide.meta.lang:
            problems.append(
                f"{guide.path}:{2}: translation: no guide {other!r} in the other language"
            )
    return problems
