"""Absolute DICOMweb URLs behind proxies (public base URL, X-Forwarded-*)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.api.urls import dicomweb_base_url


def request(headers: dict[str, str], scheme: str = "http") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request(
        {
            "type": "http",
            "scheme": scheme,
            "server": ("10.0.0.5", 8080),
            "path": "/",
            "headers": raw,
            "query_string": b"",
        }
    )


def test_public_base_url_wins() -> None:
    assert dicomweb_base_url(request({"X-Forwarded-Host": "x"}), "https://a.b/dw") == "https://a.b/dw"


def test_host_header_is_used_without_proxy_headers() -> None:
    assert dicomweb_base_url(request({"Host": "pacs:8080"}), None) == "http://pacs:8080/dicom-web"


def test_forwarded_headers_are_honoured_first_entry_wins() -> None:
    headers = {
        "Host": "internal",
        "X-Forwarded-Proto": "https, http",
        "X-Forwarded-Host": "pacs.example.org, proxy2",
        "X-Forwarded-Prefix": "/imaging/",
    }
    assert dicomweb_base_url(request(headers), None) == "https://pacs.example.org/imaging/dicom-web"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Host": "ok", "X-Forwarded-Proto": "javascript"}, "http://ok/dicom-web"),
        ({"Host": "ok", "X-Forwarded-Host": "evil.example/<script>"}, "http://ok/dicom-web"),
        ({"Host": "bad host"}, "http://10.0.0.5:8080/dicom-web"),
        ({"Host": "ok", "X-Forwarded-Prefix": "/a b"}, "http://ok/dicom-web"),
    ],
)
def test_malformed_forwarded_values_are_ignored(headers: dict[str, str], expected: str) -> None:
    assert dicomweb_base_url(request(headers), None) == expected
