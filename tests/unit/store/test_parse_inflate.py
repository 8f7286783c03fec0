"""A Deflated Explicit VR Little Endian data set is inflated in bounded memory, within a size limit."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from app.store.write.parse import InstanceProblem, Problem, parse_instance
from tests.hostile_files import deflate_bomb

MIB = 1024 * 1024


def _write(tmp_path: Path, data: bytes) -> tuple[Path, Path]:
    work = tmp_path / "work"
    work.mkdir()
    path = tmp_path / "bomb.dcm"
    path.write_bytes(data)
    return path, work


def test_a_deflate_bomb_is_refused_past_the_limit_without_inflating_it_in_memory(tmp_path: Path) -> None:
    path, work = _write(tmp_path, deflate_bomb(2048 * MIB))  # 9 MB that inflate to 2 GiB
    tracemalloc.start()
    try:
        with pytest.raises(InstanceProblem) as info:
            parse_instance(path, work_directory=work, max_inflated_bytes=64 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.problem is Problem.TOO_LARGE
    assert f"inflates to more than {64 * MIB} bytes" in info.value.message
    assert peak < 16 * MIB, peak
    assert list(work.iterdir()) == []  # the partial sidecar is gone


def test_a_large_deflated_data_set_inflates_a_chunk_at_a_time(tmp_path: Path) -> None:
    path, work = _write(tmp_path, deflate_bomb(256 * MIB))
    tracemalloc.start()
    try:
        parsed = parse_instance(path, work_directory=work, max_inflated_bytes=None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parsed.inflated_file is not None
    assert parsed.inflated_file.stat().st_size > 256 * MIB
    assert peak < 32 * MIB, peak  # never the whole data set, nor one chunk's whole inflation


def test_a_data_set_inflating_to_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    path, work = _write(tmp_path, deflate_bomb(4 * MIB))
    parsed = parse_instance(path, work_directory=work, max_inflated_bytes=None)
    assert parsed.inflated_file is not None
    inflated = parsed.inflated_file.stat().st_size - _meta_bytes(parsed.inflated_file)
    parsed.inflated_file.unlink()
    again = parse_instance(path, work_directory=work, max_inflated_bytes=inflated)
    assert again.inflated_file is not None
    with pytest.raises(InstanceProblem, match="inflates to more than"):
        parse_instance(path, work_directory=work, max_inflated_bytes=inflated - 1)


def _meta_bytes(sidecar: Path) -> int:
    """Preamble, DICM and File Meta of the sidecar (what precedes the inflated data set)."""
    data = sidecar.read_bytes()[:4096]
    group_length = int.from_bytes(data[140:144], "little")
    return 132 + 12 + group_length
