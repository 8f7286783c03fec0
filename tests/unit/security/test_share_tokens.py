"""Share tokens issued de-identified: what their claims say and the principal they become."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from app.security.errors import InvalidToken
from app.security.principal import Principal, PrincipalKind, Scope
from app.security.share_tokens import ShareTokenVerifier, issue_share_token

SECRET = "k" * 40
REPLACEMENT = "2.25.123"


def verified(token: str) -> Principal:
    principal, _expiry = ShareTokenVerifier([SECRET]).verify(token, jwt.get_unverified_header(token))
    return principal


def test_a_deidentified_token_grants_the_rendition_of_its_study_only() -> None:
    issued = issue_share_token([SECRET], REPLACEMENT, timedelta(hours=1), deidentified=True)
    principal = verified(issued.token)
    assert principal.scopes == {Scope.READ_DEIDENTIFIED.value}
    assert principal.study_uid == REPLACEMENT and principal.deidentified_only
    assert not principal.holds(Scope.READ)


def test_a_plain_token_is_not_deidentified() -> None:
    principal = verified(issue_share_token([SECRET], "1.2.3", timedelta(hours=1)).token)
    assert principal.scopes == {Scope.READ.value} and not principal.deidentified_only
    assert not principal.holds(Scope.READ_DEIDENTIFIED)


def test_an_unknown_deidentification_is_refused() -> None:
    issued = issue_share_token([SECRET], REPLACEMENT, timedelta(hours=1), deidentified=True)
    claims = jwt.decode(issued.token, SECRET, algorithms=["HS256"], issuer="fovea-share")
    forged = jwt.encode(
        {**claims, "deid": "none"}, SECRET, algorithm="HS256", headers=jwt.get_unverified_header(issued.token)
    )
    with pytest.raises(InvalidToken, match="unknown de-identification"):
        verified(forged)


def test_admin_implies_the_rendition_and_nothing_else_does() -> None:
    admin = Principal(PrincipalKind.API_KEY, "ops", frozenset({Scope.ADMIN.value}))
    reader = Principal(PrincipalKind.API_KEY, "viewer", frozenset({Scope.READ.value}))
    assert admin.holds(Scope.READ_DEIDENTIFIED) and not admin.holds(Scope.READ)
    assert not reader.holds(Scope.READ_DEIDENTIFIED)
    assert not admin.deidentified_only  # an API key is not confined


def test_a_deidentified_token_carries_its_study_key_as_a_hint() -> None:
    issued = issue_share_token([SECRET], REPLACEMENT, timedelta(hours=1), deidentified=True, study_key=42)
    assert verified(issued.token).study_key == 42
    assert (
        verified(issue_share_token([SECRET], "1.2.3", timedelta(hours=1), study_key=42).token).study_key
        is None
    )
