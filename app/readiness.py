"""What the readiness probe remembers between requests (see `app/api/admin.py`)."""

from __future__ import annotations

import asyncio


class ReadinessMemo:
    """The time of the last successful readiness check, and the check in progress, if any."""

    def __init__(self) -> None:
        self.ok_at = float("-inf")
        self.running: asyncio.Future[dict[str, str]] | None = None
