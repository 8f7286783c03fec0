"""UID grammar (PS3.5 9.1)."""

from __future__ import annotations

import pytest

from app.dicomweb.uids import is_valid_uid


@pytest.mark.parametrize("uid", ["1.2.840.10008.1.2.1", "0", "2.25.0", "1.0.3", "1." + "2" * 62])
def test_valid_uids(uid: str) -> None:
    assert is_valid_uid(uid)


@pytest.mark.parametrize(
    "uid",
    [
        "",
        "1.2.",
        ".1.2",
        "1..2",
        "1.02",
        "1.2.abc",
        "../1.2",
        "1.2/3",
        "1.2 ",
        " 1.2",
        "1.2\x00",
        "1." + "2" * 63,
        "1.2.3\n",
    ],
)
def test_invalid_uids(uid: str) -> None:
    assert not is_valid_uid(uid)
