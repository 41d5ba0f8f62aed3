"""Fixtures for the record, NIK, region and media checks: a fixed intake date and valid records."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from printsrv.synthetic import SyntheticResident, synthetic_residents

TODAY = date(2026, 11, 23)


def _residents() -> list[SyntheticResident]:
    return list(synthetic_residents(600, seed=20261123, today=TODAY))


_CACHE: list[SyntheticResident] = []


def residents() -> list[SyntheticResident]:
    """600 synthetic residents, made once per test session."""
    if not _CACHE:
        _CACHE.extend(_residents())
    return _CACHE


def first(card_type: str, citizenship: str = "WNI", *, photo: bool | None = None) -> dict[str, Any]:
    """A deep copy of the first synthetic record of this kind."""
    for r in residents():
        rec = r.record
        if rec["card_type"] != card_type or rec["kewarganegaraan"] != citizenship:
            continue
        if photo is not None and (rec["media"]["photo"] is not None) != photo:
            continue
        return copy.deepcopy(rec)
    raise LookupError(card_type)


@pytest.fixture
def today() -> date:
    return TODAY


@pytest.fixture
def ktp() -> dict[str, Any]:
    """A valid KTP-EL record of a WNI adult."""
    return first("KTP-EL")


@pytest.fixture
def wna() -> dict[str, Any]:
    return first("KTP-EL", "WNA")


@pytest.fixture
def kia() -> dict[str, Any]:
    """A valid KIA record of a child aged 5 or more (with photo)."""
    return first("KIA", photo=True)


@pytest.fixture
def kia_small() -> dict[str, Any]:
    """A valid KIA record of a child under 5 (no photo)."""
    return first("KIA", photo=False)
