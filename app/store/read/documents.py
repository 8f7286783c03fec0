"""Where the document of an encapsulated document instance (PDF, CDA) is: in its metadata, or in its file.

Why from the index: ingest kept the Encapsulated Document either inline in the DICOM JSON (a small
one) or as a bulk data location in the stored file; serving it needs no parse.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson
from sqlalchemy import Connection, select

from app.dicomweb.documents import (
    ENCAPSULATED_DOCUMENT,
    ENCAPSULATED_DOCUMENT_LENGTH,
    RENDERED_DOCUMENT_MEDIA_TYPES,
)
from app.dicomweb.scope import Scope
from app.store.read.retrieval import (
    StoredBulkData,
    StoredInstance,
    stored_bulkdata,
    stored_instances,
    stored_metadata,
)
from app.store.tables import Instance, Series, Study


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """An encapsulated document: its instance, media type, and bytes or where they are."""

    instance: StoredInstance
    media_type: str
    inline: bytes | None  # the document, when the metadata holds it
    location: StoredBulkData | None  # else where it lies in the data blob
    length: int  # bytes of the document itself (without the value's padding byte)


def document_media_type(connection: Connection, scope: Scope) -> str | None:
    """The rendered media type of the instance `scope` names when it is an encapsulated document."""
    query = (
        select(Instance.sop_class_uid)
        .join(Series, Series.pk == Instance.series_pk)
        .join(Study, Study.pk == Series.study_pk)
        .where(
            Study.study_instance_uid == scope.study_instance_uid,
            Series.series_instance_uid == scope.series_instance_uid,
            Instance.sop_instance_uid == scope.sop_instance_uid,
        )
    )
    sop_class = connection.execute(query).scalar()
    return RENDERED_DOCUMENT_MEDIA_TYPES.get(sop_class) if sop_class else None


def stored_document(connection: Connection, scope: Scope) -> StoredDocument | None:
    """The document of the instance `scope` names; None when it is no encapsulated document, or has
    no document value (a malformed instance), or is gone."""
    media_type = document_media_type(connection, scope)
    if media_type is None:
        return None
    instances = stored_instances(connection, scope)
    metadata = stored_metadata(connection, scope)
    if not instances or not metadata:
        return None
    attributes = orjson.loads(metadata[0])
    element = attributes.get(ENCAPSULATED_DOCUMENT) or {}
    stated = (attributes.get(ENCAPSULATED_DOCUMENT_LENGTH) or {}).get("Value") or [None]
    instance = instances[0]
    if "InlineBinary" in element:
        inline = base64.b64decode(element["InlineBinary"])
        return StoredDocument(instance, media_type, inline, None, _length(stated[0], len(inline)))
    if "BulkDataURI" in element:
        items = stored_bulkdata(connection, [instance], ENCAPSULATED_DOCUMENT)
        if items:
            return StoredDocument(instance, media_type, None, items[0], _length(stated[0], items[0].length))
    return None


def _length(stated: object, value_length: int) -> int:
    """The Encapsulated Document Length when it is sensible (it leaves out the padding to an even
    length), else the whole value."""
    if isinstance(stated, int) and 0 <= stated <= value_length:
        return stated
    return value_length
