"""pydicom's warnings about a stored file: one JSON log line naming the instance, never raw stderr text."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid

from app.pydicom_warnings import reading_instance
from tests.dicom_files import make_instance, multipart_body, stow_content_type
from tests.integration.test_request_log import serving

FOVEA = [sys.executable, "-c", "from app.cli import main; main()"]
BAD_UID = "1.2.3.abc"  # letters: an invalid UI value pydicom warns about when it reads the element


def instance_with_invalid_values(sop_uid: str) -> bytes:
    """A storable instance (its own UIDs valid) whose Frame of Reference UID and Study Description
    are not valid values of their VRs."""
    ds = pydicom.dcmread(io.BytesIO(make_instance(sop_uid=sop_uid)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns when the values are set, too
        ds.FrameOfReferenceUID = BAD_UID
        ds.StudyDescription = "x" * 70  # LO holds 64 characters
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_stored_instance_warnings_become_one_json_line_with_its_uid(tmp_path: Path) -> None:
    sop_uid = generate_uid()
    with serving(tmp_path, FOVEA_LOG_FORMAT="json") as (base, lines):
        stored = httpx.post(
            f"{base}/dicom-web/studies",
            content=multipart_body([instance_with_invalid_values(sop_uid)]),
            headers={"Content-Type": stow_content_type()},
            timeout=60,
        )
        assert stored.status_code == 200  # a warning does not refuse the instance

    assert not [line for line in lines if "UserWarning" in line]  # nothing printed raw
    records = [json.loads(line) for line in lines]  # every line is JSON, the ingest worker's too
    warned = [r for r in records if r["logger"] == "app.pydicom_warnings"]
    assert len(warned) == 1
    [record] = warned
    assert record["level"] == "warning"
    assert record["sop_instance_uid"] == sop_uid
    assert record["source"].startswith("stow-")  # the spooled part it was read from
    assert any(BAD_UID in message for message in record["warnings"])
    assert any("exceeds the maximum length of 64" in message for message in record["warnings"])
    assert sop_uid in record["message"]
    assert not [r for r in records if r["logger"] == "pydicom"]  # collected, not logged again


def test_imported_file_warnings_name_the_file_and_the_instance(tmp_path: Path) -> None:
    sop_uid = generate_uid()
    folder = tmp_path / "incoming"
    folder.mkdir()
    imported = folder / "odd.dcm"
    imported.write_bytes(instance_with_invalid_values(sop_uid))
    result = subprocess.run(
        [*FOVEA, "import", str(folder), "--data-dir", str(tmp_path / "data"), "--jobs", "1"],
        env={**os.environ, "FOVEA_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "UserWarning" not in result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    [record] = [r for r in records if r["logger"] == "app.pydicom_warnings"]
    assert record["sop_instance_uid"] == sop_uid
    assert record["source"] == str(imported)  # the user's file, not its spool copy
    assert any(BAD_UID in message for message in record["warnings"])


def test_instances_read_at_once_in_threads_keep_their_own_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from app.pydicom_warnings import capture_warnings

    capture_warnings()
    uids = [generate_uid() for _ in range(4)]
    files: dict[str, bytes] = {uid: instance_with_invalid_values(uid) for uid in uids}
    start = threading.Barrier(len(uids))

    def read(uid: str) -> None:
        start.wait(timeout=30)
        with reading_instance(f"file-{uid}", uid):
            ds = pydicom.dcmread(io.BytesIO(files[uid]))
            str(ds.FrameOfReferenceUID)  # the value is checked when first read

    with caplog.at_level(logging.WARNING, logger="app.pydicom_warnings"):
        threads = [threading.Thread(target=read, args=(uid,)) for uid in uids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    records = [r for r in caplog.records if r.name == "app.pydicom_warnings"]
    by_uid = {r.fields["sop_instance_uid"]: r.fields for r in records}  # type: ignore[attr-defined]
    assert sorted(by_uid) == sorted(uids) and len(records) == len(uids)
    for uid, fields in by_uid.items():
        assert fields["source"] == f"file-{uid}"
        assert any(BAD_UID in message for message in fields["warnings"])
