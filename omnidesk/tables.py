"""Plain text tables for the CLI and the mailed report's body: in the core, because both the
commands and the reports plugin print them."""

from __future__ import annotations

from omnidesk.text import one_line_safe


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain text table; widths count characters, so Arabic columns line up as text.
    Each cell is one line, its control characters shown as ``\\uXXXX`` (one_line_safe)."""
    cells = [header, *[[one_line_safe(str(c)) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
