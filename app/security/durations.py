"""Lifetimes written on the command line: `30d`, `12h`, `15m`, `90s`, `2w`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d{1,6})([smhdw])")


def parse_duration(text: str) -> timedelta:
    """A positive duration; ValueError naming the accepted forms otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration (a positive number then s, m, h, d or w: 30d, 1h)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
