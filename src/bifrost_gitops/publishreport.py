"""`publish --list` output: the history as JSON or as a table (release names escaped for either)."""

from __future__ import annotations

from .escape import term, to_json
from .publish import History, Row


def render_json(h: History, rows: list[Row]) -> str:
    """The history for a script: what is current, where a rollback goes, every event."""
    return to_json(
        {
            "current": h.pointed,
            "rollback_to": h.rollback_target,
            "history": [
                {
                    "release": r.event.release,
                    "at": r.event.at,
                    "how": r.event.how.value,
                    "from": r.event.left,
                    "current": r.current,
                    "rolled_back_from": r.rolled_back_from,
                    "rollback_target": r.rollback_target,
                    "kept": r.kept,
                }
                for r in rows
            ],
        }
    )


def render_table(rows: list[Row]) -> list[str]:
    """The history for a person: one aligned line per event, oldest first, under a header."""
    table = [("RELEASE", "CURRENT SINCE (UTC)", "HOW", "")]
    for r in rows:
        notes = [
            note
            for note, on in (
                ("current", r.current),
                ("rolled back from", r.rolled_back_from),
                ("--rollback returns here", r.rollback_target),
                ("removed", not r.kept),
            )
            if on
        ]
        table.append((term(r.event.release), r.event.at or "unknown", r.event.how.text, ", ".join(notes)))
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)), row[3]]).rstrip()
        for row in table
    ]
