"""QIDO-RS query parameters as a query object (PS3.18 8.3.4, 10.6; PS3.4 C.2.2.2 matching).

Why here: the meaning of `PatientName=Doe*&StudyDate=20260101-&includefield=all&limit=25` is the
standard's, not the index's; parsing it once into plain data lets the store build SQL from it and the
HTTP layer turn every mistake into one 400 that says what was wrong. Nothing here touches HTTP or SQL.

What it takes (Table 8.3.4-1):
- `{attribute}={value}`: the attribute as a keyword (`PatientName`) or eight hex digits (`00100010`),
  a sequence item's attribute as a dotted path (`RequestAttributeSequence.ScheduledProcedureStepID`;
  PS3.6's keyword `RequestAttributesSequence` works too).
  The value's form gives the matching (PS3.4 C.2.2.2): empty or `*` alone is universal matching (the
  attribute is returned, nothing is filtered); a comma-separated list of UIDs is list matching; `*`
  and `?` make wildcard matching for the string VRs that allow it; `a-b`, `a-` and `-b` make range
  matching for DA, TM and DT; anything else is single-value matching. Values are checked against
  their VR (a malformed date or UID is a 400, not an empty result).
- `includefield` (repeatable, comma-separated, or `all`), `fuzzymatching`, `limit`, `offset`,
  `emptyvaluematching`, `multiplevaluematching` (true/false), and Fovea's `includerejected`
  (true/false: also what IHE IOCM rejection notes hid; the HTTP layer checks the caller may).
  `accept` and `charset` belong to content negotiation and are passed over here.
Each attribute may be matched once; an attribute the level does not search on is a 400 naming the
ones it does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from types import MappingProxyType

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from app.dicomweb.errors import BadRequest
from app.dicomweb.query_keys import DATE_TIME_PAIRS, KEYS, LEVELS_SEARCHED, QueryKey, QueryLevel
from app.dicomweb.uids import is_valid_uid


class MatchKind(StrEnum):
    UNIVERSAL = "universal"  # returned, not filtered
    SINGLE = "single"
    UID_LIST = "uid-list"
    VALUE_LIST = (
        "value-list"  # CS values separated by a comma or backslash: any of them (ModalitiesInStudy=CT,MR)
    )
    WILDCARD = "wildcard"  # `*` any run, `?` any one character
    RANGE = "range"  # DA, TM, DT: low and/or high, inclusive
    # Multiple Value Matching (PS3.4 C.2.2.2.8; `multiplevaluematching=true`, values split at `\`):
    # every value must be among the entity's values.
    ALL_VALUES = "all-values"
    # A date and its time as one range (PS3.4 C.2.2.2.5.1): values (low date, low time, high date,
    # high time), "" where open; `time_path` names the time attribute.
    DATE_TIME_RANGE = "date-time-range"


@dataclass(frozen=True, slots=True)
class Match:
    path: tuple[int, ...]  # tags from the top-level attribute down into sequence items
    vr: str
    kind: MatchKind
    values: tuple[str, ...] = ()  # SINGLE, WILDCARD: one; UID_LIST: several; RANGE: (low, high), "" open
    time_path: tuple[int, ...] = ()  # DATE_TIME_RANGE: the time attribute combined with this date

    @property
    def tag(self) -> int:
        return self.path[-1]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    level: QueryLevel
    matches: tuple[Match, ...] = ()
    include_all: bool = False
    include: frozenset[tuple[int, ...]] = field(default_factory=frozenset)  # paths to return as well
    fuzzy: bool = False
    limit: int | None = None
    offset: int = 0
    empty_value_matching: bool = False
    multiple_value_matching: bool = False  # PS3.18 8.3.4.6: "false" when absent
    include_rejected: bool = False  # Fovea's `includerejected`: instances rejection notes hid (admin)


_OPTIONS = frozenset(
    {
        "fuzzymatching",
        "limit",
        "offset",
        "emptyvaluematching",
        "multiplevaluematching",
        "includerejected",  # Fovea's: also what IHE IOCM rejection notes hid (needs `admin`)
    }
)
_WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
_RANGE_VRS = frozenset({"DA", "TM", "DT"})
# PS3.4 C.2.2.2.8: the VRs Multiple Value Matching applies to.
_MULTIPLE_VALUE_VRS = frozenset({"AE", "AS", "AT", "CS", "LO", "PN", "SH", "UC"})
_DATE = re.compile(r"\d{8}")
_TIME = re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?")
_DATE_TIME = re.compile(r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?")
_INTEGER = re.compile(r"[+-]?\d{1,12}")
_DECIMAL = re.compile(r"[+-]?(\d{1,16}(\.\d{0,16})?|\.\d{1,16})([eE][+-]?\d{1,3})?")
_PATTERNS = {"DA": _DATE, "TM": _TIME, "DT": _DATE_TIME, "DS": _DECIMAL, "FL": _DECIMAL, "FD": _DECIMAL}
_PATTERNS.update(dict.fromkeys(("IS", "US", "UL", "SS", "SL", "SV", "UV"), _INTEGER))
# Largest `limit` or `offset`: it must fit every SQL integer type (a 32-bit INTEGER on PostgreSQL, and
# SQLite's 64-bit one refuses anything past 2**63 with an OverflowError).
MAX_PAGING_VALUE = 2**31 - 1
_PAGING_DIGITS = re.compile(r"[0-9]{1,10}")
_NEGOTIATION_PARAMETERS = frozenset({"accept", "charset"})
# Every query parameter a search takes besides its matching keys (the capabilities description lists them).
SEARCH_PARAMETERS = (
    "accept",
    "charset",
    "includefield",
    "fuzzymatching",
    "limit",
    "offset",
    "emptyvaluematching",
    "multiplevaluematching",
)
# PS3.18's tables spell (0040,0275) without the plural PS3.6 gives its keyword; clients send either.
_KEYWORD_ALIASES: Mapping[str, str] = MappingProxyType(
    {"RequestAttributeSequence": "RequestAttributesSequence"}
)


def searchable_paths(level: QueryLevel, extended: Iterable[QueryKey] = ()) -> dict[tuple[int, ...], str]:
    """Every attribute path a search at `level` matches on (the built-in keys of the level and those
    above it, and any `extended` ones of those levels), with its VR."""
    levels = LEVELS_SEARCHED[level]
    return {key.path: key.vr for key in (*KEYS, *extended) if key.matched and key.level in levels}


def parse_search(
    parameters: Sequence[tuple[str, str]], level: QueryLevel, extended: Iterable[QueryKey] = ()
) -> SearchQuery:
    """The query the parameters of a QIDO-RS request at `level` ask for; BadRequest naming the fault.

    `extended` are the extended query tags declared (app/store/query_tags.py).
    """
    searchable = searchable_paths(level, extended)
    values: dict[tuple[int, ...], str] = {}
    include: set[tuple[int, ...]] = set()
    include_all = False
    options: dict[str, str] = {}
    for name, value in parameters:
        if name in _NEGOTIATION_PARAMETERS:
            continue
        if name == "includefield":
            for item in (part.strip() for part in value.split(",")):
                if item == "all":
                    include_all = True
                    continue
                path = _path_of(item)
                if path is None:
                    raise BadRequest(f"includefield={item}: not a DICOM attribute keyword or tag")
                include.add(path)
            continue
        if name in _OPTIONS:
            if name in options:
                raise BadRequest(f"{name} is given more than once")
            options[name] = value
            continue
        path = _path_of(name)
        if path is None:
            raise BadRequest(f"{name}: not a query parameter, DICOM attribute keyword or tag")
        if path not in searchable:
            supported = ", ".join(sorted(_name_of(p) for p in searchable))
            raise BadRequest(f"{_name_of(path)} is not matched at {level} level; supported: {supported}")
        if path in values:
            raise BadRequest(f"{_name_of(path)} is matched more than once")
        values[path] = value
    if include_all and include:
        raise BadRequest("includefield=all leaves no room for other includefield values")
    multiple = _boolean(options, "multiplevaluematching", default=False)
    matches = {
        path: _match(path, searchable[path], value, multiple=multiple) for path, value in values.items()
    }
    return SearchQuery(
        level,
        _with_date_times_combined(matches),
        include_all,
        frozenset(include),
        _boolean(options, "fuzzymatching", default=False),
        _integer(options, "limit"),
        _integer(options, "offset") or 0,
        _boolean(options, "emptyvaluematching", default=False),
        multiple,
        _boolean(options, "includerejected", default=False),
    )


def _match(path: tuple[int, ...], vr: str, value: str, *, multiple: bool) -> Match:
    name = _name_of(path)
    if value in ("", "*"):
        return Match(path, vr, MatchKind.UNIVERSAL)
    if vr == "UI":
        uids = tuple(uid.strip() for uid in value.split(","))
        bad = [uid for uid in uids if not is_valid_uid(uid)]
        if bad:
            raise BadRequest(f"{name}={value}: {bad[0]!r} is not a UID")
        return Match(path, vr, MatchKind.UID_LIST if len(uids) > 1 else MatchKind.SINGLE, uids)
    if multiple and vr in _MULTIPLE_VALUE_VRS and "\\" in value:
        return _all_values(path, vr, value)
    if vr in _RANGE_VRS and "-" in value and not (vr == "DT" and _DATE_TIME.fullmatch(value)):
        low, high = _split_range(name, value, vr)
        if not low and not high:
            raise BadRequest(f"{name}={value}: a range needs at least one end")
        # A time range may end before it starts when its date's range spans days (checked on combining).
        if low and high and vr != "TM" and _comparable(low, vr) > _comparable(high, vr):
            raise BadRequest(f"{name}={value}: the range ends before it starts")
        return Match(path, vr, MatchKind.RANGE, (low, high))
    if vr == "CS" and ("," in value or "\\" in value):  # CS values never hold either character
        codes = tuple(code.strip() for code in re.split(r"[,\\]", value) if code.strip())
        return Match(path, vr, MatchKind.VALUE_LIST, codes)
    if vr in _WILDCARD_VRS and ("*" in value or "?" in value):
        return Match(path, vr, MatchKind.WILDCARD, (value,))
    _check_value(name, vr, value)
    return Match(path, vr, MatchKind.SINGLE, (value,))


def _all_values(path: tuple[int, ...], vr: str, value: str) -> Match:
    """`a\\b`: an entity matches when it has every one of the values (PS3.4 C.2.2.2.8)."""
    name = _name_of(path)
    if "*" in value or "?" in value:
        raise BadRequest(f"{name}={value}: Multiple Value Matching takes no wildcards")
    if vr == "CS" and "," in value:
        raise BadRequest(f"{name}={value}: either a list (,) or multiple values (\\), not both")
    parts = tuple(dict.fromkeys(part.strip() for part in value.split("\\") if part.strip()))
    if not parts:
        raise BadRequest(f"{name}={value}: no values")
    for part in parts:
        _check_value(name, vr, part)
    return Match(path, vr, MatchKind.ALL_VALUES, parts)


def _with_date_times_combined(matches: Mapping[tuple[int, ...], Match]) -> tuple[Match, ...]:
    """The matches, a date and its time (PS3.4 C.2.2.2.5.1) made one range when either is a range.

    The time's own match becomes universal (it is still returned); `d1-d2` with `t1-t2` is the range
    from d1 at t1 to d2 at t2, a single date or time being both ends of its part.
    """
    combined = dict(matches)
    for date_path, time_path in DATE_TIME_PAIRS:
        date, time = matches.get(date_path), matches.get(time_path)
        if date is None or time is None:
            continue
        kinds = {date.kind, time.kind}
        if not kinds <= {MatchKind.SINGLE, MatchKind.RANGE} or MatchKind.RANGE not in kinds:
            continue
        date_low, date_high = _ends(date)
        time_low, time_high = _ends(time)
        if not (date_low and date_low == date_high):  # spanning days: 2300-0100 is a night
            values = (date_low, time_low, date_high, time_high)
            combined[date_path] = Match(date_path, date.vr, MatchKind.DATE_TIME_RANGE, values, time_path)
            combined[time_path] = Match(time_path, time.vr, MatchKind.UNIVERSAL)
    for match in combined.values():
        if match.kind is MatchKind.RANGE and match.vr == "TM" and all(match.values):
            low, high = match.values
            if _comparable(low, "TM") > _comparable(high, "TM"):
                raise BadRequest(f"{_name_of(match.path)}={low}-{high}: the range ends before it starts")
    return tuple(combined.values())


def _ends(match: Match) -> tuple[str, str]:
    return (
        (match.values[0], match.values[0])
        if match.kind is MatchKind.SINGLE
        else (match.values[0], match.values[1])
    )


def _split_range(name: str, value: str, vr: str) -> tuple[str, str]:
    """(low, high) of `a-b`, `a-` or `-b`, each a valid value or empty. A DT value may carry a UTC
    offset (`-0500`), so the separator is the hyphen that leaves two valid (or empty) ends."""
    for at in (i for i, character in enumerate(value) if character == "-"):
        low, high = value[:at], value[at + 1 :]
        if all(not end or _valid(vr, end) for end in (low, high)):
            return low, high
    raise BadRequest(f"{name}={value}: not a valid {vr} value or range")


def _comparable(value: str, vr: str) -> str:
    return value.split(".")[0] if vr == "TM" else value


def _valid(vr: str, value: str) -> bool:
    pattern = _PATTERNS.get(vr)
    if pattern is None:
        return True
    if pattern.fullmatch(value) is None:
        return False
    if vr == "DA":  # a real calendar day, not just eight digits
        try:
            date(int(value[:4]), int(value[4:6]), int(value[6:]))
        except ValueError:
            return False
    if vr == "TM":  # hours, minutes, seconds within the clock (60: a leap second)
        parts = [int(value[i : i + 2]) for i in range(0, len(value.split(".")[0]), 2)]
        return all(part <= limit for part, limit in zip(parts, (23, 59, 60), strict=False))
    return True


def _check_value(name: str, vr: str, value: str) -> None:
    if not _valid(vr, value):
        raise BadRequest(f"{name}={value}: not a valid {vr} value")


def _path_of(name: str) -> tuple[int, ...] | None:
    """Tags of a keyword or 8-hex-digit tag, or a dotted path of them; None if any part is unknown."""
    path = []
    for part in name.split("."):
        if re.fullmatch(r"[0-9A-Fa-f]{8}", part):
            tag = int(part, 16)
            if not keyword_for_tag(tag) and not (tag >> 16) % 2:
                return None
        else:
            found = tag_for_keyword(_KEYWORD_ALIASES.get(part, part))
            if found is None:
                return None
            tag = found
        path.append(tag)
    return tuple(path)


def _name_of(path: tuple[int, ...]) -> str:
    return ".".join(keyword_for_tag(tag) or f"{tag:08X}" for tag in path)


def _boolean(options: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = options.get(name)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise BadRequest(f"{name}={value}: true or false")
    return value.lower() == "true"


def _integer(options: Mapping[str, str], name: str) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    # ASCII digits only (str.isdigit takes "²", which int() refuses), and few of them: int() of thousands
    # of digits is refused by Python itself.
    if not _PAGING_DIGITS.fullmatch(value) or int(value) > MAX_PAGING_VALUE:
        raise BadRequest(f"{name}={value[:40]}: a whole number from 0 to {MAX_PAGING_VALUE}")
    return int(value)
