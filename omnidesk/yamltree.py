"""ruamel's round-trip containers as plain dicts and lists: the config and the guides' front
matter are read round-trip for their line numbers, and validated plain."""

from __future__ import annotations

from typing import Any


def plain_tree(node: Any) -> Any:
    """`node` with every commented mapping and sequence turned into a dict or a list."""
    if isinstance(node, dict):
        return {str(k): plain_tree(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain_tree(v) for v in node]
    return node
