"""Processes as /proc shows them: alive or not, and whose children (private servers' helpers,
workers' records writers)."""

from __future__ import annotations

import os


def _stat(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state first, then the parent)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Running: a zombie is dead for our purposes."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children(parent: int) -> list[int]:
    """Direct children of `parent`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(entry)) is not None and int(fields[1]) == parent:
            found.append(int(entry))
    return found
