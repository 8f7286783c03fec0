"""Scopes from an OIDC token's claims: `scope` and `scp` by default, a configured claim, a mapping."""

from __future__ import annotations

from typing import Any

import pytest

from app.security.oidc import OidcConfig, OidcVerifier, parse_scope_map


def principal_scopes(claims: dict[str, Any], **config: Any) -> frozenset[str]:
    verifier = OidcVerifier(OidcConfig(issuer="https://idp", audience="fovea", **config))
    return verifier._principal({"sub": "s", **claims}).scopes


def test_scope_string_and_scp_list_both_count() -> None:
    assert principal_scopes({"scope": "openid dicom.read", "scp": ["dicom.write"]}) == {
        "dicom.read",
        "dicom.write",
    }


def test_a_configured_claim_at_a_dotted_path_with_a_mapping() -> None:
    claims = {"realm_access": {"roles": ["radiologist", "pacs-admin"]}, "scope": "dicom.write"}
    mapping = parse_scope_map("radiologist=dicom.read,pacs-admin=admin,pacs-admin=dicom.read")
    scopes = principal_scopes(claims, scope_claim="realm_access.roles", scope_map=mapping)
    assert scopes == {"dicom.read", "admin"}  # the default claims are not read then


def test_unknown_names_grant_nothing() -> None:
    assert principal_scopes({"scope": " ".join(f"s{i}" for i in range(10_000))}) == frozenset()


@pytest.mark.parametrize("text", ["reader", "reader=dicom.raed", "=dicom.read"])
def test_bad_mappings_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="FOVEA_OIDC_SCOPE_MAP"):
        parse_scope_map(text)
