"""What every WADO-RS handler reads from its request, and the responses they share.

Why one place: the resources differ in what they return, not in how a request is read (checked UIDs,
the `accept` parameter before the header, the base URL for Content-Location, conditional headers,
content coding), so each handler stays a short story of lookup, negotiate, respond.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import ParamSpec

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from app.api.conditional import Validators, is_not_modified, not_modified_response
from app.api.content_coding import Coding, choose_coding, compress_frame, iter_gzip
from app.api.multipart import OutgoingPart, iter_multipart_related, new_boundary
from app.api.urls import dicomweb_base_url
from app.dicomweb.errors import NotFound
from app.dicomweb.negotiation import MediaRange, parse_accept
from app.dicomweb.scope import Scope
from app.dicomweb.uids import require_valid_uid
from app.retrieve.scopes import CHANGED_SINCE_LOOKUP as CHANGED_SINCE_LOOKUP
from app.retrieve.scopes import not_found_message as not_found_message
from app.retrieve.scopes import refuse_if_unavailable as refuse_if_unavailable
from app.retrieve.scopes import scope_description as scope_description
from app.services import Services
from app.settings import Settings
from app.store.read.retrieval import ScopeVersion, StoredInstance, stored_instances_with_version

VARY = "Accept, Accept-Encoding"
_P = ParamSpec("_P")


def answered_again_if_changed(answer: Callable[_P, Response]) -> Callable[_P, Response]:
    """`answer`, made once more from fresh lookups when an instance it looked up changed under it.

    Covers everything an answer does before its first bytes go out (a body up to `WHOLE_BODY_BYTES`
    is made whole before the response starts); later parts re-resolve on their own or end the body.
    """

    @functools.wraps(answer)
    def again(*args: _P.args, **kwargs: _P.kwargs) -> Response:
        try:
            return answer(*args, **kwargs)
        except CHANGED_SINCE_LOOKUP:
            return answer(*args, **kwargs)

    return again


def accept_lists_of(request: Request) -> tuple[list[MediaRange], list[MediaRange]]:
    """The media ranges of the `accept` query parameters, then of the Accept header (PS3.18 8.3.3.1)."""
    query = ",".join(request.query_params.getlist("accept"))
    return parse_accept(query), parse_accept(request.headers.get("accept"))


@dataclass(frozen=True, slots=True)
class WadoRequest:
    """The parts of an HTTP request a WADO-RS resource depends on, read once."""

    scope: Scope
    accept_query: list[MediaRange]
    accept_header: list[MediaRange]
    accept_encoding: str | None
    base_url: str  # the DICOMweb root as the client sees it
    request: Request
    gzip_frames: bool  # FOVEA_GZIP_FRAMES
    # The UIDs a URL shows for a stored scope: the replacement UIDs in the de-identified rendition.
    shown_as: Callable[[Scope], Scope] | None = None

    @classmethod
    def read(cls, request: Request, settings: Settings, scope: Scope) -> WadoRequest:
        """Check the path UIDs (400) and read the accept lists (PS3.18 8.3.3.1: parameter first)."""
        for name, value in (
            ("Study Instance UID", scope.study_instance_uid),
            ("Series Instance UID", scope.series_instance_uid),
            ("SOP Instance UID", scope.sop_instance_uid),
        ):
            if value is not None:
                require_valid_uid(value, name)
        return cls(
            scope,
            *accept_lists_of(request),
            request.headers.get("accept-encoding"),
            dicomweb_base_url(request, settings.public_base_url),
            request,
            settings.gzip_frames,
        )

    @property
    def accept_lists(self) -> tuple[list[MediaRange], list[MediaRange]]:
        return self.accept_query, self.accept_header

    def url_of(self, scope: Scope) -> str:
        """The absolute URL of a study, series or instance resource."""
        if self.shown_as is not None:
            scope = self.shown_as(scope)
        return scope.url(self.base_url)

    def instance_url(self, instance: StoredInstance) -> str:
        """The absolute URL of one stored instance."""
        return self.url_of(instance.scope)

    def not_modified(self, validators: Validators) -> Response | None:
        """A 304 when the client's copy is current, else None."""
        if is_not_modified(self.request, validators):
            return not_modified_response(validators, VARY)
        return None

    def coding(self, *, brotli_allowed: bool) -> Coding | None:
        return choose_coding(self.accept_encoding, brotli_allowed=brotli_allowed)


def look_up_scope(services: Services, wado: WadoRequest) -> tuple[list[StoredInstance], ScopeVersion]:
    """The instances of the request's scope and their version; 404 when there are none, 410 when
    every one is unavailable (flagged by a fixity check). Responses leave out those that are."""
    with services.engine.connect() as connection:
        instances, version = stored_instances_with_version(connection, wado.scope)
    if not instances:
        raise NotFound(not_found_message(wado.scope))
    refuse_if_unavailable(instances)
    return instances, version


# A multipart body up to this size is built whole and sent with a Content-Length: one write instead
# of a thread-pool hop per chunk, which matters for the single frames viewers ask for. Bigger bodies
# stream part by part, so memory stays flat whatever the study's size.
WHOLE_BODY_BYTES = 4 * 1024 * 1024


def multipart_response(
    parts: Iterable[OutgoingPart],
    content_type: str,
    validators: Validators | None,
    *,
    gzip: bool = False,
    status_code: int = 200,
) -> Response:
    """A multipart/related body, whole when small, else streamed; gzip-coded as a whole when `gzip`.

    Called in the thread pool: the first bytes are made here, so a failure in the first part (a
    frame that cannot be decoded) is still an error response rather than a body cut short.
    """
    boundary = new_boundary()
    chunks = iter_multipart_related(parts, boundary)
    headers = {**(validators.headers if validators else {}), "Vary": VARY}
    media_type = f"{content_type}; boundary={boundary}"
    made: list[bytes] = []
    size = 0
    for chunk in chunks:
        made.append(chunk)
        size += len(chunk)
        if size > WHOLE_BODY_BYTES:
            break
    else:
        body = b"".join(made)
        if gzip:
            body = compress_frame(body)
            headers["Content-Encoding"] = Coding.GZIP.value
        return Response(body, status_code=status_code, media_type=media_type, headers=headers)
    stream: Iterator[bytes] = itertools.chain(made, chunks)
    if gzip:
        stream = iter_gzip(stream)
        headers["Content-Encoding"] = Coding.GZIP.value
    return StreamedResponse(stream, status_code=status_code, media_type=media_type, headers=headers)


class StreamedResponse(StreamingResponse):
    """A streamed body that a HEAD request does not make: its status and headers go out, and the rest
    of the stream is never read (its generators are closed when dropped, as after a client leaves)."""

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await super().__call__(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if self.background is not None:
            await self.background()


def single_part_response(
    body: bytes,
    content_type: str,
    content_location: str,
    validators: Validators,
    *,
    gzip: bool = False,
    status_code: int = 200,
    extra_headers: dict[str, str] | None = None,
) -> Response:
    """One bare body (a single frame or bulk data value), gzip-coded when `gzip` and worth it."""
    headers = {**validators.headers, "Vary": VARY, "Content-Location": content_location}
    headers.update(extra_headers or {})
    if gzip and len(body) >= 1024:
        body = compress_frame(body)
        headers["Content-Encoding"] = Coding.GZIP.value
    return Response(body, status_code=status_code, media_type=content_type, headers=headers)
