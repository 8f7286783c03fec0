"""Validators and conditional GETs (RFC 9110 8.8, 13.1): ETag, Last-Modified, 304 Not Modified.

Why: viewers fetch the same metadata and frames again and again; answering a revalidation with 304
costs one index query and no blob read. An ETag names one representation: the stored state of the
target plus everything that shapes the bytes (media type, syntax, base URL, content coding).
Responses say `Cache-Control: no-cache` because a stored instance may be replaced: caches revalidate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from fastapi import Request, Response


@dataclass(frozen=True, slots=True)
class Validators:
    etag: str  # quoted strong entity tag
    last_modified: datetime | None

    @property
    def headers(self) -> dict[str, str]:
        headers = {"ETag": self.etag, "Cache-Control": "no-cache"}
        if self.last_modified is not None:
            headers["Last-Modified"] = format_datetime(self.last_modified, usegmt=True)
        return headers


def make_validators(*facts: object, last_modified: datetime | None) -> Validators:
    """Validators of the representation that `facts` (stored state and response shape) determine."""
    digest = hashlib.blake2b("\x1f".join(map(str, facts)).encode(), digest_size=12).hexdigest()
    return Validators(f'"{digest}"', last_modified)


def is_not_modified(request: Request, validators: Validators) -> bool:
    """True when the client's copy is current: If-None-Match first, else If-Modified-Since (13.2.2)."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or validators.etag in tags  # weak comparison (13.1.2)
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since is None or validators.last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an invalid date is ignored (13.1.3)
    if since.tzinfo is None:
        return False
    return validators.last_modified.replace(microsecond=0) <= since


def not_modified_response(validators: Validators, vary: str) -> Response:
    """304 with the validators and no body (15.4.5)."""
    return Response(status_code=304, headers={**validators.headers, "Vary": vary})
