"""Person-name forms for matching: case folding, and the words of fuzzy matching."""

from __future__ import annotations

import pytest

from app.dicomweb.person_names import fold_accents_and_case, fold_case, fuzzy_key, fuzzy_words


def test_fold_case_is_unicode_case_folding_and_keeps_accents() -> None:
    assert fold_case("DOE^JOHN") == fold_case("doe^john") == "doe^john"
    assert fold_case("Straße") == "strasse"
    assert fold_case("MÜLLER") == "müller"


@pytest.mark.parametrize(
    ("name", "folded"),
    [("Jürgen", "jurgen"), ("María", "maria"), ("ÇELİK", "celik"), ("Ødegård", "ødegard")],
)
def test_fold_accents_and_case(name: str, folded: str) -> None:
    assert fold_accents_and_case(name) == folded


def test_fuzzy_words_split_at_component_separators_and_wildcards() -> None:
    assert fuzzy_words("Müller^Jürgen^^Dr.") == ["muller", "jurgen", "dr"]
    assert fuzzy_words("O'Brien^Ana María=オブライエン") == ["o", "brien", "ana", "maria", "オフライエン"]
    assert fuzzy_words("jo* d?e") == ["jo", "d", "e"]
    assert fuzzy_words("snake_case") == ["snake", "case"]  # "_" would be a LIKE wildcard
    assert fuzzy_words("^^") == []


def test_fuzzy_key_puts_every_word_after_a_space() -> None:
    assert fuzzy_key("Doe^John") == " doe john "
    assert fuzzy_key("") == ""
    assert " jo" in fuzzy_key("Doe^John") and " oh" not in fuzzy_key("Doe^John")
