"""Lifetimes on the command line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.security.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", timedelta(seconds=90)), ("15m", timedelta(minutes=15)), ("1h", timedelta(hours=1)),
     ("30d", timedelta(days=30)), ("2w", timedelta(weeks=2)), (" 7D ", timedelta(days=7))],
)  # fmt: skip
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "30", "1y", "-1h", "1.5h", "h"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
