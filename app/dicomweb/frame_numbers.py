"""Frame numbers in WADO-RS frame URLs (PS3.18 10.4.1.1.4).

Why strict: `…/frames/1,3,5` is a list of 1-based frame numbers in any order. A malformed list, a zero
or a repeated number is the client's error (400); a number beyond the last frame is a missing target
(404), decided later against the instance.
"""

from __future__ import annotations

import re

from app.dicomweb.errors import BadRequest, NotFound

_FRAME_NUMBER = re.compile(r"[0-9]{1,9}")
MAX_FRAMES_PER_REQUEST = 100_000


def parse_frame_list(text: str) -> tuple[int, ...]:
    """`"3,1,2"` -> (3, 1, 2); comma or `%2C`-decoded comma separated; 400 when malformed."""
    pieces = text.split(",")
    if len(pieces) > MAX_FRAMES_PER_REQUEST:
        raise BadRequest(f"more than {MAX_FRAMES_PER_REQUEST} frames in one request")
    numbers = []
    for piece in pieces:
        if not _FRAME_NUMBER.fullmatch(piece.strip()):
            raise BadRequest(f"frame list {text[:80]!r} is not a comma-separated list of frame numbers")
        number = int(piece)
        if number == 0:
            raise BadRequest("frame numbers start at 1")
        numbers.append(number)
    if len(set(numbers)) != len(numbers):
        raise BadRequest(f"frame list {text[:80]!r} repeats a frame number")
    return tuple(numbers)


def check_frames_exist(numbers: tuple[int, ...], number_of_frames: int) -> None:
    """404 when a requested frame is beyond the instance's last frame."""
    beyond = [n for n in numbers if n > number_of_frames]
    if beyond:
        raise NotFound(f"frame {beyond[0]} does not exist: the instance has {number_of_frames} frame(s)")
