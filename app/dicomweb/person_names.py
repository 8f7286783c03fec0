"""Person Name (PN) forms for matching: the case-folded value, and the words of fuzzy matching.

Why one place: the index stores these forms at ingest and the search builds its conditions from the
same functions, so a stored name and a query value are always folded alike.

- Ordinary PN matching (PS3.4 C.2.2.2.1, 8.3.4 of PS3.18) is case-insensitive here: the whole value,
  wildcards included, is compared after Unicode case folding ("DOE^JOHN" = "doe^john").
- Fuzzy matching (`fuzzymatching=true`) compares words: accents and case are folded away
  ("Müller" ~ "MULLER"), and every word of the query must be the start of some word of the stored name,
  in any component and any order ("jo do" finds "Doe^John", "mull" finds "Müller^Jürgen").
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\w+")


def fold_case(value: str) -> str:
    """The value for case-insensitive comparison (Unicode case folding: "Straße" -> "strasse")."""
    return value.casefold()


def fold_accents_and_case(value: str) -> str:
    """Case-folded with diacritics removed ("Jürgen" -> "jurgen")."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fuzzy_words(value: str) -> list[str]:
    """The words of a name or a query value, folded; separators and wildcards (`^ = * ?`) split words."""
    return _WORD.findall(fold_accents_and_case(value).replace("_", " "))


def fuzzy_key(value: str) -> str:
    """The stored form fuzzy matching searches: its words between spaces (" doe john "), or "".

    A word starts right after a space, so `LIKE '% jo%'` finds the names with a word starting "jo".
    """
    words = fuzzy_words(value)
    return f" {' '.join(words)} " if words else ""
