"""omnidesk.keys lists every key family: each name `Keys` builds is one of `FAMILIES`, and
every family a Lua script builds from the prefix is listed there too."""

from __future__ import annotations

import inspect
import re
from importlib import resources
from pathlib import Path

from omnidesk.keys import FAMILIES, Keys

LUA_FAMILY = re.compile(r'p \.\. "([a-z_]+)(?::|")')


def pattern(family: str) -> re.Pattern[str]:
    """A family's name as a regex: each <placeholder> is one or more segments."""
    parts = re.split(r"<[^>]+>", family)
    return re.compile(".+".join(re.escape(part) for part in parts) + r"\Z")


def test_every_built_name_is_a_listed_family() -> None:
    keys = Keys("P")
    patterns = [pattern(f.pattern) for f in FAMILIES]
    built = 0
    for name, method in inspect.getmembers(keys, inspect.ismethod):
        if name.startswith("_") or name == "all_pattern":
            continue
        args = [
            "x1" if p.annotation != "int" else 7
            for p in inspect.signature(method).parameters.values()
        ]
        full = method(*args)
        assert full.startswith("P:"), name
        below = full.removeprefix("P:")
        assert any(p.match(below) for p in patterns), f"{name} builds {below}: not in FAMILIES"
        built += 1
    assert built >= 40


def test_every_family_a_script_builds_is_listed() -> None:
    heads = {f.pattern.split(":")[0] for f in FAMILIES}
    folder = resources.files("omnidesk.lua")
    for f in folder.iterdir():
        if not f.name.endswith(".lua"):
            continue
        used = set(LUA_FAMILY.findall(f.read_text("utf-8")))
        assert used <= heads, f"{f.name} builds {used - heads}, not in omnidesk.keys.FAMILIES"


def test_a_family_missing_from_the_table_is_caught() -> None:
    assert LUA_FAMILY.findall('redis.call("GET", p .. "nonesuch:" .. x)') == ["nonesuch"]
    assert not any(pattern(f.pattern).match("nonesuch:x") for f in FAMILIES)
    assert pattern("queue:<q>:waiting").match("queue:a:b:waiting")
    assert not pattern("queue:<q>:waiting").match("queue:a:all")


def test_every_family_says_its_type_owner_and_lifetime() -> None:
    for f in FAMILIES:
        assert f.type in {"hash", "list", "set", "zset", "string", "stream"}, f
        assert f.owner and f.lifetime, f
    assert len({f.pattern for f in FAMILIES}) == len(FAMILIES)


# Scripts that still take the prefix in ARGV: none. Never grow this set.
PREFIX_IN_ARGV: set[str] = set()


def test_scripts_take_the_prefix_in_keys() -> None:
    folder = resources.files("omnidesk.lua")
    in_argv = set()
    for f in folder.iterdir():
        text = f.read_text("utf-8") if f.name.endswith(".lua") else ""
        if re.search(r"local p = ARGV\[1\] \.\. \":\"|a\.prefix", text):
            in_argv.add(f.name)
    assert in_argv <= PREFIX_IN_ARGV


STORE_KEY_CALL = re.compile(r"\bstore\.key\(")


def test_no_product_module_joins_key_names_itself() -> None:
    """Product code builds names with Store.keys; Store.key (raw joins) is for tests."""
    root = Path(__file__).resolve().parent.parent
    callers = [
        str(path.relative_to(root))
        for package in ("omnidesk", "connectors", "router")
        for path in (root / package).rglob("*.py")
        if STORE_KEY_CALL.search(path.read_text("utf-8"))
    ]
    assert callers == []
    assert STORE_KEY_CALL.search('q = clocks.store.key("ticket", tid)')
