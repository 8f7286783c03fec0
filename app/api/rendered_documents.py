"""The rendered resource of an encapsulated document instance: the document itself (PDF as
application/pdf, CDA as text/xml), as stored, never re-rendered. The rendering parameters (window,
viewport, quality) have no meaning for a document and are ignored.
"""

from __future__ import annotations

import itertools

from fastapi import Response

from app.api.conditional import make_validators
from app.api.wado_request import CHANGED_SINCE_LOOKUP, VARY, WHOLE_BODY_BYTES, StreamedResponse, WadoRequest
from app.dicomweb.documents import negotiate_document_media_type
from app.dicomweb.errors import Gone
from app.services import Services
from app.store.read.documents import stored_document


def answer_rendered_document(services: Services, wado: WadoRequest) -> Response | None:
    """The document of the instance, or None when the instance is no encapsulated document.

    Looked up once more when the instance was replaced between the lookup and the read."""
    try:
        return _answer(services, wado)
    except CHANGED_SINCE_LOOKUP:
        return _answer(services, wado)


def _answer(services: Services, wado: WadoRequest) -> Response | None:
    with services.engine.connect() as connection:
        document = stored_document(connection, wado.scope)
    if document is None:
        return None
    instance = document.instance
    if instance.unavailable_reason is not None:
        raise Gone(instance.unavailable_reason)
    media_type = negotiate_document_media_type(document.media_type, *wado.accept_lists)
    validators = make_validators(
        "rendered-document", instance.data_blob_key, media_type, last_modified=instance.updated_at
    )
    if (not_modified := wado.not_modified(validators)) is not None:
        return not_modified
    # Set as is: Starlette would add `charset=utf-8` to a text/* type, a claim the XML may not bear out
    # (without the parameter, its own declaration decides, RFC 7303 section 3.2).
    headers = {**validators.headers, "Vary": VARY, "Content-Type": media_type}
    if document.inline is not None:
        return Response(document.inline[: document.length], headers=headers)
    location = document.location
    assert location is not None
    chunks = services.blobs.iter_range(instance.data_blob_key, location.offset, document.length)
    if document.length <= WHOLE_BODY_BYTES:
        return Response(b"".join(chunks), headers=headers)
    head = next(chunks)  # read here, in the thread pool: a missing blob is still an error response
    headers["Content-Length"] = str(document.length)
    return StreamedResponse(itertools.chain((head,), chunks), headers=headers)
