"""An element with a VR no edition of PS3.5 defines ("ZZ") makes its instance fail, not the request.

Why: a 503 (0x0110) tells a client to send the same bytes again, forever; the data is at fault, so the
instance fails with 0xC000 (cannot understand), and the other instances of the request are stored.
"""

from __future__ import annotations

import struct
from pathlib import Path

from pydicom.uid import generate_uid

from tests.conftest import Backend, LiveServer
from tests.dicom_files import make_instance
from tests.integration.stow_helpers import items, post_stow, stored_instance, value_of
from tests.integration.test_cli import count_instances, run_fovea

FAILED, REFERENCED = "00081198", "00081199"
SOP_INSTANCE, FAILURE_REASON, ERROR_COMMENT = "00081155", "00081197", "00000902"
PATIENT_NAME_TAG = struct.pack("<HH", 0x0010, 0x0010)


def _explicit_element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH", group, element) + vr + struct.pack("<H", len(value)) + value


def with_unknown_vr(data: bytes) -> bytes:
    """`data` (Explicit VR LE) with a private block whose element (0009,1001) has the VR "ZZ"."""
    private = _explicit_element(0x0009, 0x0010, b"LO", b"FOVEA TEST") + _explicit_element(
        0x0009, 0x1001, b"ZZ", b"abcd"
    )
    at = data.index(PATIENT_NAME_TAG)  # group 0009 sorts just before group 0010
    return data[:at] + private + data[at:]


def test_unknown_vr_fails_that_instance_with_0xc000_and_stores_the_others(
    live_server: LiveServer, backend: Backend
) -> None:
    study = generate_uid()
    bad_sop, good_sop = generate_uid(), generate_uid()
    bad = with_unknown_vr(make_instance(study_uid=study, sop_uid=bad_sop))
    good = make_instance(study_uid=study, sop_uid=good_sop, seed=1)

    response = post_stow(live_server, [bad, good])

    assert response.status_code == 202
    body = response.json()
    [failure] = items(body, FAILED)
    assert value_of(failure, SOP_INSTANCE) == bad_sop
    assert value_of(failure, FAILURE_REASON) == 0xC000
    assert value_of(failure, ERROR_COMMENT) == "Unknown Value Representation 'ZZ' in tag (0009,1001)"
    assert [value_of(item, SOP_INSTANCE) for item in items(body, REFERENCED)] == [good_sop]
    assert stored_instance(backend, good_sop) is not None
    assert stored_instance(backend, bad_sop) is None


def test_unknown_vr_alone_is_400_not_503(live_server: LiveServer) -> None:
    response = post_stow(live_server, [with_unknown_vr(make_instance())])

    assert response.status_code == 400
    [failure] = items(response.json(), FAILED)
    assert value_of(failure, FAILURE_REASON) == 0xC000


def test_malformed_undefined_length_value_is_0xc000_not_503(live_server: LiveServer) -> None:
    """pydicom reports this one as a bare OSError ("No tag to read..."), which is the data's fault."""
    private = struct.pack("<HH", 0x0009, 0x0010) + b"LO" + struct.pack("<H", 4) + b"TEST"
    undefined_un = (
        struct.pack("<HH", 0x0009, 0x1002) + b"UN\0\0" + struct.pack("<I", 0xFFFFFFFF) + b"\x01\x02"
    )
    data = make_instance()
    at = data.index(PATIENT_NAME_TAG)

    response = post_stow(live_server, [data[:at] + private + undefined_un + data[at:]])

    assert response.status_code == 400
    [failure] = items(response.json(), FAILED)
    assert value_of(failure, FAILURE_REASON) == 0xC000
    assert value_of(failure, ERROR_COMMENT).startswith("unreadable DICOM data set: No tag to read")


def test_import_reports_unknown_vr(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "zz.dcm").write_bytes(with_unknown_vr(make_instance()))
    (folder / "good.dcm").write_bytes(make_instance())
    data_dir = tmp_path / "data"

    result = run_fovea(
        "import", str(folder), "--data-dir", str(data_dir), "--jobs", "1", env={"COLUMNS": "400"}
    )

    assert result.returncode == 1
    assert count_instances(data_dir) == 1
    output = " ".join(result.stderr.split())
    # The row of the failed-files table: the file, then its reason (not a traceback in the log)
    assert "zz.dcm │ Unknown Value Representation 'ZZ' in tag (0009,1001) │" in output
