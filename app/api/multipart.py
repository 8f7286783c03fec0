"""Streaming multipart/related reading: each part goes to its own file on disk as the body arrives.

Writing: `iter_multipart_related` yields a response body part by part (WADO-RS frames).

Why: a STOW-RS body can be many GiB; it is fed chunk by chunk to python-multipart's parser (the one
Starlette uses) and never held in memory. Tolerates what real clients send (RFC 2046 allows all of it):
a quoted or unquoted boundary, a preamble or leading CRLF before the first boundary, spaces or tabs
after a delimiter (transport padding), no CRLF after the closing boundary. A body that ends before its
closing boundary is an error, and every file is removed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from app.dicomweb.errors import BadRequest, ServiceUnavailable, UnsupportedMediaType

PREAMBLE_LIMIT = 64 * 1024  # bytes held back while looking for the first delimiter line


class MultipartError(BadRequest):
    """The body is not well-formed multipart/related."""


@dataclass(frozen=True, slots=True)
class MultipartContentType:
    boundary: bytes
    part_type: str  # the `type` parameter (lower case), "" when absent


def parse_multipart_content_type(header: str | None) -> MultipartContentType:
    """Read `multipart/related; type=...; boundary=...` (quoted or not); 415 for another type."""
    media_type, params = parse_options_header(header or "")
    if media_type.lower() != b"multipart/related":
        raise UnsupportedMediaType(
            f"Content-Type {header or '(none)'!r} is not supported: send "
            'multipart/related; type="application/dicom"; boundary=...'
        )
    boundary = params.get(b"boundary", b"")
    if not boundary or len(boundary) > 200:
        raise MultipartError("multipart/related Content-Type has no valid boundary parameter")
    return MultipartContentType(boundary, params.get(b"type", b"").decode("latin-1").lower())


@dataclass(slots=True)
class SpooledPart:
    """One part, its content written to `path` (removed by whoever consumes it)."""

    index: int
    path: Path
    headers: dict[str, str] = field(default_factory=dict)
    size: int = 0
    too_large: bool = False  # content beyond the part limit was discarded
    sha256: str = ""  # hex digest of the content as written to `path` ("" for a part too large)

    @property
    def content_type(self) -> str:
        media_type, _ = parse_options_header(self.headers.get("content-type", ""))
        return media_type.decode("latin-1").lower()


class MultipartSpooler:
    """Feed a multipart/related body with `feed`; `finish` returns the parts, each in its own file."""

    def __init__(self, boundary: bytes, directory: Path, *, max_part_bytes: int) -> None:
        self._delimiter = b"--" + boundary
        self._directory = directory
        self._max_part_bytes = max_part_bytes
        self._seen_first_boundary = False
        self._head = b""  # bytes held back until the first delimiter line has come
        self.parts: list[SpooledPart] = []
        self._file: BinaryIO | None = None
        # Each part is hashed as it is written, so ingest need not read the file again for its digest.
        self._digest = hashlib.sha256()
        self._field = b""
        self._value = b""
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        if not self._seen_first_boundary:
            chunk = self._skip_preamble(chunk)
            if not chunk:
                return
        self._write(chunk)

    def _write(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise MultipartError(f"malformed multipart body: {exc}") from exc
        except OSError as exc:  # the spool volume is full or failing: the client may retry later
            raise ServiceUnavailable(f"cannot spool the request body: {exc.strerror}") from exc

    def finish(self) -> list[SpooledPart]:
        """Check the body ended with its closing boundary; raise MultipartError if not."""
        if not self._seen_first_boundary and self._delimiter in self._head:
            # The first delimiter line never ended (`--boundary--` and nothing after): parse what came.
            self._seen_first_boundary = True
            self._write(self._head[self._head.find(self._delimiter) :])
        if self._parser.state != MultipartState.END:
            where = f"inside part {len(self.parts)}" if self._file else "before its end"
            raise MultipartError(
                f"multipart body is incomplete: it stopped {where} without the closing boundary"
            )
        if not self.parts:
            raise MultipartError("multipart body has no parts")
        return self.parts

    def discard(self) -> None:
        """Close and delete every file written so far (after any failure)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        for part in self.parts:
            part.path.unlink(missing_ok=True)

    def _skip_preamble(self, chunk: bytes) -> bytes:
        """Hold bytes back until the whole first delimiter line has come; return it and what follows."""
        self._head += chunk
        at = self._head.find(self._delimiter)
        line_end = self._head.find(b"\n", at + len(self._delimiter)) if at >= 0 else -1
        if line_end < 0:
            if len(self._head) > PREAMBLE_LIMIT:
                raise MultipartError("multipart body does not start with its boundary")
            return b""
        self._seen_first_boundary = True
        line, rest = self._head[at:line_end], self._head[line_end:]
        self._head = b""
        return without_transport_padding(line, len(self._delimiter)) + rest

    def _on_part_begin(self) -> None:
        handle, name = tempfile.mkstemp(prefix="stow-", suffix=".part", dir=self._directory)
        # Unbuffered: body chunks are large already, and each copy of 512 KiB parts costs CPU.
        self._file = os.fdopen(handle, "wb", buffering=0)
        self._digest = hashlib.sha256()
        self.parts.append(SpooledPart(index=len(self.parts), path=Path(name)))

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        self.parts[-1].headers[name] = self._value.decode("latin-1").strip()
        self._field = self._value = b""

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        if part.too_large or self._file is None:
            return
        size = end - start
        if part.size + size > self._max_part_bytes:
            part.too_large = True
            self._file.truncate(0)  # keep nothing of a part we will refuse
            return
        view = memoryview(data)[start:end]  # no copy of the chunk on its way to the file
        self._digest.update(view)
        while view:
            written = self._file.write(view)
            view = view[written:]
        part.size += size

    def _on_part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            part = self.parts[-1]
            if not part.too_large:
                part.sha256 = self._digest.hexdigest()


def without_transport_padding(line: bytes, delimiter_length: int) -> bytes:
    """The first delimiter line without the spaces and tabs RFC 2046 (5.1.1) allows before its CRLF.

    Why here: python-multipart skips that padding after later delimiters, not after the first one.
    """
    delimiter, tail = line[:delimiter_length], line[delimiter_length:]
    if tail.endswith(b"\r") and not tail[:-1].strip(b" \t"):
        return delimiter + b"\r"
    return line


@dataclass(frozen=True, slots=True)
class OutgoingPart:
    """One part of a multipart/related response; `body` is bytes, or chunks to stream."""

    content_type: str
    content_location: str
    body: bytes | Iterable[bytes]
    extra_headers: tuple[tuple[str, str], ...] = ()


def new_boundary() -> str:
    return uuid.uuid4().hex


def iter_multipart_related(parts: Iterable[OutgoingPart], boundary: str) -> Iterator[bytes]:
    """The bytes of a multipart/related body, one part at a time (RFC 2387).

    A bytes part goes out as one chunk (headers, body and delimiter joined): each chunk of a streamed
    response costs a thread-pool hop, which is more than copying one frame.
    """
    for part in parts:
        extra = "".join(f"{name}: {value}\r\n" for name, value in part.extra_headers)
        # A search result is not a resource of its own: its part has no Content-Location.
        location = f"Content-Location: {part.content_location}\r\n" if part.content_location else ""
        head = (f"--{boundary}\r\nContent-Type: {part.content_type}\r\n{location}{extra}\r\n").encode(
            "latin-1"
        )
        if isinstance(part.body, bytes):
            yield b"".join((head, part.body, b"\r\n"))
            continue
        yield head
        yield from part.body
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("latin-1")
