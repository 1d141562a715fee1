"""The commands' output as a table of aligned columns, or as JSON."""

from __future__ import annotations

import json
from typing import Any


def print_rows(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    """``rows`` as JSON, or as a table of ``columns`` (headed in capitals; a missing or
    None value is an empty cell)."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("(none)")
        return
    cells = [[str(row.get(c) if row.get(c) is not None else "") for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
