"""Defects the fuzzers found, each pinned by the smallest request that showed it.

Why here: each case is one of the fuzzers' own examples, replayed against the same kind of live server,
so that it keeps failing loudly if the fix is lost even when the fuzzers draw other examples.
"""

from __future__ import annotations

import io

import httpx
import pydicom
import pytest
from pydicom.uid import MPEG2MPML, UID, generate_uid

from tests.dicom_files import corpus_file, make_instance, multipart_body, stow_content_type
from tests.fuzz.conftest import FuzzServer


def store(server: FuzzServer, data: bytes) -> httpx.Response:
    return httpx.post(
        f"{server.dicomweb}/studies",
        content=multipart_body([data]),
        headers={"Content-Type": stow_content_type()},
        timeout=60,
    )


def relabelled(name: str, transfer_syntax_uid: str) -> tuple[bytes, pydicom.Dataset]:
    """A corpus file under a new SOP Instance UID whose File Meta names another Transfer Syntax."""
    ds = pydicom.dcmread(corpus_file(name).path)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = UID(transfer_syntax_uid)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue(), ds


@pytest.mark.parametrize("resource", ["rendered", "thumbnail"])
def test_a_video_is_not_rendered_406_not_500(fuzz_server: FuzzServer, resource: str) -> None:
    """Found by test_stow_dicom_fuzz: an instance labelled MPEG2 was stored, and /rendered raised KeyError."""
    data, ds = relabelled("MR_small_RLE.dcm", MPEG2MPML)
    assert store(fuzz_server, data).status_code == 200
    url = (
        f"{fuzz_server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/{resource}"
    )
    response = httpx.get(url, timeout=30)
    assert response.status_code == 406
    assert response.json()["error"] == f"instance {ds.SOPInstanceUID} is a video: it cannot be rendered"


def test_a_damaged_sop_instance_uid_is_not_echoed(fuzz_server: FuzzServer) -> None:
    """Found by test_stow_dicom_fuzz: flipped bytes in the File Meta (its SOP Instance UID and Transfer
    Syntax UID) came back as an invalid UI value in the Failed SOP Sequence."""
    uid = generate_uid()
    data = make_instance(sop_uid=uid)
    at = data.index(uid.encode())  # the File Meta's copy comes first
    data = data[:at] + uid[:-1].encode() + b"?" + data[at + len(uid) :]
    # an unknown syntax of the same length: the file is refused from its File Meta alone
    data = data.replace(b"1.2.840.10008.1.2.1\0", b"1.2.840.10008.1.2.99", 1)
    response = store(fuzz_server, data)
    assert response.status_code == 409
    [failed] = response.json()["00081198"]["Value"]
    assert failed["00081155"] == {"vr": "UI"}
    assert failed["00081197"] == {"vr": "US", "Value": [0xC122]}
