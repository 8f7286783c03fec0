"""Stored DICOM JSON served as WADO-RS metadata."""

from __future__ import annotations

import orjson

from app.dicomweb.dicomjson import encode_dicom_json
from app.dicomweb.metadata import metadata_response_body, with_absolute_bulkdata_uris

STORED = encode_dicom_json(
    {
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": 'He said "BulkDataURI":"studies/x"'}]},
        "7FE00010": {"vr": "OW", "BulkDataURI": "studies/1.2/series/3.4/instances/5.6/bulkdata/7FE00010"},
    }
)


def test_bulkdata_uris_become_absolute_and_nothing_else_changes() -> None:
    served = orjson.loads(with_absolute_bulkdata_uris(STORED, "https://pacs.example.org/dicom-web"))
    assert served["7FE00010"]["BulkDataURI"] == (
        "https://pacs.example.org/dicom-web/studies/1.2/series/3.4/instances/5.6/bulkdata/7FE00010"
    )
    assert served["00100010"] == orjson.loads(STORED)["00100010"]  # a look-alike inside a value stays


def test_response_is_one_json_array_in_order() -> None:
    body = metadata_response_body(
        [STORED, encode_dicom_json({"00080018": {"vr": "UI", "Value": ["9"]}})], "http://h/dw"
    )
    parsed = orjson.loads(body)
    assert [list(item) for item in parsed] == [["00100010", "7FE00010"], ["00080018"]]
    assert metadata_response_body([], "http://h/dw") == b"[]"
