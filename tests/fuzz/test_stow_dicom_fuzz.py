"""Hypothesis fuzzer of DICOM files mutated from pydicom's corpus, posted through STOW-RS.

Each mutated file (tests/fuzz/dicom_mutations.py) goes out as the one part of a well-formed body, next to
an intact instance. The answer must be a Store Instances Response listing both parts (200 or 202: the
intact one is always stored), never a 5xx; every acknowledged instance must then be found by QIDO-RS
and served by WADO-RS, and the index and blob store must agree. A mutated file that was stored must also
have its first frame and rendered image served or refused with a 4xx.
"""

from __future__ import annotations

import httpx
from hypothesis import event, given
from hypothesis import strategies as st

from tests.dicom_files import make_instance, multipart_body, stow_content_type
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.conftest import FuzzServer
from tests.fuzz.dicom_mutations import MutatedFile, mutated_files, unique_uid
from tests.fuzz.store_oracle import (
    assert_pixels_served_or_refused,
    assert_retrievable,
    assert_store_consistent,
    judge_store_answer,
)


def intact_instance() -> tuple[bytes, str]:
    sop = unique_uid()
    return make_instance(study_uid=unique_uid(), series_uid=unique_uid(), sop_uid=sop, rows=8, columns=8), sop


@fuzz_settings()
@given(mutated=mutated_files(), intact_first=st.booleans())
def test_mutated_dicom_files_fail_alone_and_never_with_a_5xx(
    fuzz_server: FuzzServer, mutated: MutatedFile, intact_first: bool
) -> None:
    intact, intact_sop = intact_instance()
    parts = [intact, mutated.data] if intact_first else [mutated.data, intact]
    response = httpx.post(
        f"{fuzz_server.dicomweb}/studies",
        content=multipart_body(parts),
        headers={"Content-Type": stow_content_type()},
        timeout=60,
    )
    answer = judge_store_answer(response, parts=2)
    event(f"status {answer.status}, mutated file {'stored' if len(answer.stored) == 2 else 'failed'}")
    assert intact_sop in answer.stored, f"the intact instance was not stored: {response.text[:500]}"
    for sop in answer.stored:
        assert_retrievable(fuzz_server, sop)
    if mutated.sop_instance_uid in answer.stored:
        assert_pixels_served_or_refused(fuzz_server, mutated.sop_instance_uid)
    assert_store_consistent(fuzz_server)
