"""The database sink: events written in batches by its thread, nothing queued lost on close."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from app.audit.actions import Action
from app.audit.batching import BATCH_SIZE
from app.audit.database import DatabaseSink
from app.audit.events import AuditEvent
from app.audit.queries import AuditQuery, find_events
from app.store.infra.db import create_index_engine, migrate
from app.store.tables import AuditEventRow, AuditEventStudy

START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def event(number: int, *, studies: tuple[str, ...] = ("1.2.3",), event_id: str | None = None) -> AuditEvent:
    made = AuditEvent(
        time=START + timedelta(seconds=number),
        action=Action.READ_FRAMES,
        principal_kind="api-key",
        principal=f"key-{number % 3}",
        username=None,
        client="10.0.0.7",
        method="GET",
        route="/dicom-web/studies/{study_instance_uid}",
        status=200,
        bytes_in=0,
        bytes_out=number,
        studies=studies,
        series=("1.2.3.4",),
        instances=("1.2.3.4.5", "1.2.3.4.6"),
    )
    return replace(made, id=event_id) if event_id else made


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_index_engine(f"sqlite:///{tmp_path / 'index.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def count(engine: Engine, model: type) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


def test_flushed_events_read_back_as_they_were_recorded(engine: Engine) -> None:
    sink = DatabaseSink(engine)
    events = [event(n, studies=("1.2.3", f"1.2.{n + 10}")) for n in range(5)]
    for item in events:
        sink.write(item)
    assert sink.flush(timeout=10)
    with engine.connect() as connection:
        assert find_events(connection, AuditQuery()) == [item.to_json() for item in events]
        assert find_events(connection, AuditQuery(study="1.2.12")) == [events[2].to_json()]
        assert find_events(connection, AuditQuery(principal="key-1")) == [
            events[1].to_json(),
            events[4].to_json(),
        ]
        since = AuditQuery(since=START + timedelta(seconds=3), until=START + timedelta(seconds=4))
        assert find_events(connection, since) == [events[3].to_json()]
        assert find_events(connection, AuditQuery(limit=2)) == [events[3].to_json(), events[4].to_json()]
    sink.close()


def test_close_writes_everything_still_queued(engine: Engine) -> None:
    sink = DatabaseSink(engine)
    total = 2 * BATCH_SIZE + 7  # more than one batch
    for number in range(total):
        sink.write(event(number))
    sink.close()
    assert count(engine, AuditEventRow) == total
    assert count(engine, AuditEventStudy) == total


def test_an_event_the_index_refuses_costs_only_itself(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    sink = DatabaseSink(engine)
    sink.write(event(1, event_id="a" * 32))
    assert sink.flush(timeout=10)
    for item in (event(2), event(3, event_id="a" * 32), event(4)):  # one batch; its middle one repeats an id
        sink.write(item)
    with caplog.at_level(logging.ERROR, logger="app.audit.database"):
        sink.close()
    with engine.connect() as connection:
        assert [e["bytes_out"] for e in find_events(connection, AuditQuery())] == [1, 2, 4]
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"audit event {'a' * 32} refused by the index"
    ]


def test_during_an_outage_events_wait_up_to_the_backlog_limit(caplog: pytest.LogCaptureFixture) -> None:
    unreachable = create_index_engine("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    sink = DatabaseSink(unreachable, max_backlog=2)
    for number in range(5):
        sink.write(event(number))
    with caplog.at_level(logging.WARNING, logger="app.audit"):
        assert sink.flush(timeout=30)
        sink.close()
    unreachable.dispose()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    dropped = [int(m.split()[0]) for m in errors if "oldest audit events dropped" in m]
    assert sum(dropped) == 3  # in one or more steps, as the writer thread took the events
    assert errors[-1] == "2 audit events could not be written to the database"
    assert len(errors) == len(dropped) + 1


def test_the_files_an_export_wrote_read_back_with_their_hashes(engine: Engine) -> None:
    from dataclasses import replace

    from app.audit.events import WrittenFile

    files = (WrittenFile("a/b/c.dcm", "ab" * 32, 1234), WrittenFile("a/b/d.dcm", "cd" * 32, 99))
    export = replace(event(1), action=Action.EXPORT, method="CLI", route="fovea export", files=files)
    sink = DatabaseSink(engine)
    sink.write(event(0))
    sink.write(export)
    assert sink.flush(timeout=10)
    sink.close()
    with engine.connect() as connection:
        read_back = find_events(connection, AuditQuery())
    assert read_back == [event(0, event_id=read_back[0]["id"]).to_json(), export.to_json()]
    assert read_back[1]["files"] == [
        {"path": "a/b/c.dcm", "sha256": "ab" * 32, "size": 1234},
        {"path": "a/b/d.dcm", "sha256": "cd" * 32, "size": 99},
    ]
    assert "files" not in read_back[0]
