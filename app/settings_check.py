"""Reading settings the way an operator needs: one line per mistake, unknown variables named, secrets masked.

Why apart from settings.py: that module is the model; this one turns pydantic's errors (which name fields,
not the FOVEA_* variables people set, and run to many lines) into messages a person can act on.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from app.settings import ENV_PREFIX, Settings

# FOVEA_* variables that are not settings: the test, e2e and benchmark harnesses read their own.
_NOT_SETTINGS = ("FOVEA_ARGS",)
_NOT_SETTINGS_PREFIXES = ("FOVEA_E2E_", "FOVEA_TEST_", "FOVEA_BENCH_")
_SECRET_WORDS = ("secret", "password", "token", "private")
MASK = "********"


class SettingsError(ValueError):
    """Settings that cannot be used; `lines` holds one message per bad variable."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def variable_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def is_secret(field: str) -> bool:
    return any(word in field for word in _SECRET_WORDS)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with `overrides` (command-line flags) validated the same way."""
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        raise SettingsError([_describe(error) for error in exc.errors()]) from None


def _describe(error: Mapping[str, Any]) -> str:
    location = error.get("loc") or ("?",)
    field = str(location[0])
    shown = MASK if is_secret(field) else repr(error.get("input"))
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{variable_name(field)}={shown} is not allowed: {message}"


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each FOVEA_* variable that is no setting, with the closest name when one is near."""
    environ = os.environ if environ is None else environ
    known = [variable_name(field) for field in Settings.model_fields]
    warnings = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or name in _NOT_SETTINGS:
            continue
        if name.startswith(_NOT_SETTINGS_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.append(f"{name} is not a Fovea setting and is ignored{hint}")
    return warnings


def effective_settings(settings: Settings) -> Iterable[tuple[str, str]]:
    """(variable, value) for every setting in force, derived defaults resolved, secrets masked."""
    values = settings.model_dump()
    values["database_url"] = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    values["storage_url"] = settings.resolved_storage_url
    values["shared_cache_url"] = _without_password(settings.shared_cache_url)
    for field, value in values.items():
        shown = MASK if is_secret(field) and value else _plain(value)
        yield variable_name(field), shown


def _without_password(url: str) -> str:
    """`url` with the password of its user part masked (redis://:secret@host -> redis://:********@host)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{parts.netloc.rsplit('@', 1)[1]}"))


def _plain(value: object) -> str:
    if value is None:
        return ""
    return str(value.value) if hasattr(value, "value") else str(value)
