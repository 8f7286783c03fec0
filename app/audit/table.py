"""Audit events as a plain text table, for people reading `fovea audit --format table`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_COLUMNS = ("time", "principal", "action", "status", "bytes", "client", "studies")


def _row(event: dict[str, Any]) -> tuple[str, ...]:
    principal = event["principal"]
    if event.get("username"):
        principal += f" ({event['username']})"
    studies = event["studies"]
    return (
        event["time"][:23],
        f"{event['principal_kind']}:{principal}",
        event["action"],
        str(event["status"]),
        str(event["bytes_in"] + event["bytes_out"]),
        event["client"] or "",
        studies[0] + (f" +{len(studies) - 1}" if len(studies) > 1 else "") if studies else "",
    )


def event_table(events: Sequence[dict[str, Any]]) -> str:
    rows = [_COLUMNS, *(_row(event) for event in events)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
