"""The key table (app/dicomweb/query_keys.py) against the index schema and the QIDO-RS parser."""

from __future__ import annotations

import pytest
from sqlalchemy import Integer, String

from app.dicomweb.query import searchable_paths
from app.dicomweb.query_keys import KEYS, LEVELS, QueryKey, Source
from app.store.read.search import model_column
from app.store.tables import Base

_TEXT_VRS = frozenset({"AE", "CS", "DA", "DT", "LO", "PN", "SH", "TM", "UI"})


def _id(key: QueryKey) -> str:
    return f"{key.level}:{key.keyword}"


@pytest.mark.parametrize("key", [k for k in KEYS if k.matched], ids=_id)
def test_every_matchable_key_has_an_index_column_of_a_type_its_vr_fits(key: QueryKey) -> None:
    assert key.column is not None, "a matching key the index cannot filter on"
    table, name = key.column.split(".")
    column = Base.metadata.tables[table].columns[name]
    if key.vr == "IS":
        assert isinstance(column.type, Integer)
    else:
        assert key.vr in _TEXT_VRS and isinstance(column.type, String)


@pytest.mark.parametrize("key", [k for k in KEYS if k.column is not None], ids=_id)
def test_every_named_column_exists_in_the_models(key: QueryKey) -> None:
    assert key.column is not None
    assert model_column(key.column).key == key.column_name


_PERSON_NAMES = [k for k in KEYS if k.vr == "PN" and k.source is not Source.COMPUTED]


@pytest.mark.parametrize("key", _PERSON_NAMES, ids=_id)
def test_person_name_columns_keep_their_matching_forms(key: QueryKey) -> None:
    for suffix in ("_folded", "_fuzzy"):
        assert model_column(f"{key.column}{suffix}") is not None


def test_a_keyword_appears_once_per_level() -> None:
    seen = [(key.level, key.keyword) for key in KEYS]
    assert len(seen) == len(set(seen))


def test_the_parser_searches_exactly_the_matched_keys_of_the_level_and_those_above() -> None:
    for position, level in enumerate(LEVELS):
        expected = {key.path for key in KEYS if key.matched and LEVELS.index(key.level) <= position}
        assert set(searchable_paths(level)) == expected
    # Sequence item keys are matched by their dotted path, the sequence itself only returned.
    assert (0x00400275, 0x00400009) in searchable_paths(LEVELS[1])
    assert (0x00400275,) not in searchable_paths(LEVELS[1])
