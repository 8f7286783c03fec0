"""The de-identified rendition: a stored study seen through the Basic Profile, under replacement UIDs.

What this module knows (the HTTP side is app/api/deidentified.py):
- which original study a replacement study UID stands for, and within it which series and instance;
  replacement UIDs are one-way keyed hashes (pseudonyms.py), so originals are mapped forward and looked
  up: every study UID once (kept, and extended only when a UID is not found), a study's members in one
  statement (kept briefly, since a viewer asks for many frames in a row);
- which instances are withheld: Burned In Annotation YES, or a Secondary Capture that does not say NO
  (screenshots and scanned documents, whose pixels often carry the name), unless FOVEA_DEID_ALLOW_BURNED_IN;
- the de-identified DICOM JSON of a stored instance or a search result, with its BulkDataURIs under
  the rendition, and the de-identified Part 10 file (pixel data as stored, byte for byte).
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID
from sqlalchemy import Engine

from app.dicomweb.scope import Scope
from app.lifecycle.deidentify import Deidentifier
from app.store.infra.blobs import BlobStore, open_blob
from app.store.read.rendition_index import StudyMember, study_instance_uids, study_members, study_uid_of_key
from app.store.read.retrieval import StoredInstance

SECONDARY_CAPTURE_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image
        "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
        "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
        "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
        "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
    }
)
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
# Stored in these, an instance is also written in Explicit VR Little Endian: the same pixel bytes, each
# value's VR from the dictionary (big endian would need its values swapped: not offered).
REWRITTEN_AS_EXPLICIT = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99"})
STUDY_MAP_SECONDS = 30.0  # how long a study's members are kept (new instances show after this at most)
STUDY_MAPS_KEPT = 256
STUDY_INDEX_REFRESH_SECONDS = 1.0  # unknown replacement study UIDs re-read the study list at most this often
_BULK_MARK = b"\0fovea-bulkdata\0"  # a BulkDataURI carried through de-identification as a binary value
_UID_TOKEN = re.compile(r"[0-9]+(?:\.[0-9]+)+")  # a whole UID in running text
_BULK_URI = re.compile(r"(?:^|/)studies/([^/]+)/series/([^/]+)/instances/([^/]+)/bulkdata/(.+)")


def may_show_identifying_text(member: StudyMember) -> bool:
    """Whether the instance's pixels may carry identifying text (see the module docstring)."""
    if member.burned_in_annotation == "YES":
        return True
    return member.burned_in_annotation != "NO" and member.sop_class_uid in SECONDARY_CAPTURE_CLASSES


@dataclass(slots=True)
class StudyMap:
    """One study's originals and replacements; `withheld`: SOP Instance UIDs not served."""

    study_instance_uid: str
    replacement_study_uid: str
    members: list[StudyMember]
    withheld: frozenset[str]
    replacements: dict[str, str]  # original series and SOP Instance UIDs -> replacement
    originals: dict[str, str] = field(default_factory=dict)  # replacement -> original

    def __post_init__(self) -> None:
        self.originals = {new: old for old, new in self.replacements.items()}

    def original_scope(self, series: str | None, instance: str | None) -> Scope | None:
        """The original scope of replacement `series` (and `instance`); None when not in the study or
        withheld."""
        scope = Scope(self.study_instance_uid)
        if series is not None:
            original_series = self.originals.get(series)
            if original_series is None:
                return None
            scope = Scope(self.study_instance_uid, original_series)
            if instance is not None:
                original_instance = self.originals.get(instance)
                if original_instance is None or original_instance in self.withheld:
                    return None
                if not any(
                    m.sop_instance_uid == original_instance and m.series_instance_uid == original_series
                    for m in self.members
                ):
                    return None
                scope = Scope(self.study_instance_uid, original_series, original_instance)
        return scope

    def served(self, scope: Scope) -> list[StudyMember]:
        """The members of an original scope that are not withheld, in series then instance order."""
        return [
            member
            for member in self.members
            if member.sop_instance_uid not in self.withheld
            and scope.series_instance_uid in (None, member.series_instance_uid)
            and scope.sop_instance_uid in (None, member.sop_instance_uid)
        ]

    def replacement(self, original: str) -> str:
        if original == self.study_instance_uid:
            return self.replacement_study_uid
        return self.replacements.get(original, original)

    def scrub(self, text: str) -> str:
        """`text` (an error message) with every original UID of the study replaced, whole UIDs only."""

        def replaced(match: re.Match[str]) -> str:
            uid = match.group(0)
            return (
                self.replacement_study_uid
                if uid == self.study_instance_uid
                else self.replacements.get(uid, uid)
            )

        return _UID_TOKEN.sub(replaced, text)


class Rendition:
    """The rendition's state for one server process: the mappings it has made, and the profile."""

    def __init__(self, deidentifier: Deidentifier, *, allow_burned_in: bool) -> None:
        self.deidentifier = deidentifier
        self.allow_burned_in = allow_burned_in
        self._lock = threading.Lock()
        self._studies: dict[str, str] = {}  # replacement study UID -> original
        self._mapped: set[str] = set()  # originals already in `_studies`
        self._studies_read_at = -STUDY_INDEX_REFRESH_SECONDS
        self._maps: OrderedDict[str, tuple[float, StudyMap]] = OrderedDict()

    @property
    def mapped_studies(self) -> int:
        """How many stored studies have been mapped forward (by searches for unknown replacements)."""
        with self._lock:
            return len(self._mapped)

    def replacement_uid(self, original: str) -> str:
        if self.deidentifier.options.retain_uids:
            return original
        return self.deidentifier.pseudonyms.uid(original)

    # --- Finding the originals ---

    def original_study(self, engine: Engine, replacement: str, key: int | None = None) -> str | None:
        """The original of a replacement study UID; None when no stored study maps to it. `key`: the
        index key a de-identified share token names, tried first (checked: it must map to `replacement`)."""
        if key is not None:
            with engine.connect() as connection:
                hinted = study_uid_of_key(connection, key)
            if hinted is not None and self.replacement_uid(hinted) == replacement:
                return hinted
        with self._lock:
            found = self._studies.get(replacement)
            if found is not None or time.monotonic() - self._studies_read_at < STUDY_INDEX_REFRESH_SECONDS:
                return found
            self._studies_read_at = time.monotonic()
        with engine.connect() as connection:
            originals = study_instance_uids(connection)
        new = {self.replacement_uid(uid): uid for uid in originals if uid not in self._mapped}
        with self._lock:
            self._studies.update(new)
            self._mapped.update(new.values())
            return self._studies.get(replacement)

    def study(self, engine: Engine, replacement: str, key: int | None = None) -> StudyMap | None:
        """The map of the study a replacement study UID names; None when there is none."""
        original = self.original_study(engine, replacement, key)
        if original is None:
            return None
        now = time.monotonic()
        with self._lock:
            kept = self._maps.get(original)
            if kept is not None and now - kept[0] < STUDY_MAP_SECONDS:
                return kept[1]
        with engine.connect() as connection:
            members = study_members(connection, original)
        if not members:
            return None
        originals = dict.fromkeys(m.series_instance_uid for m in members) | dict.fromkeys(
            m.sop_instance_uid for m in members
        )
        withheld = frozenset(
            ()
            if self.allow_burned_in
            else (m.sop_instance_uid for m in members if may_show_identifying_text(m))
        )
        made = StudyMap(
            original,
            replacement,
            members,
            withheld,
            {uid: self.replacement_uid(uid) for uid in originals},
        )
        with self._lock:
            self._maps[original] = (now, made)
            self._maps.move_to_end(original)
            while len(self._maps) > STUDY_MAPS_KEPT:
                self._maps.popitem(last=False)
        return made

    # --- De-identified content ---

    def dicom_json(self, item: dict[str, Any], base_url: str) -> dict[str, Any]:
        """A DICOM JSON object de-identified; its BulkDataURIs (relative, as stored, or absolute under
        the plain root) point at the rendition under `base_url` (the rendition's root)."""
        drop_private = not self.deidentifier.options.retain_safe_private
        ds = Dataset.from_json(_prepared(item, drop_private=drop_private))
        self.deidentifier.deidentify(ds)
        result: dict[str, Any] = ds.to_json_dict(bulk_data_threshold=1 << 62)
        _restore_bulk_uris(result, lambda uri: self._bulk_url(uri, base_url))
        return result

    def _bulk_url(self, uri: str, base_url: str) -> str | None:
        match = _BULK_URI.search(uri)
        if match is None:
            return None
        study, series, instance, path = match.groups()
        new = self.replacement_uid
        return f"{Scope(new(study), new(series), new(instance)).url(base_url)}/bulkdata/{path}"

    def part10_of(self, blobs: BlobStore, instance: StoredInstance, transfer_syntax: str) -> bytes:
        """The instance's stored file, de-identified (read whole: pydicom writes a data set at once)."""
        with open_blob(blobs, instance.blob_key, instance.blob_size) as stream:
            return self.part10(stream, transfer_syntax)

    def part10(self, stored: BinaryIO, transfer_syntax: str) -> bytes:
        """A stored Part 10 file de-identified, pixel data as it was; in `transfer_syntax`, which is the
        stored one or, from one of REWRITTEN_AS_EXPLICIT, Explicit VR Little Endian (same pixel bytes)."""
        ds = pydicom.dcmread(stored)
        self.deidentifier.deidentify(ds)
        if transfer_syntax != ds.file_meta.TransferSyntaxUID:
            if (
                ds.file_meta.TransferSyntaxUID not in REWRITTEN_AS_EXPLICIT
                or transfer_syntax != EXPLICIT_VR_LE
            ):
                raise ValueError(f"not written in {transfer_syntax}")
            ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LE)
        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        return buffer.getvalue()


def _prepared(node: dict[str, Any], *, drop_private: bool) -> dict[str, Any]:
    """A copy of a DICOM JSON object for the profile: BulkDataURIs carried as marked binary values, and,
    when the profile removes them all anyway, without private attributes (the bulk of many data sets,
    and most of the cost of reading JSON into pydicom)."""
    prepared: dict[str, Any] = {}
    for tag, element in node.items():
        if drop_private and int(tag[3], 16) % 2:  # an odd group: private
            continue
        if not isinstance(element, dict):
            prepared[tag] = element
        elif "BulkDataURI" in element:
            marked = _BULK_MARK + str(element["BulkDataURI"]).encode()
            prepared[tag] = {"vr": element.get("vr"), "InlineBinary": base64.b64encode(marked).decode()}
        elif element.get("vr") == "SQ" and element.get("Value"):
            items = [_prepared(item, drop_private=drop_private) for item in element["Value"]]
            prepared[tag] = {**element, "Value": items}
        else:
            prepared[tag] = element
    return prepared


def _restore_bulk_uris(node: dict[str, Any], url_of: Callable[[str], str | None]) -> None:
    """Turn the marked binary values back into BulkDataURIs; a value whose URI cannot be placed is dropped."""
    for element in node.values():
        if not isinstance(element, dict):
            continue
        inline = element.get("InlineBinary")
        if isinstance(inline, str):
            raw = _decode(inline)
            if raw.startswith(_BULK_MARK):
                del element["InlineBinary"]
                url = url_of(raw[len(_BULK_MARK) :].decode("utf-8", "replace"))
                if url is not None:
                    element["BulkDataURI"] = url
            continue
        for item in element.get("Value") or ():
            if isinstance(item, dict):
                _restore_bulk_uris(item, url_of)


def _decode(inline: str) -> bytes:
    try:
        return base64.b64decode(inline)
    except ValueError:
        return b""
