"""De-identification: PS3.15 Annex E's Basic Profile and its options applied to a pydicom data set.

What it does, in order, at every level of nesting (sequence items are cleaned like the top level):
- each standard attribute listed in Table E.1-1 gets its treatment (confidentiality_profile.py);
  unlisted standard attributes are kept, and sequences among them are cleaned item by item;
- dates and times follow FOVEA_DEID_DATES (patient-level ones, group 0010, always follow the table);
- private attributes are removed, except those the Retain Safe Private Option lists;
- the data set is marked: Patient Identity Removed YES, the method as text and as CID 7050 codes,
  Longitudinal Temporal Information Modified; the file meta is rebuilt from the new UIDs only.

Pixel data is never touched (burned-in text is the caller's concern: Burned In Annotation).
"""

from __future__ import annotations

from datetime import date, timedelta

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from app.lifecycle.confidentiality_profile import (
    BASIC_PROFILE_CODE,
    RETAIN_FULL_DATES_CODE,
    RETAIN_MODIFIED_DATES_CODE,
    RETAIN_SAFE_PRIVATE_CODE,
    RETAIN_UIDS_CODE,
    SAFE_PRIVATE_ATTRIBUTES,
    TREATMENTS,
    BasicProfile,
    DateHandling,
    ProfileOptions,
    Treatment,
    basic_profile,
)
from app.lifecycle.pseudonyms import Pseudonyms

PATIENT_ID = 0x00100020
PATIENT_GROUP = 0x0010
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_NUMBER_VRS = frozenset({"FL", "FD", "SL", "SS", "SV", "UL", "US", "UV", "AT"})
# Dummy values (action D) by VR: valid for the VR, identifying nobody.
_DUMMY_TEXT = "ANONYMIZED"
_DUMMY_BY_VR: dict[str, object] = {
    "AS": "000D",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "DS": "0",
    "IS": "0",
    "UR": "http://anonymized.invalid",
}
_DUMMY_BYTES = bytes(8)  # a whole number of values of every binary VR


class Deidentifier:
    """Applies the profile with `options`; replacement UIDs, pseudonyms and date shifts from `pseudonyms`.

    One Deidentifier serves a whole export: the mapping of UIDs depends only on the secret, so
    references between instances, series and studies stay consistent.
    """

    def __init__(
        self, pseudonyms: Pseudonyms, options: ProfileOptions, profile: BasicProfile | None = None
    ) -> None:
        self.pseudonyms = pseudonyms
        self.options = options
        self.profile = profile or basic_profile()

    def deidentify(self, ds: Dataset) -> Dataset:
        """De-identify `ds` in place (and return it)."""
        shift_days = None
        if self.options.dates is DateHandling.MODIFIED:
            shift_days = self.pseudonyms.date_shift_days(str(ds.get("PatientID", "") or ""))
        self._clean(ds, shift_days)
        self._mark(ds)
        return ds

    # --- Attributes ---

    def _clean(self, ds: Dataset, shift_days: int | None) -> None:
        for element in list(ds):
            if element.tag.is_private:
                continue  # below, once the whole level is known
            tag = int(element.tag)
            if self._kept_as_date(element, tag, shift_days):
                continue
            code = self.profile.code_for(tag)
            if code is None:
                if element.VR == "SQ":
                    self._clean_items(element, shift_days)
                continue
            self._treat(ds, element, TREATMENTS[code], shift_days)
        self._filter_private(ds)

    def _clean_items(self, element: DataElement, shift_days: int | None) -> None:
        for item in element.value or ():
            self._clean(item, shift_days)

    def _kept_as_date(self, element: DataElement, tag: int, shift_days: int | None) -> bool:
        """Whether the date options took care of `element` (shifted or kept as it is)."""
        if element.VR not in ("DA", "DT", "TM") or tag >> 16 == PATIENT_GROUP:
            return False
        if self.options.dates is DateHandling.FULL:
            return True
        if self.options.dates is DateHandling.MODIFIED and shift_days is not None:
            if element.VR != "TM":  # times stay: a whole number of days moves no time of day
                shifted = _shift_dates(element.value, shift_days)
                element.value = shifted if shifted is not None else None
            return True
        return False

    def _treat(self, ds: Dataset, element: DataElement, treatment: Treatment, shift_days: int | None) -> None:
        if treatment is Treatment.REMOVE:
            del ds[element.tag]
        elif treatment is Treatment.EMPTY:
            element.value = Sequence() if element.VR == "SQ" else None
        elif treatment is Treatment.REMAP_UID:
            self._remap_uids(element)
        elif treatment is Treatment.REMAP_CONTAINED_UIDS:
            if element.VR == "SQ":
                self._clean_items(element, shift_days)
            elif element.VR == "UI":
                self._remap_uids(element)
            else:
                del ds[element.tag]
        else:
            self._dummy(element, shift_days)

    def _remap_uids(self, element: DataElement) -> None:
        if self.options.retain_uids or element.value in (None, ""):
            return
        if isinstance(element.value, MultiValue | list):
            element.value = [self.pseudonyms.uid(str(uid)) for uid in element.value]
        else:
            element.value = self.pseudonyms.uid(str(element.value))

    def _dummy(self, element: DataElement, shift_days: int | None) -> None:
        vr = element.VR
        if int(element.tag) == PATIENT_ID:
            element.value = self.pseudonyms.patient_id(str(element.value or ""))
        elif vr == "SQ":
            self._clean_items(element, shift_days)
        elif vr == "UI":
            self._remap_uids(element)
        elif vr in _TEXT_VRS:
            element.value = _DUMMY_TEXT
        elif vr in _BINARY_VRS:
            element.value = _DUMMY_BYTES
        elif vr in _NUMBER_VRS:
            element.value = 0
        else:
            element.value = _DUMMY_BY_VR.get(vr, _DUMMY_TEXT)

    def _filter_private(self, ds: Dataset) -> None:
        """Remove private attributes, but those the Retain Safe Private Option keeps (and their creators)."""
        private = [element for element in ds if element.tag.is_private]
        if not private:
            return
        creators = {
            (element.tag.group, element.tag.element): str(element.value).strip()
            for element in private
            if element.tag.is_private_creator
        }
        kept_blocks: set[tuple[int, int]] = set()
        for element in private:
            if element.tag.is_private_creator:
                continue
            block = (element.tag.group, element.tag.element >> 8)
            creator = creators.get(block)
            safe = (creator, element.tag.group, element.tag.element & 0xFF) in SAFE_PRIVATE_ATTRIBUTES
            if self.options.retain_safe_private and creator is not None and safe:
                kept_blocks.add(block)
            else:
                del ds[element.tag]
        for block in creators:
            if block not in kept_blocks:
                del ds[block[0] << 16 | block[1]]

    # --- Marking ---

    def _mark(self, ds: Dataset) -> None:
        options = self.options
        codes = [BASIC_PROFILE_CODE]
        if options.retain_safe_private:
            codes.append(RETAIN_SAFE_PRIVATE_CODE)
        if options.retain_uids:
            codes.append(RETAIN_UIDS_CODE)
        if options.dates is DateHandling.MODIFIED:
            codes.append(RETAIN_MODIFIED_DATES_CODE)
        elif options.dates is DateHandling.FULL:
            codes.append(RETAIN_FULL_DATES_CODE)
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = [meaning for _value, meaning in codes]
        items = []
        for value, meaning in codes:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = items
        ds.LongitudinalTemporalInformationModified = {
            DateHandling.REMOVE: "REMOVED",
            DateHandling.MODIFIED: "MODIFIED",
            DateHandling.FULL: "UNMODIFIED",
        }[options.dates]
        old_meta = getattr(ds, "file_meta", None)
        if old_meta is not None:
            # Only what the new file needs: the source's AE titles and addresses stay behind.
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", old_meta.get("MediaStorageSOPClassUID"))
            meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", "")
            meta.TransferSyntaxUID = old_meta.TransferSyntaxUID
            ds.file_meta = meta


def _shift_dates(value: object, days: int) -> str | list[str] | None:
    """DA or DT value(s) moved by `days`; None when one cannot be read (then nothing of it is kept)."""
    if isinstance(value, MultiValue | list):
        shifted = [_shift_date_text(str(item), days) for item in value]
        return None if any(item is None for item in shifted) else [item for item in shifted if item]
    if value in (None, ""):
        return None
    return _shift_date_text(str(value), days)


def _shift_date_text(text: str, days: int) -> str | None:
    """YYYYMMDD[rest] with the date moved (the time and offset of a DT kept); None if unreadable."""
    text = text.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        moved = date(int(text[:4]), int(text[4:6]), int(text[6:8])) + timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return f"{moved.year:04d}{moved.month:02d}{moved.day:02d}{text[8:]}"
