"""One error hierarchy for DICOMweb requests, free of HTTP framework types.

Why: handlers raise what went wrong in the standard's terms; one handler registered in `create_app`
maps each class to its PS3.18 status code (PS3.18 8.5, 10.4.3, 10.5.3) and a JSON body.

    DicomwebError (400)
    ├── BadRequest (400)
    ├── Forbidden (403)
    ├── NotFound (404)
    ├── NotAcceptable (406)
    ├── Gone (410)
    ├── RangeNotSatisfiable (416)
    ├── PayloadTooLarge (413)
    ├── UnsupportedMediaType (415)
    └── ServiceUnavailable (503)
"""

from __future__ import annotations


class DicomwebError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(DicomwebError):
    status = 400


class Forbidden(DicomwebError):
    """The request is understood, but its maker may not ask for it (a parameter that needs a scope)."""

    status = 403


class NotFound(DicomwebError):
    status = 404


class Conflict(DicomwebError):
    status = 409


class NotAcceptable(DicomwebError):
    status = 406


class Gone(DicomwebError):
    """Indexed, but its stored file failed a fixity check: never served as bad bytes."""

    status = 410


class RangeNotSatisfiable(DicomwebError):
    """A `Range` that selects no byte of the value; `length` goes into `Content-Range: bytes */length`."""

    status = 416

    def __init__(self, message: str, length: int) -> None:
        super().__init__(message)
        self.length = length


class PayloadTooLarge(DicomwebError):
    status = 413


class UnsupportedMediaType(DicomwebError):
    status = 415


class ServiceUnavailable(DicomwebError):
    status = 503
