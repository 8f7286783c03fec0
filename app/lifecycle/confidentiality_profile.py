"""PS3.15 Annex E, the Basic Application Level Confidentiality Profile, as data.

Why the table comes from `dicom-anonymizer`: it ships Table E.1-1's Basic Profile column transcribed
from the current edition of the standard (one list of tags per action code), kept up to date with
each edition, under the BSD licence. Fovea takes only that table; applying it (sequences, options,
keyed UIDs) is `deidentify.py`. docs/conformance.md ("De-identification") says how each action code
is carried out and why `deid` and `dicognito` were not chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache

# The edition of Table E.1-1 the profile follows (a module of dicom-anonymizer's table package).
TABLE_EDITION = "dicomfields_2026c"


class ProfileCode(StrEnum):
    """The action codes of Table E.1-1's Basic Profile column (PS3.15 Table E.1-1a)."""

    D = "D"  # replace with a non-empty dummy value consistent with the VR
    Z = "Z"  # replace with an empty value (or a dummy one)
    X = "X"  # remove
    U = "U"  # replace a UID by another, consistently within the set of instances
    Z_D = "Z/D"  # Z, unless D is needed for IOD conformance
    X_Z = "X/Z"
    X_D = "X/D"
    X_Z_D = "X/Z/D"
    X_Z_U = "X/Z/U*"  # X, unless Z or U of the contained UIDs is needed for IOD conformance


class Treatment(StrEnum):
    """What Fovea does with an attribute: one of the codes, the choice made where the table offers two."""

    DUMMY = "dummy"  # D
    EMPTY = "empty"  # Z
    REMOVE = "remove"  # X
    REMAP_UID = "remap-uid"  # U
    REMAP_CONTAINED_UIDS = "remap-contained-uids"  # U*: a sequence kept, its items cleaned (UIDs remapped)


# Where the standard lets the de-identifier choose, Fovea takes the choice that keeps instances valid
# without keeping anything identifying: a dummy rather than an empty value for Z/D (Type 1 attributes
# such as Content Date stay filled), removal for the X/... codes, and for X/Z/U* the sequence kept with
# its UIDs remapped, so references between the exported instances still resolve.
TREATMENTS: dict[ProfileCode, Treatment] = {
    ProfileCode.D: Treatment.DUMMY,
    ProfileCode.Z: Treatment.EMPTY,
    ProfileCode.X: Treatment.REMOVE,
    ProfileCode.U: Treatment.REMAP_UID,
    ProfileCode.Z_D: Treatment.DUMMY,
    ProfileCode.X_Z: Treatment.REMOVE,
    ProfileCode.X_D: Treatment.REMOVE,
    ProfileCode.X_Z_D: Treatment.REMOVE,
    ProfileCode.X_Z_U: Treatment.REMAP_CONTAINED_UIDS,
}

# The table module's list of tags for each code.
_TABLE_LISTS: dict[ProfileCode, str] = {
    ProfileCode.D: "D_TAGS",
    ProfileCode.Z: "Z_TAGS",
    ProfileCode.X: "X_TAGS",
    ProfileCode.U: "U_TAGS",
    ProfileCode.Z_D: "Z_D_TAGS",
    ProfileCode.X_Z: "X_Z_TAGS",
    ProfileCode.X_D: "X_D_TAGS",
    ProfileCode.X_Z_D: "X_Z_D_TAGS",
    ProfileCode.X_Z_U: "X_Z_U_STAR_TAGS",
}


@dataclass(frozen=True, slots=True)
class TagRange:
    """A repeating group of Table E.1-1 (Curve Data 50xx,xxxx; Overlay Data 60xx,3000...)."""

    group: int
    element: int
    group_mask: int
    element_mask: int
    code: ProfileCode

    def matches(self, tag: int) -> bool:
        return (tag >> 16) & self.group_mask == self.group & self.group_mask and (
            tag & 0xFFFF
        ) & self.element_mask == self.element & self.element_mask


@dataclass(frozen=True, slots=True)
class BasicProfile:
    """The Basic Profile column: the code of every listed tag, and of the repeating groups."""

    codes: dict[int, ProfileCode]
    ranges: tuple[TagRange, ...]

    def code_for(self, tag: int) -> ProfileCode | None:
        """The code Table E.1-1 gives `tag`; None: not listed (a standard attribute kept as it is)."""
        code = self.codes.get(tag)
        if code is None:
            for tag_range in self.ranges:
                if tag_range.matches(tag):
                    return tag_range.code
        return code


@cache
def basic_profile() -> BasicProfile:
    """Table E.1-1's Basic Profile column, read once from dicom-anonymizer's transcription."""
    from importlib import import_module

    table = import_module(f"dicomanonymizer.dicom_anonymization_databases.{TABLE_EDITION}")
    codes: dict[int, ProfileCode] = {}
    ranges: list[TagRange] = []
    for code, list_name in _TABLE_LISTS.items():
        for entry in getattr(table, list_name):
            if len(entry) == 4:
                ranges.append(TagRange(entry[0], entry[1], entry[2], entry[3], code))
            else:
                codes[entry[0] << 16 | entry[1]] = code
    return BasicProfile(codes, tuple(ranges))


# PS3.16 CID 7050 "De-identification Method": the codes that describe what was done (DCM scheme).
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
RETAIN_FULL_DATES_CODE = ("113106", "Retain Longitudinal Temporal Information Full Dates Option")
RETAIN_MODIFIED_DATES_CODE = ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")
RETAIN_UIDS_CODE = ("113110", "Retain UIDs Option")
RETAIN_SAFE_PRIVATE_CODE = ("113111", "Retain Safe Private Option")


class DateHandling(StrEnum):
    """FOVEA_DEID_DATES: what happens to dates and times (the Retain Longitudinal Temporal options)."""

    REMOVE = "remove"  # the Basic Profile alone: dates and times as Table E.1-1 says
    MODIFIED = "modified"  # Modified Dates Option: every date shifted by one offset per patient
    FULL = "full"  # Full Dates Option: dates and times kept


@dataclass(frozen=True, slots=True)
class ProfileOptions:
    """The Annex E options in force (FOVEA_DEID_* settings)."""

    dates: DateHandling = DateHandling.MODIFIED
    retain_uids: bool = False
    retain_safe_private: bool = False


# Private attributes the Retain Safe Private Option keeps: (private creator, group, element offset).
# A subset of PS3.15 Table E.3.10-1 (acquisition parameters that identify nobody: diffusion b-values
# and gradient directions); the option keeps these and removes every other private attribute.
SAFE_PRIVATE_ATTRIBUTES: frozenset[tuple[str, int, int]] = frozenset(
    {
        ("SIEMENS MR HEADER", 0x0019, 0x0C),  # B_value
        ("SIEMENS MR HEADER", 0x0019, 0x0D),  # DiffusionDirectionality
        ("SIEMENS MR HEADER", 0x0019, 0x0E),  # DiffusionGradientDirection
        ("SIEMENS MR HEADER", 0x0019, 0x27),  # B_matrix
        ("GEMS_PARM_01", 0x0043, 0x39),  # Slop_int_6...slop_int_9 (b-value)
        ("Philips MR Imaging DD 001", 0x2001, 0x03),  # Diffusion B-Factor
    }
)
