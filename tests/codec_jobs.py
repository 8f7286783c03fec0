"""Module-level jobs for codec worker processes in tests (a job for a process must be importable)."""

from __future__ import annotations

import os
import time


def address_space_bytes() -> int:
    """This process's current address space (VmSize)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise LookupError("no VmSize in /proc/self/status")


def allocate_and_touch(size: int) -> int:
    """Allocate `size` bytes and write to every page, as a runaway decoder would; returns the size."""
    data = bytearray(size)
    data[::4096] = b"\x01" * len(range(0, size, 4096))
    return len(data)


def sleep_then_answer(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def process_id() -> int:
    return os.getpid()


def reversed_bytes(data: bytes) -> bytes:
    return data[::-1]
