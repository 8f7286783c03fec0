"""Run DCMTK and GDCM command-line tools on files Fovea wrote: independent readers, not pydicom.

Why: a file pydicom reads back may still be one other toolkits refuse (offset tables, item
lengths, attribute rules), so the encoders' outputs are also read by DCMTK (`dcmdump`, `dcmdrle`,
`dcmdjpls`) and GDCM (`gdcmconv --raw`). The tools come from the Debian packages `dcmtk` and
`libgdcm-tools`, which `make test` installs (`make dicom-tools`); without them the tests that need
them are skipped with a message saying so.

Every run checks the exit status and that nothing was written to stderr or logged as a warning
(DCMTK prints `W:` / `E:` lines), and raises `ToolError` with the tool's output otherwise.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileDataset

_TIMEOUT_S = 120
_INSTALL_HINT = "run `make dicom-tools` (Debian packages dcmtk and libgdcm-tools)"
_WARNING_LINE = re.compile(r"^(W|E|F): ", re.MULTILINE)  # DCMTK's log lines: warning, error, fatal
_TRANSFER_SYNTAX_LINE = re.compile(r"^\(0002,0010\) UI \[([0-9.]+)\0?\]", re.MULTILINE)


class ToolError(AssertionError):
    """A tool exited non-zero, or warned; the message holds the command and its output."""


@dataclass(frozen=True)
class ToolRun:
    args: tuple[str, ...]
    stdout: str
    stderr: str


def require(*tools: str) -> None:
    """Skip the calling test, naming what is missing, unless every tool is on PATH."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: {_INSTALL_HINT}")


def run_tool(*args: str | Path) -> ToolRun:
    """Run one tool; raise `ToolError` on a non-zero exit, any stderr, or a DCMTK warning line."""
    argv = tuple(str(arg) for arg in args)
    require(argv[0])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    run = ToolRun(argv, done.stdout, done.stderr)
    warned = _WARNING_LINE.search(done.stdout + done.stderr) is not None
    if done.returncode != 0 or done.stderr.strip() or warned:
        raise ToolError(
            f"{' '.join(argv)} exited {done.returncode}\n--- stderr ---\n{done.stderr}"
            f"\n--- stdout (last 4000 chars) ---\n{done.stdout[-4000:]}"
        )
    return run


def dcmtk_dump(path: Path) -> str:
    """`dcmdump` of the whole file, UIDs as numbers (`-Un`); raises `ToolError` if it complains."""
    return run_tool("dcmdump", "-Un", path).stdout


def dcmtk_transfer_syntax(dump: str) -> str:
    """The Transfer Syntax UID (0002,0010) in a `dcmtk_dump`."""
    match = _TRANSFER_SYNTAX_LINE.search(dump)
    if match is None:
        raise ToolError(f"no (0002,0010) line in the dump:\n{dump[:2000]}")
    return match.group(1)


def dcmtk_decompress(tool: str, path: Path, out: Path) -> FileDataset:
    """Decompress `path` with a DCMTK decompressor (`dcmdrle`, `dcmdjpls`) into `out`; read it back."""
    run_tool(tool, path, out)
    return pydicom.dcmread(out)


def gdcm_decompress(path: Path, out: Path) -> FileDataset:
    """`gdcmconv --raw path out` (GDCM decodes every frame to native pixels); `out` read back."""
    run_tool("gdcmconv", "--raw", path, out)
    return pydicom.dcmread(out)
