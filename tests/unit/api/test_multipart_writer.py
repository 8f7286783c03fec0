"""multipart/related response bodies, byte for byte (RFC 2387)."""

from __future__ import annotations

from app.api.multipart import OutgoingPart, iter_multipart_related


def test_exact_wire_bytes_with_a_fixed_boundary() -> None:
    parts = [
        OutgoingPart(
            "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1", "http://h/f/2", b"\x00\x01"
        ),
        OutgoingPart("image/jls; transfer-syntax=1.2.840.10008.1.2.4.80", "http://h/f/1", b""),
    ]
    body = b"".join(iter_multipart_related(parts, "XyZ"))
    assert body == (
        b"--XyZ\r\nContent-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1\r\n"
        b"Content-Location: http://h/f/2\r\n\r\n\x00\x01\r\n"
        b"--XyZ\r\nContent-Type: image/jls; transfer-syntax=1.2.840.10008.1.2.4.80\r\n"
        b"Content-Location: http://h/f/1\r\n\r\n\r\n"
        b"--XyZ--\r\n"
    )
