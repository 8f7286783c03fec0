"""Where a DICOMweb resource is: a study, a series of it, or one instance of that series (PS3.18 10.4.1,
10.6.1), as one value, with its URL path and the route templates its parts come from.

Retrieval takes a `Scope`, search takes a `Scope` or None (the whole archive), and every URL Fovea
writes into a response (Retrieve URL, Content-Location, BulkDataURI) starts from `Scope.url`.
"""

from __future__ import annotations

from dataclasses import dataclass

STUDY_ROUTE = "/studies/{study_instance_uid}"
SERIES_ROUTE = STUDY_ROUTE + "/series/{series_instance_uid}"
INSTANCE_ROUTE = SERIES_ROUTE + "/instances/{sop_instance_uid}"


@dataclass(frozen=True, slots=True)
class Scope:
    """A study, a series of it, or one instance of that series (the narrower UIDs may be None)."""

    study_instance_uid: str
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None

    def __post_init__(self) -> None:
        if self.sop_instance_uid is not None and self.series_instance_uid is None:
            raise ValueError("an instance scope needs its series")

    @property
    def path(self) -> str:
        """`/studies/{study}[/series/{series}[/instances/{instance}]]`."""
        path = f"/studies/{self.study_instance_uid}"
        if self.series_instance_uid is not None:
            path += f"/series/{self.series_instance_uid}"
            if self.sop_instance_uid is not None:
                path += f"/instances/{self.sop_instance_uid}"
        return path

    def url(self, base: str) -> str:
        """The absolute URL of this resource under `base`, the DICOMweb root (no trailing slash)."""
        return base + self.path
