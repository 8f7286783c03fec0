"""STOW-RS bodies of DICOM JSON metadata and bulk data parts (PS3.18 10.5), made from Part 10 files.

Why pydicom's `to_json_dict`: the metadata must come from an independent DICOM JSON writer, not from
Fovea's own, so a round trip tests the reading side against someone else's idea of the model. The XML
form is that JSON through Fovea's Native DICOM Model writer (pydicom has none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pydicom
from pydicom.dataelem import DataElement
from pydicom.encaps import generate_frames

from app.dicomweb.mediatypes import bulk_media_type_for
from app.dicomweb.responses import dicom_json_to_xml

BOUNDARY = "fovea-json-boundary"
PIXEL_DATA = "7FE00010"


@dataclass
class BulkBody:
    """The parts of one request: metadata (one JSON array) and bulk parts (headers, content)."""

    data_sets: list[dict[str, Any]] = field(default_factory=list)
    bulk: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def add_file(self, path: Path, *, location_prefix: str = "", with_syntax: bool = True) -> pydicom.Dataset:
        """Describe the file at `path`: pixel frames as their compressed media type, or octet-stream."""
        ds = pydicom.dcmread(path)
        syntax = str(ds.file_meta.TransferSyntaxUID)
        base = f"{location_prefix}bulk/{ds.SOPInstanceUID}"

        def bulk_uri(element: DataElement) -> str:
            uri = f"{base}/{element.tag:08X}"
            if element.tag != 0x7FE00010 or not ds.file_meta.TransferSyntaxUID.is_compressed:
                self.bulk.append(
                    ({"Content-Type": "application/octet-stream", "Content-Location": uri}, element.value)
                )
            return uri

        attributes = ds.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=bulk_uri)
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            media_type = bulk_media_type_for(syntax)
            frames = generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1))
            content_type = f"{media_type}; transfer-syntax={syntax}" if with_syntax else str(media_type)
            uri = f"{base}/{PIXEL_DATA}"
            attributes[PIXEL_DATA] = {"vr": "OB", "BulkDataURI": uri}  # even when small enough to inline
            for frame in frames:
                self.bulk.append(({"Content-Type": content_type, "Content-Location": uri}, frame))
        self.data_sets.append(attributes)
        return ds

    def encode(
        self, *, metadata: bytes | None = None, metadata_type: str = "application/dicom+json"
    ) -> bytes:
        chunks = [f"--{BOUNDARY}\r\nContent-Type: {metadata_type}\r\n\r\n".encode()]
        chunks.append(orjson.dumps(self.data_sets) if metadata is None else metadata)
        chunks.append(b"\r\n")
        for headers, content in self.bulk:
            chunks.append(f"--{BOUNDARY}\r\n".encode())
            chunks.extend(f"{name}: {value}\r\n".encode() for name, value in headers.items())
            chunks.append(b"\r\n")
            chunks.append(content)
            chunks.append(b"\r\n")
        chunks.append(f"--{BOUNDARY}--\r\n".encode())
        return b"".join(chunks)

    def encode_xml(self) -> bytes:
        """The same instances with XML metadata: one Native DICOM Model part per instance, bulk after."""
        chunks = []
        for attributes in self.data_sets:
            chunks.append(f"--{BOUNDARY}\r\nContent-Type: application/dicom+xml\r\n\r\n".encode())
            chunks.append(dicom_json_to_xml(attributes))
            chunks.append(b"\r\n")
        body = BulkBody(bulk=self.bulk).encode(metadata=b"[]")  # the bulk parts, after an empty JSON part
        first_bulk = body.index(f"--{BOUNDARY}".encode(), 1)
        return b"".join(chunks) + body[first_bulk:]


def json_bulk_content_type(part_type: str = "application/dicom+json") -> str:
    return f'multipart/related; type="{part_type}"; boundary={BOUNDARY}'


def encapsulated_frames(ds: pydicom.Dataset) -> Sequence[bytes]:
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
