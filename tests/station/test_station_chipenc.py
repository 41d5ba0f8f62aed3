"""The encoder's host side without a card."""

from __future__ import annotations


def test_lds_content_type_known_even_if_cms_names_were_used_first() -> None:
    from asn1crypto import cms

    from printsrv.station.chipenc import _ensure_lds_content_type

    cms.ContentType("signed_data")  # asn1crypto builds its name → OID map now, once
    _ensure_lds_content_type()
    assert cms.ContentType("ldsSecurityObject").dotted == "2.23.136.1.1.1"
