"""Reading audit queries: points in time and limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.audit.queries import MAX_LIMIT, AuditQuery, BadAuditQuery, parse_when

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),  # no zone: UTC
        ("2026-12-01T08:30:00Z", datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
        ("2026-12-01T08:30:00+01:00", datetime(2026, 12, 1, 8, 30, tzinfo=timezone(timedelta(hours=1)))),
        ("45s", NOW - timedelta(seconds=45)),
        ("30m", NOW - timedelta(minutes=30)),
        ("12h", NOW - timedelta(hours=12)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        (" 1h ", NOW - timedelta(hours=1)),
    ],
)
def test_points_in_time(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "", "7 days", "-1h", "1y", "2026-13-01"])
def test_what_is_not_a_time_is_refused_with_the_value_named(text: str) -> None:
    with pytest.raises(BadAuditQuery, match=f"{text!r} is not a time"):
        parse_when(text, now=NOW)


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1])
def test_limits_outside_the_range_are_refused(limit: int) -> None:
    with pytest.raises(BadAuditQuery, match=f"limit must be between 1 and {MAX_LIMIT}"):
        AuditQuery(limit=limit)
