"""Serving stored DICOM JSON as WADO-RS metadata (PS3.18 10.4.1.1.2, Annex F).

Why as bytes: metadata is encoded once at ingest with BulkDataURIs relative to the DICOMweb root
(`studies/.../bulkdata/...`); serving it only prefixes those URIs with the base URL the client sees and
joins the instances into one JSON array, without decoding and re-encoding JSON on every request.
"""

from __future__ import annotations

from collections.abc import Sequence

_RELATIVE_BULKDATA_URI = b'"BulkDataURI":"studies/'  # as encode_dicom_json writes it (compact)


def with_absolute_bulkdata_uris(stored: bytes, base_url: str) -> bytes:
    """One stored instance's DICOM JSON with its BulkDataURIs made absolute under `base_url`.

    A string value cannot contain this byte sequence unescaped, so only real BulkDataURI keys match.
    """
    return stored.replace(_RELATIVE_BULKDATA_URI, b'"BulkDataURI":"' + base_url.encode() + b"/studies/")


def metadata_response_body(stored: Sequence[bytes], base_url: str) -> bytes:
    """The JSON array of instance objects that a metadata resource returns."""
    return b"[" + b",".join(with_absolute_bulkdata_uris(item, base_url) for item in stored) + b"]"
