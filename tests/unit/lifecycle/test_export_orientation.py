"""Exported images: decoded as stored, turned to the conventional display of their plane, never mirrored."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from app.lifecycle.export_images import DisplayTurn, decoded_frames, display_turn
from tests.dicom_files import corpus_file

# A 2x3 image whose every pixel is distinct: any flip or transposition shows.
STORED = np.arange(6).reshape(2, 3)


@pytest.mark.parametrize(
    ("orientation", "expected"),
    [
        # axial: rows to the patient's left, columns to posterior: shown as stored
        ([1, 0, 0, 0, 1, 0], DisplayTurn()),
        ([-1, 0, 0, 0, 1, 0], DisplayTurn(flip_left_right=True)),
        ([1, 0, 0, 0, -1, 0], DisplayTurn(flip_up_down=True)),
        ([0, 1, 0, 1, 0, 0], DisplayTurn(transpose=True)),  # rows run posterior: turned a quarter
        # coronal: rows to the left, columns to the feet
        ([1, 0, 0, 0, 0, -1], DisplayTurn()),
        ([1, 0, 0, 0, 0, 1], DisplayTurn(flip_up_down=True)),  # stored feet-up
        # sagittal: rows to posterior, columns to the feet
        ([0, 1, 0, 0, 0, -1], DisplayTurn()),
        ([0, -1, 0, 0, 0, -1], DisplayTurn(flip_left_right=True)),
        # slightly oblique axial: the nearest plane decides
        ([0.98, 0.2, 0, -0.2, 0.98, 0], DisplayTurn()),
        (None, DisplayTurn()),
    ],
)
def test_the_turn_for_each_plane(orientation: list[float] | None, expected: DisplayTurn) -> None:
    assert display_turn(orientation) == expected


def test_a_turn_moves_pixels_as_it_says() -> None:
    assert np.array_equal(DisplayTurn(flip_left_right=True).apply(STORED), [[2, 1, 0], [5, 4, 3]])
    assert np.array_equal(DisplayTurn(flip_up_down=True).apply(STORED), [[3, 4, 5], [0, 1, 2]])
    assert np.array_equal(DisplayTurn(transpose=True).apply(STORED), [[0, 3], [1, 4], [2, 5]])
    colour = np.stack([STORED, STORED + 10, STORED + 20], axis=-1)
    assert np.array_equal(
        DisplayTurn(flip_left_right=True).apply(colour)[..., 1], [[12, 11, 10], [15, 14, 13]]
    )


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_bigendian.dcm",
        "rtdose_expb.dcm",
        "image_dfl.dcm",
        "MR_small_RLE.dcm",
        "SC_rgb_rle_2frame.dcm",
    ],
)
def test_decoded_frames_are_the_stored_values_whatever_the_syntax(name: str) -> None:
    ds = pydicom.dcmread(corpus_file(name).path)
    frames = [frame.samples for frame in decoded_frames(ds)]
    expected = ds.pixel_array.reshape(len(frames), *frames[0].shape)
    assert len(frames) == int(ds.get("NumberOfFrames", 1) or 1)
    assert all(np.array_equal(frame, values) for frame, values in zip(frames, expected, strict=True))
