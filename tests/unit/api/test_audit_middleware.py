"""The audit middleware on a small app: what it records of failures, streams and notes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.api.audit_middleware import AuditMiddleware
from app.audit.events import AuditEvent
from app.audit.notes import note_audited_uids
from app.audit.trail import AuditTrail

STUDY = "1.2.840.99.1"


class RecordedEvents:
    """A sink keeping what it is given."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def write(self, event: AuditEvent) -> None:
        self.events.append(event)

    def flush(self, timeout: float) -> bool:  # noqa: ARG002 (the sink interface)
        return True

    def close(self) -> None:
        pass


async def failing_search(_request: Request) -> Response:
    raise RuntimeError("the handler broke")


async def streamed_metadata(_request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"[", b"{}", b"]"):
            yield chunk

    return StreamingResponse(chunks(), media_type="application/dicom+json")


async def store(request: Request) -> Response:
    body = await request.body()
    note_audited_uids(request, studies=[STUDY, STUDY], series=["1.2.840.99.2"], instances=["1.2.840.99.3"])
    return Response(b"{}", status_code=202 if body else 400)


class Client:
    """Requests to the app in process, from a fixed client address, each in its own event loop."""

    def __init__(self, app: Starlette) -> None:
        self.transport = httpx.ASGITransport(
            app=app, raise_app_exceptions=False, client=("203.0.113.5", 4711)
        )

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://fovea") as client:
                return await client.request(method, path, **options)

        return asyncio.run(send())

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, content: bytes) -> httpx.Response:
        return self.request("POST", path, content=content)


@pytest.fixture
def recorded() -> Iterator[tuple[Client, RecordedEvents]]:
    app = Starlette(
        routes=[
            Route("/dicom-web/studies", failing_search, methods=["GET"]),
            Route("/dicom-web/studies", store, methods=["POST"]),
            Route("/dicom-web/studies/{study_instance_uid}/metadata", streamed_metadata),
            Route("/health", lambda _request: Response("ok")),
        ]
    )
    app.add_middleware(AuditMiddleware)
    sink = RecordedEvents()
    app.state.audit = AuditTrail([sink], in_database=False)
    yield Client(app), sink


def test_a_request_that_fails_before_answering_is_recorded_as_500(
    recorded: tuple[Client, RecordedEvents],
) -> None:
    client, sink = recorded
    assert client.get("/dicom-web/studies").status_code == 500
    [event] = sink.events
    assert (event.action, event.status, event.bytes_out) == ("search", 500, 0)
    assert (event.principal_kind, event.principal, event.username) == ("anonymous", "anonymous", None)
    assert event.client == "203.0.113.5"


def test_a_streamed_response_counts_every_chunk(recorded: tuple[Client, RecordedEvents]) -> None:
    client, sink = recorded
    response = client.get(f"/dicom-web/studies/{STUDY}/metadata")
    assert response.content == b"[{}]"
    [event] = sink.events
    assert (event.action, event.status, event.bytes_out, event.studies) == ("read-metadata", 200, 4, (STUDY,))
    assert event.route == "/dicom-web/studies/{study_instance_uid}/metadata"


def test_notes_and_request_bytes_reach_the_event_once_each(
    recorded: tuple[Client, RecordedEvents],
) -> None:
    client, sink = recorded

    assert client.post("/dicom-web/studies", content=b"x" * 1024).status_code == 202
    [event] = sink.events
    assert (event.action, event.bytes_in, event.bytes_out) == ("store", 1024, 2)
    assert (event.studies, event.series, event.instances) == ((STUDY,), ("1.2.840.99.2",), ("1.2.840.99.3",))


def test_routes_outside_the_table_are_not_recorded(recorded: tuple[Client, RecordedEvents]) -> None:
    client, sink = recorded
    assert client.get("/health").status_code == 200
    assert client.get("/dicom-web/nothing-here").status_code == 404
    assert sink.events == []
