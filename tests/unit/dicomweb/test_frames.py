"""Frame lists in WADO-RS URLs."""

from __future__ import annotations

import pytest

from app.dicomweb.errors import BadRequest, NotFound
from app.dicomweb.frame_numbers import check_frames_exist, parse_frame_list


@pytest.mark.parametrize(("text", "numbers"), [("1", (1,)), ("5,1,9", (5, 1, 9)), (" 2 , 3", (2, 3))])
def test_frame_lists_in_any_order(text: str, numbers: tuple[int, ...]) -> None:
    assert parse_frame_list(text) == numbers


@pytest.mark.parametrize("text", ["", "1,,2", "a", "1.5", "-1", "1;2", "1,2,", "99999999999"])
def test_malformed_frame_list_is_400(text: str) -> None:
    with pytest.raises(BadRequest, match="frame"):
        parse_frame_list(text)


def test_zero_is_400() -> None:
    with pytest.raises(BadRequest, match="start at 1"):
        parse_frame_list("0,1")


def test_repeated_frame_is_400() -> None:
    with pytest.raises(BadRequest, match="repeats"):
        parse_frame_list("1,2,1")


def test_frame_beyond_the_last_is_404() -> None:
    check_frames_exist((1, 3), 3)
    with pytest.raises(NotFound, match="frame 4 does not exist: the instance has 3 frame"):
        check_frames_exist((1, 4), 3)
