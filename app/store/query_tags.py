"""Extended query tags: attributes an administrator declares matchable in QIDO-RS beyond the built-in keys.

Why a value table rather than columns: declaring and removing a tag is then inserting and deleting rows
(no schema change while the server runs, the same on SQLite and PostgreSQL), and one index on
(tag, value) serves every declared tag. Values come from the stored DICOM JSON, at ingest for new
instances and by a back-fill for those stored before; a tag is searchable once its back-fill is done.
Each value of a multi-valued attribute is a row; PN values are kept case-folded, numbers as numbers.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from sqlalchemy import Connection, Engine, Select, Table, delete, func, insert, select, update

from app.dicomweb.person_names import fold_case
from app.dicomweb.query_keys import KEYS, QueryKey, QueryLevel, Source
from app.store.tables import Instance, InstanceMetadata, QueryTag, QueryTagValue, Series

# VRs an extended tag may have: short text (PS3.5 6.2 bounds them), and numbers. Long text, binary
# data, sequences and tags are not matched by value.
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "LO", "PN", "SH", "UI"})
NUMBER_VRS = frozenset({"IS", "DS", "US", "UL", "SS", "SL", "SV", "UV", "FL", "FD"})
# Longer values (beyond what any of these VRs allows) are not indexed: a B-tree entry must stay small.
MAX_VALUE_LENGTH = 1024
BACKFILL_BATCH = 500
# Instances stored up to this long before a tag was declared are indexed once more at the end of its
# back-fill: an ingest that read the (empty) list of tags before the declaration committed may have
# committed after the back-fill passed its instance.
CATCH_UP_WINDOW = timedelta(minutes=10)
BACKFILLING, READY = "backfilling", "ready"
_TAG = re.compile(r"\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?")


class QueryTagError(ValueError):
    """A declaration that cannot be made (unknown attribute, unsupported VR, already declared ...)."""


@dataclass(frozen=True, slots=True)
class ExtendedKey:
    """A declared extended query tag: its row, the key it adds, and how far its back-fill is."""

    pk: int
    key: QueryKey
    private_creator: str
    state: str
    instances_done: int
    instances_total: int

    @property
    def numeric(self) -> bool:
        return self.key.vr in NUMBER_VRS

    @property
    def name(self) -> str:
        return self.key.keyword or f"{self.key.tag:08X}"

    def describe(self) -> dict[str, Any]:
        """The tag as the admin route and `fovea query-tags list` show it."""
        return {
            "tag": f"{self.key.tag:08X}",
            "keyword": self.key.keyword,
            "privateCreator": self.private_creator,
            "vr": self.key.vr,
            "level": str(self.key.level),
            "state": self.state,
            "instancesDone": self.instances_done,
            "instancesTotal": self.instances_total,
        }


@dataclass(frozen=True, slots=True)
class Declaration:
    tag: int
    keyword: str
    vr: str
    level: QueryLevel
    private_creator: str


def parse_declaration(
    attribute: str, level: str, vr: str | None = None, private_creator: str | None = None
) -> Declaration:
    """What `fovea query-tags add` or the admin route asks for, checked; QueryTagError saying why not."""
    try:
        query_level = QueryLevel(level.lower())
    except ValueError:
        raise QueryTagError(f"level {level!r}: study, series or instance") from None
    tag = _tag_of(attribute)
    creator = (private_creator or "").strip()
    private = bool((tag >> 16) % 2)
    if tag >> 16 in (0x0000, 0x0002) or (tag & 0xFFFF) == 0:
        raise QueryTagError(f"{attribute}: command, file meta and group length attributes are not searchable")
    if private:
        if (tag & 0xFFFF) < 0x1000:
            raise QueryTagError(
                f"{attribute}: a private creator or reserved element, not a private attribute"
            )
        if not creator or len(creator) > 64:
            raise QueryTagError(
                f"{attribute}: a private attribute needs its private creator (at most 64 characters)"
            )
        if not vr:
            raise QueryTagError(f"{attribute}: a private attribute needs its VR")
    elif creator:
        raise QueryTagError(f"{attribute}: a private creator only goes with a private attribute")
    dictionary = None if private else _dictionary_vr(tag)
    if not private and dictionary is None:
        raise QueryTagError(f"{attribute}: not an attribute of PS3.6")
    chosen = (vr or dictionary or "").upper()
    if dictionary is not None and vr and chosen not in dictionary.split(" or "):
        raise QueryTagError(f"{attribute}: its VR is {dictionary}, not {chosen}")
    chosen = chosen.split(" or ")[0]
    if chosen not in TEXT_VRS | NUMBER_VRS:
        supported = ", ".join(sorted(TEXT_VRS | NUMBER_VRS))
        raise QueryTagError(f"{attribute}: VR {chosen} is not searchable by value; supported: {supported}")
    if any(key.matched and key.path == (tag,) for key in KEYS):
        raise QueryTagError(f"{attribute}: already a matching key of QIDO-RS")
    return Declaration(tag, "" if private else (keyword_for_tag(tag) or ""), chosen, query_level, creator)


def declared_tags(connection: Connection) -> list[ExtendedKey]:
    """Every declared tag, in the order declared."""
    rows = connection.execute(_select_tags().order_by(QueryTag.pk)).all()
    return [_extended_key(row) for row in rows]


def find_tag(connection: Connection, attribute: str) -> ExtendedKey | None:
    tag = _tag_of(attribute)
    row = connection.execute(_select_tags().where(QueryTag.tag == tag)).one_or_none()
    return None if row is None else _extended_key(row)


def declare(engine: Engine, declaration: Declaration) -> ExtendedKey:
    """Record the tag (state "backfilling"); instances stored from now on get their values at ingest.

    Declaring a tag again with the same level, VR and creator returns it (a stopped back-fill is then
    resumed by `backfill`); otherwise QueryTagError.
    """
    now = datetime.now(UTC)
    with engine.begin() as connection:
        row = connection.execute(_select_tags().where(QueryTag.tag == declaration.tag)).one_or_none()
        if row is not None:
            existing = _extended_key(row)
            same = (existing.key.level, existing.key.vr, existing.private_creator) == (
                declaration.level,
                declaration.vr,
                declaration.private_creator,
            )
            if not same:
                raise QueryTagError(f"{existing.name} is already declared otherwise: remove it first")
            return existing
        total = connection.execute(select(func.count()).select_from(Instance)).scalar_one()
        connection.execute(
            insert(QueryTag).values(
                tag=declaration.tag,
                keyword=declaration.keyword,
                private_creator=declaration.private_creator,
                vr=declaration.vr,
                level=str(declaration.level),
                state=BACKFILLING,
                instances_done=0,
                instances_total=total,
                created_at=now,
                updated_at=now,
            )
        )
        row = connection.execute(_select_tags().where(QueryTag.tag == declaration.tag)).one()
        return _extended_key(row)


def backfill(
    engine: Engine, key: ExtendedKey, progress: Callable[[int, int], None] | None = None
) -> ExtendedKey:
    """Index the tag's values in every stored instance, in batches (each its own transaction, its
    progress recorded in the tag's row); then mark it ready. Safe to run again after a stop."""
    with engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(Instance)).scalar_one()
        created_at = connection.execute(select(QueryTag.created_at).where(QueryTag.pk == key.pk)).scalar_one()
    done, last_pk = 0, 0
    while True:
        with engine.begin() as connection:
            rows = connection.execute(
                _instances_with_metadata()
                .where(Instance.pk > last_pk)
                .order_by(Instance.pk)
                .limit(BACKFILL_BATCH)
            ).all()
            if not rows:
                break
            _reindex(connection, key, rows)
            done += len(rows)
            last_pk = rows[-1].pk
            total = max(total, done)
            connection.execute(
                update(QueryTag)
                .where(QueryTag.pk == key.pk)
                .values(instances_done=done, instances_total=total, updated_at=datetime.now(UTC))
            )
        if progress is not None:
            progress(done, total)
    # The catch-up: recent instances the back-fill may have passed before their store committed. Those
    # with a value already are indexed; the others are read once more (most lack the attribute).
    since = _as_aware(created_at) - CATCH_UP_WINDOW
    indexed = (
        select(QueryTagValue.pk)
        .where(QueryTagValue.query_tag_pk == key.pk, QueryTagValue.instance_pk == Instance.pk)
        .exists()
    )
    last_pk = 0
    while True:
        with engine.begin() as connection:
            rows = connection.execute(
                _instances_with_metadata()
                .where(Instance.pk > last_pk, Instance.created_at >= since, ~indexed)
                .order_by(Instance.pk)
                .limit(BACKFILL_BATCH)
            ).all()
            if not rows:
                break
            _reindex(connection, key, rows)
            last_pk = rows[-1].pk
    with engine.begin() as connection:
        connection.execute(
            update(QueryTag)
            .where(QueryTag.pk == key.pk)
            .values(state=READY, instances_done=done, instances_total=done, updated_at=datetime.now(UTC))
        )
        row = connection.execute(_select_tags().where(QueryTag.pk == key.pk)).one()
        return _extended_key(row)


def remove(engine: Engine, attribute: str) -> bool:
    """Forget the tag and drop its values (its index entries go with them); False if not declared."""
    with engine.begin() as connection:
        key = find_tag(connection, attribute)
        if key is None:
            return False
        connection.execute(delete(QueryTagValue).where(QueryTagValue.query_tag_pk == key.pk))
        connection.execute(delete(QueryTag).where(QueryTag.pk == key.pk))
    return True


def index_instance_values(
    connection: Connection, instance_pk: int, series_pk: int, study_pk: int, metadata_json: bytes
) -> None:
    """At ingest, in the instance's transaction: the values of every declared tag (none: one cheap read)."""
    keys = [_extended_key(row) for row in connection.execute(_select_tags())]
    if not keys:
        return
    dataset = orjson.loads(metadata_json)
    rows = [
        _value_row(key, instance_pk, series_pk, study_pk, value)
        for key in keys
        for value in values_in(dataset, key)
    ]
    if rows:
        connection.execute(insert(QueryTagValue), rows)


def values_in(dataset: Mapping[str, Any], key: ExtendedKey) -> list[str | float]:
    """The tag's values in one instance's DICOM JSON, as indexed (empty when absent or unreadable)."""
    element = dataset.get(_element_key(dataset, key))
    if not isinstance(element, dict):
        return []
    values: list[str | float] = []
    for item in element.get("Value") or []:
        value = _indexed_value(key, item)
        if value is not None and value not in values:
            values.append(value)
    return values


class QueryTagCache:
    """The searchable (ready) tags, read again after `ttl_s`: each QIDO-RS request needs them before it
    parses its parameters, and a declaration in another process shows within that time."""

    def __init__(self, engine: Engine, ttl_s: float = 2.0) -> None:
        self._engine, self._ttl_s = engine, ttl_s
        self._lock = threading.Lock()
        self._keys: tuple[ExtendedKey, ...] = ()
        self._read_at = float("-inf")

    def fresh(self) -> tuple[ExtendedKey, ...] | None:
        """The tags if read recently (no I/O), else None: then call `load` (in a thread)."""
        with self._lock:
            return self._keys if time.monotonic() - self._read_at < self._ttl_s else None

    def load(self) -> tuple[ExtendedKey, ...]:
        with self._engine.connect() as connection:
            keys = tuple(key for key in declared_tags(connection) if key.state == READY)
        with self._lock:
            self._keys, self._read_at = keys, time.monotonic()
        return keys

    def forget(self) -> None:
        """After a change made in this process: the next search reads the tags again."""
        with self._lock:
            self._read_at = float("-inf")


def _instances_with_metadata() -> Any:
    return (
        select(Instance.pk, Instance.series_pk, Series.study_pk, InstanceMetadata.dicom_json)
        .join(Series, Series.pk == Instance.series_pk)
        .join(InstanceMetadata, InstanceMetadata.instance_pk == Instance.pk)
    )


def _reindex(connection: Connection, key: ExtendedKey, rows: Iterable[Any]) -> None:
    """Replace the tag's values of these instances by those in their stored metadata."""
    rows = list(rows)
    if not rows:
        return
    connection.execute(
        delete(QueryTagValue).where(
            QueryTagValue.query_tag_pk == key.pk, QueryTagValue.instance_pk.in_([row.pk for row in rows])
        )
    )
    values = [
        _value_row(key, row.pk, row.series_pk, row.study_pk, value)
        for row in rows
        for value in values_in(orjson.loads(row.dicom_json), key)
    ]
    if values:
        connection.execute(insert(QueryTagValue), values)


def _value_row(
    key: ExtendedKey, instance_pk: int, series_pk: int, study_pk: int, value: str | float
) -> dict[str, Any]:
    numeric = isinstance(value, float)
    return {
        "query_tag_pk": key.pk,
        "instance_pk": instance_pk,
        "series_pk": series_pk,
        "study_pk": study_pk,
        "text_value": None if numeric else value,
        "number_value": value if numeric else None,
    }


def _element_key(dataset: Mapping[str, Any], key: ExtendedKey) -> str:
    """The element's tag in this data set: a private one sits in the block its creator reserved."""
    tag = key.key.tag
    if not key.private_creator:
        return f"{tag:08X}"
    group = tag >> 16
    for block in range(0x10, 0x100):
        creator = dataset.get(f"{group:04X}00{block:02X}")
        if isinstance(creator, dict) and [str(v).strip() for v in creator.get("Value") or []] == [
            key.private_creator
        ]:
            return f"{group:04X}{block:02X}{tag & 0xFF:02X}"
    return ""


def _indexed_value(key: ExtendedKey, item: Any) -> str | float | None:
    if key.numeric:
        try:
            return float(item)
        except (TypeError, ValueError):
            return None
    if key.key.vr == "PN":
        if not isinstance(item, dict):
            return None
        groups = [str(item.get(group, "")) for group in ("Alphabetic", "Ideographic", "Phonetic")]
        text = fold_case("=".join(groups).rstrip("="))
    elif isinstance(item, str):
        text = item.strip("\x00 ")
    else:
        return None
    return text if text and len(text) <= MAX_VALUE_LENGTH else None


def _select_tags() -> Select[Any]:
    return select(*cast(Table, QueryTag.__table__).columns)


def _extended_key(row: Any) -> ExtendedKey:
    path = (int(row.tag),)
    key = QueryKey(
        row.keyword or f"{row.tag:08X}",
        QueryLevel(row.level),
        None,
        Source.EXTENDED,
        matched=True,
        returned=False,
        path=path,
        vr=row.vr,
    )
    return ExtendedKey(row.pk, key, row.private_creator, row.state, row.instances_done, row.instances_total)


def _tag_of(attribute: str) -> int:
    text = attribute.strip()
    found = _TAG.fullmatch(text)
    if found:
        return int(found.group(1) + found.group(2), 16)
    tag = tag_for_keyword(text)
    if tag is None:
        raise QueryTagError(f"{attribute}: not a DICOM keyword or tag (a keyword, 00101030 or (0010,1030))")
    return int(tag)


def _dictionary_vr(tag: int) -> str | None:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _as_aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
