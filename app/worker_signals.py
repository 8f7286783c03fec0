"""Signals in Fovea's worker processes (ingest and codec pools).

Why: Ctrl-C in a terminal sends SIGINT to the whole process group, workers included. The server process
owns shutdown (it finishes requests in flight, then closes the pools); a worker interrupted on its own
only prints a KeyboardInterrupt traceback and loses the job it held.
"""

from __future__ import annotations

import signal


def ignore_interrupts() -> None:
    """Process-pool initializer: leave SIGINT to the server process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
