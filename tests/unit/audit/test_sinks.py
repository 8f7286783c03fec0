"""The JSON lines sink: one line per event, in order, to a file only its owner reads, or to stdout."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.audit.actions import Action
from app.audit.events import AuditEvent
from app.audit.sinks import JsonLinesSink


def event(status: int) -> AuditEvent:
    return AuditEvent(
        time=datetime(2026, 12, 3, 9, 30, 0, 250000, tzinfo=UTC),
        action=Action.STORE,
        principal_kind="oidc",
        principal="b-4711",
        username="bob",
        client="192.0.2.10",
        method="POST",
        route="/dicom-web/studies",
        status=status,
        bytes_in=1234,
        bytes_out=56,
        studies=("1.2.3",),
        series=("1.2.3.4",),
        instances=("1.2.3.4.5",),
        id="0123456789abcdef0123456789abcdef",
    )


EXPECTED_LINE = (
    '{"id":"0123456789abcdef0123456789abcdef","time":"2026-12-03T09:30:00.250000+00:00",'
    '"action":"store","principal_kind":"oidc","principal":"b-4711","username":"bob",'
    '"client":"192.0.2.10","method":"POST","route":"/dicom-web/studies","status":200,'
    '"bytes_in":1234,"bytes_out":56,"studies":["1.2.3"],"series":["1.2.3.4"],"instances":["1.2.3.4.5"]}'
)


def test_each_event_is_one_json_line_appended_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.jsonl"
    path.parent.mkdir()
    path.write_text("an earlier line\n")
    os.chmod(path, 0o600)
    sink = JsonLinesSink(str(path))
    sink.write(event(200))
    assert sink.flush(timeout=5)
    assert path.read_text().splitlines() == ["an earlier line", EXPECTED_LINE]
    sink.write(event(409))
    sink.close()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines[1:]] == [200, 409]


def test_a_new_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "audit.jsonl"
    JsonLinesSink(str(path)).close()
    assert path.stat().st_mode & 0o777 == 0o600


def test_dash_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    sink = JsonLinesSink("-")
    sink.write(event(200))
    sink.close()
    assert capsys.readouterr().out == EXPECTED_LINE + "\n"
