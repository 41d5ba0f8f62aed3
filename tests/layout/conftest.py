"""Fixtures for the card-face tests: sample cards and a record builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date

import pytest

from printsrv.cardinput import CardInput
from printsrv.layout import sample_card
from printsrv.layout.sample import synthetic_photo, synthetic_signature

ISSUE = date(2026, 11, 24)


@pytest.fixture
def ktp() -> CardInput:
    return sample_card("ktp-el", ISSUE)


@pytest.fixture
def make_card() -> Callable[..., CardInput]:
    """Build a KTP-el record from the sample, overriding fields (``None`` deletes one)."""
    base = sample_card("ktp-el", ISSUE)

    def make(
        photo: bytes | None = None, signature: bytes | None = None, **fields: str | None
    ) -> CardInput:
        merged = {**base.fields, **fields}
        merged = {k: v for k, v in merged.items() if v is not None}
        return replace(
            base,
            fields=merged,
            photo_jpeg=base.photo_jpeg if photo is None else photo,
            signature_png=base.signature_png if signature is None else signature,
        )

    return make


@pytest.fixture(scope="session")
def box_photo() -> bytes:
    """A red-background JPEG exactly the ktp-el photo box at 300 dpi (passes through)."""
    return synthetic_photo(7, "RED", (236, 315))


@pytest.fixture(scope="session")
def white_signature() -> bytes:
    return synthetic_signature(7, transparent=False)
